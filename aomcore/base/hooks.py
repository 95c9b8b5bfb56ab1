"""Forward hooks that always come off: registered in a context manager, removed in ``finally``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from .errors import InputError

__all__ = ["forward_hooks", "forward_input_hooks", "get_module"]


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``).

    Raises
    ------
    InputError
        If there is no such module; the message lists a few valid names.
    """
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        raise InputError(f"no layer named {name!r}", expected=f"one of {names[:12]}{' …' if len(names) > 12 else ''}",
                         found=repr(name))
    return modules[name]


@contextmanager
def forward_hooks(model: nn.Module,
                  callbacks: Mapping[str, Callable[[torch.Tensor], torch.Tensor | None]]) -> Iterator[None]:
    """Call ``callbacks[name](output)`` after each forward of module ``name``.

    A callback that returns a tensor replaces the module's output (used to silence
    kernels); one that returns None only observes. Every hook is removed on exit, also
    when the body raises.

    Raises
    ------
    InputError
        If a name is not a module of ``model`` (no hook is left behind).
    """
    handles = []
    try:
        for name, callback in callbacks.items():
            module = get_module(model, name)
            handles.append(module.register_forward_hook(
                lambda _m, _inp, out, _cb=callback: _cb(out)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def forward_input_hooks(model: nn.Module,
                        callbacks: Mapping[str, Callable[[torch.Tensor], None]]) -> Iterator[None]:
    """Call ``callbacks[name](input)`` with the first positional input of module ``name``,
    before each of its forwards (observe only: the input is not replaced).

    Used to read what a layer sees (e.g. DeepEyes' input map reads a conv layer's input
    patches). Every hook is removed on exit, also when the body raises.

    Raises
    ------
    InputError
        If a name is not a module of ``model`` (no hook is left behind).
    """
    handles = []
    try:
        for name, callback in callbacks.items():
            module = get_module(model, name)
            handles.append(module.register_forward_pre_hook(_observe_input(callback)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _observe_input(callback: Callable[[torch.Tensor], object]):
    def pre_hook(_module, inputs):
        callback(inputs[0])
        return None  # never replace the input
    return pre_hook

"""Which layers of a model can be analysed, and where their activation is read.

One dry forward pass (batch of 1, zeros, ``torch.inference_mode``) records every module's
output shape and call count. For a conv or FC layer the default *tap* — the module whose
output the maps are computed on — is the activation as the next layer sees it: when the
layer's output goes straight into a BatchNorm and/or an activation module, the output of
the last of these (Garcia et al. 2019, Sec. IV-A: the kernel's "output activation"). The tap
never goes past a gate (Sigmoid, Hardsigmoid, Tanh, Softplus, ...: squeeze-and-excitation's
``fc2``), whose output is positive whatever the kernel did, nor into a module called more than
once per forward (torchvision's ResNet blocks share one ReLU); ``LayerInfo.tap_note`` says so.
A Linear applied to a channels-last tensor (N, ..., K) has its kernels on the last axis
(``LayerInfo.channel_dim = -1``). Any other module can be analysed by naming it. The conv and
FC modules left out (called more than once per forward, never called, or with an output of
another rank, e.g. Conv3d) are named with the reason by :func:`unanalysable_layers`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InputError

__all__ = ["LayerInfo", "list_layers", "resolve_layers", "unanalysable_layers"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_FC = (nn.Linear,)
_FOLLOWERS = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardtanh,
)
#: The followers with act(x) > 0 exactly when x > 0 (all activations above but PReLU, whose learned slope may
#: be negative): a count before one equals the count after it.
_SIGN_KEEPING = tuple(t for t in _FOLLOWERS if t not in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.PReLU))
#: Gates squash every value into (0, 1) or (-1, 1) (squeeze-and-excitation's scale, LSTM-like
#: gates): after one, "the activation is positive" no longer means the kernel fired, so the
#: default read point stops before them.
_GATES = (nn.Sigmoid, nn.Hardsigmoid, nn.Tanh, nn.Softplus, nn.Softmax, nn.LogSigmoid)


@dataclass(frozen=True)
class LayerInfo:
    """One analysable module.

    Attributes
    ----------
    name : str
        Module name in ``model.named_modules()``.
    type : str
        Module class name.
    kind : {"conv", "fc", "other"}
    output_shape : tuple of int
        Output shape of one image (no batch dimension).
    kernels : int
        Number of kernels (conv output channels) or neurons (FC units): output dim 1, or
        the last dim for a Linear applied to a channels-last tensor (e.g. ConvNeXt's
        ``(N, H, W, C)`` blocks), see ``channel_dim``.
    positions : (H, W)
        Spatial size of each kernel's map; (1, 1) for FC neurons on (N, K) tensors.
    params : int
        Parameters owned by the module itself.
    tap : str
        Module whose output the maps read by default (see the module docstring).
    channel_dim : {1, -1}
        Axis of the output (batch included) that indexes kernels: 1 for conv layers and
        FC layers on (N, K); -1 for a Linear on (N, ..., K) (its kernel axis is the last).
    tap_note : str
        Why the default read point stops where it does, when it is not obvious (e.g.
        "stops before the Sigmoid gate se.scale_activation"); empty otherwise.
    """

    name: str
    type: str
    kind: str
    output_shape: tuple[int, ...]
    kernels: int
    positions: tuple[int, int]
    params: int
    tap: str
    channel_dim: int = 1
    tap_note: str = ""


def _positions(shape: tuple[int, ...]) -> tuple[int, int] | None:
    if len(shape) == 1:
        return (1, 1)
    if len(shape) == 2:
        return (1, shape[1])
    if len(shape) == 3:
        return (shape[1], shape[2])
    return None



@contextmanager
def forward_errors(model: nn.Module, cannot: str, expected: str) -> Iterator[None]:
    """Run a user model's forward: what its code raises becomes one :class:`InputError`.

    A shape or type error says ``cannot`` (what the model could not take) and ``expected``;
    anything else the architecture's own code raises, even ``SystemExit``, names the model's
    class. ``KeyboardInterrupt`` (the user's Ctrl-C) passes through.
    """
    try:
        yield
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise InputError(cannot, expected=expected,
                         found=(str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the architecture's own forward code failed, even by SystemExit
        raise InputError(f"the forward pass of {type(model).__name__} raised an exception", expected="a forward "
                         "that runs (and returns logits, not exits)",
                         found=f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}") from None

def _trace(model: nn.Module, input_shape: tuple[int, ...], device) -> tuple[list, dict[str, int], torch.Tensor]:
    """One dry forward: every module call as an event, the call count per module, the output (checked)."""
    # One event per module call: (name, module, its first input, its output, the input's and the output's
    # version counters). A version counter is bumped by every in-place op, so a residual ``out += identity``
    # between a module's output and the next module's input shows as the same tensor with a higher version.
    events: list[tuple[str, nn.Module, object, object, int | None, int | None]] = []
    calls: dict[str, int] = {}
    handles = []
    entered: dict[str, list[int | None]] = {}  # module -> its input's version just before each call

    def _version(t) -> int | None:
        return t._version if isinstance(t, torch.Tensor) else None

    def before(name):
        def pre_hook(module, inputs):
            entered.setdefault(name, []).append(_version(inputs[0]) if inputs else None)
        return pre_hook

    def record(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            stack = entered.get(name)
            events.append((name, module, first, output, stack.pop() if stack else None, _version(output)))
        return hook

    was_training = model.training
    model.eval()
    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_pre_hook(before(name)))
                handles.append(module.register_forward_hook(record(name)))
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        with torch.no_grad(), forward_errors(model, "the model cannot take this input",  # no_grad: version counters
                                             f"a model accepting images of shape {tuple(input_shape)}"):
            output = model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    if not isinstance(output, torch.Tensor):
        raise InputError("the model's forward must return one tensor of logits",
                         expected="a tensor (batch, classes)", found=_describe_output(output))
    return events, calls, output


def unanalysable_layers(model: nn.Module, input_shape: tuple[int, ...],
                        device: str | torch.device = "cpu") -> list[tuple[str, str]]:
    """The conv and FC modules that :func:`list_layers` leaves out, with the reason, in module order.

    A module called more than once per forward (a shared layer: its maps would mix the
    calls), one the forward never calls, one that returns no tensor, and one whose output per
    image is not (K,), (K, L) or (K, H, W) (a Conv3d, a Linear on a 4-D tensor) cannot be
    analysed; "every conv layer" silently meant "every analysable one" before this was said.

    Returns
    -------
    list of (str, str)
        ``(module name, why)``, e.g. ``("conv", "called 2 times per forward (a shared module:
        its maps would mix the calls)")``.

    Raises
    ------
    InputError
        As :func:`list_layers`.
    """
    events, calls, _ = _trace(model, input_shape, device)
    outputs = {name: out for name, _, _, out, _, _ in events}
    found = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, _CONV + _FC):
            continue
        n = calls.get(name, 0)
        out = outputs.get(name)
        if n == 0:
            why = "never called by the forward pass"
        elif n > 1:
            why = f"called {n} times per forward (a shared module: its maps would mix the calls)"
        elif not isinstance(out, torch.Tensor):
            why = f"returns {type(out).__name__}, not a tensor"
        else:
            shape = tuple(out.shape[1:])
            kernel_first = (shape[-1], *shape[:-1]) if isinstance(module, _FC) and len(shape) >= 2 else shape
            if _positions(kernel_first) is not None:
                continue
            why = f"an output of shape {shape} per image: only (K,), (K, L) and (K, H, W) are analysed"
        found.append((name, why))
    return found


def list_layers(model: nn.Module, input_shape: tuple[int, ...], device: str | torch.device = "cpu",
                include_all: bool = False) -> list[LayerInfo]:
    """List the analysable layers of ``model`` in forward order.

    Parameters
    ----------
    model : nn.Module
        Left in the mode it was in; no hook survives.
    input_shape : tuple of int
        Shape of one input, e.g. (1, 28, 28).
    include_all : bool, default False
        Also list every other module called once per forward whose output is
        (N, K), (N, K, L) or (N, K, H, W) (pooling, blocks, activations, ...).

    Raises
    ------
    InputError
        If the dry forward pass fails (wrong input size or channels for the model), or the
        model's own code raises anything, ``SystemExit`` and ``GeneratorExit`` included
        (only ``KeyboardInterrupt`` passes through): a model that exits must not look
        like one without layers.
    """
    events, calls, output = _trace(model, input_shape, device)
    layers = []
    for i, (name, module, _inp, out, _, _) in enumerate(events):
        if calls[name] != 1 or not isinstance(out, torch.Tensor):
            continue
        shape = tuple(out.shape[1:])
        kind = "conv" if isinstance(module, _CONV) else "fc" if isinstance(module, _FC) else "other"
        channel_dim = -1 if kind == "fc" and len(shape) >= 2 else 1  # Linear acts on the last axis
        kernel_first = (shape[-1], *shape[:-1]) if channel_dim == -1 else shape
        positions = _positions(kernel_first)
        if positions is None:
            continue
        if kind == "other" and not include_all:
            continue
        tap, note = _default_tap(events, calls, output, i) if kind != "other" else (name, "")
        layers.append(LayerInfo(name=name, type=type(module).__name__, kind=kind, output_shape=shape,
                                kernels=int(kernel_first[0]), positions=positions,
                                params=sum(p.numel() for p in module.parameters(recurse=False)), tap=tap,
                                channel_dim=channel_dim, tap_note=note))
    return layers


def _describe_output(output) -> str:
    if isinstance(output, dict):
        return f"a dict with keys {list(output)[:5]}"
    if isinstance(output, (tuple, list)):
        kind = type(output).__name__
        return f"a {kind} of {len(output)} items" + (" (e.g. auxiliary logits: build it with aux_logits=False)"
                                                      if "Outputs" in kind else "")
    return type(output).__name__


def _default_tap(events, calls, final, i: int) -> tuple[str, str]:
    """The default read point of layer ``events[i]`` and a note when it stops before a gate, or before a
    shared module whose input is not simply this layer's output."""
    name, tap_module, _, current, _, produced = events[i]
    consumed = False
    for next_name, module, inp, out, inp_version, out_version in events[i + 1:]:
        if inp is not current:
            continue
        consumed = True
        if isinstance(module, _GATES):
            return name, f"stops before the {type(module).__name__} gate {next_name} (its output's sign means nothing)"
        if isinstance(module, _FOLLOWERS) and calls[next_name] == 1 and isinstance(out, torch.Tensor):
            name, tap_module, current, produced = next_name, module, out, out_version
        elif isinstance(module, _FOLLOWERS) and calls[next_name] > 1:
            # A shared module (torchvision's BasicBlock runs one ReLU twice) cannot be read per call by name,
            # so the read stops before it. Its input is this output unless an in-place op came between.
            changed = inp_version is not None and produced is not None and inp_version > produced
            if changed:
                return name, (f"stops at {name}: {name}'s output is changed in place (e.g. a residual "
                              f"'+= identity') before the shared {next_name}; counts are of {name} > 0, while the "
                              f"next layer sees {next_name}({name} + ...): read the enclosing block for that")
            if isinstance(module, _SIGN_KEEPING):
                return name, ""  # act(x) > 0 exactly when x > 0: the counts are those after the activation
            return name, f"stops at {name}, before the shared {next_name} ({calls[next_name]} calls per forward)"
        else:
            break
        consumed = False  # followed into a BatchNorm or activation: look for what reads its output
    if not consumed and current is not final and not isinstance(tap_module, _SIGN_KEEPING):
        return name, (f"stops at {name}: its output goes into an operation that is not a module (e.g. a residual "
                      f"'x + identity' or a functional activation); counts are of {name} > 0")
    return name, ""


def resolve_layers(layers: list[LayerInfo], names: list[str] | None) -> list[LayerInfo]:
    """Pick layers by name (default: every conv layer, else every FC layer).

    Raises
    ------
    InputError
        If a name is not analysable; the message lists the valid ones.
    """
    if not names:
        chosen = [la for la in layers if la.kind == "conv"] or [la for la in layers if la.kind == "fc"]
        if not chosen:
            raise InputError("the model has no conv or FC layer", expected="a CNN", found="none")
        return chosen
    by_name = {layer.name: layer for layer in layers}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(f"no analysable layer named {', '.join(map(repr, unknown))}",
                         expected=f"one of {list(by_name)[:16]}", found=", ".join(unknown))
    return [by_name[n] for n in names]

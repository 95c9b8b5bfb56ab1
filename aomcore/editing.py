"""Structural edits of a trained model: the paper's three tasks (Garcia et al. 2019, Sec. III).

=========  =====================================================================  ============
kind       what it does                                                           task
=========  =====================================================================  ============
remove     drop kernels (conv output channels / FC neurons) for real: the         1 (redundant
           layer's weights, the matching BatchNorm channels and every coupled     or ineffective
           input of the next layers go, through residual adds and concatenations  kernels)
           (torch-pruning's ``DependencyGraph``)
reinit     fresh weights for chosen kernels; the layer keeps its size             1 (alternative)
widen      add n kernels: new weights random (seeded), the next layers' matching  2 (too small
           input weights zero, so the function is unchanged until retraining      layer)
insert     a 3×3 same-padding conv + ReLU after a conv layer's activation,        3 (too shallow
           initialised to identity (Dirac), so the function is unchanged          model)
           (where the activation is not a ReLU — inside a ResNet block, after
           its BatchNorm — the conv goes without the ReLU: the block's follows)
=========  =====================================================================  ============

An :class:`Edit` is a small serialisable record; :func:`apply_edit` never modifies its
input (it edits a deep copy) and raises :class:`~aomcore.errors.InputError`, changing
nothing, when an edit cannot apply. :func:`build_edited` rebuilds an edited architecture
from the original spec and the list of edits, so a version's state_dict can be loaded
back.
"""

from __future__ import annotations

import copy
import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .errors import InputError
from .hooks import get_module
from .layers import list_layers

__all__ = ["EDIT_KINDS", "Edit", "apply_edit", "apply_edits", "build_edited", "kernels_per_layer",
           "load_edits", "parse_edit"]

EDIT_KINDS = ("remove", "reinit", "widen", "insert")
_NONNEG = (nn.ReLU, nn.ReLU6)


@dataclass(frozen=True)
class Edit:
    """One edit.

    Attributes
    ----------
    kind : {"remove", "reinit", "widen", "insert"}
    layer : str
        The conv or FC layer edited (for ``insert``: the layer after whose activation
        the new conv goes).
    kernels : tuple of int
        Kernel indices (``remove``, ``reinit``).
    n : int
        Kernels to add (``widen``).
    seed : int
        Seeds the random weights of ``reinit`` and ``widen``.
    name : str
        Name of the inserted conv (``insert``); default ``LAYER_ins``.
    """

    kind: str
    layer: str
    kernels: tuple[int, ...] = field(default_factory=tuple)
    n: int = 0
    seed: int = 0
    name: str = ""

    def __post_init__(self):
        if self.kind not in EDIT_KINDS:
            raise InputError("unknown edit", expected=", ".join(EDIT_KINDS), found=repr(self.kind))
        object.__setattr__(self, "kernels", tuple(int(k) for k in self.kernels))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kernels"] = list(self.kernels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Edit:
        try:
            return cls(**{k: d[k] for k in ("kind", "layer", "kernels", "n", "seed", "name") if k in d})
        except (TypeError, KeyError) as exc:
            raise InputError("malformed edit record", expected="{kind, layer, kernels|n, seed}", found=str(d)) from exc

    def describe(self) -> str:
        if self.kind in ("remove", "reinit"):
            return f"{self.kind} {len(self.kernels)} kernel(s) of {self.layer}: {list(self.kernels)}"
        if self.kind == "widen":
            return f"widen {self.layer} by {self.n} kernel(s)"
        return f"insert a 3×3 conv + ReLU after {self.layer}"


def parse_edit(text: str, kind: str, seed: int = 0) -> Edit:
    """Parse the CLI forms ``conv1:3,5,7`` (remove/reinit), ``conv2:+4`` (widen), ``conv2`` (insert)."""
    layer, _, rest = text.partition(":")
    if kind in ("remove", "reinit"):
        try:
            kernels = tuple(int(k) for k in rest.split(",") if k.strip())
        except ValueError:
            raise InputError(f"bad --{kind} value", expected="LAYER:I,J,K (kernel indices)", found=repr(text)) from None
        if not kernels:
            raise InputError(f"bad --{kind} value", expected="LAYER:I,J,K with at least one index", found=repr(text))
        return Edit(kind, layer, kernels, seed=seed)
    if kind == "widen":
        try:
            n = int(rest.lstrip("+"))
        except ValueError:
            raise InputError("bad --widen value", expected="LAYER:+N", found=repr(text)) from None
        return Edit(kind, layer, n=n, seed=seed)
    return Edit("insert", text, seed=seed)


def load_edits(text: str) -> list[Edit]:
    """Edits from the JSON written by ``--log`` / the dashboard (a list, or {"edits": [...]})."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("edit list is not JSON", expected="a JSON list of edits", found=str(exc)) from None
    items = data.get("edits", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError("edit list is malformed", expected="a JSON list of edits", found=type(items).__name__)
    return [Edit.from_dict(d) for d in items]


# --------------------------------------------------------------------------------------


def _layer(model: nn.Module, name: str, input_shape) -> tuple[nn.Module, object]:
    layers = {la.name: la for la in list_layers(model, input_shape)}
    if name not in layers:
        raise InputError(f"no conv or FC layer named {name!r}", expected=f"one of {list(layers)}", found=repr(name))
    return get_module(model, name), layers[name]


def _check_indices(kernels, k: int, layer: str) -> None:
    bad = [i for i in kernels if not 0 <= i < k]
    if bad:
        raise InputError(f"kernel index out of range for {layer}", expected=f"indices in [0, {k - 1}]", found=str(bad))
    if len(set(kernels)) != len(kernels):
        raise InputError("repeated kernel index", expected="distinct indices", found=str(list(kernels)))


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = get_module(model, parent_name) if parent_name else model
    setattr(parent, child, new)


def _pruning_group(model: nn.Module, module: nn.Module, idxs: list[int], input_shape):
    import torch_pruning as tp

    param = next(model.parameters())
    example = torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    fn = tp.prune_conv_out_channels if isinstance(module, nn.modules.conv._ConvNd) else tp.prune_linear_out_channels
    return graph.get_pruning_group(module, fn, idxs=idxs), graph


def _remove(model, edit, input_shape):
    module, info = _layer(model, edit.layer, input_shape)
    _check_indices(edit.kernels, info.kernels, edit.layer)
    if len(edit.kernels) >= info.kernels:
        raise InputError(f"cannot remove every kernel of {edit.layer}",
                         expected=f"at most {info.kernels - 1} of {info.kernels}", found=f"{len(edit.kernels)}")
    if info.kind == "fc" and info.name == list_layers(model, input_shape)[-1].name:
        raise InputError("cannot remove output neurons", expected="a hidden layer",
                         found=f"{edit.layer} (the model's output: one neuron per class)")
    group, graph = _pruning_group(model, module, list(edit.kernels), input_shape)
    if not graph.check_pruning_group(group):
        raise InputError(f"cannot remove these kernels of {edit.layer}", expected="a prunable group",
                         found="torch-pruning refused the group (it would leave a layer empty)")
    group.prune()


def _reinit(model, edit, input_shape):
    module, info = _layer(model, edit.layer, input_shape)
    _check_indices(edit.kernels, info.kernels, edit.layer)
    gen = torch.Generator().manual_seed(edit.seed)
    idx = torch.as_tensor(edit.kernels, dtype=torch.int64)
    with torch.no_grad():
        fresh = torch.empty_like(module.weight, device="cpu")
        nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=gen)  # nn.Conv2d/nn.Linear's own init
        module.weight[idx] = fresh[idx].to(module.weight)
        if module.bias is not None:
            fan_in = module.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in else 0
            module.bias[idx] = (torch.rand(len(idx), generator=gen) * 2 * bound - bound).to(module.bias)


def _grow(module: nn.Module, dim: int, n: int, init: str, gen: torch.Generator) -> None:
    """Append ``n`` channels to ``module``'s parameters and buffers, in place.

    ``init="random"`` grows the output side (weights uniform in ±1/√fan_in, as PyTorch's
    default init; biases 0; BatchNorm weight/running_var 1, bias/running_mean 0).
    ``init="zero"`` grows the input side (dim 1 of the weight) with zeros; 1-D tensors,
    which belong to the outputs, are left alone.
    """
    with torch.no_grad():
        for name, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            if tensor.ndim == 0 or (tensor.ndim == 1 and init == "zero"):
                continue
            if tensor.ndim == 1:
                d, extra = 0, torch.full((n,), 1.0 if name in ("weight", "running_var") else 0.0)
            else:
                d = dim
                shape = list(tensor.shape)
                shape[d] = n
                extra = torch.zeros(shape)
                if init == "random":
                    bound = 1 / math.sqrt(max(1, tensor[0].numel()))
                    extra.uniform_(-bound, bound, generator=gen)
            grown = torch.cat([tensor.detach().cpu(), extra.to(tensor.dtype)], dim=d).to(tensor.device)
            if isinstance(tensor, nn.Parameter):
                setattr(module, name, nn.Parameter(grown, requires_grad=tensor.requires_grad))
            else:
                module.register_buffer(name, grown)


def _widen(model, edit, input_shape):
    module, info = _layer(model, edit.layer, input_shape)
    if edit.n < 1:
        raise InputError("widen needs a positive number of kernels", expected="N >= 1", found=str(edit.n))
    group, _ = _pruning_group(model, module, [0], input_shape)
    gen = torch.Generator().manual_seed(edit.seed)
    done: set[tuple[int, str]] = set()
    for dep, idxs in group:
        target = dep.target.module
        handler = getattr(dep.handler, "__name__", "")
        key = (id(target), handler)
        if key in done or not isinstance(target, nn.Module):
            continue
        done.add(key)
        if isinstance(target, nn.modules.conv._ConvNd):
            if target.groups != 1:
                raise InputError("cannot widen through a grouped/depthwise conv", expected="groups=1",
                                 found=f"{type(target).__name__}(groups={target.groups})")
            if handler == "prune_out_channels":
                _grow(target, 0, edit.n, "random", gen)
                target.out_channels += edit.n
            else:
                _grow(target, 1, edit.n, "zero", gen)
                target.in_channels += edit.n
        elif isinstance(target, nn.Linear):
            if handler == "prune_out_channels":
                _grow(target, 0, edit.n, "random", gen)
                target.out_features += edit.n
            else:  # after a flatten: each new channel brings len(idxs) features, appended at the end
                per_channel = max(1, len(idxs))
                _grow(target, 1, edit.n * per_channel, "zero", gen)
                target.in_features += edit.n * per_channel
        elif isinstance(target, nn.modules.batchnorm._BatchNorm):
            _grow(target, 0, edit.n, "random", gen)
            target.num_features += edit.n
        elif isinstance(target, nn.Module) and any(True for _ in target.parameters(recurse=False)):
            raise InputError("cannot widen through this layer", expected="conv, linear and BatchNorm layers",
                             found=type(target).__name__)


def _insert(model, edit, input_shape):
    module, info = _layer(model, edit.layer, input_shape)
    if info.kind != "conv" or len(info.output_shape) != 3:
        raise InputError("insert goes after a 2-D conv layer", expected="a Conv2d layer",
                         found=f"{edit.layer} ({info.type})")
    tap = get_module(model, info.tap)
    # conv + ReLU is the identity only on non-negative inputs: add the ReLU after a ReLU tap;
    # elsewhere (e.g. after a ResNet block's BatchNorm, whose ReLU is reused) the conv goes alone.
    with_relu = isinstance(tap, _NONNEG)
    channels = info.kernels
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    with torch.no_grad():
        nn.init.dirac_(conv.weight)
        conv.bias.zero_()
    param = next(module.parameters())
    conv = conv.to(device=param.device, dtype=param.dtype)
    new_name = edit.name or f"{edit.layer.replace('.', '_')}_ins"
    parent_name, _, child = info.tap.rpartition(".")
    parent = get_module(model, parent_name) if parent_name else model
    if isinstance(parent, nn.Sequential):
        items = []
        for name, sub in parent.named_children():
            items.append((name, sub))
            if name == child:
                items += [(new_name, conv)] + ([(f"{new_name}_relu", nn.ReLU())] if with_relu else [])
        names = [n for n, _ in items]
        if len(set(names)) != len(names):
            raise InputError("a layer with that name exists", expected="a new name", found=new_name)
        rebuilt = nn.Sequential(OrderedDict(items))
        if parent is model:
            return rebuilt
        _set_module(model, parent_name, rebuilt)
    else:
        tail = [("relu", nn.ReLU())] if with_relu else []
        _set_module(model, info.tap, nn.Sequential(OrderedDict([("act", tap), ("conv", conv), *tail])))
    return model


_APPLY = {"remove": _remove, "reinit": _reinit, "widen": _widen, "insert": _insert}


def apply_edit(model: nn.Module, edit: Edit, input_shape: tuple[int, ...]) -> nn.Module:
    """Return an edited deep copy of ``model``; ``model`` itself is never changed.

    Raises
    ------
    InputError
        Unknown layer, index out of range, removing every kernel, or an architecture the
        edit cannot go through.
    """
    edited = copy.deepcopy(model)
    was_training = edited.training
    edited.eval()
    result = _APPLY[edit.kind](edited, edit, tuple(input_shape))
    edited = result if isinstance(result, nn.Module) else edited
    edited.train(was_training)
    return edited


def apply_edits(model: nn.Module, edits: list[Edit], input_shape: tuple[int, ...]) -> nn.Module:
    for edit in edits:
        model = apply_edit(model, edit, input_shape)
    return model


def build_edited(arch: str, num_classes: int, input_shape: tuple[int, int, int], edits: list[Edit]) -> nn.Module:
    """The architecture ``arch`` with ``edits`` applied (weights arbitrary: load a state_dict next)."""
    from .models import build_model

    return apply_edits(build_model(arch, num_classes, input_shape), edits, input_shape)


def kernels_per_layer(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Kernels (conv) or neurons (FC) of every conv/FC layer, in forward order."""
    return {la.name: la.kernels for la in list_layers(model, input_shape)}

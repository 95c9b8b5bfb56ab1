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
input (it edits a deep copy) and raises :class:`~aomcore.base.errors.InputError`, changing
nothing, when an edit cannot apply. :func:`build_edited` rebuilds an edited architecture
from the original spec and the list of edits, so a version's state_dict can be loaded
back.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .errors import InputError
from .hooks import get_module
from .layers import list_layers
from .limits import KERNELS_MAX, SEED_MAX, SEED_MIN, check_int, check_layer_name
from .lineage import Lineage, kernel_ranges
from .models import build_model
from .policy import current_policy

__all__ = ["EDIT_KINDS", "Edit", "apply_edit", "apply_edits", "build_edited", "build_traced", "rebuild",
           "rebuild_traced", "trace_edit", "trace_edits", "edit_log_origin", "kernels_per_layer",
           "kernel_ranges", "load_edits", "parse_edit"]

EDIT_KINDS = ("remove", "reinit", "widen", "insert")
_NONNEG = (nn.ReLU, nn.ReLU6)
_KERNEL_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)  # what list_layers lists: their outputs are kernels


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
        Seeds the random weights of ``reinit`` and ``widen``; in [0, 2**32 - 1]
        (:data:`~aomcore.base.limits.SEED_MAX`).
    name : str
        Name of the inserted conv (``insert``); default ``LAYER_ins``. A Python identifier
        (no ``.`` or ``/``).

    Raises
    ------
    InputError
        A field of the wrong type or range (a seed outside [0, 2**32 - 1], a name that is
        not an identifier), or a ``remove``/``reinit`` edit without kernels (a no-op that
        would be recorded as an edit).
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
        for label, value in (("layer", self.layer), ("name", self.name)):
            if not isinstance(value, str):
                raise InputError(f"bad edit field {label!r}", expected="a string", found=_short(value))
        if not self.layer:
            raise InputError("bad edit field 'layer'", expected="a layer name", found="''")
        if isinstance(self.kernels, np.ndarray):
            object.__setattr__(self, "kernels", tuple(self.kernels.reshape(-1).tolist()))
        if not isinstance(self.kernels, (list, tuple)):
            raise InputError("bad edit field 'kernels'", expected="a list of kernel indices",
                             found=_short(self.kernels))
        bad = [k for k in self.kernels if not _is_index(k)]
        if bad:
            raise InputError("kernel indices must be integers", expected="whole numbers such as 3",
                             found=_short(bad[0]))
        for label, value in (("n", self.n), ("seed", self.seed)):
            if not _is_index(value):
                raise InputError(f"bad edit field {label!r}", expected="an integer", found=_short(value))
        check_int("edit field 'seed'", self.seed, SEED_MIN, SEED_MAX)  # the range every generator accepts
        if self.name:
            check_layer_name("edit field 'name'", self.name)
        if self.kind in ("remove", "reinit") and not self.kernels:
            raise InputError(f"an empty {self.kind} edit", expected="at least one kernel index",
                             found=f"{self.layer}: no kernels")
        object.__setattr__(self, "kernels", tuple(int(k) for k in self.kernels))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kernels"] = list(self.kernels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Edit:
        if not isinstance(d, dict):
            raise InputError("malformed edit record", expected="{kind, layer, kernels|n, seed}", found=_short(d))
        try:
            return cls(**{k: d[k] for k in ("kind", "layer", "kernels", "n", "seed", "name") if k in d})
        except TypeError:
            raise InputError("malformed edit record", expected="{kind, layer, kernels|n, seed}",
                             found=_short(d)) from None

    def describe(self) -> str:
        if self.kind in ("remove", "reinit"):
            return f"{self.kind} {len(self.kernels)} kernel(s) of {self.layer}: {kernel_ranges(self.kernels)}"
        if self.kind == "widen":
            return f"widen {self.layer} by {self.n} kernel(s)"
        return f"insert a 3×3 conv + ReLU after {self.layer}"


def _is_index(value) -> bool:
    """An integer (not a bool, not a float such as 1.7 that int() would truncate)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_edit(text: str, kind: str, seed: int = 0) -> Edit:
    """Parse the CLI forms ``conv1:3,5,7`` or ``conv1:0-3,5`` (remove/reinit), ``conv2:+4`` (widen),
    ``conv2`` (insert)."""
    layer, _, rest = text.partition(":")
    if not layer.strip():
        flag = "insert-after" if kind == "insert" else kind
        raise InputError(f"bad --{flag} value: no layer name", expected="a layer name (see `python -m aomcore "
                         "layers`)", found=repr(text))
    if kind in ("remove", "reinit"):
        parts = [k.strip() for k in rest.split(",") if k.strip()]
        ranges = [re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", k) for k in parts]  # no 1.7, 1_0, -1: whole numbers
        if not all(ranges) or any(r[2] is not None and int(r[2]) < int(r[1]) for r in ranges):
            raise InputError(f"bad --{kind} value", expected="LAYER:I,J,K or LAYER:I-J,K (kernel indices, "
                             "ranges ascending)", found=repr(text))
        if sum(int(r[2]) - int(r[1]) + 1 for r in ranges if r[2] is not None) > KERNELS_MAX:
            raise InputError(f"bad --{kind} value", expected=f"at most {KERNELS_MAX:,} kernel indices",
                             found=repr(text))
        kernels = tuple(i for r in ranges for i in range(int(r[1]), int(r[2] or r[1]) + 1))
        if not kernels:
            raise InputError(f"bad --{kind} value", expected="LAYER:I,J,K with at least one index", found=repr(text))
        return Edit(kind, layer, kernels, seed=seed)
    if kind == "widen":
        if not re.fullmatch(r"\+?[0-9]+", rest.strip()):
            raise InputError("bad --widen value", expected="LAYER:+N", found=repr(text))
        n = int(rest.strip().lstrip("+"))
        return Edit(kind, layer, n=n, seed=seed)
    return Edit("insert", text, seed=seed)


def load_edits(text: str) -> list[Edit]:
    """Edits from the JSON written by ``--log`` / the dashboard (a list, or {"edits": [...]})."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("edit list is not JSON", expected="a JSON list of edits", found=str(exc)) from None
    except RecursionError:
        raise InputError("edit list is nested too deeply", expected="a JSON list of edit records",
                         found="brackets nested beyond Python's recursion limit") from None
    if isinstance(data, dict) and "edits" not in data:
        raise InputError("edit list is malformed", expected='a JSON list of edits or {"edits": [...]}',
                         found=f"an object with keys {list(data)[:5]}")
    items = data["edits"] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError("edit list is malformed", expected="a JSON list of edits", found=type(items).__name__)
    return [Edit.from_dict(d) for d in items]


# --------------------------------------------------------------------------------------


def _layer(model: nn.Module, name: str, input_shape) -> tuple[nn.Module, object]:
    module = dict(model.named_modules()).get(name) if name else None
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        raise InputError(f"cannot edit {name}: transposed convolutions are not supported",
                         expected="a Conv1d/2d/3d or Linear layer", found=f"{name} ({type(module).__name__})")
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


def _is_depthwise(conv: nn.Module) -> bool:
    return conv.groups == conv.in_channels == conv.out_channels


def _pruning_group(model: nn.Module, module: nn.Module, idxs: list[int], input_shape, what: str):
    """torch-pruning's group of every tensor coupled to ``module``'s output channels ``idxs``.

    Refuses, before anything changes, where torch-pruning is known not to be exact: a
    model it cannot trace (e.g. ShuffleNet's channel shuffle, a view that splits the
    channel axis), grouped convolutions that are not depthwise, transposed convolutions.
    """
    import torch_pruning as tp

    param = next(model.parameters())
    example = torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device)
    try:
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    except Exception as exc:  # torch-pruning's tracer fails on channel shuffles and other reshapes
        raise InputError(f"cannot {what} {_name_of(model, module)}: torch-pruning cannot trace this model's "
                         "channel dependencies (e.g. a channel shuffle that reshapes the channel axis)",
                         expected="a model without channel-axis reshapes",
                         found=f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}") from None
    fn = tp.prune_conv_out_channels if isinstance(module, nn.modules.conv._ConvNd) else tp.prune_linear_out_channels
    group = graph.get_pruning_group(module, fn, idxs=idxs)
    for dep, _ in group:
        target = dep.target.module
        sizes = getattr(getattr(dep.target, "grad_fn", None), "_saved_self_sym_sizes", None)
        if isinstance(target, tp.ops._ReshapeOp) and sizes is not None and len(sizes) > len(input_shape) + 1:
            raise InputError(f"cannot {what} {_name_of(model, module)}: its channels go through a reshape that "
                             "splits the channel axis (e.g. a channel shuffle), which torch-pruning does not map",
                             expected="channels kept whole up to the next layer",
                             found=f"a view of shape {tuple(sizes)}")
        if isinstance(target, nn.modules.conv._ConvTransposeNd):
            raise InputError(f"cannot {what} {_name_of(model, module)}: its channels reach a transposed convolution",
                             expected="conv/linear layers only", found=f"{_name_of(model, target)} "
                             f"({type(target).__name__})")
        if isinstance(target, nn.modules.conv._ConvNd) and target.groups > 1 and not _is_depthwise(target):
            raise InputError(f"cannot {what} {_name_of(model, module)}: torch-pruning does not handle grouped "
                             "convolutions that are not depthwise", expected="groups=1 or depthwise convs",
                             found=f"{_name_of(model, target)} (groups={target.groups})")
    return group, graph


def _name_of(model: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in model.named_modules() if m is module), type(module).__name__)


def _remove(model, edit, input_shape):
    module, info = _layer(model, edit.layer, input_shape)
    _check_indices(edit.kernels, info.kernels, edit.layer)
    if len(edit.kernels) >= info.kernels:
        raise InputError(f"cannot remove every kernel of {edit.layer}",
                         expected=f"at most {info.kernels - 1} of {info.kernels}", found=f"{len(edit.kernels)}")
    if info.kind == "fc" and info.name == list_layers(model, input_shape)[-1].name:
        raise InputError("cannot remove output neurons", expected="a hidden layer",
                         found=f"{edit.layer} (the model's output: one neuron per class)")
    group, graph = _pruning_group(model, module, list(edit.kernels), input_shape, "remove kernels of")
    if not graph.check_pruning_group(group):
        raise InputError(f"cannot remove these kernels of {edit.layer}", expected="a prunable group",
                         found="torch-pruning refused the group (it would leave a layer empty)")
    dropped: dict[int, tuple] = {}
    for dep, idxs in group:  # every conv/FC whose outputs go: the layer and those coupled to it
        target = dep.target.module
        depthwise = isinstance(target, nn.modules.conv._ConvNd) and _is_depthwise(target)
        handler = getattr(dep.handler, "__name__", "")
        if isinstance(target, _KERNEL_LAYERS) and (handler == "prune_out_channels" or depthwise):
            gone = dropped.get(id(target), ("drop", frozenset()))[1] | {int(i) for i in idxs}
            dropped[id(target)] = ("drop", gone)
    group.prune()
    return None, dropped


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
    return None, {}  # fresh weights, same kernels: each keeps its name


def _grow(module: nn.Module, dim: int, at: int, n: int, init: str, gen: torch.Generator) -> None:
    """Insert ``n`` channels at index ``at`` of ``module``'s parameters and buffers, in place.

    ``init="random"`` grows the output side (axis 0 of the weight: uniform in ±1/√fan_in,
    as PyTorch's default init; biases 0; BatchNorm weight/running_var 1, bias/running_mean
    0). ``init="zero"`` grows the input side (axis ``dim`` of the weight) with zeros; 1-D
    tensors, which belong to the outputs, are left alone.
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
            old = tensor.detach().cpu()
            grown = torch.cat([old.narrow(d, 0, at), extra.to(tensor.dtype), old.narrow(d, at, old.shape[d] - at)],
                              dim=d).to(tensor.device)
            if isinstance(tensor, nn.Parameter):
                setattr(module, name, nn.Parameter(grown, requires_grad=tensor.requires_grad))
            else:
                module.register_buffer(name, grown)


def _insertion_point(idxs: list[int], k: int, where: str) -> tuple[int, int]:
    """Where the new channels go in a tensor holding the layer's ``k`` channels at ``idxs``.

    ``idxs`` are torch-pruning's index mapping of channels 0..k-1 into this tensor (a
    concatenation offsets them; a flatten multiplies each into ``len(idxs) / k`` features).
    Returns (index, features per new channel): new channels go right after the layer's
    last channel, which is where a concatenation or flatten of the widened layer puts them.
    """
    idxs = sorted(int(i) for i in idxs)
    if not idxs or len(idxs) % k or idxs != list(range(idxs[0], idxs[0] + len(idxs))):
        raise InputError(f"cannot widen through {where}: the layer's channels are not one contiguous block there",
                         expected="channels kept together (conv, concat, flatten)", found=f"{len(idxs)} indices")
    return idxs[-1] + 1, len(idxs) // k


def _growth_bytes(module: nn.Module, handler: str, n: int) -> int:
    """Bytes ``n`` new channels add to ``module``'s tensors (output side: axis 0, else axis 1)."""
    axis = 0 if handler in ("prune_out_channels", "depthwise") else 1
    return sum(n * t.numel() // t.shape[min(axis, t.ndim - 1)] * t.element_size()
               for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)] if t.ndim)


def _widen(model, edit, input_shape):
    module, info = _layer(model, edit.layer, input_shape)
    if edit.n < 1:
        raise InputError("widen needs a positive number of kernels", expected="N >= 1", found=str(edit.n))
    if info.kind == "fc" and info.name == list_layers(model, input_shape)[-1].name:
        raise InputError("cannot widen the output layer", expected="a hidden layer",
                         found=f"{edit.layer} (the model's output: one neuron per class)")
    k = info.kernels
    group, _ = _pruning_group(model, module, list(range(k)), input_shape, "widen")
    gen = torch.Generator().manual_seed(edit.seed)
    plan: dict[tuple, tuple] = {}
    for dep, idxs in group:
        target = dep.target.module
        if not isinstance(target, nn.Module) or not any(True for _ in target.parameters(recurse=False)):
            continue  # element-wise ops, concatenations, activations without parameters
        handler = getattr(dep.handler, "__name__", "")
        where = _name_of(model, target)
        at, per = _insertion_point(list(idxs), k, where)
        if isinstance(target, nn.modules.conv._ConvNd) and _is_depthwise(target):
            handler = "depthwise"  # in and out channels are the same channels
        key = (id(target), handler)  # a layer can consume and produce the grown channels (residual)
        step = (handler, at, per)
        if key in plan and plan[key][1] != step:
            raise InputError(f"cannot widen {edit.layer}: {where} takes its channels twice",
                             expected="each layer reached once", found=where)
        plan[key] = (target, step)
    grown = sum(_growth_bytes(target, handler, edit.n * per) for target, (handler, _, per) in plan.values())
    current_policy().check_allocation(grown, f"widening {edit.layer} by {edit.n} kernels", "a smaller N")
    added: dict[int, tuple] = {}
    for target, (handler, at, per) in plan.values():
        n = edit.n * per
        if isinstance(target, _KERNEL_LAYERS) and handler in ("prune_out_channels", "depthwise"):
            added[id(target)] = ("grow", at, n)
        if isinstance(target, nn.modules.conv._ConvNd):
            if handler == "depthwise":
                _grow(target, 0, at, n, "random", gen)
                target.in_channels += n
                target.out_channels += n
                target.groups += n
            elif handler == "prune_out_channels":
                _grow(target, 0, at, n, "random", gen)
                target.out_channels += n
            else:
                _grow(target, 1, at, n, "zero", gen)
                target.in_channels += n
        elif isinstance(target, nn.Linear):
            if handler == "prune_out_channels":
                _grow(target, 0, at, n, "random", gen)
                target.out_features += n
            else:  # zero input weights: the new channels (or their flattened features) change nothing
                _grow(target, 1, at, n, "zero", gen)
                target.in_features += n
        elif isinstance(target, nn.modules.batchnorm._BatchNorm):
            _grow(target, 0, at, n, "random", gen)
            target.num_features += n
        else:
            raise InputError(f"cannot widen {edit.layer} through {_name_of(model, target)}",
                             expected="conv, linear and BatchNorm layers on the way",
                             found=f"{type(target).__name__} (it mixes or scales channels with its own parameters)")
    return None, added


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
            return rebuilt, {}
        _set_module(model, parent_name, rebuilt)
    else:
        tail = [("relu", nn.ReLU())] if with_relu else []
        _set_module(model, info.tap, nn.Sequential(OrderedDict([("act", tap), ("conv", conv), *tail])))
    return model, {}  # the new layer's kernels are all new (the lineage finds it by its module)


_APPLY = {"remove": _remove, "reinit": _reinit, "widen": _widen, "insert": _insert}


def apply_edit(model: nn.Module, edit: Edit, input_shape: tuple[int, ...]) -> nn.Module:
    """Return an edited deep copy of ``model``; ``model`` itself is never changed.

    Raises
    ------
    InputError
        Unknown layer, index out of range, removing every kernel, or an architecture the
        edit cannot go through.
    """
    return trace_edit(model, edit, input_shape)[0]


def trace_edit(model: nn.Module, edit: Edit, input_shape: tuple[int, ...],
               lineage: Lineage | None = None) -> tuple[nn.Module, Lineage]:
    """:func:`apply_edit`, and the kernels' lineage after it.

    Parameters
    ----------
    lineage : Lineage, optional
        Of ``model`` (default: ``model`` is a first version, :meth:`Lineage.identity`).

    Returns
    -------
    (nn.Module, Lineage)
        The edited copy, and each of its conv/FC kernels' identity: removed kernels (also
        those a residual add or concatenation couples to the edited layer) leave it, a
        widening adds new kernels where they went into every layer that produces the
        channels, an inserted layer's kernels are all new, a reinit keeps every name.

    Raises
    ------
    InputError
        As :func:`apply_edit`; and a lineage that does not fit ``model``.
    """
    input_shape = tuple(input_shape)
    edited = copy.deepcopy(model)
    was_training = edited.training
    edited.eval()
    param = next(edited.parameters())
    probe = torch.randn((2, *input_shape), generator=torch.Generator().manual_seed(0))
    probe = probe.to(device=param.device, dtype=param.dtype)
    before = _forward(edited, probe)  # on the private copy: the caller's model is never touched, not even its mode
    if lineage is None:  # a first version: one forward pass lists its layers
        lineage = Lineage.identity(kernels_per_layer(edited, input_shape))
    names = {id(m): n for n, m in edited.named_modules() if isinstance(m, _KERNEL_LAYERS)}  # modules stay themselves
    misfit = [n for n in lineage.ids if n not in names.values()
              or lineage.kernels(n) != _outputs(get_module(edited, n))]
    if misfit:
        raise InputError("the kernel lineage does not fit the model", expected="one identity per kernel",
                         found=f"layers {misfit[:5]}")
    result, changes = _APPLY[edit.kind](edited, edit, input_shape)
    edited = result if isinstance(result, nn.Module) else edited
    _check_function(before, probe, edited, edit)
    edited.train(was_training)
    return edited, _carried(lineage, names, changes, edited, input_shape)


def _outputs(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.modules.conv._ConvNd) else module.out_features


def _carried(lineage: Lineage, names: dict[int, str], changes: dict[int, tuple], edited: nn.Module,
             input_shape: tuple[int, ...]) -> Lineage:
    """``lineage`` with the edit's ``changes`` (keyed by module) applied, then moved to ``edited``'s
    layer names (an insertion can rename a layer; each is found by its module); a layer the edit
    created has only new kernels."""
    for module_id, (kind, *args) in changes.items():
        lineage = lineage.dropped(names[module_id], *args) if kind == "drop" else lineage.grown(names[module_id], *args)
    ids, base, added = {}, {}, {}
    for la in list_layers(edited, input_shape):
        old = names.get(id(get_module(edited, la.name)))
        if old is None:
            ids[la.name], base[la.name], added[la.name] = tuple(range(la.kernels)), 0, la.kernels
            continue
        if lineage.kernels(old) != la.kernels:
            raise AssertionError(f"lineage of {la.name}: {lineage.kernels(old)} identities for {la.kernels} kernels")
        ids[la.name], base[la.name], added[la.name] = lineage.ids[old], lineage.base[old], lineage.added.get(old, 0)
    return Lineage(ids, base, added)


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    return out if isinstance(out, torch.Tensor) else out[0]


def _check_function(before: torch.Tensor, x: torch.Tensor, edited: nn.Module, edit: Edit) -> None:
    """Refuse an edit whose result breaks what it promises (a last line of defence).

    ``before`` is the unedited model's output on the probe batch ``x`` (2 random inputs).
    ``widen`` and ``insert`` must leave the output unchanged (to 1e-5 of its largest
    value) until retraining; every edit must keep the output's shape.
    """
    try:
        after = _forward(edited, x)
    except Exception as exc:  # an edit the model's forward cannot take (a hard-coded size, a reshape)
        raise InputError(f"{edit.describe()} breaks the model's forward pass",
                         expected="a model whose layers adapt to the new size",
                         found=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}") from None
    if after.shape != before.shape:
        raise InputError(f"{edit.describe()} changes the model's output shape", expected=str(tuple(before.shape)),
                         found=str(tuple(after.shape)))
    if edit.kind in ("widen", "insert"):
        scale = max(1e-3, float(before.abs().max()))  # relative: a random-init model's logits can be ~0.01
        err = float((after - before).abs().max())
        if not err <= 1e-5 * scale:
            raise InputError(f"{edit.describe()} would change the network's output before retraining "
                             "(an operation on the way that AOMscope cannot widen exactly)",
                             expected="an unchanged output", found=f"max difference {err:.3g}")


def apply_edits(model: nn.Module, edits: list[Edit], input_shape: tuple[int, ...]) -> nn.Module:
    return trace_edits(model, edits, input_shape)[0]


def trace_edits(model: nn.Module, edits: list[Edit], input_shape: tuple[int, ...],
                lineage: Lineage | None = None) -> tuple[nn.Module, Lineage | None]:
    """:func:`trace_edit` of each edit in turn: the edited copy and its kernels' lineage
    (``lineage`` itself, None by default, when there are no edits: kernel i is ``k{i}``)."""
    for edit in edits:
        model, lineage = trace_edit(model, edit, input_shape, lineage)
    return model, lineage


def build_edited(arch: str, num_classes: int, input_shape: tuple[int, int, int], edits: list[Edit]) -> nn.Module:
    """The architecture ``arch`` with ``edits`` applied (weights arbitrary: load a state_dict next)."""
    return build_traced(arch, num_classes, input_shape, edits)[0]


def build_traced(arch: str, num_classes: int, input_shape: tuple[int, int, int],
                 edits: list[Edit]) -> tuple[nn.Module, Lineage | None]:
    """:func:`build_edited`, and the kernels' lineage from the unedited ``arch`` (:func:`trace_edits`)."""
    return trace_edits(build_model(arch, num_classes, input_shape), edits, input_shape)


def rebuild(arch: str, num_classes: int, input_shape, edits=()) -> nn.Module:
    """:func:`build_edited` for weights saved earlier (a version, a run snapshot, a checkpoint).

    The random initialisation the weights then replace runs on a forked generator, so
    rebuilding never moves the caller's random stream (a server shares one process).

    Parameters
    ----------
    arch : str
        Architecture spec (``zoo:NAME``, ``torchvision:NAME``, ``FILE.py:CLASS``).
    num_classes : int
    input_shape : sequence of 3 ints
        (C, H, W) of one image.
    edits : sequence of Edit or dict, default ()
        The cumulative edit list (dicts as stored in version and run records).

    Raises
    ------
    InputError
        Unknown architecture, or an edit that does not apply.
    """
    return rebuild_traced(arch, num_classes, input_shape, edits)[0]


def rebuild_traced(arch: str, num_classes: int, input_shape, edits=()) -> tuple[nn.Module, Lineage | None]:
    """:func:`rebuild`, and the kernels' lineage (:class:`~aomcore.base.lineage.Lineage`)."""
    edits = [e if isinstance(e, Edit) else Edit.from_dict(e) for e in edits]
    with torch.random.fork_rng(devices=[]):
        return build_traced(arch, int(num_classes), tuple(int(v) for v in input_shape), edits)


def edit_log_origin(arch: str, data, edits) -> dict[str, list[int | None]]:
    """An edit log's ``kernel_origin``: for each layer ``edits`` changed, each kernel's index in
    ``arch`` unedited (``None``: added by an edit). ``data`` gives the classes and input shape
    (anything with ``num_classes`` and ``input_shape``, e.g. a dataset split)."""
    _, lineage = rebuild_traced(arch, data.num_classes, data.input_shape, edits)
    return lineage.to_json(changed_only=True) if lineage is not None else {}


def kernels_per_layer(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Kernels (conv) or neurons (FC) of every conv/FC layer, in forward order."""
    return {la.name: la.kernels for la in list_layers(model, input_shape)}

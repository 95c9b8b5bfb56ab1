"""Which kernels of a layer to keep: the paper's selectivity beside the pruning criteria users compare it with.

Every criterion gives each kernel of one layer a score, **higher = more important** (keep
the highest, prune the lowest), and registers itself in :data:`CRITERIA` under its name:

================  =======  =============================================================  =========================
name              needs    score of kernel k                                              source
================  =======  =============================================================  =========================
selectivity       maps     s(k)                                                           Garcia et al. 2019, eq. 4
mean_occurrence   maps     mean of the AOM over classes and positions (classes weigh the  Garcia et al. 2019, eq. 1
                           same)
apoz              maps     1 − APoZ: share of (image, position) pairs that occur          Hu et al. 2016
keep_rule         maps     1 for kernels :func:`~.overview.suggest_keep` keeps, plus      Garcia et al. 2019, V-A
                           s(k)/max s (kept ones rank first, each side by s(k))
l1                model    Σ |w| over the kernel's own weights (no bias)                  Li et al. 2017
l2                model    Σ w² over the kernel's own weights (no bias)                   Li et al. 2017
bn_scale          model    |γ| of the BatchNorm directly after the layer                  Liu et al. 2017
taylor            data     |Σ w · ∂L/∂w| over the kernel's weights, one batch             Molchanov et al. 2019
random            —        uniform in [0, 1), seeded                                      (baseline)
group_magnitude   model    Torch-Pruning's default group L2 magnitude                     Torch-Pruning 1.6
fpgm              model    distance to the other kernels (geometric median)               He et al. 2019
lamp              model    layer-adaptive magnitude                                       Lee et al. 2021
================  =======  =============================================================  =========================

The weight and gradient criteria are Torch-Pruning's importance classes applied to the
dependency group of the layer's output channels (``tp.DependencyGraph``,
``get_pruning_group(layer, prune_conv_out_channels, idxs)``). :class:`MapsImportance` is
the other direction: a Torch-Pruning importance that ranks channels by a maps criterion,
so ``tp.pruner.MetaPruner`` prunes by s(k), APoZ or the keep rule. :func:`compare_criteria`
is the ablation: test accuracy with only N kernels of the layer kept by each criterion,
the others silenced.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from ..base.data import ImageDataset
from ..base.devices import resolve_device
from ..base.editing import Edit
from ..base.errors import InputError
from ..base.hooks import get_module
from ..base.limits import RETRAIN_EPOCHS_MAX, RETRAIN_EPOCHS_MIN, check_int
from ..base.training import TrainConfig, evaluate
from .experiment import _layer_of_maps, silenced, silencing_vs_removal
from .maps import LayerMaps, kernel_flags
from .ordering import KernelOrdering, default_n_groups
from .overview import suggest_keep
from .retrain import flops_per_image, retrain_edited

__all__ = ["COMPARED_CRITERIA", "CRITERIA", "Criterion", "MapsImportance", "apoz", "compare_criteria",
           "kernel_scores", "layer_scores", "summarize_criteria", "top_kernels"]


@dataclass(frozen=True)
class Criterion:
    """One registered criterion.

    Attributes
    ----------
    name : str
        The key in :data:`CRITERIA` and in :func:`compare_criteria`'s result.
    label : str
        A short human name.
    needs : {"maps", "model", "data", "none"}
        What :func:`kernel_scores` must be given: the layer's maps, the model (and the
        layer's name and the input shape), the model and a dataset, or nothing but the
        number of kernels.
    source : str
        Where the criterion is published.
    score : callable(_Inputs) -> ndarray (K,) float64
    """

    name: str
    label: str
    needs: str
    source: str
    score: Callable


#: Every criterion, by name (filled by :func:`_criterion` where each is defined).
CRITERIA: dict[str, Criterion] = {}


def _criterion(name: str, label: str, needs: str, source: str) -> Callable[[Callable], Callable]:
    def register(score: Callable) -> Callable:
        if name in CRITERIA:
            raise ValueError(f"criterion {name!r} is registered twice")
        CRITERIA[name] = Criterion(name, label, needs, source, score)
        return score
    return register


@dataclass
class _Inputs:
    """What a criterion may read; which fields are set depends on its ``needs``."""

    maps: LayerMaps | None
    model: nn.Module | None
    layer: str | None
    data: ImageDataset | None
    input_shape: tuple[int, ...] | None
    batch_size: int
    seed: int
    device: torch.device
    n_groups: int | None

    @property
    def num_kernels(self) -> int:
        if self.maps is not None:
            return self.maps.num_kernels
        return _out_channels(_weight_layer(self.model, self.layer))


# --------------------------------------------------------------------------------------
# From the maps
# --------------------------------------------------------------------------------------


def _positions(maps: LayerMaps) -> int:
    """Positions of one kernel's map before any pooling (cells × their areas)."""
    if maps.cell_area is not None:
        return int(np.asarray(maps.cell_area, dtype=np.int64).sum())
    return int(maps.counts.shape[2] * maps.counts.shape[3])


def apoz(maps: LayerMaps) -> np.ndarray:
    """Average percentage of zeros of each kernel (Hu, Peng, Tai, Tang, "Network Trimming", arXiv:1607.03250, 2016).

    ``APoZ(k) = 1 − Σ_{c,i,j} counts[k, c, i, j] / (N · H · W)``: the share of (image,
    position) pairs, over all N images and H·W positions, whose activation is not above
    the threshold. Every image weighs the same, so classes weigh by their size: this is
    *not* the mean of the per-class AOMs (eq. 1), which weighs classes equally. For maps
    pooled while counting (``cell_area`` set), a cell's count already sums the (image,
    position) pairs of its positions, so the result is the same as unpooled.

    Parameters
    ----------
    maps : LayerMaps
        Counted at threshold 0 (after a ReLU, "not above 0" is exactly "zero").

    Returns
    -------
    ndarray, (K,) float64 in [0, 1]. Hu et al. prune the highest APoZ.

    Raises
    ------
    InputError
        Maps counted at a threshold other than 0 (they do not count zeros).
    """
    if maps.threshold != 0:
        raise InputError(f"APoZ counts zeros: the maps of {maps.layer} were counted at another threshold",
                         expected="maps counted at threshold 0", found=f"threshold {maps.threshold:g}")
    n = int(np.asarray(maps.class_sizes, dtype=np.int64).sum())
    occurring = np.asarray(maps.counts, dtype=np.int64).sum(axis=(1, 2, 3))  # (K,)
    return 1.0 - occurring / (n * _positions(maps))


@_criterion("selectivity", "selectivity s(k)", "maps", "Garcia et al., IJCNN 2019, eq. 4")
def _selectivity(x: _Inputs) -> np.ndarray:
    """s(k), eq. 4: (K,) float64 >= 0."""
    return np.asarray(x.maps.selectivity, dtype=np.float64)


@_criterion("mean_occurrence", "mean occurrence", "maps", "Garcia et al., IJCNN 2019, eq. 1")
def _mean_occurrence(x: _Inputs) -> np.ndarray:
    """Mean of eq. 1 over classes and positions, (K,) float64 in [0, 1]; each class weighs the same.

    For pooled maps the mean runs over the original positions (each cell weighs by its area).
    """
    m = x.maps
    sizes = np.asarray(m.class_sizes, dtype=np.float64)
    per_class = np.asarray(m.counts, dtype=np.float64).sum(axis=(2, 3)) / (sizes[None, :] * _positions(m))  # (K, C)
    return per_class.mean(axis=1)


@_criterion("apoz", "1 − APoZ", "maps", "Hu et al., Network Trimming, arXiv:1607.03250, 2016")
def _apoz_importance(x: _Inputs) -> np.ndarray:
    """``1 − APoZ`` (:func:`apoz`), (K,) float64 in [0, 1]: keeping the highest keeps the lowest APoZ."""
    return 1.0 - apoz(x.maps)


@_criterion("keep_rule", "the paper's keep rule", "maps", "Garcia et al., IJCNN 2019, Sec. V-A")
def _keep_rule(x: _Inputs) -> np.ndarray:
    """1 for the kernels :func:`~aomcore.aom.overview.suggest_keep` keeps, plus s(k) / max s.

    (K,) float64 in [0, 2]: the rule's kernels rank above all others, each side ordered by
    selectivity, so the N highest are the rule's kernels (the most selective of them when
    N is smaller; the most selective others added when N is larger). The groups are the
    kernel tree (:class:`~aomcore.aom.ordering.KernelOrdering` on the ODM) cut into
    ``n_groups`` (default :func:`~aomcore.aom.ordering.default_n_groups`), as the overview.
    """
    m = x.maps
    s = np.asarray(m.selectivity, dtype=np.float64)
    groups = KernelOrdering(n_groups=x.n_groups or default_n_groups(m.odm, m.aom)).fit(m.odm).labels_
    kept = suggest_keep(s, groups, kernel_flags(m.aom))
    score = s / s.max() if s.max() > 0 else np.zeros_like(s)
    score[kept] += 1.0
    return score


# --------------------------------------------------------------------------------------
# From the weights (Torch-Pruning's importance classes on the layer's dependency group)
# --------------------------------------------------------------------------------------


def _weight_layer(model: nn.Module, layer: str) -> nn.Module:
    module = get_module(model, layer)
    if isinstance(module, nn.modules.conv._ConvTransposeNd) or not isinstance(module, (nn.modules.conv._ConvNd,
                                                                                      nn.Linear)):
        raise InputError(f"weight criteria score conv or FC layers: {layer} is not one",
                         expected="a Conv1d/2d/3d or Linear layer", found=f"{layer} ({type(module).__name__})")
    return module


def _out_channels(module: nn.Module) -> int:
    return int(module.weight.shape[0])


def _example(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters())
    return torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device)


def _graph(model: nn.Module, input_shape: tuple[int, ...]) -> tp.DependencyGraph:
    """Torch-Pruning's dependency graph, traced in eval mode (no BatchNorm statistics change); mode restored."""
    was_training = model.training
    model.eval()
    try:
        return tp.DependencyGraph().build_dependency(model, example_inputs=_example(model, input_shape),
                                                     verbose=False)
    except InputError:
        raise
    except Exception as exc:  # torch-pruning's tracer fails on channel shuffles and other reshapes
        raise InputError("torch-pruning cannot trace this model's channel dependencies",
                         expected="a model torch-pruning can trace",
                         found=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}") from None
    finally:
        model.train(was_training)


def _out_group(model: nn.Module, layer: str, input_shape: tuple[int, ...]):
    """The dependency group of every output channel of ``layer`` (root: the layer itself)."""
    module = _weight_layer(model, layer)
    fn = tp.prune_conv_out_channels if isinstance(module, nn.modules.conv._ConvNd) else tp.prune_linear_out_channels
    graph = _graph(model, input_shape)
    if module not in graph.module2node:  # the tracer follows the autograd graph: a detach or no_grad hides it
        raise InputError(f"torch-pruning cannot trace {layer} in this model",
                         expected="a forward whose output depends on the layer through autograd (no "
                         "torch.no_grad or detach inside it)", found=f"{layer} outside the traced graph")
    return graph.get_pruning_group(module, fn, idxs=list(range(_out_channels(module))))


def _scored(importance: tp.importance.Importance, group) -> np.ndarray:
    with torch.no_grad():
        scores = importance(group)
    return scores.detach().cpu().to(torch.float64).numpy()


def _need_shape(x: _Inputs) -> tuple[int, ...]:
    if x.input_shape is None:
        raise InputError("weight criteria trace the model", expected="input_shape (or data)", found="neither")
    return tuple(x.input_shape)


@_criterion("l1", "L1 norm of the weights", "model", "Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017")
def _l1(x: _Inputs) -> np.ndarray:
    """``Σ |w|`` over the kernel's own weights in this layer (no bias), (K,) float64 >= 0.

    ``tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None)``.
    """
    imp = tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None)
    return _scored(imp, _out_group(x.model, x.layer, _need_shape(x)))


@_criterion("l2", "squared L2 norm of the weights", "model",
            "Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017")
def _l2(x: _Inputs) -> np.ndarray:
    """``Σ w²`` over the kernel's own weights (no bias), (K,) float64 >= 0: the squared L2 norm, as
    Torch-Pruning gives it (the same order as the norm).

    ``tp.importance.MagnitudeImportance(p=2, group_reduction="first", normalizer=None)``.
    """
    imp = tp.importance.MagnitudeImportance(p=2, group_reduction="first", normalizer=None)
    return _scored(imp, _out_group(x.model, x.layer, _need_shape(x)))


def _following_batchnorm(model: nn.Module, layer: str, input_shape: tuple[int, ...]) -> str | None:
    """The BatchNorm whose input is ``layer``'s output (one dry forward in eval mode), or None."""
    module = get_module(model, layer)
    names = {m: n for n, m in model.named_modules()}
    outputs, followers, handles = {}, [], []

    def record(mod, inputs, output):
        if mod is module:
            outputs["layer"] = output
        elif inputs and "layer" in outputs and inputs[0] is outputs["layer"]:
            followers.append(names[mod])

    was_training = model.training
    model.eval()
    try:
        for m in model.modules():
            if m is module or isinstance(m, nn.modules.batchnorm._BatchNorm):
                handles.append(m.register_forward_hook(record))
        with torch.inference_mode():
            model(_example(model, input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return followers[0] if followers else None


@_criterion("bn_scale", "BatchNorm scale |γ|", "model", "Liu et al., Network Slimming, ICCV 2017")
def _bn_scale(x: _Inputs) -> np.ndarray:
    """``|γ_k|`` of the BatchNorm directly following the layer, (K,) float64 >= 0.

    ``tp.importance.BNScaleImportance(group_reduction="first", normalizer=None)`` on the
    BatchNorm's own group.

    Raises
    ------
    InputError
        No BatchNorm takes the layer's output, or it has no affine scale.
    """
    shape = _need_shape(x)
    _weight_layer(x.model, x.layer)
    name = _following_batchnorm(x.model, x.layer, shape)
    bn = get_module(x.model, name) if name else None
    if bn is None or not bn.affine:
        raise InputError(f"no BatchNorm scale follows {x.layer}",
                         expected="a layer whose output goes straight into an affine BatchNorm",
                         found="a BatchNorm without affine scale" if bn is not None else "none")
    group = _graph(x.model, shape).get_pruning_group(bn, tp.prune_batchnorm_out_channels,
                                                     idxs=list(range(bn.num_features)))
    return _scored(tp.importance.BNScaleImportance(group_reduction="first", normalizer=None), group)


@_criterion("taylor", "first-order Taylor", "data",
            "Molchanov et al., Importance Estimation for Neural Network Pruning, CVPR 2019")
def _taylor(x: _Inputs) -> np.ndarray:
    """``|Σ_s w_s · ∂L/∂w_s|`` over the kernel's weights ``s`` (no bias), (K,) float64 >= 0.

    Molchanov et al. score a group of parameters by ``(Σ_s g_s w_s)²``; this is its
    square root (the same order). L is the mean cross-entropy on one batch of
    ``batch_size`` images of ``data`` drawn with ``seed``, the model (a private copy on
    ``device``) in eval mode: BatchNorm uses its running statistics, dropout is off.
    ``tp.importance.TaylorImportance(multivariable=True, group_reduction="first",
    normalizer=None)`` after ``loss.backward()``. (Torch-Pruning's default,
    ``multivariable=False``, sums ``|w_s · g_s|`` instead: a different quantity.)
    """
    if x.data is None:
        raise InputError("the Taylor criterion needs images", expected="data (a split to draw a batch from)",
                         found="none")
    model = x.model.to(x.device).eval()  # the private copy kernel_scores made
    for p in model.parameters():
        p.requires_grad_(True)
    group = _out_group(model, x.layer, x.data.input_shape)
    order = torch.randperm(len(x.data), generator=torch.Generator().manual_seed(x.seed))[: x.batch_size]
    images, labels = next(x.data.batches(x.batch_size, x.device, order))
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), labels)
    if loss.requires_grad:
        loss.backward()
    if _weight_layer(model, x.layer).weight.grad is None:
        raise InputError(f"the Taylor criterion gets no gradient from this model at {x.layer}",
                         expected="a forward whose loss depends on the layer's weights (no torch.no_grad or "
                         "detach inside it)", found=f"no gradient reached {x.layer}.weight")
    return _scored(tp.importance.TaylorImportance(multivariable=True, group_reduction="first", normalizer=None),
                   group)


@_criterion("random", "random", "none", "a baseline")
def _random(x: _Inputs) -> np.ndarray:
    """``numpy.random.default_rng(seed).random(K)``: (K,) float64 in [0, 1)."""
    return np.random.default_rng(x.seed).random(x.num_kernels)


@_criterion("group_magnitude", "group magnitude (Torch-Pruning default)", "model", "Torch-Pruning 1.6")
def _group_magnitude(x: _Inputs) -> np.ndarray:
    """``tp.importance.GroupMagnitudeImportance()`` with its defaults (p=2, group_reduction="mean",
    normalizer="mean"): Σ w² of every coupled tensor (the layer's rows, the BatchNorm's γ, the
    next layers' input columns), averaged over the tensors, divided by its mean over the
    kernels. (K,) float64. Not :func:`l2`: that one reads the layer's own weights only."""
    return _scored(tp.importance.GroupMagnitudeImportance(), _out_group(x.model, x.layer, _need_shape(x)))


@_criterion("fpgm", "FPGM (geometric median)", "model",
            "He et al., Filter Pruning via Geometric Median, CVPR 2019")
def _fpgm(x: _Inputs) -> np.ndarray:
    """``tp.importance.FPGMImportance()`` with its defaults: for each coupled conv/FC tensor, the
    sum of Euclidean distances from the kernel's (squared) weights to every other kernel's;
    a kernel near the geometric median scores low (redundant). (K,) float64."""
    return _scored(tp.importance.FPGMImportance(), _out_group(x.model, x.layer, _need_shape(x)))


@_criterion("lamp", "LAMP", "model", "Lee et al., Layer-adaptive Sparsity for Magnitude-based Pruning, ICLR 2021")
def _lamp(x: _Inputs) -> np.ndarray:
    """``tp.importance.LAMPImportance()`` with its defaults: the group magnitude divided by the
    sum of the magnitudes not smaller than it. (K,) float64 in (0, 1]."""
    return _scored(tp.importance.LAMPImportance(), _out_group(x.model, x.layer, _need_shape(x)))


# --------------------------------------------------------------------------------------
# Scores, ranks, and a Torch-Pruning importance
# --------------------------------------------------------------------------------------


def _get(criterion: str) -> Criterion:
    if criterion not in CRITERIA:
        raise InputError("unknown criterion", expected=", ".join(CRITERIA), found=repr(criterion))
    return CRITERIA[criterion]


def kernel_scores(criterion: str, *, maps: LayerMaps | None = None, model: nn.Module | None = None,
                  layer: str | None = None, data: ImageDataset | None = None,
                  input_shape: tuple[int, ...] | None = None, batch_size: int = 256, seed: int = 0,
                  device: str | torch.device = "auto", n_groups: int | None = None) -> np.ndarray:
    """Score every kernel of one layer by ``criterion``; higher = more important.

    Parameters
    ----------
    criterion : str
        A name in :data:`CRITERIA` (see the module docstring for each score and its source).
    maps : LayerMaps, optional
        The layer's maps (``"maps"`` criteria), normally of the train split.
    model : nn.Module, optional
        ``"model"`` and ``"data"`` criteria. Never touched: they trace, hook and
        differentiate a private copy.
    layer : str, optional
        The conv or FC layer; default ``maps.layer``.
    data : ImageDataset, optional
        Taylor draws its batch from it; its input shape serves the tracing.
    input_shape : tuple of int, optional
        One input's shape for tracing the model; default ``data.input_shape``.
    batch_size : int, default 256
        Images in Taylor's batch.
    seed : int, default 0
        Taylor's batch and the random scores.
    device : "auto", "cpu", "cuda" or torch.device
        Where Taylor runs; the other weight criteria run where the model is.
    n_groups : int, optional
        The keep rule's cut of the kernel tree (default about √K).

    Returns
    -------
    ndarray, (K,) float64 on the host, K = the layer's kernels.

    Raises
    ------
    InputError
        Unknown criterion; what it needs was not given; a layer that is not conv or FC
        (weight criteria); no BatchNorm after the layer (``bn_scale``); maps counted at a
        threshold other than 0 (``apoz``).
    """
    entry = _get(criterion)
    layer = layer or (maps.layer if maps is not None else None)
    missing = {"maps": [("maps", maps)], "model": [("model", model), ("layer", layer)],
               "data": [("model", model), ("layer", layer), ("data", data)],
               "none": [] if maps is not None else [("maps, or model", model), ("layer", layer)]}[entry.needs]
    absent = [name for name, value in missing if value is None]
    if absent:
        raise InputError(f"the criterion {criterion!r} needs {' and '.join(absent)}",
                         expected=", ".join(name for name, _ in missing), found="not given")
    if model is not None and entry.needs in ("model", "data"):
        model = copy.deepcopy(model)  # tracing hooks, mode changes and gradients never reach a shared model
    inputs = _Inputs(maps=maps, model=model, layer=layer, data=data,
                     input_shape=input_shape or (data.input_shape if data is not None else None),
                     batch_size=batch_size, seed=seed, device=resolve_device(device), n_groups=n_groups)
    return np.asarray(entry.score(inputs), dtype=np.float64)


def layer_scores(model: nn.Module, maps: LayerMaps, *, data: ImageDataset | None = None,
                 input_shape: tuple[int, ...] | None = None, names: tuple[str, ...] | None = None,
                 seed: int = 0, device: str | torch.device = "auto") -> dict[str, list[float | None]]:
    """Every kernel of ``maps.layer`` scored by each criterion that applies (issue #23's table).

    Parameters
    ----------
    model : nn.Module
        The weights the maps were computed from (never touched).
    maps : LayerMaps
        The layer's maps (the train split, as in the paper).
    data : ImageDataset, optional
        Taylor's batch is drawn from it (seeded by ``seed``); without it Taylor is left out.
    input_shape : tuple of int, optional
        For tracing; default ``data.input_shape``.
    names : tuple of str, optional
        Criteria in :data:`CRITERIA` (default: all, in registry order).

    Returns
    -------
    dict
        Criterion name → K scores (higher = more important; None where not finite). A
        criterion that cannot apply to the layer (``bn_scale`` with no BatchNorm after it,
        ``taylor`` without data, a weight criterion on a layer that is not conv or FC) is left out.
    """
    out = {}
    for name in names or tuple(CRITERIA):
        try:
            scores = kernel_scores(name, maps=maps, model=model, layer=maps.layer, data=data,
                                   input_shape=input_shape, seed=seed, device=device)
        except InputError:
            continue
        out[name] = _json_floats(scores)
    return out


def top_kernels(scores: np.ndarray, n: int) -> list[int]:
    """The ``n`` kernels with the highest scores, as sorted indices.

    Ties keep the lower index; NaN ranks lowest.

    Parameters
    ----------
    scores : ndarray, (K,) float
    n : int, 0 <= n <= K

    Returns
    -------
    list of int, ascending.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return sorted(int(i) for i in np.argsort(-s, kind="stable")[:n])


class MapsImportance(tp.importance.Importance):
    """A Torch-Pruning importance that ranks a layer's output channels by a maps criterion.

    Usable unchanged in ``tp.pruner.MetaPruner(model, example_inputs, importance=...,
    pruning_ratio=...)``: MetaPruner calls it with the dependency group of each conv/FC
    layer's output channels, and it returns the layer's scores (higher = keep) from
    precomputed maps. A layer without maps gets ``None``, which MetaPruner skips, so only
    the mapped layers are pruned. With ``global_pruning=True`` MetaPruner compares scores
    across layers as they are (s(k) grows with the number of classes and differs in scale
    from layer to layer); the default, per-layer ranking needs no common scale.

    Parameters
    ----------
    model : nn.Module
        The model the pruner prunes (its modules are matched to the maps by name).
    maps : dict of layer name to LayerMaps
        E.g. :func:`~aomcore.aom.maps.compute_maps` of the train split.
    criterion : {"selectivity", "apoz", "keep_rule", "mean_occurrence"}, default "selectivity"
        ``"apoz"`` ranks by ``1 − APoZ`` (the lowest APoZ is kept).
    n_groups : int, optional
        The keep rule's cut of each layer's kernel tree.

    Raises
    ------
    InputError
        (When called) a layer whose number of channels is no longer the maps' K: the maps
        describe the unpruned layer, so prune in one step (``iterative_steps=1``) or
        recompute the maps.
    """

    def __init__(self, model: nn.Module, maps: dict[str, LayerMaps], criterion: str = "selectivity",
                 n_groups: int | None = None):
        if _get(criterion).needs != "maps":
            valid = [n for n, c in CRITERIA.items() if c.needs == "maps"]
            raise InputError("MapsImportance ranks by a maps criterion", expected=", ".join(valid),
                             found=repr(criterion))
        self.model = model
        self.maps = maps
        self.criterion = criterion
        self.n_groups = n_groups
        self._names = {m: n for n, m in model.named_modules()}
        self._scores: dict[str, np.ndarray] = {}

    def scores(self, layer: str) -> np.ndarray:
        """The criterion's (K,) float64 scores of ``layer``, computed once."""
        if layer not in self._scores:
            self._scores[layer] = kernel_scores(self.criterion, maps=self.maps[layer], n_groups=self.n_groups)
        return self._scores[layer]

    def __call__(self, group) -> torch.Tensor | None:
        dep, idxs = group[0]
        module = dep.target.module
        if dep.handler not in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
            return None
        name = self._names.get(module)
        if name not in self.maps:
            return None
        scores = self.scores(name)
        if _out_channels(module) != scores.shape[0]:
            raise InputError(f"the maps of {name} describe {scores.shape[0]} kernels, the layer now has "
                             f"{_out_channels(module)}", expected="one pruning step (iterative_steps=1), "
                             "or maps of the pruned model", found=f"{_out_channels(module)} kernels")
        return torch.as_tensor(scores[np.asarray(list(idxs), dtype=np.int64)], dtype=torch.float32)


# --------------------------------------------------------------------------------------
# The ablation
# --------------------------------------------------------------------------------------

#: What :func:`compare_criteria` compares by default, in this order (``user`` first when given;
#: ``bn_scale`` only when a BatchNorm follows the layer, ``taylor`` only with a ``train_set``).
COMPARED_CRITERIA = ("selectivity", "keep_rule", "apoz", "l1", "l2", "bn_scale", "taylor", "random")


def _check_keep(keep_n, k: int, layer: str) -> int:
    if not isinstance(keep_n, (int, np.integer)) or isinstance(keep_n, (bool, np.bool_)) or not 0 < keep_n < k:
        raise InputError(f"bad number of kernels to keep in {layer}", expected=f"an integer in [1, {k - 1}]",
                         found=repr(keep_n))
    return int(keep_n)


def _check_user(user_keep, keep_n: int, k: int) -> list[int]:
    kept = list(user_keep)
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in kept):
        raise InputError("kernel indices must be integers", expected="whole numbers", found=repr(kept)[:80])
    bad = [int(i) for i in kept if not 0 <= i < k]
    if bad:
        raise InputError("kernel index out of range", expected=f"indices in [0, {k - 1}]", found=str(bad))
    if len(set(kept)) != len(kept):
        raise InputError("repeated kernel index in the selection", expected="distinct indices", found=str(kept)[:80])
    if len(kept) != keep_n:
        raise InputError("the selection keeps another number of kernels", expected=f"{keep_n} kernels",
                         found=f"{len(kept)}")
    return sorted(int(i) for i in kept)


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def compare_criteria(model: nn.Module, maps_train: LayerMaps | dict[str, LayerMaps], layer: str, keep_n: int,
                     test_set: ImageDataset, user_keep: list[int] | None = None, seed: int = 0,
                     device: str | torch.device = "auto", *, train_set: ImageDataset | None = None,
                     criteria: tuple[str, ...] | None = None, n_groups: int | None = None,
                     batch_size: int = 512, taylor_batch: int = 256, retrain_epochs: int = 0,
                     config: TrainConfig | None = None, freeze: str = "auto",
                     progress: Callable[[int, int], None] | None = None, cancel=None) -> dict:
    """Test accuracy with only ``keep_n`` kernels of ``layer`` kept, the selection of each criterion.

    Each criterion keeps its ``keep_n`` highest-scoring kernels (:func:`top_kernels`); the
    others are silenced — their activation at the maps' read point (the layer's tap,
    after its BatchNorm and ReLU) set to zero by a hook (:func:`~.experiment.silenced`),
    weights untouched. On a chain such as ``digits_net`` this is the function of the network
    with those kernels removed (``Edit("remove", ...)``), before any retraining; a removal
    through a coupling (a residual add, a depthwise conv's BatchNorm, a normalised
    concatenation) also removes what is coupled, which silencing leaves alone. Which of the
    two holds is measured, not assumed, and reported in ``"silencing"``.

    Parameters
    ----------
    model : nn.Module
        Not modified (a private copy on ``device`` carries the hooks).
    maps_train : LayerMaps or dict of layer name to LayerMaps
        The layer's maps, of the train split as in the paper.
    layer : str
    keep_n : int
        Kernels kept, in [1, K - 1].
    test_set : ImageDataset
        With the maps' classes.
    user_keep : list of int, optional
        A selection to compare (e.g. from the dashboard), of exactly ``keep_n`` kernels;
        reported as ``"user"``. Whether it was made on the same weights is the caller's check.
    seed : int, default 0
        The random criterion and Taylor's batch.
    device : "auto", "cpu", "cuda" or torch.device
    train_set : ImageDataset, optional
        Taylor draws its batch of ``taylor_batch`` images from it; without it Taylor is not
        compared (the test split chooses nothing here).
    criteria : tuple of str, optional
        Names in :data:`CRITERIA`; default :data:`COMPARED_CRITERIA`. Named explicitly,
        ``bn_scale`` without a BatchNorm or ``taylor`` without ``train_set`` is an error.
    n_groups : int, optional
        The keep rule's cut of the kernel tree.
    batch_size : int, default 512
        Evaluation batch.
    retrain_epochs : int, default 0
        When > 0, each selection is also applied structurally (``Edit("remove", layer, the
        other kernels)``) and retrained for this many epochs on ``train_set`` with the paper's
        freezing (``freeze``, default ``"auto"``: the layers up to the edited one frozen;
        :func:`~.retrain.retrain_edited`), with ``config``'s optimiser, rate, batch and seed
        (default :class:`~aomcore.base.training.TrainConfig`); every selection is retrained from
        the same weights with the same seed.
    progress : callable(done, total), optional
        One step per criterion evaluated (and retrained).
    cancel : threading.Event, optional
        Stops a retraining at its next step (:class:`~aomcore.base.errors.Cancelled`).

    Returns
    -------
    dict
        ``{"layer": str, "keep": int, "criteria": {name: {"kept": [int, ...] (ascending),
        "accuracy": float in [0, 1], "per_class": [float in [0, 1] or None (a class without
        test images), ...] (C,)}}}``, names in the order compared. With retraining each entry
        also has ``"retrained": {"epochs": int, "accuracy", "per_class" (as above), "params": int,
        "flops": int (per image)}``, and the result ``"retrain_epochs"`` and ``"freeze"``.
        ``"silencing"``: whether silencing is the removal for this layer
        (:func:`~.experiment.silencing_vs_removal` of the first selection, on up to 64 test images).

    Raises
    ------
    InputError
        ``keep_n`` not in [1, K - 1]; a bad ``user_keep``; maps of another layer, model or
        classes; an unknown criterion, or one that cannot apply (see ``criteria``); retraining
        asked for without a ``train_set``, or a bad epoch count.
    """
    maps = maps_train[layer] if isinstance(maps_train, dict) and layer in maps_train else maps_train
    if not isinstance(maps, LayerMaps) or maps.layer != layer:
        found = f"maps of {list(maps_train) if isinstance(maps_train, dict) else getattr(maps, 'layer', maps)}"
        raise InputError(f"no maps of {layer}", expected=f"the maps of {layer}", found=found[:100])
    info = _layer_of_maps(model, maps, test_set)
    k = info.kernels
    keep_n = _check_keep(keep_n, k, layer)
    retrain_epochs = check_int("number of retraining epochs", retrain_epochs, RETRAIN_EPOCHS_MIN, RETRAIN_EPOCHS_MAX)
    if retrain_epochs and train_set is None:
        raise InputError("retraining needs the training split", expected="train_set with retrain_epochs > 0",
                         found="no train_set")
    if retrain_epochs:
        base = config or TrainConfig()
        config = TrainConfig(epochs=int(retrain_epochs), lr=base.lr, batch_size=base.batch_size,
                             optimizer=base.optimizer, seed=base.seed)
    chosen = {} if user_keep is None else {"user": _check_user(user_keep, keep_n, k)}
    names = list(criteria) if criteria is not None else list(COMPARED_CRITERIA)
    for name in names:
        _get(name)
    device = resolve_device(device)
    private = copy.deepcopy(model).to(device).eval()  # carries the hooks; the caller's model is never touched
    if criteria is None:
        if train_set is None:
            names.remove("taylor")
        if _following_batchnorm(private, layer, test_set.input_shape) is None:
            names.remove("bn_scale")
    for name in names:
        scores = kernel_scores(name, maps=maps, model=private, layer=layer, data=train_set,
                               input_shape=test_set.input_shape, batch_size=taylor_batch, seed=seed, device=device,
                               n_groups=n_groups)
        chosen[name] = top_kernels(scores, keep_n)
    results = {}
    for done, (name, kept) in enumerate(chosen.items(), start=1):
        dropped = np.setdiff1d(np.arange(k), kept)
        with silenced(private, info.tap, dropped, info.channel_dim):
            result = evaluate(private, test_set, batch_size, device)
        results[name] = {"kept": kept, "accuracy": float(result.accuracy), "per_class": _json_floats(result.per_class)}
        if retrain_epochs:
            results[name]["retrained"] = _retrained(model, Edit("remove", layer, [int(i) for i in dropped]),
                                                    train_set, test_set, freeze, config, device, batch_size, cancel)
        if progress is not None:
            progress(done, len(chosen))
    first = next(iter(chosen.values()))
    sample = torch.arange(min(64, len(test_set)))
    x, _ = next(iter(test_set.batches(len(sample), device, sample)))
    check = silencing_vs_removal(private, info, np.setdiff1d(np.arange(k), first), x, test_set.input_shape)
    out = {"layer": layer, "keep": keep_n, "criteria": results, "silencing": check}
    if retrain_epochs:
        out.update(retrain_epochs=int(retrain_epochs), freeze=freeze)
    return out


def _retrained(model: nn.Module, edit: Edit, train_set: ImageDataset, test_set: ImageDataset, freeze: str,
               config: TrainConfig, device: torch.device, batch_size: int, cancel) -> dict:
    """Accuracy, size and cost of ``model`` with ``edit`` applied and retrained (one selection)."""
    retrained, _, _ = retrain_edited(model, edit, train_set, freeze, config, device, cancel=cancel)
    result = evaluate(retrained, test_set, batch_size, device)
    return {"epochs": config.epochs, "accuracy": float(result.accuracy), "per_class": _json_floats(result.per_class),
            "params": int(sum(p.numel() for p in retrained.parameters())),
            "flops": flops_per_image(retrained, test_set.input_shape)}


def summarize_criteria(result: dict) -> str:
    """What a :func:`compare_criteria` result says, whichever way it goes, in a sentence or two.

    Ranks every compared selection by test accuracy with the other kernels silenced (and,
    when the result holds retrained entries, again after retraining) and says where ``user``
    stands (when present), which criterion is best and which is worst, and how far the
    selection made by looking (``user``, else ``selectivity``) is from the best.

    Raises
    ------
    InputError
        A result without criteria.
    """
    rows = result.get("criteria") or {}
    if not rows:
        raise InputError("no criteria in the result", expected="the output of compare_criteria", found="none")
    short = {"user": "your selection", "selectivity": "s(k)", "keep_rule": "the keep rule", "apoz": "APoZ",
             "l1": "L1", "l2": "L2", "bn_scale": "BN scale", "taylor": "Taylor", "random": "random"}
    label = {n: short.get(n, CRITERIA[n].label if n in CRITERIA else n) for n in rows}
    mine = "user" if "user" in rows else "selectivity" if "selectivity" in rows else None
    head = f"Keeping {result['keep']} kernels of {result['layer']}: "
    text = head + _ranking({n: r["accuracy"] for n, r in rows.items()}, mine, label) + \
        ". Test accuracy with the other kernels silenced, before any retraining."
    check = result.get("silencing") or {}
    if check.get("equal") is False:
        text += (f" Here silencing is not removal: with the kernels removed the logits differ by up to "
                 f"{check['difference']:.1%} of their largest value ({check['why']}); the retrained numbers "
                 "are the removals'.")
    elif check and check.get("equal") is None:
        text += f" Only silencing is measured here: {check['why']}."
    if all("retrained" in r for r in rows.values()):
        after = _ranking({n: r["retrained"]["accuracy"] for n, r in rows.items()}, mine, label)
        text += f" After removing them and retraining {result.get('retrain_epochs', '?')} epoch(s): {after}."
    return text


def _ranking(acc: dict[str, float], mine: str | None, label: dict[str, str]) -> str:
    ranked = sorted(acc, key=lambda n: -acc[n])
    best, worst = ranked[0], ranked[-1]
    if mine is None:
        return f"best {label[best]} {acc[best]:.1%}, worst {label[worst]} {acc[worst]:.1%}"
    place = ranked.index(mine) + 1
    ties = [n for n in acc if n != mine and acc[n] == acc[mine]]
    gap = acc[best] - acc[mine]
    if gap <= 0:
        verdict = f"{label[mine]} is best ({acc[mine]:.1%})" + (
            f", tied with {', '.join(label[n] for n in ties)}" if ties else "")
    else:
        verdict = (f"{label[mine]} ({acc[mine]:.1%}) ranks {place} of {len(acc)}, {100 * gap:.1f} points below the "
                   f"best, {label[best]} ({acc[best]:.1%})")
    return verdict + f"; worst {label[worst]} ({acc[worst]:.1%})"

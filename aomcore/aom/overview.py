"""The paper's three tasks as findings per layer, and its rule for which kernels to keep.

Garcia et al. 2019 (Sec. III) name three architecture tasks and (Sec. IV-A) the AOM
patterns that point at each:

1. *Find redundant or ineffective kernels*: kernels with similar AOMs for every class
   (dead or always on), kernels that are not selective, and groups of kernels with
   similar AOMs. Edit: remove them, keeping the most selective kernel of each group.
2. *Find too small layers*: "set of classes producing similar AOMs in every kernel
   indicate a small layer size". Edit: widen the layer.
3. *Find too shallow models*: "kernels producing AOMs with strong occurrence for
   multiple classes is a signal of a need for more layers". Edit: insert a layer. A
   finding about the model, listed once: only when the last hidden layer analysed does not
   separate the classes (Fig. 6's 6th layer answers its 1st), at the deepest conv layer of
   the trailing run of layers that do not.

The paper leaves the decision to the engineer ("rather than using automatically computed
thresholds, the engineer examines such cases visually", Sec. IV). The thresholds below
only decide which findings :func:`layer_overview` *lists*, each with the edit that would
act on it pre-filled; nothing here edits a model. :func:`suggest_keep` is the single
kernel-keeping rule that ``reproduce mnist``, the overview and the dashboard share.
"""

from __future__ import annotations

import math

import numpy as np

from ..base.lineage import Lineage, kernel_list, kernel_names
from .maps import (
    MULTI_CLASS_LEVEL,
    LayerMaps,
    classes_per_kernel,
    kernel_flags,
    least_separated_pairs,
    multi_class_share,
)
from .ordering import KernelOrdering, default_n_groups

__all__ = [
    "MIN_SELECTIVITY",
    "MULTI_CLASS_SHARE",
    "SIMILAR_CLASSES_RATIO",
    "WIDEN_FRACTION",
    "keep_reasons",
    "layer_overview",
    "suggest_keep",
]

#: Task 1: a kernel whose selectivity s(k) (eq. 4) is below this fraction of the layer's
#: largest s(k) is "not selective towards any class" (Sec. V-A) and is not kept.
MIN_SELECTIVITY = 0.25

#: Task 2: a class pair is listed when its class difference E (mean |ΔM| over every
#: kernel and position) is at most this fraction of the median E over the layer's class
#: pairs. Relative, because E shrinks with every position or kernel where no class
#: occurs (image borders, dead kernels); in a trained ``digits_net`` the closest pair
#: sits at 0.5–0.66 of the median.
SIMILAR_CLASSES_RATIO = 0.5

#: Task 2 edit: widen the layer by this fraction of its kernels (at least one), a first
#: step for the engineer to adjust.
WIDEN_FRACTION = 0.25

#: Task 3: listed when at least this fraction of the layer's kernels have strong
#: occurrence (mean over positions above ``level``) for two or more classes ("many
#: neurons activate for multiple classes", Sec. III).
MULTI_CLASS_SHARE = 0.5


def _eligible(s: np.ndarray, flags: dict[str, np.ndarray], min_selectivity: float) -> np.ndarray:
    """(K,) bool: neither dead nor always on, and s(k) at least ``min_selectivity`` of the layer's highest."""
    alive = ~np.asarray(flags["dead"], dtype=bool) & ~np.asarray(flags["always_on"], dtype=bool)
    return alive & (s >= min_selectivity * s.max())


def suggest_keep(selectivity: np.ndarray, groups: np.ndarray, flags: dict[str, np.ndarray],
                 min_selectivity: float = MIN_SELECTIVITY) -> list[int]:
    """The paper's Task 1 rule (Sec. V-A): which kernels of a layer to keep.

    A kernel is *eligible* unless it is dead or always on (``flags``, from
    :func:`~aomcore.aom.maps.kernel_flags`: similar AOMs for every class) or not selective
    (``s(k) < min_selectivity · max s``). From each group of kernels with similar AOMs
    (``groups``, e.g. :attr:`KernelOrdering.labels_` at the displayed cut) the eligible
    kernel with the highest selectivity (eq. 4) is kept; a group without an eligible
    kernel keeps none. If no kernel of the layer is eligible, the most selective one is
    kept, so the suggestion never empties a layer.

    Parameters
    ----------
    selectivity : ndarray, (K,) float
        s(k), eq. 4.
    groups : ndarray, (K,) int
        Group label of each kernel.
    flags : dict
        ``"dead"`` and ``"always_on"``, (K,) bool each.
    min_selectivity : float, default :data:`MIN_SELECTIVITY`

    Returns
    -------
    list of int, the kept kernel indices, sorted ascending (ties in s(k) keep the lower
    index).
    """
    s = np.asarray(selectivity, dtype=np.float64)
    groups = np.asarray(groups)
    if s.shape != groups.shape:
        raise ValueError(f"selectivity {s.shape} and groups {groups.shape} must have the same shape (K,)")
    eligible = _eligible(s, flags, min_selectivity)
    if not eligible.any():
        return [int(np.argmax(s))]
    keep = []
    for g in np.unique(groups[eligible]):
        members = np.flatnonzero((groups == g) & eligible)
        keep.append(int(members[np.argmax(s[members])]))
    return sorted(keep)


def keep_reasons(selectivity: np.ndarray, groups: np.ndarray, flags: dict[str, np.ndarray], keep: list[int],
                 min_selectivity: float = MIN_SELECTIVITY, names: list[str] | None = None) -> list[str]:
    """Why :func:`suggest_keep` keeps or drops each kernel, one short phrase per kernel.

    Kept: ``"kept: the most selective of group g"`` (groups numbered from 1), or ``"kept: the
    layer's most selective kernel"`` when no kernel is eligible. Dropped, the first reason that
    applies: ``"dead"``, ``"always on"``, ``"not selective: s(k) < 25% of the layer's highest"``,
    ``"redundant: group g keeps k5"``; a kernel that the user kept against the rule (not in
    ``keep`` but eligible and its group's best) reads ``"dropped by you"``.

    Parameters are those of :func:`suggest_keep` plus ``keep``, the kept indices, and ``names``,
    the K kernels' names in the phrases (default ``k<index>``; after an edit, the lineage's:
    :func:`~aomcore.base.lineage.kernel_names`). Returns a list of K strings.
    """
    s = np.asarray(selectivity, dtype=np.float64)
    groups = np.asarray(groups)
    kept = set(int(i) for i in keep)
    floor = min_selectivity * s.max()
    ok = _eligible(s, flags, min_selectivity)
    out = []
    for i in range(len(s)):
        eligible = [int(j) for j in np.flatnonzero((groups == groups[i]) & ok)]
        best = max(eligible, key=lambda j: (s[j], -j)) if eligible else None
        if i in kept:
            if best == i:
                out.append(f"kept: the most selective of group {groups[i] + 1}")
            elif not ok.any() and i == int(np.argmax(s)):
                out.append("kept: no kernel is eligible, so the layer's most selective one")
            else:
                out.append("kept by you")
        elif flags["dead"][i]:
            out.append("dead")
        elif flags["always_on"][i]:
            out.append("always on")
        elif s[i] < floor:
            out.append(f"not selective: s(k) < {min_selectivity:.0%} of the layer's highest")
        elif best is not None and best != i:
            name = names[best] if names is not None else f"k{best}"
            out.append(f"redundant: group {groups[i] + 1} keeps {name}" if best in kept else
                       f"redundant: {name} is its group's most selective")
        else:
            out.append("dropped by you")
    return out


def _kinds(maps: dict[str, LayerMaps], layer_kinds: dict[str, str] | None) -> dict[str, str]:
    given = layer_kinds or {}
    return {name: given.get(name, "fc" if m.counts.shape[2:] == (1, 1) else "conv") for name, m in maps.items()}


def layer_overview(maps: dict[str, LayerMaps], n_groups: dict[str, int] | None = None,
                   level: float = MULTI_CLASS_LEVEL, neighborhood_hit: dict[str, float] | None = None,
                   layer_kinds: dict[str, str] | None = None, lineage: Lineage | None = None) -> list[dict]:
    """One row per layer summarising the paper's three tasks, with findings to judge.

    Parameters
    ----------
    maps : dict of layer name to LayerMaps
        Rows follow this dict's order; pass the layers in forward order (as
        :func:`~aomcore.aom.maps.compute_maps` returns the default every-conv-layer request).
    n_groups : dict of layer name to int, optional
        Where to cut each layer's kernel tree; default
        :func:`~aomcore.aom.ordering.default_n_groups` (the tree cut at a tenth of 2·m̄, m̄ the layer's mean occurrence).
    level : float, default :data:`~aomcore.aom.maps.MULTI_CLASS_LEVEL` (0.5)
        Strong occurrence for :func:`~aomcore.aom.maps.classes_per_kernel`.
    neighborhood_hit : dict of layer name to float, optional
        Copied into the rows (e.g. from a projection of the layer's activations).
    layer_kinds : dict of layer name to "conv" or "fc", optional
        Decides whether Task 3's ``insert`` edit applies (it goes after conv layers);
        default: "fc" for maps with a single position, else "conv".
    lineage : Lineage, optional
        The model's (:attr:`~aomcore.base.loaded.LoadedModel.lineage`): the findings name kernels
        as the first version did (``k5``, ``k16+``); default ``k<index>``.

    Returns
    -------
    list of dict, one per layer, with keys ``layer``, ``tap``, ``kernels``, ``dead``,
    ``always_on``, ``groups`` (groups at the cut), ``redundant_groups`` (groups with a kernel
    found redundant: two or more live, selective kernels), ``redundant_kernels`` (those kernels
    beyond the one kept per group; dead, always-on and unselective kernels are counted apart),
    ``mean_selectivity``, ``least_separated`` ([class, class] names),
    ``least_separated_e``, ``multi_class_share``, ``neighborhood_hit`` (or None),
    ``keep`` (:func:`suggest_keep` at the cut) and ``findings``: a list of
    ``{"task": 1 | 2 | 3, "finding": str, "edit": dict | None}`` whose edit is an
    :class:`~aomcore.base.editing.Edit` record (``Edit.from_dict`` reads it).

    Raises
    ------
    ValueError
        If ``n_groups`` gives a layer a cut outside ``[1, K]``.
    """
    kinds = _kinds(maps, layer_kinds)
    per_kernels = {name: m.classes_per_kernel if level == MULTI_CLASS_LEVEL else classes_per_kernel(m.aom, level)
                   for name, m in maps.items()}
    shares = {name: multi_class_share(c) for name, c in per_kernels.items()}
    # Task 3 is about the model (Sec. III: "the activations of the model's last hidden layer should be
    # very discriminative"; Fig. 6: a 1st layer active for many classes is answered by a 6th that is
    # not). The classifier (a last FC layer with one kernel per class) separates the classes by
    # construction, so it is not a hidden layer. The finding is listed once: at the deepest layer of
    # the trailing run of hidden layers that do not separate the classes, preferring a conv layer
    # (an inserted layer goes after one); nothing when the last hidden layer separates them.
    hidden = list(maps)
    last = maps[hidden[-1]]
    if kinds[hidden[-1]] == "fc" and last.num_kernels == len(last.classes):
        hidden = hidden[:-1]
    tail = []
    for name in reversed(hidden):
        if shares[name] < MULTI_CLASS_SHARE:
            break
        tail.append(name)
    task3_at = next((n for n in tail if kinds[n] == "conv"), tail[0] if tail else None)
    rows = []
    rows = []
    for name, m in maps.items():
        k = m.num_kernels
        flags = kernel_flags(m.aom)
        cut = (n_groups or {}).get(name) or default_n_groups(m.odm, m.aom)
        groups = KernelOrdering(n_groups=cut).fit(m.odm).labels_
        sizes = np.bincount(groups)
        keep = suggest_keep(m.selectivity, groups, flags)
        names = kernel_names(lineage, name, k)
        reasons = keep_reasons(m.selectivity, groups, flags, keep, names=names)
        per_kernel, share = per_kernels[name], shares[name]
        pairs = least_separated_pairs(m.class_difference)
        c1, c2, e_min = pairs[0]
        row = {"layer": name, "tap": m.tap, "kernels": k, "dead": int(flags["dead"].sum()),
               "always_on": int(flags["always_on"].sum()), "groups": int(sizes.size),
               "redundant_groups": len({int(groups[i]) for i, r in enumerate(reasons) if r.startswith("redundant")}),
               "redundant_kernels": sum(r.startswith("redundant") for r in reasons),
               "mean_selectivity": float(m.selectivity.mean()), "least_separated": [m.classes[c1], m.classes[c2]],
               "least_separated_e": e_min, "multi_class_share": share,
               "neighborhood_hit": None if neighborhood_hit is None else neighborhood_hit.get(name),
               "keep": keep, "findings": []}
        row["findings"] += _task1(name, m, reasons, keep, names)
        row["findings"] += _task2(name, m, pairs, removes=len(keep) < k)
        if name == task3_at:
            later = [n for n in reversed(tail) if hidden.index(n) > hidden.index(name)]
            row["findings"] += _task3(name, k, per_kernel, share, level, kinds[name], later)
        rows.append(row)
    return rows


def _task1(name: str, m: LayerMaps, reasons: list[str], keep: list[int], names: list[str]) -> list[dict]:
    kept = set(keep)
    remove = [i for i in range(m.num_kernels) if i not in kept]
    if not remove:
        return []
    counts = {"dead": 0, "always on": 0, "not selective": 0, "redundant": 0}
    for i in remove:
        counts[next(c for c in counts if reasons[i].startswith(c))] += 1
    why = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
    text = (f"{len(remove)} of {m.num_kernels} kernels are redundant or ineffective ({why}); kept: the most "
            f"selective kernel of each group of similar AOMs, {kernel_list(names, keep)}")
    return [{"task": 1, "finding": text, "edit": {"kind": "remove", "layer": name, "kernels": remove}}]


def _task2(name: str, m: LayerMaps, pairs: list[tuple[int, int, float]], removes: bool) -> list[dict]:
    median = float(np.median([e for _, _, e in pairs]))
    close = [(c1, c2, e) for c1, c2, e in pairs if e <= SIMILAR_CLASSES_RATIO * median]
    if not close:
        return []
    listed = ", ".join(f"{m.classes[c1]!r} and {m.classes[c2]!r} (E = {e:.3g})" for c1, c2, e in close[:5])
    more = f" and {len(close) - 5} more pairs" if len(close) > 5 else ""
    text = (f"classes producing similar AOMs in every kernel: {listed}{more}, against a median E of {median:.3g}; "
            f"the layer may be too small to learn the features that separate them")
    if removes:
        text += (". Task 1 also finds kernels to remove here: try the removal first (it keeps the selective "
                 "kernels), then widen if these classes stay close in the retrained layer's maps")
    n = max(1, math.ceil(m.num_kernels * WIDEN_FRACTION))
    return [{"task": 2, "finding": text, "edit": {"kind": "widen", "layer": name, "n": n}}]


def _task3(name: str, k: int, per_kernel: np.ndarray, share: float, level: float, kind: str,
           later: list[str]) -> list[dict]:
    text = (f"{int((per_kernel >= 2).sum())} of {k} kernels produce AOMs with strong occurrence (mean > {level:g}) "
            f"for multiple classes")
    if later:
        text += f", and so do most kernels of every later hidden layer analysed ({', '.join(later)})"
    text += ": the model may need more layers to discriminate between these classes"
    if kind != "conv":
        text += " (an inserted layer goes after a conv layer: choose one before this layer)"
    return [{"task": 3, "finding": text, "edit": {"kind": "insert", "layer": name} if kind == "conv" else None}]

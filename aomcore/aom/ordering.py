"""Kernel order and groups from agglomerative clustering of the AOM rows.

Garcia et al. 2019 order the rows of the AOM grid "by the similarity tree computed by
aggregative clustering the AOM rows" (Fig. 6) and show the ODM in the same order. Here
the tree is built from the ODM itself (eq. 2 is the L1 distance between AOM rows divided
by C·H·W), with SciPy's hierarchical clustering and optimal leaf ordering; kernel groups
are the tree cut into a chosen number of groups or at a chosen distance.

The default cut comes from the maps, not from the kernel count
(:func:`default_n_groups`): the tree is cut at ODM height ``DEFAULT_CUT · 2·m̄``, where m̄ is
the mean occurrence (eq. 1) of the layer's live kernels. Two kernels of occurrence m̄ that
never occur at the same class and position are 2·m̄ apart (eq. 2); the kernels of a group
differ by less than a tenth of that (average linkage: a merge's height is the mean ODM
between its two sides). Relative, because the ODM shrinks with the layer's occurrence: in a
sparse layer (m̄ = 0.04) every pair is closer than 0.1 although their AOMs barely overlap. A
layer whose kernels all differ more keeps each kernel in a group of its own ("little
redundancy"), whatever its width. Measured: the paper's MNIST model (1 epoch, m̄ ≈ 0.45)
cuts conv1 into 6 groups of 16 and conv2 into 14; trained 30 epochs, conv2 (m̄ = 0.04) into
16; a ResNet-18 trained 3 epochs on digits (32 px) cuts conv1 into 27 of 64,
layer2.0.conv1 into 128 of 128 and layer4.1.conv2 into 410 of 512, where the former √K cut
made 8, 11 and 23 groups in every layer alike.
"""

from __future__ import annotations

import numpy as np

from .maps import kernel_flags

__all__ = ["DEFAULT_CUT", "KernelOrdering", "default_cut_distance", "default_n_groups", "group_means", "group_members"]

_METHODS = ("average", "complete", "single", "weighted")
#: Above this many kernels the leaves keep the dendrogram's own order (still grouped).
OPTIMAL_ORDERING_MAX = 1024


#: The default cut of the kernel tree, a fraction of 2·m̄ (see the module docstring).
DEFAULT_CUT = 0.1


def default_cut_distance(aom_: np.ndarray, fraction: float = DEFAULT_CUT) -> float:
    """ODM height of the default cut: ``fraction · 2 · m̄`` (module docstring).

    Parameters
    ----------
    aom_ : ndarray, (K, C, H, W) float
        The layer's AOM (eq. 1). m̄ is its mean over the kernels that are not dead
        (:func:`~aomcore.aom.maps.kernel_flags`); 0 when every kernel is dead.
    fraction : float, default :data:`DEFAULT_CUT` (0.1)

    Returns
    -------
    float ≥ 0, in ODM units (eq. 2).
    """
    aom_ = np.asarray(aom_, dtype=np.float64)
    live = ~kernel_flags(aom_)["dead"]
    return float(fraction * 2 * aom_[live].mean()) if live.any() else 0.0


def default_n_groups(odm: np.ndarray, aom_: np.ndarray, fraction: float = DEFAULT_CUT,
                     method: str = "average") -> int:
    """Groups of the kernel tree cut at :func:`default_cut_distance`: the default cut.

    Parameters
    ----------
    odm : ndarray, (K, K) float
        The layer's ODM (eq. 2), symmetric with a zero diagonal.
    aom_ : ndarray, (K, C, H, W) float
        The layer's AOM (eq. 1).
    fraction : float, default :data:`DEFAULT_CUT` (0.1)
    method : str, default "average"
        Linkage criterion, as :class:`KernelOrdering`.

    Returns
    -------
    int in [1, K] (1 for K ≤ 1). Merges at the cut's height or below join kernels.
    """
    odm = np.asarray(odm, dtype=np.float64)
    k = odm.shape[0]
    if k <= 1:
        return 1
    from scipy.cluster.hierarchy import fcluster, linkage  # 0.2 s to import: only when ordering
    from scipy.spatial.distance import squareform

    tree = linkage(squareform((odm + odm.T) / 2, checks=False), method=method)  # no leaf ordering: same cut
    return int(fcluster(tree, t=default_cut_distance(aom_, fraction), criterion="distance").max())


class KernelOrdering:
    """Order kernels and cut them into groups, scikit-learn style.

    Parameters
    ----------
    method : {"average", "complete", "single", "weighted"}, default "average"
        Linkage criterion (these four are valid on a precomputed distance matrix).
    n_groups : int, optional
        Cut the tree into this many groups.
    distance_threshold : float, optional
        Cut the tree at this ODM distance instead (exclusive with ``n_groups``). With neither,
        the tree is not cut: each kernel is a group (the default cut is
        ``n_groups=default_n_groups(odm, aom)``).

    Attributes
    ----------
    linkage_ : ndarray, (K-1, 4) float64
        SciPy linkage matrix (empty for K = 1).
    order_ : ndarray, (K,) int64
        Kernel indices in display order (optimal leaf ordering up to
        ``OPTIMAL_ORDERING_MAX`` kernels, the dendrogram's order above).
    labels_ : ndarray, (K,) int64
        Group of each kernel, numbered 0, 1, … in display order.
    n_groups_ : int
    """

    def __init__(self, method: str = "average", n_groups: int | None = None,
                 distance_threshold: float | None = None):
        self.method = method
        self.n_groups = n_groups
        self.distance_threshold = distance_threshold

    def fit(self, odm: np.ndarray) -> KernelOrdering:
        """Fit on an ODM, (K, K) float, symmetric with a zero diagonal.

        Raises
        ------
        ValueError
            Unknown method, both or invalid cut parameters, or a non-square matrix.
        """
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        if self.n_groups is not None and self.distance_threshold is not None:
            raise ValueError("give n_groups or distance_threshold, not both")
        odm = np.asarray(odm, dtype=np.float64)
        if odm.ndim != 2 or odm.shape[0] != odm.shape[1]:
            raise ValueError(f"odm must be square (K, K), got shape {odm.shape}")
        k = odm.shape[0]
        if self.n_groups is not None and not 1 <= self.n_groups <= max(k, 1):
            raise ValueError(f"n_groups must be in [1, {k}], got {self.n_groups}")
        if k == 1:
            self.linkage_ = np.empty((0, 4))
            self.order_ = np.zeros(1, dtype=np.int64)
            self.labels_ = np.zeros(1, dtype=np.int64)
            self.n_groups_ = 1
            return self
        from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
        from scipy.spatial.distance import squareform

        dist = squareform((odm + odm.T) / 2, checks=False)
        # Optimal leaf ordering costs ~O(K³): interactive up to about a thousand kernels.
        self.linkage_ = linkage(dist, method=self.method, optimal_ordering=k <= OPTIMAL_ORDERING_MAX)
        self.order_ = leaves_list(self.linkage_).astype(np.int64)
        if self.n_groups is not None:
            raw = fcluster(self.linkage_, t=self.n_groups, criterion="maxclust")
        elif self.distance_threshold is not None:
            raw = fcluster(self.linkage_, t=self.distance_threshold, criterion="distance")
        else:
            raw = np.arange(1, k + 1)
        # Renumber groups 0, 1, ... in the order they appear along the leaves.
        first_seen: dict[int, int] = {}
        for kernel in self.order_:
            first_seen.setdefault(int(raw[kernel]), len(first_seen))
        self.labels_ = np.array([first_seen[int(g)] for g in raw], dtype=np.int64)
        self.n_groups_ = len(first_seen)
        return self


def group_members(order: np.ndarray, groups: np.ndarray) -> list[np.ndarray]:
    """Each group's kernels (int64 arrays) in display order, groups in the order they first appear in ``order``."""
    groups = np.asarray(groups)
    seen: dict[int, list[int]] = {}
    for kernel in np.asarray(order).tolist():
        seen.setdefault(int(groups[kernel]), []).append(kernel)
    return [np.asarray(kernels, dtype=np.int64) for kernels in seen.values()]


def group_means(maps: np.ndarray, order: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each kernel group's mean map, for a grid with one row per group (a large layer at a glance).

    Parameters
    ----------
    maps : ndarray, (K, C, H, W) float
        AOMs or CSMs of one layer.
    order : ndarray, (K,) int
        Display order of the kernels (:attr:`KernelOrdering.order_`).
    groups : ndarray, (K,) int
        Group of each kernel (:attr:`KernelOrdering.labels_`).

    Returns
    -------
    means : ndarray, (G, C, H, W) float64
        Mean over each group's kernels, groups in the order they first appear in ``order``.
    members : list of ndarray of int
        Each group's kernels, in display order.
    """
    members = group_members(order, groups)
    means = np.stack([np.asarray(maps, dtype=np.float64)[kernels].mean(axis=0) for kernels in members])
    return means, members

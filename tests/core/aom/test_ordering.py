import numpy as np
import pytest

from aomcore import DEFAULT_CUT, KernelOrdering, default_cut_distance, default_n_groups, odm


def test_groups_are_contiguous_and_found():
    rng = np.random.default_rng(0)
    base = rng.random((3, 2, 4, 4))
    # kernels 0, 3, 5 near base[0]; 1, 4 near base[1]; 2 near base[2]
    which = [0, 1, 2, 0, 1, 0]
    m = np.stack([base[w] + rng.normal(0, 0.01, base[w].shape) for w in which]).clip(0, 1)
    fit = KernelOrdering(n_groups=3).fit(odm(m))
    assert sorted(fit.order_.tolist()) == list(range(6))
    assert fit.n_groups_ == 3
    groups_in_order = fit.labels_[fit.order_]
    assert np.all(np.diff(groups_in_order) >= 0)  # contiguous, numbered along the leaves
    assert len({fit.labels_[i] for i in (0, 3, 5)}) == 1 and len({fit.labels_[i] for i in (1, 4)}) == 1
    assert fit.labels_[0] != fit.labels_[1] != fit.labels_[2]


def test_distance_threshold_cut_and_single_kernel():
    d = np.array([[0, 0.01, 0.9], [0.01, 0, 0.9], [0.9, 0.9, 0]])
    assert KernelOrdering(distance_threshold=0.1).fit(d).n_groups_ == 2
    assert KernelOrdering().fit(np.zeros((1, 1))).order_.tolist() == [0]


def test_default_cut_comes_from_the_maps_not_the_kernel_count():
    """Average linkage: k0-k1 merge at 0.05, k2-k3 at 0.2, the two pairs at 0.5 (their mean distance).
    Every AOM value 0.5 (m̄ = 0.5): the cut is at 0.1 · 2 · 0.5 = 0.1, so only k0-k1 join: 3 groups."""
    d = np.array([[0, 0.05, 0.5, 0.5], [0.05, 0, 0.5, 0.5], [0.5, 0.5, 0, 0.2], [0.5, 0.5, 0.2, 0]])
    half = np.full((4, 2, 3, 3), 0.5)
    assert DEFAULT_CUT == 0.1 and default_cut_distance(half) == pytest.approx(0.1)
    assert default_n_groups(d, half) == 3
    assert default_n_groups(d, half, fraction=0.2) == 2 and default_n_groups(d, half, fraction=0.5) == 1
    # the same distances in a sparser layer (m̄ = 0.125, cut at 0.025) are large: nothing joins
    assert default_n_groups(d, half / 4) == 4
    # a dead kernel does not lower m̄: the mean is over live kernels
    with_dead = half.copy()
    with_dead[3] = 0
    assert default_cut_distance(with_dead) == pytest.approx(0.1)
    for k in (2, 16, 512):
        apart = np.full((k, k), 0.3) - 0.3 * np.eye(k)
        assert default_n_groups(apart, np.full((k, 1, 1, 1), 0.5)) == k
    assert default_n_groups(np.zeros((1, 1)), half[:1]) == 1
    assert default_n_groups(np.zeros((5, 5)), np.zeros((5, 1, 2, 2))) == 1  # all dead: one group of equals
    assert KernelOrdering().fit(d).n_groups_ == 4  # no cut asked: each kernel its own group


def test_bad_options_name_the_valid_ones():
    with pytest.raises(ValueError, match="method must be one of"):
        KernelOrdering(method="ward").fit(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not both"):
        KernelOrdering(n_groups=2, distance_threshold=0.1).fit(np.zeros((2, 2)))


def test_group_means_are_each_groups_mean_map_in_display_order():
    from aomcore import group_means, map_grid_image

    maps = (np.array([0, 3, 1, 7, 5, 9], dtype=np.float64)[:, None] * np.array([1, 2])).reshape(6, 2, 1, 1) / 16
    order, groups = np.array([4, 1, 0, 5, 3, 2]), np.array([1, 0, 2, 2, 0, 1])
    means, members = group_means(maps, order, groups)
    assert [m.tolist() for m in members] == [[4, 1], [0, 5], [3, 2]]  # groups 0, 1, 2 as they first appear
    np.testing.assert_array_equal(means[:, :, 0, 0], [[4 / 16, 8 / 16], [4.5 / 16, 9 / 16], [4 / 16, 8 / 16]])
    image = map_grid_image(means, "occurrence", row_labels=["g1 (2)", "g2 (2)", "g3 (2)"])
    assert image.height > 3 * 28

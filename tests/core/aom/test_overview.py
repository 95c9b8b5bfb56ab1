"""Class difference (Task 2), classes per kernel (Task 3), the keep rule and the layer overview,
on hand-set counts whose expected values are exact numbers."""

import json

import numpy as np
import pytest

from aomcore import (
    MULTI_CLASS_LEVEL,
    Edit,
    LayerMaps,
    class_difference,
    classes_per_kernel,
    keep_reasons,
    layer_overview,
    least_separated_pairs,
    load_maps_npz,
    multi_class_share,
    save_maps_npz,
    suggest_keep,
)
from aomcore.aom.reproduce import choose_kernels

from ..helpers import literal_odm

# Mean occurrence per (kernel, class), equal at both positions of a 1×2 map; 4 images per
# class. Classes 2 and 3 are identical in every kernel.
#            c0  c1  c2  c3
CONV = [[1, 0, 0, 0],   # k0 selective for c0
        [1, 0, 0, 0],   # k1 a copy of k0 (redundant)
        [0, 1, 0, 0],   # k2 selective for c1
        [0, 0, 0, 0],   # k3 dead
        [1, 1, 1, 1],   # k4 always on
        [1, 1, 0, 0]]   # k5 two classes
# E[c1, c2] = mean over kernels of |difference| (positions agree)
E_CONV = np.array([[0, 3, 3, 3], [3, 0, 2, 2], [3, 2, 0, 0], [3, 2, 0, 0]]) / 6
# s(k) = 4/3 · Σ over ordered class pairs |a_c0 - a_c1| (eq. 3-4 with C = 4, uniform maps)
S_CONV = np.array([8, 8, 8, 0, 0, 32 / 3])

# An FC layer (one position) where three of four neurons are strong for several classes.
FC = [[1, 1, 0, 0],
      [0, 0.75, 0.75, 1],
      [1, 1, 1, 0.25],
      [0.25, 0, 0, 1]]


def _layer(name, means, positions=2):
    means = np.asarray(means, dtype=np.float64)
    counts = np.repeat((means * 4).astype(np.int64)[:, :, None, None], positions, axis=3)  # (K, C, 1, P)
    return LayerMaps(layer=name, tap=f"{name}_relu", counts=counts, class_sizes=np.array([4, 4, 4, 4]),
                     classes=["a", "b", "c", "d"])


def test_class_difference_exact():
    m = _layer("conv", CONV)
    np.testing.assert_array_equal(m.class_difference, E_CONV)
    # the dual of the ODM: eq. 2 on the AOM with kernels and classes swapped
    np.testing.assert_allclose(m.class_difference, literal_odm(m.aom.transpose(1, 0, 2, 3)), atol=1e-15)
    # one kernel per block gives the same matrix
    np.testing.assert_array_equal(class_difference(m.aom, chunk_elements=1), E_CONV)
    assert m.class_difference.dtype == np.float64 and m.class_difference.shape == (4, 4)


def test_least_separated_pairs_sorted():
    assert least_separated_pairs(E_CONV) == [(2, 3, 0.0), (1, 2, 1 / 3), (1, 3, 1 / 3), (0, 1, 0.5), (0, 2, 0.5),
                                             (0, 3, 0.5)]
    assert least_separated_pairs(E_CONV, n=2) == [(2, 3, 0.0), (1, 2, 1 / 3)]


def test_classes_per_kernel_exact_and_strict():
    m = _layer("conv", CONV)
    assert MULTI_CLASS_LEVEL == 0.5
    np.testing.assert_array_equal(m.classes_per_kernel, [1, 1, 1, 0, 4, 2])
    assert m.classes_per_kernel.dtype == np.int64
    assert m.multi_class_share == 2 / 6
    # FC: 0.75 and 1 exceed 0.5, 0.5 itself would not (strict)
    np.testing.assert_array_equal(classes_per_kernel(_layer("fc", FC, 1).aom), [2, 3, 3, 1])
    np.testing.assert_array_equal(classes_per_kernel(np.full((1, 3, 2, 2), 0.5)), [0])
    np.testing.assert_array_equal(classes_per_kernel(_layer("fc", FC, 1).aom, level=0.8), [2, 1, 3, 1])
    assert multi_class_share(np.array([0, 2, 3, 1])) == 0.5


def test_suggest_keep_rule():
    flags = {"dead": np.array([0, 0, 0, 1, 0, 0], bool), "always_on": np.array([0, 0, 0, 0, 1, 0], bool)}
    groups = np.array([0, 0, 1, 2, 3, 4])
    # k1 loses its group to k0 (tie in s(k): the lower index), k3 dead, k4 always on
    assert suggest_keep(S_CONV, groups, flags) == [0, 2, 5]
    # non-selective: s < 0.25 · max s; here everything below 9 of max 32/3 with min_selectivity 0.85
    assert suggest_keep(S_CONV, groups, flags, min_selectivity=0.85) == [5]
    # one group holding everything: one representative, the most selective
    assert suggest_keep(S_CONV, np.zeros(6, int), flags) == [5]
    # nothing eligible: the most selective kernel stays, the layer is never emptied
    all_dead = {"dead": np.ones(6, bool), "always_on": np.zeros(6, bool)}
    assert suggest_keep(S_CONV, groups, all_dead) == [5]


def test_reproduce_uses_the_same_rule():
    m = _layer("conv", CONV)
    np.testing.assert_allclose(m.selectivity, S_CONV, rtol=1e-15)
    # with 5 groups only the identical k0, k1 merge (distance 0, the unique minimum)
    assert choose_kernels(m.selectivity, m.odm, m.aom, n_groups=5) == [0, 2, 5]


def test_layer_overview_exact():
    maps = {"conv": _layer("conv", CONV), "fc": _layer("fc", FC, 1)}
    rows = layer_overview(maps, n_groups={"conv": 5, "fc": 4}, neighborhood_hit={"conv": 0.75})
    conv, fc = rows
    assert [r["layer"] for r in rows] == ["conv", "fc"]
    expected = {"layer": "conv", "tap": "conv_relu", "kernels": 6, "dead": 1, "always_on": 1, "groups": 5,
                "redundant_groups": 1, "redundant_kernels": 1, "least_separated": ["c", "d"],
                "least_separated_e": 0.0, "multi_class_share": 2 / 6, "neighborhood_hit": 0.75, "keep": [0, 2, 5]}
    assert {k: conv[k] for k in expected} == expected
    assert conv["mean_selectivity"] == pytest.approx(52 / 9, rel=1e-15)
    tasks = {f["task"]: f for f in conv["findings"]}
    assert sorted(tasks) == [1, 2]  # 2 of 6 kernels multi-class: below the Task 3 share
    assert tasks[1]["edit"] == {"kind": "remove", "layer": "conv", "kernels": [1, 3, 4]}
    assert "1 dead, 1 always on, 1 redundant" in tasks[1]["finding"]
    assert tasks[2]["edit"] == {"kind": "widen", "layer": "conv", "n": 2}  # ceil(6 / 4)
    assert "'c' and 'd' (E = 0)" in tasks[2]["finding"] and "'b'" not in tasks[2]["finding"]
    for f in conv["findings"]:
        Edit.from_dict(f["edit"])  # a valid edit record
    # fc: every neuron its own group, all kept; E = .25 .25 .5 .5 .75 .875, so the two pairs at
    # E = 0.25 are at half the median 0.5; 3 of 4 neurons multi-class, but fc is the classifier (one
    # neuron per class, the last layer): not a hidden layer, so no Task 3
    assert fc["redundant_groups"] == 0 and fc["neighborhood_hit"] is None and fc["multi_class_share"] == 0.75
    assert fc["keep"] == [0, 1, 2, 3] and fc["least_separated"] == ["a", "b"] and fc["least_separated_e"] == 0.25
    (task2,) = fc["findings"]
    assert task2["task"] == 2 and "'a' and 'b' (E = 0.25), 'b' and 'c' (E = 0.25), against a median E of 0.5" \
        in task2["finding"]
    assert task2["edit"] == {"kind": "widen", "layer": "fc", "n": 1}
    rows = layer_overview({"fc": maps["fc"]}, n_groups={"fc": 4}, layer_kinds={"fc": "conv"})
    assert rows[0]["findings"][-1]["edit"] == {"kind": "insert", "layer": "fc"}
    assert "3 of 4 kernels" in rows[0]["findings"][-1]["finding"]
    # a higher level: 2 of 4 multi-class is still half
    assert layer_overview({"fc": maps["fc"]}, n_groups={"fc": 4}, level=0.8)[0]["multi_class_share"] == 0.5
    json.dumps(rows)  # JSON-serialisable


def test_layer_overview_default_cut_counts_groups():
    """The default cut joins kernels whose AOMs differ by less than 0.1 (ODM): k1, a copy of k0,
    joins it; every other pair differs by 0.25 or more, so each stays a group of its own."""
    rows = layer_overview({"conv": _layer("conv", CONV)})
    (row,) = rows
    assert row["groups"] == 5 and row["redundant_groups"] == 1
    assert row["redundant_kernels"] == 1  # k1: its group keeps k0 (equal s(k): the lower index)
    task1 = next(f for f in row["findings"] if f["task"] == 1)
    remove = task1["edit"]["kernels"]
    assert sorted(remove + row["keep"]) == list(range(6)) and 1 in remove and 0 in row["keep"]
    assert "1 redundant" in task1["finding"]  # the table's count and the text's agree
    assert "dead" in task1["finding"] and "always on" in task1["finding"]


def test_keep_reasons_name_the_rule_that_decided():
    s = np.array([0.9, 0.5, 0.1, 0.8, 0.7])
    groups = np.array([0, 0, 1, 1, 2])
    flags = {"dead": np.array([0, 0, 0, 0, 1], bool), "always_on": np.zeros(5, bool)}
    keep = suggest_keep(s, groups, flags)
    assert keep == [0, 3]
    assert keep_reasons(s, groups, flags, keep) == [
        "kept: the most selective of group 1", "redundant: group 1 keeps k0",
        "not selective: s(k) < 25% of the layer's highest", "kept: the most selective of group 2", "dead"]
    # the user's own choice is named as such
    assert keep_reasons(s, groups, flags, [1, 3])[:2] == ["dropped by you", "kept by you"]
    # nothing eligible: the most selective kernel is kept, and says why
    none = {"dead": np.ones(5, bool), "always_on": np.zeros(5, bool)}
    assert keep_reasons(s, groups, none, suggest_keep(s, groups, none))[0].startswith("kept: no kernel is eligible")


def test_layer_overview_says_which_edit_to_try_first():
    """A layer with kernels to remove and close classes: the widen finding says to try the removal first."""
    rows = layer_overview({"conv": _layer("conv", CONV)}, layer_kinds={"conv": "conv"})
    tasks = {f["task"]: f for f in rows[0]["findings"]}
    assert set(tasks) == {1, 2} and "try the removal first" in tasks[2]["finding"]
    fc = layer_overview({"fc": _layer("fc", FC, 1)}, n_groups={"fc": 4})[0]
    task2 = next(f for f in fc["findings"] if f["task"] == 2)
    assert "try the removal first" not in task2["finding"]  # nothing to remove in fc at 4 groups


def test_maps_npz_round_trip_with_new_keys(tmp_path):
    maps = {"conv": _layer("conv", CONV), "fc": _layer("fc", FC, 1)}
    path = save_maps_npz(tmp_path / "m.npz", maps, {"model_digest": "x" * 64})
    with np.load(path, allow_pickle=False) as npz:
        assert npz["conv/class_difference"].dtype == np.float64
        np.testing.assert_array_equal(npz["conv/class_difference"], E_CONV)
        assert npz["conv/classes_per_kernel"].dtype == np.int64
        np.testing.assert_array_equal(npz["conv/classes_per_kernel"], [1, 1, 1, 0, 4, 2])
        np.testing.assert_array_equal(npz["fc/classes_per_kernel"], [2, 3, 3, 1])
        meta = json.loads(str(npz["meta"]))
        assert meta["classes_per_kernel_level"] == 0.5
        arrays = {k: npz[k] for k in npz.files}
    loaded, meta = load_maps_npz(path)
    np.testing.assert_array_equal(loaded["conv"].class_difference, E_CONV)
    np.testing.assert_array_equal(loaded["fc"].classes_per_kernel, [2, 3, 3, 1])
    # a file written before these keys existed still loads, and computes them
    old = {k: v for k, v in arrays.items() if not k.endswith(("/class_difference", "/classes_per_kernel"))}
    old_meta = {k: v for k, v in meta.items() if k != "classes_per_kernel_level"}
    old["meta"] = np.array(json.dumps(old_meta))
    np.savez_compressed(tmp_path / "old.npz", **old)
    loaded, meta = load_maps_npz(tmp_path / "old.npz")
    assert "classes_per_kernel_level" not in meta
    np.testing.assert_array_equal(loaded["conv"].class_difference, E_CONV)
    np.testing.assert_array_equal(loaded["conv"].classes_per_kernel, [1, 1, 1, 0, 4, 2])


def test_dead_kernels_grouped_together_are_not_a_redundant_group():
    """Two dead kernels share a group at any cut (their AOMs are equal), but they are counted as dead,
    so the table's 'redundant groups' must not count their group ('1 of 5 (0 kernels)' before)."""
    means = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    (row,) = layer_overview({"conv": _layer("conv", means)}, n_groups={"conv": 4})
    assert row["groups"] == 4 and row["dead"] == 2
    assert row["redundant_groups"] == 0 and row["redundant_kernels"] == 0
    (row,) = layer_overview({"conv": _layer("conv", CONV)}, n_groups={"conv": 5})
    assert row["redundant_groups"] == 1 and row["redundant_kernels"] == 1  # k0 and k1, a live pair


MULTI = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]]  # every kernel strong for two classes
ONE_EACH = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]  # every kernel strong for one class


def _task3(rows):
    return {r["layer"]: [f["edit"] for f in r["findings"] if f["task"] == 3] for r in rows}


def test_task3_is_listed_once_at_the_deepest_layer_that_does_not_separate_the_classes():
    """Task 3 is about the model (Sec. III, Fig. 6): a first layer active for many classes is
    answered by a later layer that is not; a classifier with one neuron per class answers nothing.
    When the last hidden layers all fail to separate, one finding: at the deepest conv layer."""
    kinds = {"conv1": "conv", "conv2": "conv", "conv3": "conv", "fc": "fc"}
    answered = layer_overview({"conv1": _layer("conv1", MULTI), "conv2": _layer("conv2", ONE_EACH)},
                              layer_kinds=kinds)
    assert _task3(answered) == {"conv1": [], "conv2": []}
    shallow = layer_overview({"conv1": _layer("conv1", MULTI), "conv2": _layer("conv2", MULTI)}, layer_kinds=kinds)
    assert _task3(shallow) == {"conv1": [], "conv2": [{"kind": "insert", "layer": "conv2"}]}
    # conv2 separates, conv3 does not: conv1's multi-class maps are answered by conv2; conv3 is the model's
    middle = layer_overview({"conv1": _layer("conv1", MULTI), "conv2": _layer("conv2", ONE_EACH),
                             "conv3": _layer("conv3", MULTI)}, layer_kinds=kinds)
    assert _task3(middle) == {"conv1": [], "conv2": [], "conv3": [{"kind": "insert", "layer": "conv3"}]}
    with_classifier = layer_overview({"conv1": _layer("conv1", MULTI), "fc": _layer("fc", ONE_EACH, 1)},
                                     layer_kinds=kinds)
    assert _task3(with_classifier) == {"conv1": [{"kind": "insert", "layer": "conv1"}], "fc": []}
    multi_classifier = layer_overview({"conv1": _layer("conv1", ONE_EACH), "fc": _layer("fc", MULTI, 1)},
                                      layer_kinds=kinds)
    assert _task3(multi_classifier) == {"conv1": [], "fc": []}  # the classifier is not a hidden layer
    hidden_fc = layer_overview({"conv1": _layer("conv1", MULTI), "fc": _layer("fc", ONE_EACH[:3], 1)},
                               layer_kinds=kinds)  # 3 neurons for 4 classes: a hidden layer that separates
    assert _task3(hidden_fc) == {"conv1": [], "fc": []}
    # a hidden FC layer that does not separate either: the finding goes to the conv layer before it,
    # where an insert can go, and names the later layer
    fc3 = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    before_fc = layer_overview({"conv1": _layer("conv1", MULTI), "fc": _layer("fc", fc3, 1)}, layer_kinds=kinds)
    assert _task3(before_fc) == {"conv1": [{"kind": "insert", "layer": "conv1"}], "fc": []}
    (finding,) = [f["finding"] for f in before_fc[0]["findings"] if f["task"] == 3]
    assert "4 of 4 kernels" in finding and "every later hidden layer analysed (fc)" in finding
    only_fc = layer_overview({"conv1": _layer("conv1", ONE_EACH), "fc": _layer("fc", fc3, 1)}, layer_kinds=kinds)
    assert _task3(only_fc) == {"conv1": [], "fc": [None]}  # no conv layer in the run: no edit, a hint

"""Kernel identity across edits (issue #25): each kernel of an edited model names its original kernel."""

import numpy as np
import pytest
import torch
from torch import nn

from aomcore.base.editing import Edit, rebuild_traced, trace_edit, trace_edits
from aomcore.base.errors import InputError
from aomcore.base.lineage import Lineage, aligned_rows, kernel_names, kinship
from aomcore.base.models import build_model

SHAPE = (1, 28, 28)


def _marked(model: nn.Module) -> nn.Module:
    """Each conv/FC kernel's bias-free weight slice set to its own index + 1 (a tag that travels with it)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                for k in range(m.weight.shape[0]):
                    m.weight[k] = k + 1
    return model


def test_remove_widen_remove_on_a_residual_model_follows_the_coupled_layers():
    # zoo:resnet8: conv1 (the stem) and layer1.0.conv2 are added together (identity shortcut), so their
    # kernels are one group: a removal or a widening of one is a removal or widening of both.
    model = build_model("zoo:resnet8", 10, SHAPE)
    edits = [Edit("remove", "layer1.0.conv2", [1, 3]), Edit("widen", "conv1", n=2),
             Edit("remove", "layer1.0.conv2", [0, 14])]
    _, lineage = trace_edits(model, edits, SHAPE)
    # by hand: 16 → drop 1, 3 → [0, 2, 4..15]; widen adds 16+, 17+ after the last; positions 0 and 14
    # are kernels 0 and 16+
    expected = [2, *range(4, 16), None]
    assert lineage.origin("conv1") == expected
    assert lineage.origin("layer1.0.conv2") == expected
    assert lineage.names("conv1") == ["k2", *(f"k{i}" for i in range(4, 16)), "k17+"]
    assert lineage.origin("layer1.0.conv1") == list(range(16))  # its inputs shrank, not its kernels
    assert lineage.origin("layer2.0.conv1") == list(range(32))
    assert lineage.origin("fc") == list(range(10))


def test_the_names_follow_the_weights():
    """A tag written into each original kernel's weights is found where the lineage says it went."""
    model = _marked(build_model("zoo:paper_mnist", 10, SHAPE))
    edits = [Edit("remove", "conv1", [0, 5, 6]), Edit("widen", "conv1", n=3), Edit("remove", "conv1", [1, 13])]
    edited, lineage = trace_edits(model, edits, SHAPE)
    weight = edited.conv1.weight.detach()
    for position, origin in enumerate(lineage.origin("conv1")):
        row = weight[position]
        if origin is None:  # a widened kernel: seeded random weights, no tag
            assert not torch.all(row == row.flatten()[0])
        else:
            assert torch.all(row == origin + 1), (position, origin)
    assert lineage.origin("conv1") == [1, 3, 4, *range(7, 16), None, None]  # 16+ dropped, 17+ and 18+ kept


def test_an_inserted_layer_has_only_new_kernels_and_the_others_keep_theirs():
    model = build_model("zoo:resnet8", 10, SHAPE)
    _, lineage = trace_edits(model, [Edit("insert", "layer2.0.conv1"), Edit("remove", "layer2.0.conv1", [5])],
                             SHAPE)
    inserted = [name for name in lineage.ids if name not in kernel_layers(model)]
    assert len(inserted) == 1
    assert lineage.origin(inserted[0]) == [None] * 32
    assert lineage.names(inserted[0])[:2] == ["k0+", "k1+"]
    assert lineage.origin("layer2.0.conv1") == [*range(5), *range(6, 32)]


def kernel_layers(model):
    from aomcore.base.editing import kernels_per_layer

    return kernels_per_layer(model, SHAPE)


def test_a_reinit_keeps_every_name_and_a_removed_name_is_never_reused():
    model = build_model("zoo:paper_mnist", 10, SHAPE)
    _, lineage = trace_edits(model, [Edit("reinit", "conv1", [2, 3])], SHAPE)
    assert lineage.origin("conv1") == list(range(16))
    _, lineage = trace_edits(model, [Edit("widen", "conv1", n=1), Edit("remove", "conv1", [16]),
                                     Edit("widen", "conv1", n=1)], SHAPE)
    assert lineage.names("conv1")[-1] == "k17+"  # 16+ was removed: the next added kernel is 17+


def test_rebuild_traced_is_rebuild_and_a_lineage_of_another_model_is_refused():
    model, lineage = rebuild_traced("zoo:paper_mnist", 10, SHAPE, [Edit("remove", "conv2", [0]).to_dict()])
    assert model.conv2.out_channels == 15 and lineage.origin("conv2") == list(range(1, 16))
    with pytest.raises(InputError, match="lineage does not fit"):
        trace_edit(build_model("zoo:paper_mnist", 10, SHAPE), Edit("remove", "conv1", [0]), SHAPE, lineage)


def test_kernel_names_fall_back_to_positions():
    lineage = Lineage.identity({"conv1": 4}).dropped("conv1", [0])
    assert kernel_names(lineage, "conv1", 3) == ["k1", "k2", "k3"]
    assert kernel_names(lineage, "conv1", 4) == ["k0", "k1", "k2", "k3"]  # maps of another shape
    assert kernel_names(None, "fc", 2) == ["k0", "k1"]


def test_keep_reasons_name_kernels_by_their_lineage():
    from aomcore.aom.overview import keep_reasons

    s, groups = np.array([1.0, 0.9, 0.8, 0.7]), np.array([0, 0, 1, 1])
    flags = {"dead": np.zeros(4, bool), "always_on": np.zeros(4, bool), "mean_occurrence": np.full(4, 0.5)}
    assert keep_reasons(s, groups, flags, [0, 2], names=["k0", "k2", "k5", "k9+"]) == [
        "kept: the most selective of group 1", "redundant: group 1 keeps k0",
        "kept: the most selective of group 2", "redundant: group 2 keeps k5"]
    assert keep_reasons(s, groups, flags, [0, 2])[3] == "redundant: group 2 keeps k2"


def test_kernel_list_is_ranges_until_a_kernel_is_renamed():
    from aomcore.base.lineage import kernel_list

    assert kernel_list(["k0", "k1", "k2", "k3"], [3, 0, 1]) == "0-1,3"
    assert kernel_list(["k0", "k2", "k4", "k9+"], [3, 1]) == "k2, k9+"


def test_kinship_of_versions():
    parents = {0: None, 1: 0, 2: 1, 3: 0, 4: None}
    assert kinship(parents, 0, 2) == "line" and kinship(parents, 2, 0) == "line" and kinship(parents, 1, 1) == "line"
    assert kinship(parents, 2, 3) == "branches"  # both from v0
    assert kinship(parents, 2, 4) == "unrelated"  # v4 was trained apart
    assert kinship({0: 1, 1: 0}, 0, 1) == "line"  # a damaged cycle ends, never loops


def test_aligned_rows_follow_a_and_put_b_new_kernels_last():
    names_a = ["k0", "k1", "k2", "k3", "k8+"]
    order_a = [3, 0, 4, 2, 1]  # A shows k3, k0, k8+, k2, k1
    names_b = ["k0", "k2", "k3", "k8+", "k9+"]  # k1 removed, k9+ added
    order_b = [4, 1, 0, 2, 3]
    # line: k3 k0 k8+ k2 in A's order (B's positions 2, 0, 3, 1), then B's new k9+
    assert aligned_rows(names_a, order_a, names_b, order_b) == [2, 0, 3, 1, 4]
    # branches: k8+ of A is another kernel than B's k8+: it goes with B's own, in B's order
    assert aligned_rows(names_a, order_a, names_b, order_b, relation="branches") == [2, 0, 1, 4, 3]
    # unrelated: B in its own order
    assert aligned_rows(names_a, order_a, names_b, order_b, relation="unrelated") == order_b

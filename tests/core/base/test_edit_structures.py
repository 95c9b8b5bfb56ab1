"""Edits through concatenations, residual adds, channels-last Linear layers, gates, grouped and
transposed convolutions: exact, or refused with a message naming the limitation (issue #15)."""

import numpy as np
import pytest
import torch

from aomcore import Edit, InputError, apply_edit, compute_maps, list_layers
from aomcore.aom.experiment import silenced
from tests.core.handmade import (
    SHAPE,
    CatNet,
    ChannelsLastMLP,
    ConcatSkip,
    GroupedSE,
    Residual,
    Shuffle,
    TransposeNet,
    calibrated,
)
from tests.core.helpers import tiny_dataset


def _out(model, seed=1):
    x = torch.randn((2, *SHAPE), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


def _model(cls):
    torch.manual_seed(0)
    return calibrated(cls())


def test_widening_the_first_branch_of_a_concat_puts_the_new_inputs_at_its_offset():
    model = _model(CatNet)
    edited = apply_edit(model, Edit("widen", "a", n=3), SHAPE)
    assert edited.a.out_channels == 11 and edited.merge.in_channels == 15
    w = edited.merge.weight  # (8, 15, 3, 3): [a's 8, 3 new zeros, b's 4]
    assert torch.equal(w[:, :8], model.merge.weight[:, :8]) and torch.equal(w[:, 11:], model.merge.weight[:, 8:])
    assert not w[:, 8:11].any()
    torch.testing.assert_close(_out(edited), _out(model), rtol=0, atol=1e-5)


def test_widening_inside_a_concat_skip_keeps_batchnorm_channels_in_place():
    model = _model(ConcatSkip)
    edited = apply_edit(model, Edit("widen", "stem", n=2), SHAPE)
    assert edited.bn.num_features == 14
    assert torch.equal(edited.bn.running_mean[10:], model.bn.running_mean[8:])
    torch.testing.assert_close(_out(edited), _out(model), rtol=0, atol=1e-5)


def test_widening_a_layer_on_a_residual_add_widens_both_producers_exactly():
    model = _model(Residual)
    edited = apply_edit(model, Edit("widen", "conv2", n=2), SHAPE)
    assert edited.conv1.out_channels == edited.conv2.out_channels == 10
    torch.testing.assert_close(_out(edited), _out(model), rtol=0, atol=1e-5)


def test_linear_on_channels_last_counts_removes_and_silences_its_last_axis():
    model = _model(ChannelsLastMLP)
    up = {la.name: la for la in list_layers(model, SHAPE)}["up"]
    assert (up.kernels, up.positions, up.channel_dim, up.tap) == (6, (16, 16), -1, "act")
    data = tiny_dataset(np.random.default_rng(0).random((6, *SHAPE)), [0, 1, 0, 1, 0, 1])
    maps = compute_maps(model, data, ["up"], device="cpu")["up"]
    assert maps.counts.shape == (6, 2, 16, 16)
    with torch.no_grad():
        acts = torch.nn.functional.gelu(model.up(model.conv(data.images).permute(0, 2, 3, 1)))  # (N, H, W, 6)
    occurs = (acts > 0).permute(0, 3, 1, 2).numpy()  # (N, 6, H, W)
    np.testing.assert_array_equal(maps.counts[:, 0], occurs[0::2].sum(0))
    np.testing.assert_array_equal(maps.counts[:, 1], occurs[1::2].sum(0))
    with pytest.raises(InputError, match=r"indices in \[0, 5\]"):
        apply_edit(model, Edit("remove", "up", (6,)), SHAPE)
    edited = apply_edit(model, Edit("remove", "up", (5,)), SHAPE)
    assert edited.up.out_features == 5 and edited.down.in_features == 5
    seen = {}
    hook = edited.down.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    with silenced(edited, "act", [1, 3], channel_dim=-1):
        _out(edited)
    hook.remove()
    x = seen["x"]  # (N, H, W, 5): what the next Linear sees
    assert x.shape[-1] == 5 and not x[..., [1, 3]].any() and x[..., [0, 2, 4]].any()


def test_the_default_read_point_stops_before_a_sigmoid_gate():
    layers = {la.name: la for la in list_layers(_model(GroupedSE), SHAPE)}
    assert layers["se.fc2"].tap == "se.fc2" and "Sigmoid gate se.gate" in layers["se.fc2"].tap_note
    assert layers["conv1"].tap == "relu1" and layers["conv1"].tap_note == ""


@pytest.mark.parametrize("edit,message", [
    (Edit("remove", "conv1", (0,)), "grouped convolutions that are not depthwise: expected groups=1"),
    (Edit("widen", "conv1", n=2), "grouped convolutions that are not depthwise"),
])
def test_grouped_convs_are_refused_before_anything_changes(edit, message):
    model = _model(GroupedSE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InputError, match=message):
        apply_edit(model, edit, SHAPE)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_channel_shuffle_is_refused_naming_it():
    with pytest.raises(InputError, match="channel shuffle"):
        apply_edit(_model(Shuffle), Edit("remove", "conv1", (0,)), SHAPE)


@pytest.mark.parametrize("edit,message", [
    (Edit("widen", "conv1", n=2), "its channels reach a transposed convolution"),
    (Edit("remove", "up", (0,)), "transposed convolutions are not supported"),
])
def test_transposed_convs_are_refused(edit, message):
    with pytest.raises(InputError, match=message):
        apply_edit(_model(TransposeNet), edit, SHAPE)

"""Structural edits: sizes change for real, functions are preserved where promised, bad edits change nothing."""

import copy

import pytest
import torch

from aomcore import (
    Edit,
    InputError,
    TrainConfig,
    apply_edit,
    build_edited,
    build_model,
    edit_and_retrain,
    frozen_modules,
    initial_version,
    kernels_per_layer,
    load_dataset,
    load_edits,
    parse_edit,
)
from aomcore.base.errors import Cancelled

MNIST = ("zoo:paper_mnist", (1, 28, 28))
RESNET = ("torchvision:resnet18", (3, 32, 32))


def _model(spec, seed=0):
    torch.manual_seed(seed)
    return build_model(spec[0], 10, spec[1]).eval()


def _out(model, shape, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.eval()(torch.randn(4, *shape))


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_remove_really_shrinks_and_keeps_the_other_kernels():
    model = _model(MNIST)
    edited = apply_edit(model, Edit("remove", "conv1", (1, 3, 5)), MNIST[1])
    assert kernels_per_layer(edited, MNIST[1])["conv1"] == 13
    assert edited.conv2.in_channels == 13 and _params(edited) < _params(model)
    keep = [i for i in range(16) if i not in (1, 3, 5)]
    assert torch.equal(edited.conv1.weight, model.conv1.weight[keep])
    assert torch.equal(edited.conv2.weight, model.conv2.weight[:, keep])
    assert kernels_per_layer(model, MNIST[1])["conv1"] == 16  # the input is untouched


def test_remove_fc_neurons_shrinks_the_next_layer():
    edited = apply_edit(_model(MNIST), Edit("remove", "fc1", (0, 1)), MNIST[1])
    assert edited.fc1.out_features == 126 and edited.fc2.in_features == 126


def test_remove_through_a_residual_block_of_resnet18():
    model = _model(RESNET)
    edited = apply_edit(model, Edit("remove", "layer1.0.conv2", (0, 1, 2)), RESNET[1])
    kernels = kernels_per_layer(edited, RESNET[1])
    # the residual stream couples the stem, every block output of layer1 and the BNs
    assert kernels["conv1"] == kernels["layer1.0.conv2"] == kernels["layer1.1.conv2"] == 61
    assert edited.layer1[0].bn2.num_features == 61 and edited.layer2[0].downsample[0].in_channels == 61
    assert _out(edited, RESNET[1]).shape == (4, 10)


@pytest.mark.parametrize("spec,layer", [(MNIST, "conv1"), (MNIST, "conv2"), (MNIST, "fc1"),
                                        (RESNET, "layer1.0.conv1"), (RESNET, "layer2.0.conv2")])
def test_widen_adds_kernels_and_leaves_the_function_unchanged(spec, layer):
    model = _model(spec)
    edited = apply_edit(model, Edit("widen", layer, n=4), spec[1])
    assert kernels_per_layer(edited, spec[1])[layer] == kernels_per_layer(model, spec[1])[layer] + 4
    torch.testing.assert_close(_out(edited, spec[1]), _out(model, spec[1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec,layer", [(MNIST, "conv1"), (MNIST, "conv2"), (RESNET, "layer1.0.conv1"),
                                        (RESNET, "conv1")])
def test_insert_is_identity_before_retraining(spec, layer):
    model = _model(spec)
    edited = apply_edit(model, Edit("insert", layer), spec[1])
    assert len(kernels_per_layer(edited, spec[1])) == len(kernels_per_layer(model, spec[1])) + 1
    torch.testing.assert_close(_out(edited, spec[1]), _out(model, spec[1]), rtol=1e-5, atol=1e-5)


def test_reinit_changes_only_the_chosen_kernels_and_is_seeded():
    model = _model(MNIST)
    a = apply_edit(model, Edit("reinit", "conv1", (2, 7), seed=3), MNIST[1])
    b = apply_edit(model, Edit("reinit", "conv1", (2, 7), seed=3), MNIST[1])
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    changed = (a.conv1.weight != model.conv1.weight).flatten(1).any(1)
    assert changed.nonzero().flatten().tolist() == [2, 7]
    assert a.conv1.out_channels == 16


@pytest.mark.parametrize("edit,message", [
    (Edit("remove", "conv1", tuple(range(16))), "cannot remove every kernel of conv1"),
    (Edit("remove", "conv1", (16,)), "kernel index out of range for conv1"),
    (Edit("remove", "conv9", (0,)), "no conv or FC layer named 'conv9'"),
    (Edit("remove", "fc2", (0,)), "cannot remove output neurons"),
    (Edit("widen", "conv1", n=0), "positive number of kernels"),
    (Edit("insert", "fc1"), "insert goes after a 2-D conv layer"),
])
def test_bad_edits_are_clear_and_change_nothing(edit, message):
    model = _model(MNIST)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InputError, match=message):
        apply_edit(model, edit, MNIST[1])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_edits_serialise_and_rebuild_the_architecture():
    edits = [parse_edit("conv1:0,1,2", "remove"), parse_edit("conv2:+3", "widen"), parse_edit("conv2", "insert")]
    assert load_edits('{"edits": ' + str([e.to_dict() for e in edits]).replace("'", '"') + "}") == edits
    model = _model(MNIST)
    edited = model
    for e in edits:
        edited = apply_edit(edited, e, MNIST[1])
    rebuilt = build_edited("zoo:paper_mnist", 10, MNIST[1], edits)
    rebuilt.load_state_dict(edited.state_dict())  # strict: same structure
    torch.testing.assert_close(_out(rebuilt, MNIST[1]), _out(edited, MNIST[1]))
    with pytest.raises(InputError, match="bad --widen value"):
        parse_edit("conv2:four", "widen")


def test_freeze_modes_follow_forward_order():
    model = _model(MNIST)
    assert frozen_modules(model, MNIST[1], "conv2", "upto") == ["conv1", "conv2"]
    assert frozen_modules(model, MNIST[1], "conv2", "before") == ["conv1"]
    assert frozen_modules(model, MNIST[1], "conv2", "edited") == ["conv2"]
    assert frozen_modules(model, MNIST[1], "conv2", "none") == []
    resnet = _model(RESNET)
    assert frozen_modules(resnet, RESNET[1], "conv1", "edited") == ["conv1", "bn1"]  # its BatchNorm goes with it


@pytest.fixture(scope="module")
def digits_v0():
    from aomcore import default_train_config, pretrained_zoo_model

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    loaded = pretrained_zoo_model("zoo:digits_net", train, default_train_config("digits"))
    return initial_version(loaded.model, test), train, test


def test_edit_and_retrain_freezes_and_versions(digits_v0):
    v0, train, test = digits_v0
    v1 = edit_and_retrain(v0, Edit("remove", "conv2", (0, 1, 2, 3)), 1, train, test,
                          config=TrainConfig(epochs=2, lr=3e-3, batch_size=64))
    assert v1.metrics["kernels"]["conv2"] == 12 and v1.metrics["params"] < v0.metrics["params"]
    assert v1.metrics["flops"] < v0.metrics["flops"]
    assert torch.equal(v1.model.conv1.weight, v0.model.conv1.weight)  # frozen (upto)
    assert torch.equal(v1.model.conv2.weight, v0.model.conv2.weight[4:])
    assert not torch.equal(v1.model.fc1.weight, v0.model.fc1.weight)  # retrained
    assert v1.metrics["accuracy"] > 0.9
    assert [e.kind for e in v1.edits] == ["remove"] and v1.id == 1 and v1.parent == v0.id


def test_widened_kernels_start_random_and_train(digits_v0):
    v0, train, test = digits_v0
    edit = Edit("widen", "conv1", n=3, seed=5)
    start = apply_edit(v0.model, edit, test.input_shape)
    k = v0.model.conv1.out_channels
    new = start.conv1.weight[k:]
    assert new.shape[0] == 3 and new.abs().min() > 0 and new.std() > 0  # random, not zero
    assert torch.count_nonzero(start.conv2.weight[:, k:]) == 0  # the function is unchanged until retraining
    v1 = edit_and_retrain(v0, edit, 1, train, test, config=TrainConfig(epochs=2, lr=3e-3, batch_size=64))
    assert "conv1" not in frozen_modules(start, test.input_shape, "conv1", "before")  # the widened layer trains
    trained = v1.model.conv1.weight[k:]
    assert (trained - new).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every new kernel moved
    assert (v1.model.conv2.weight[:, k:].abs().sum(dim=(0, 2, 3)) > 0).all()  # and the next layer reads it
    assert v1.metrics["kernels"]["conv1"] == k + 3 and v1.metrics["accuracy"] > 0.9


def test_cancel_and_failure_leave_the_parent_intact(digits_v0):
    import threading

    v0, train, test = digits_v0
    before = copy.deepcopy(v0.model.state_dict())
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        edit_and_retrain(v0, Edit("widen", "conv1", n=2), 1, train, test, cancel=cancel)

    def explode(metrics):
        if metrics["step"] == 3:
            raise RuntimeError("simulated failure mid-training")

    with pytest.raises(RuntimeError, match="simulated"):
        edit_and_retrain(v0, Edit("reinit", "conv1", (0,)), 1, train, test, progress=explode)
    assert all(torch.equal(before[k], v) for k, v in v0.model.state_dict().items())

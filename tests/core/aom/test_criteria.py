"""Pruning criteria beside selectivity: each score against a literal implementation, silencing against
structural removal, the Torch-Pruning importance inside MetaPruner, and the ``criteria`` command."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from aomcore import (
    CRITERIA,
    Edit,
    InputError,
    MapsImportance,
    TrainConfig,
    Workspace,
    apoz,
    apply_edit,
    build_model,
    compare_criteria,
    compute_maps,
    evaluate,
    get_module,
    kernel_flags,
    kernel_scores,
    load_dataset,
    pretrained_zoo_model,
    silenced,
    suggest_keep,
    summarize_criteria,
    top_kernels,
    train,
)
from aomcore.aom.criteria import _out_channels
from aomcore.aom.ordering import KernelOrdering, default_n_groups
from aomcore.aom.retrain import flops_per_image
from tests.conftest import DEVICES, REPO

from ..helpers import literal_aom, literal_csm, literal_selectivity, pixel_model, tiny_dataset

# --------------------------------------------------------------------------------------
# A tiny model with hand-set weights: conv (3 kernels of 2×2) → BatchNorm → ReLU → FC
# --------------------------------------------------------------------------------------

WEIGHTS = [[[1.0, -2.0], [0.0, 3.0]],  # L1 6, Σw² 14
           [[0.5, 0.5], [0.5, 0.5]],   # L1 2, Σw² 1
           [[-1.0, 0.0], [0.0, 0.0]]]  # L1 1, Σw² 1
GAMMA = [0.5, -2.0, 1.0]


def bn_model(bn_after_relu: bool = False) -> nn.Sequential:
    conv, bn, fc = nn.Conv2d(1, 3, 2), nn.BatchNorm2d(3), nn.Linear(12, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(WEIGHTS).view(3, 1, 2, 2))
        conv.bias.copy_(torch.tensor([10.0, -10.0, 5.0]))  # a bias the weight criteria must ignore
        bn.weight.copy_(torch.tensor(GAMMA))
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
        fc.weight.copy_(torch.linspace(-1, 1, 24).view(2, 12))
        fc.bias.zero_()
    order = [("conv", conv), ("relu", nn.ReLU()), ("bn", bn)] if bn_after_relu else \
        [("conv", conv), ("bn", bn), ("relu", nn.ReLU())]
    return nn.Sequential(OrderedDict([*order, ("flatten", nn.Flatten()), ("fc", fc)])).eval()


IMAGES = torch.tensor([[[0.0, 1.0, 0.5], [1.0, 0.2, 0.0], [0.3, 0.0, 1.0]],
                       [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                       [[0.2, 0.4, 0.6], [0.8, 1.0, 0.1], [0.0, 0.5, 0.9]],
                       [[0.9, 0.1, 0.0], [0.4, 0.4, 0.4], [1.0, 0.0, 0.7]]])
DATA = tiny_dataset(IMAGES.numpy(), [0, 1, 1, 0])


def test_l1_l2_are_the_kernels_own_weights_without_bias():
    model = bn_model()
    np.testing.assert_array_equal(kernel_scores("l1", model=model, layer="conv", input_shape=(1, 3, 3)), [6, 2, 1])
    np.testing.assert_array_equal(kernel_scores("l2", model=model, layer="conv", data=DATA), [14, 1, 1])


def test_bn_scale_is_the_following_batchnorms_abs_gamma():
    np.testing.assert_array_equal(kernel_scores("bn_scale", model=bn_model(), layer="conv", data=DATA), [0.5, 2, 1])
    with pytest.raises(InputError, match="no BatchNorm scale follows conv"):  # a BN after the ReLU is not "directly"
        kernel_scores("bn_scale", model=bn_model(bn_after_relu=True), layer="conv", data=DATA)
    with pytest.raises(InputError, match="no BatchNorm scale follows conv"):
        kernel_scores("bn_scale", model=pixel_model(), layer="conv", input_shape=(1, 2, 2))


@pytest.mark.parametrize("device", DEVICES)
def test_taylor_equals_an_explicit_autograd_computation(device):
    model = bn_model()
    model.train()  # the original keeps its mode and gets no gradient
    before = copy.deepcopy(model.state_dict())
    scores = kernel_scores("taylor", model=model, layer="conv", data=DATA, device=device)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics unchanged

    literal = copy.deepcopy(model).to(device).eval()
    x, y = next(DATA.batches(len(DATA), device))  # the batch (256 > 4 images) is the whole set
    loss = F.cross_entropy(literal(x), y)
    (grad,) = torch.autograd.grad(loss, literal.conv.weight)
    expected = [abs(float((literal.conv.weight[k] * grad[k]).sum().detach())) for k in range(3)]
    np.testing.assert_allclose(scores, expected, rtol=1e-5 if device == "cpu" else 1e-3)  # cuDNN may use TF32
    assert min(expected) > 0


def test_group_magnitude_is_torch_prunings_default_over_the_coupled_tensors():
    model = bn_model()
    scores = kernel_scores("group_magnitude", model=model, layer="conv", data=DATA)
    w = torch.tensor(WEIGHTS)
    fc = model.fc.weight.detach()  # (2, 12): channel k owns columns 4k..4k+3 after the flatten
    per_tensor = [(w ** 2).sum((1, 2)), torch.tensor(GAMMA) ** 2,
                  torch.stack([(fc[:, 4 * k : 4 * k + 4] ** 2).sum() for k in range(3)])]
    mean = sum(per_tensor) / 3
    np.testing.assert_allclose(scores, (mean / mean.mean()).numpy(), rtol=1e-6)


@pytest.mark.parametrize("name,importance", [("fpgm", tp.importance.FPGMImportance),
                                             ("lamp", tp.importance.LAMPImportance)])
def test_fpgm_and_lamp_are_torch_prunings_on_the_layers_group(name, importance):
    model = bn_model()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 1, 3, 3))
    group = graph.get_pruning_group(model.conv, tp.prune_conv_out_channels, idxs=[0, 1, 2])
    np.testing.assert_allclose(kernel_scores(name, model=model, layer="conv", data=DATA),
                               importance()(group).numpy(), rtol=1e-6)


# --------------------------------------------------------------------------------------
# From the maps: pixel model (k0 = pixel, k1 = 0.5 - pixel, k2 = 0, then ReLU), 2×2 images
# --------------------------------------------------------------------------------------

# class 0: one image; class 1: three. Occurring (image, position) pairs, counted by hand:
#   k0: 1 + (4 + 0 + 2) = 7 of 16; k1: 3 + (0 + 4 + 2) = 9 of 16; k2: 0 of 16.
PIXELS = tiny_dataset([[[1, 0], [0, 0]], [[1, 1], [1, 1]], [[0, 0], [0, 0]], [[1, 1], [0, 0]]], [0, 1, 1, 1])


def test_apoz_from_hand_counted_zeros_weighs_classes_by_size():
    maps = compute_maps(pixel_model(), PIXELS, ["conv"])["conv"]
    np.testing.assert_allclose(apoz(maps), [9 / 16, 7 / 16, 1.0])
    np.testing.assert_allclose(kernel_scores("apoz", maps=maps), [7 / 16, 9 / 16, 0.0])
    # the mean of the per-class AOMs weighs both classes the same: k0 (1/4 + 6/12) / 2 = 3/8, not 7/16
    np.testing.assert_allclose(kernel_scores("mean_occurrence", maps=maps), [3 / 8, 5 / 8, 0.0])


def test_pooled_maps_give_the_same_apoz_and_mean_occurrence():
    maps = compute_maps(pixel_model(), PIXELS, ["conv"], max_resolution=1)["conv"]
    assert maps.counts.shape[2:] == (1, 1) and maps.cell_area.tolist() == [[4]]
    np.testing.assert_allclose(apoz(maps), [9 / 16, 7 / 16, 1.0])
    np.testing.assert_allclose(kernel_scores("mean_occurrence", maps=maps), [3 / 8, 5 / 8, 0.0])


def test_apoz_refuses_maps_counted_at_another_threshold():
    maps = compute_maps(pixel_model(), PIXELS, ["conv"], threshold=0.25)["conv"]
    with pytest.raises(InputError, match="APoZ counts zeros"):
        kernel_scores("apoz", maps=maps)


def test_selectivity_is_eq4_of_a_literal_implementation():
    model, maps = pixel_model(), compute_maps(pixel_model(), PIXELS, ["conv"])["conv"]
    with torch.inference_mode():
        acts = model(next(PIXELS.batches(4))[0]).numpy()
    expected = literal_selectivity(literal_csm(literal_aom(acts, PIXELS.labels.numpy(), 2)))
    np.testing.assert_allclose(kernel_scores("selectivity", maps=maps), expected)


def test_random_is_seeded():
    maps = compute_maps(pixel_model(), PIXELS, ["conv"])["conv"]
    np.testing.assert_array_equal(kernel_scores("random", maps=maps, seed=3), np.random.default_rng(3).random(3))
    np.testing.assert_array_equal(kernel_scores("random", model=bn_model(), layer="conv", seed=3),
                                  np.random.default_rng(3).random(3))
    assert not np.array_equal(kernel_scores("random", maps=maps, seed=3), kernel_scores("random", maps=maps, seed=4))


def test_every_criterion_is_registered_with_its_source():
    assert list(CRITERIA) == ["selectivity", "mean_occurrence", "apoz", "keep_rule", "l1", "l2", "bn_scale", "taylor",
                              "random", "group_magnitude", "fpgm", "lamp"]
    assert all(c.name == n and c.source and c.needs in ("maps", "model", "data", "none") for n, c in CRITERIA.items())


def test_scores_say_what_is_missing():
    with pytest.raises(InputError, match="unknown criterion"):
        kernel_scores("snip", model=bn_model(), layer="conv")
    with pytest.raises(InputError, match="needs maps"):
        kernel_scores("apoz", model=bn_model(), layer="conv")
    with pytest.raises(InputError, match="needs data"):
        kernel_scores("taylor", model=bn_model(), layer="conv")
    with pytest.raises(InputError, match="not one"):
        kernel_scores("l1", model=bn_model(), layer="bn", data=DATA)


def test_compare_criteria_on_a_layer_with_batchnorm_includes_its_scale():
    model = bn_model()
    maps = compute_maps(model, DATA, ["conv"])
    assert maps["conv"].tap == "relu"
    result = compare_criteria(model, maps, "conv", 2, DATA, train_set=DATA, device="cpu")
    assert list(result["criteria"]) == ["selectivity", "keep_rule", "apoz", "l1", "l2", "bn_scale", "taylor",
                                        "random"]
    assert result["criteria"]["bn_scale"]["kept"] == [1, 2] and result["criteria"]["l1"]["kept"] == [0, 1]
    x = next(DATA.batches(len(DATA)))[0]
    for r in result["criteria"].values():  # the BatchNorm channel goes with the kernel: still removal
        dropped = tuple(sorted({0, 1, 2} - set(r["kept"])))
        removed = apply_edit(model, Edit("remove", "conv", dropped), (1, 3, 3))
        assert r["accuracy"] == evaluate(removed, DATA).accuracy
        with torch.inference_mode(), silenced(model, "relu", list(dropped)):
            torch.testing.assert_close(model(x), removed(x))
    plain = nn.Sequential(OrderedDict((n, m) for n, m in bn_model().named_children() if n != "bn"))
    without = compare_criteria(plain, compute_maps(plain, DATA, ["conv"]), "conv", 1, DATA)
    assert list(without["criteria"]) == ["selectivity", "keep_rule", "apoz", "l1", "l2", "random"]


def test_top_kernels_ties_keep_the_lower_index_and_nan_ranks_last():
    assert top_kernels(np.array([1.0, 3.0, 3.0, np.nan, 2.0]), 2) == [1, 2]
    assert top_kernels(np.array([np.nan, 0.0, 0.0]), 2) == [1, 2]


# --------------------------------------------------------------------------------------
# On digits_net, trained briefly
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    train_set, test_set = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = pretrained_zoo_model("zoo:digits_net", train_set, TrainConfig(epochs=4, lr=3e-3, batch_size=64)).model
    maps = compute_maps(model, train_set, ["conv1", "conv2", "fc1"])
    return model, maps, train_set, test_set


def test_keep_rule_ranks_the_rules_kernels_first(digits):
    _, maps, _, _ = digits
    m = maps["conv2"]
    groups = KernelOrdering(n_groups=default_n_groups(m.odm, m.aom)).fit(m.odm).labels_
    rule = suggest_keep(m.selectivity, groups, kernel_flags(m.aom))
    scores = kernel_scores("keep_rule", maps=m)
    assert top_kernels(scores, len(rule)) == rule
    assert scores[rule].min() >= 1 > np.delete(scores, rule).max()


@pytest.mark.parametrize("layer,keep", [("conv1", 4), ("conv2", 6)])
def test_silencing_gives_the_accuracy_of_structural_removal(digits, layer, keep):
    model, maps, train_set, test_set = digits
    before = copy.deepcopy(model.state_dict())
    result = compare_criteria(model, maps, layer, keep, test_set, user_keep=list(range(keep)), train_set=train_set,
                              device="cpu")
    assert result["layer"] == layer and result["keep"] == keep
    assert list(result["criteria"]) == ["user", "selectivity", "keep_rule", "apoz", "l1", "l2", "taylor", "random"]
    assert result["criteria"]["user"]["kept"] == list(range(keep))
    k = maps[layer].num_kernels
    for name, r in result["criteria"].items():
        assert len(r["kept"]) == keep and r["kept"] == sorted(r["kept"])
        removed = apply_edit(model, Edit("remove", layer, tuple(sorted(set(range(k)) - set(r["kept"])))),
                             test_set.input_shape)
        truth = evaluate(removed, test_set, device="cpu")
        assert r["accuracy"] == truth.accuracy, name
        np.testing.assert_array_equal(r["per_class"], truth.per_class)
    assert result["silencing"]["equal"] is True and result["silencing"]["difference"] < 1e-4
    assert "not removal" not in summarize_criteria(result)
    assert all(torch.equal(before[n], v) for n, v in model.state_dict().items())
    assert all(not m._forward_hooks for m in model.modules())
    json.dumps(result, allow_nan=False)


def test_compare_criteria_refuses_bad_keep_counts_and_selections(digits):
    model, maps, _, test_set = digits
    for keep in (0, 16, 17, True, 2.0):
        with pytest.raises(InputError, match="bad number of kernels to keep in conv2"):
            compare_criteria(model, maps, "conv2", keep, test_set)
    with pytest.raises(InputError, match="another number of kernels"):
        compare_criteria(model, maps, "conv2", 3, test_set, user_keep=[0, 1])
    with pytest.raises(InputError, match="out of range"):
        compare_criteria(model, maps, "conv2", 2, test_set, user_keep=[0, 16])
    with pytest.raises(InputError, match="no maps of conv9"):
        compare_criteria(model, maps, "conv9", 2, test_set)
    with pytest.raises(InputError, match="needs data"):  # named explicitly, Taylor needs the train split
        compare_criteria(model, maps, "conv2", 2, test_set, criteria=("taylor",))


@pytest.mark.parametrize("criterion", ["selectivity", "apoz", "keep_rule"])
def test_maps_importance_prunes_the_lowest_scores_in_metapruner(digits, criterion):
    model, maps, _, _ = digits
    pruned = copy.deepcopy(model)
    importance = MapsImportance(pruned, maps, criterion)
    pruner = tp.pruner.MetaPruner(pruned, torch.zeros(1, 1, 8, 8), importance=importance, pruning_ratio=0.5,
                                  ignored_layers=[pruned.fc2])
    pruner.step()
    removed = {name: idxs for name, is_out, idxs in pruner.pruning_history() if is_out}
    for layer, k in (("conv1", 8), ("conv2", 16), ("fc1", 64)):
        assert getattr(pruned, layer).weight.shape[0] == k // 2
        kept = sorted(set(range(k)) - set(removed[layer]))
        scores = kernel_scores(criterion, maps=maps[layer])
        assert len(kept) == k // 2 and scores[kept].min() >= np.delete(scores, kept).max(), layer
    assert pruned.fc2.out_features == 10 and "fc2" not in removed
    kept = sorted(set(range(8)) - set(removed["conv1"]))  # conv1's inputs are whole: its rows are the old ones
    np.testing.assert_array_equal(pruned.conv1.weight.detach(), model.conv1.weight.detach()[kept])


def test_maps_importance_refuses_a_second_step_on_stale_maps(digits):
    model, maps, _, _ = digits
    pruned = copy.deepcopy(model)
    pruner = tp.pruner.MetaPruner(pruned, torch.zeros(1, 1, 8, 8), importance=MapsImportance(pruned, {
        "conv2": maps["conv2"]}), pruning_ratio=0.5, iterative_steps=2, ignored_layers=[pruned.fc2])
    pruner.step()
    assert pruned.conv2.out_channels == 12 and pruned.conv1.out_channels == 8  # conv1 has no maps: kept whole
    with pytest.raises(InputError, match="the maps of conv2 describe 16 kernels"):
        pruner.step()
    with pytest.raises(InputError, match="MapsImportance ranks by a maps criterion"):
        MapsImportance(model, maps, "l1")


def test_criteria_command_writes_the_comparison(tmp_path):
    ws, weights = tmp_path / "ws", tmp_path / "d.pt"

    def run(*args, code=0):
        out = subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == code, out.stderr
        return out

    run("train", "--workspace", str(ws), "--epochs", "2", "--snapshots", "0", "--out", str(weights))
    out = run("criteria", "--workspace", str(ws), "--layer", "conv1", "--keep", "3", "--user", "0,2,4",
              "--out", str(tmp_path / "criteria.json"))
    result = json.loads((tmp_path / "criteria.json").read_text())
    assert set(result) == {"layer", "keep", "criteria", "silencing"}
    assert result["layer"] == "conv1" and result["keep"] == 3 and result["silencing"]["equal"] is True
    assert list(result["criteria"]) == ["user", "selectivity", "keep_rule", "apoz", "l1", "l2", "taylor", "random"]
    assert result["criteria"]["user"]["kept"] == [0, 2, 4]
    for r in result["criteria"].values():
        assert len(r["kept"]) == 3 and set(r["kept"]) <= set(range(8))
        assert 0 <= r["accuracy"] <= 1 and len(r["per_class"]) == 10
    assert "user" in out.stdout and "taylor" in out.stdout
    recorded = Workspace(ws).results("criteria")
    assert len(recorded) == 1 and recorded[0]["result"] == result and recorded[0]["tap"] == "relu1"

    # without a workspace: the same weights and splits give the same comparison
    run("criteria", "--arch", "zoo:digits_net", "--weights", str(weights), "--dataset", "digits", "--layer", "conv1",
        "--keep", "3", "--user", "0,2,4", "--out", str(tmp_path / "direct.json"))
    assert json.loads((tmp_path / "direct.json").read_text()) == result
    bad = run("criteria", "--workspace", str(ws), "--layer", "conv1", "--keep", "8", "--out", str(tmp_path / "x.json"),
              code=2)
    assert bad.stderr.strip().count("\n") == 0 and "bad number of kernels to keep in conv1" in bad.stderr

    out = run("criteria", "--workspace", str(ws), "--layer", "conv1", "--keep", "3", "--retrain-epochs", "1",
              "--out", str(tmp_path / "retrained.json"))
    retrained = json.loads((tmp_path / "retrained.json").read_text())
    assert retrained["retrain_epochs"] == 1 and retrained["freeze"] == "auto"
    for name, r in retrained["criteria"].items():
        assert r["accuracy"] == result["criteria"][name]["accuracy"]  # the same silenced numbers
        t = r["retrained"]
        assert t["epochs"] == 1 and 0 <= t["accuracy"] <= 1 and len(t["per_class"]) == 10
        assert t["params"] < Workspace(ws).versions()[0]["metrics"]["params"]
    assert "retrained" in out.stdout and "After removing them and retraining 1 epoch(s)" in out.stdout
    assert len(Workspace(ws).results("criteria")) == 2  # kept beside the silenced-only comparison
    bad = run("criteria", "--workspace", str(ws), "--layer", "conv1", "--keep", "3", "--retrain-epochs", "-1",
              "--out", str(tmp_path / "x.json"), code=2)
    assert "expected an integer in [0, 10000]" in bad.stderr


def test_retrained_entries_equal_removing_and_retraining_by_hand(digits):
    model, maps, train_set, test_set = digits
    config = TrainConfig(epochs=1, lr=3e-3, batch_size=64, seed=3)
    result = compare_criteria(model, maps, "conv2", 6, test_set, train_set=train_set, device="cpu",
                              criteria=("l1", "random"), retrain_epochs=1, config=TrainConfig(epochs=7, lr=3e-3,
                                                                                                batch_size=64, seed=3))
    assert result["retrain_epochs"] == 1 and result["freeze"] == "auto"
    for name, r in result["criteria"].items():
        dropped = tuple(sorted(set(range(16)) - set(r["kept"])))
        edited = apply_edit(model, Edit("remove", "conv2", dropped), test_set.input_shape)
        # the paper's freezing after a removal: the layers up to the edited one
        train(edited, train_set, config, device="cpu", trainable=lambda n: n.rpartition(".")[0] not in FROZEN)
        truth = evaluate(edited, test_set, device="cpu")
        t = r["retrained"]
        assert t["epochs"] == 1 and t["accuracy"] == truth.accuracy, name
        np.testing.assert_array_equal(t["per_class"], truth.per_class)
        assert t["params"] == sum(p.numel() for p in edited.parameters())
        assert t["flops"] == flops_per_image(edited, test_set.input_shape)
        assert torch.equal(edited.conv1.weight, model.conv1.weight)  # frozen, as in the paper
    assert "After removing them and retraining 1 epoch(s)" in summarize_criteria(result)
    for bad in (-1, 1.5, True, 10**6):
        with pytest.raises(InputError, match=r"bad number of retraining epochs.*\[0, 10000\]"):
            compare_criteria(model, maps, "conv2", 6, test_set, train_set=train_set, retrain_epochs=bad)
    with pytest.raises(InputError, match="retraining needs the training split"):
        compare_criteria(model, maps, "conv2", 6, test_set, retrain_epochs=1)


FROZEN = {"conv1", "conv2"}


@pytest.fixture(scope="module")
def resnet8_digits():
    train_set, test_set = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = pretrained_zoo_model("zoo:resnet8", train_set, TrainConfig(epochs=3, lr=3e-3, batch_size=64)).model
    return model, train_set, test_set


def test_silencing_is_removal_inside_a_residual_block_and_not_through_its_shortcut(resnet8_digits):
    model, train_set, test_set = resnet8_digits
    x = torch.stack([test_set[i][0] for i in range(64)])
    maps = compute_maps(model, train_set, ["layer2.0.conv1", "conv1"])
    result = compare_criteria(model, maps, "layer2.0.conv1", 16, test_set, device="cpu", criteria=("l1", "random"))
    for r in result["criteria"].values():  # the block's first conv: nothing else is coupled to its channels
        dropped = tuple(sorted(set(range(32)) - set(r["kept"])))
        removed = apply_edit(model, Edit("remove", "layer2.0.conv1", dropped), test_set.input_shape)
        truth = evaluate(removed, test_set, device="cpu")
        assert r["accuracy"] == truth.accuracy
        np.testing.assert_array_equal(r["per_class"], truth.per_class)
        with torch.inference_mode(), silenced(model, "layer2.0.bn1", list(dropped)):
            torch.testing.assert_close(model(x), removed(x), rtol=1e-5, atol=1e-5)
    # The stem's channels are added to layer1's output: removing them removes those too; silencing
    # zeroes the stem's only, as the docstring says, and the two differ.
    removed = apply_edit(model, Edit("remove", "conv1", tuple(range(8))), test_set.input_shape)
    assert removed.layer1[0].conv2.out_channels == 8
    with torch.inference_mode(), silenced(model, "relu", list(range(8))):
        assert not torch.allclose(model(x), removed(x), atol=1e-4)
    assert result["silencing"]["equal"] is True
    # ... and the comparison says so for the stem, in its result and in its reading.
    stem = compare_criteria(model, maps, "conv1", 8, test_set, device="cpu", criteria=("l1",))
    assert stem["silencing"]["equal"] is False and stem["silencing"]["difference"] > 1e-3
    assert "Here silencing is not removal" in summarize_criteria(stem)


@pytest.mark.mnist
def test_silencing_gives_the_accuracy_of_removal_on_paper_mnist(data_root):
    train_set, test_set = load_dataset("mnist", "train", data_root), load_dataset("mnist", "test", data_root)
    model = pretrained_zoo_model("zoo:paper_mnist", train_set, TrainConfig(epochs=1)).model
    maps = compute_maps(model, train_set, ["conv1", "conv2"])
    for layer, keep in (("conv1", 4), ("conv2", 8)):
        result = compare_criteria(model, maps, layer, keep, test_set, device="cpu",
                                  criteria=("selectivity", "apoz", "l1", "random"))
        for name, r in result["criteria"].items():
            dropped = tuple(sorted(set(range(16)) - set(r["kept"])))
            truth = evaluate(apply_edit(model, Edit("remove", layer, dropped), test_set.input_shape), test_set,
                             device="cpu")
            assert r["accuracy"] == truth.accuracy, (layer, name)  # all 10,000 test images
            np.testing.assert_array_equal(r["per_class"], truth.per_class)


@pytest.mark.parametrize("arch,shape,layers,ignored", [
    ("zoo:paper_mnist", (1, 28, 28), ["conv1", "conv2", "fc1"], ["fc2"]),
    ("torchvision:resnet18", (3, 32, 32), ["layer1.0.conv1", "layer2.1.conv1", "layer4.0.conv1"], ["fc"]),
])
def test_maps_importance_prunes_paper_mnist_and_resnet18_to_the_ratio(arch, shape, layers, ignored):
    """MetaPruner with MapsImportance at ratio 0.5: each mapped layer (a block's first conv in resnet18: its
    channels are its own) keeps exactly its half with the highest s(k); unmapped layers stay whole."""
    torch.manual_seed(0)
    model = build_model(arch, 10, shape).eval()
    gen = torch.Generator().manual_seed(1)
    data = tiny_dataset(torch.rand(40, *shape, generator=gen).numpy() * 2 - 0.5, [i % 10 for i in range(40)])
    maps = compute_maps(model, data, layers)
    pruned = copy.deepcopy(model)
    pruner = tp.pruner.MetaPruner(pruned, torch.zeros(1, *shape), importance=MapsImportance(pruned, maps),
                                  pruning_ratio=0.5, ignored_layers=[get_module(pruned, n) for n in ignored])
    pruner.step()
    removed = {name: idxs for name, is_out, idxs in pruner.pruning_history() if is_out}
    modules = dict(pruned.named_modules())
    for layer in layers:
        k = maps[layer].num_kernels
        kept = sorted(set(range(k)) - set(removed[layer]))
        scores = kernel_scores("selectivity", maps=maps[layer])
        assert len(kept) == k // 2 == _out_channels(modules[layer]), layer
        assert scores[kept].min() >= np.delete(scores, kept).max(), layer
    assert set(removed) == set(layers)  # nothing without maps was pruned
    with torch.inference_mode():
        assert pruned(torch.zeros(2, *shape)).shape == (2, 10)


class _Detached(nn.Module):
    """conv → (detached) → fc: the loss has a gradient, but none reaches the conv."""

    def __init__(self, no_grad: bool = False):
        super().__init__()
        self.conv, self.fc, self.no_grad = nn.Conv2d(1, 3, 2), nn.Linear(12, 2), no_grad

    def forward(self, x):
        if self.no_grad:
            with torch.no_grad():
                return self.fc(F.relu(self.conv(x)).flatten(1))
        return self.fc(F.relu(self.conv(x)).detach().flatten(1))


@pytest.mark.parametrize("no_grad", [False, True])
def test_taylor_on_a_model_that_gives_no_gradient_says_so(no_grad):
    model = _Detached(no_grad)
    with pytest.raises(InputError, match="cannot trace conv in this model.*no torch.no_grad or detach"):
        kernel_scores("taylor", model=model, layer="conv", data=DATA)
    for name in ("group_magnitude", "fpgm", "lamp"):  # the other traced criteria: the same message
        with pytest.raises(InputError, match="cannot trace conv in this model"):
            kernel_scores(name, model=model, layer="conv", input_shape=(1, 3, 3))

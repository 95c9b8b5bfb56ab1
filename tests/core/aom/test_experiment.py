"""The selectivity experiment (Sec. V-C) on a hand-weighted model with exact accuracies."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from aomcore import compute_maps, selectivity_experiment, silenced, summarize_experiment

from ..helpers import tiny_dataset


def two_neuron_model() -> nn.Sequential:
    """x (1x1x2) -> hidden = relu(x) (h0 fires for class 0, h1 for class 1) -> logits = h + (0, 0.5)."""
    hidden, out = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():
        hidden.weight.copy_(torch.eye(2))
        hidden.bias.zero_()
        out.weight.copy_(torch.eye(2))
        out.bias.copy_(torch.tensor([0.0, 0.5]))
    return nn.Sequential(OrderedDict([("flatten", nn.Flatten()), ("hidden", hidden), ("relu", nn.ReLU()),
                                      ("out", out)]))


# class 0: [1, 0] (logits 1 vs 0.5: right) and [0.3, 0] (0.3 vs 0.5: wrong)
# class 1: [0, 1] and [0, 0.2] (right; still right with h1 silenced, thanks to the bias)
DATA = tiny_dataset([[[1.0, 0.0]], [[0.3, 0.0]], [[0.0, 1.0]], [[0.0, 0.2]]], [0, 0, 1, 1])


def test_silencing_zeroes_only_the_chosen_kernels():
    model = two_neuron_model()
    x = torch.tensor([[[[1.0, 1.0]]]])
    with silenced(model, "relu", [0]):
        assert model(x).tolist() == [[0.0, 1.5]]
    assert model(x).tolist() == [[1.0, 1.5]]  # hook gone
    assert all(not m._forward_hooks for m in model.modules())


def test_experiment_exact():
    model = two_neuron_model()
    maps = compute_maps(model, DATA, ["hidden"])["hidden"]
    assert maps.tap == "relu"
    np.testing.assert_array_equal(maps.class_selectivity, [[1, -1], [-1, 1]])
    rows = selectivity_experiment(model, maps, DATA)
    assert rows == [
        {"class": "0", "n_selective": 1, "n_not_selective": 1, "n_images": 2,
         "acc_all": 0.5, "acc_selective_kept": 0.5, "acc_selective_removed": 0.0},
        {"class": "1", "n_selective": 1, "n_not_selective": 1, "n_images": 2,
         "acc_all": 1.0, "acc_selective_kept": 1.0, "acc_selective_removed": 1.0},
    ]
    assert summarize_experiment(rows).startswith("Removing the selective kernels costs more accuracy than keeping "
                                                 "only them for 1 of 2 classes")
    assert all(not m._forward_hooks for m in model.modules())


def test_experiment_refuses_other_classes():
    from aomcore import InputError

    maps = compute_maps(two_neuron_model(), DATA, ["hidden"])["hidden"]
    other = tiny_dataset([[[1.0, 0.0]], [[0.0, 1.0]]], [0, 1], classes=["a", "b"])
    with pytest.raises(InputError, match="classes differ"):
        selectivity_experiment(two_neuron_model(), maps, other)

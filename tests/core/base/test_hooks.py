"""Hooks never outlive their context, the model's mode is restored, the model is never moved."""

import numpy as np
import pytest
import torch
from torch import nn

from aomcore import InputError, compute_maps, forward_hooks

from ..helpers import pixel_model, tiny_dataset


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_hooks_removed_after_exception_in_body():
    model = pixel_model()
    with pytest.raises(RuntimeError, match="boom"):
        with forward_hooks(model, {"conv": lambda out: None, "relu": lambda out: None}):
            assert _hook_count(model) == 2
            raise RuntimeError("boom")
    assert _hook_count(model) == 0


def test_hooks_removed_when_a_name_is_unknown():
    model = pixel_model()
    with pytest.raises(InputError, match="no layer named 'nope'"):
        with forward_hooks(model, {"conv": lambda out: None, "nope": lambda out: None}):
            pass
    assert _hook_count(model) == 0


class Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.relu = nn.ReLU()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 2:  # the dry pass and the first batch succeed
            raise RuntimeError("exploded mid-pass")
        return self.relu(self.conv(x))


def test_compute_maps_cleans_up_after_a_failing_forward():
    model = Exploding().train()
    ds = tiny_dataset([[[1.0]]] * 4, [0, 1, 0, 1])
    with pytest.raises(RuntimeError, match="exploded"):
        compute_maps(model, ds, ["conv"], batch_size=1)
    assert _hook_count(model) == 0
    assert model.training


def test_concurrent_maps_on_one_shared_model_do_not_interfere():
    import threading

    from aomcore import build_model, load_dataset

    torch.manual_seed(0)
    model = build_model("zoo:digits_net", 10, (1, 8, 8)).eval()
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    alone = {"train": compute_maps(model, train, batch_size=32), "test": compute_maps(model, test, batch_size=32)}
    together = {}

    def run(name, ds):
        together[name] = compute_maps(model, ds, batch_size=32)

    threads = [threading.Thread(target=run, args=item) for item in (("train", train), ("test", test))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for split in ("train", "test"):
        for layer in ("conv1", "conv2"):
            np.testing.assert_array_equal(together[split][layer].counts, alone[split][layer].counts)
    assert _hook_count(model) == 0 and not model.training


def test_observing_hook_does_not_change_outputs():
    model = pixel_model()
    x = torch.rand(3, 1, 2, 2)
    before = model(x)
    with forward_hooks(model, {"conv": lambda out: None}):
        during = model(x)
    assert torch.equal(before, during)


def test_silencing_hook_replaces_output():
    model = pixel_model()
    with forward_hooks(model, {"relu": lambda out: out * 0}):
        assert model(torch.rand(2, 1, 2, 2)).abs().sum() == 0

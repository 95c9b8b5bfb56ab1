"""The maps cache key names the architecture and every option; bad options fail before any work."""

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from aomcore import DiskCache, InputError, cached_maps, weights_digest
from aomcore.base.loaded import LoadedModel
from tests.core.helpers import tiny_dataset


def _net(act: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 4, 3, padding=1)), ("act", act),
                                      ("flat", nn.Flatten()), ("fc", nn.Linear(4 * 4 * 4, 2))])).eval()


def _data():
    return tiny_dataset(np.random.default_rng(0).standard_normal((8, 4, 4)), [0, 1] * 4)


def test_same_weights_in_another_architecture_is_another_entry(tmp_path):
    cache, data = DiskCache(tmp_path), _data()
    relu, tanh = _net(nn.ReLU()), _net(nn.Tanh())  # identical state_dicts, other functions
    assert weights_digest(relu) == weights_digest(tanh)
    a, hit_a = cached_maps(LoadedModel("a.py:ReluNet", relu, weights_digest(relu), "t"), data, ["conv"],
                           device="cpu", cache=cache)
    b, hit_b = cached_maps(LoadedModel("a.py:TanhNet", tanh, weights_digest(tanh), "t"), data, ["conv"],
                           device="cpu", cache=cache)
    assert (hit_a, hit_b) == (False, False)
    assert a["conv"].tap == "act" and b["conv"].tap == "conv"  # tanh is a gate: read before it
    # same spec string, other module tree (e.g. an edited FILE.py): still a miss
    _, hit_c = cached_maps(LoadedModel("a.py:ReluNet", tanh, weights_digest(tanh), "t"), data, ["conv"],
                           device="cpu", cache=cache)
    assert not hit_c
    _, hit_again = cached_maps(LoadedModel("a.py:ReluNet", copy.deepcopy(relu), weights_digest(relu), "t"), data,
                               ["conv"], device="cpu", cache=cache)
    assert hit_again


@pytest.mark.parametrize("options,message", [
    ({"max_resolution": 0}, "bad max_resolution: expected an integer >= 1"),
    ({"max_resolution": 2.5}, "bad max_resolution"),
    ({"batch_size": 0}, "bad batch size: expected an integer >= 1, found 0"),
    ({"threshold": float("nan")}, "threshold must be finite"),
    ({"threshold": "abc"}, "threshold must be a number"),
    ({"autocast": "fp8"}, "unknown autocast dtype"),
])
def test_bad_options_fail_before_computing_and_cache_nothing(tmp_path, options, message):
    cache, net = DiskCache(tmp_path), _net(nn.ReLU())
    loaded = LoadedModel("a.py:ReluNet", net, weights_digest(net), "t")
    with pytest.raises(InputError, match=message):
        cached_maps(loaded, _data(), ["conv"], device="cpu", cache=cache,
                    progress=lambda *_: pytest.fail("computed with a bad option"), **options)
    assert not list(tmp_path.rglob("*.npz"))

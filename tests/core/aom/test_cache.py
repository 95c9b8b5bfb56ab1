"""The disk cache: hits across calls, never shared between models, damage detected."""

import numpy as np

from aomcore import DiskCache, build_model, cached_maps, load_dataset, weights_digest
from aomcore.base.loaded import LoadedModel


def _loaded(seed):
    import torch

    torch.manual_seed(seed)
    model = build_model("zoo:digits_net", 10, (1, 8, 8)).eval()
    return LoadedModel("zoo:digits_net", model, weights_digest(model), "test")


def test_hit_miss_and_keying(tmp_path):
    cache = DiskCache(tmp_path)
    ds = load_dataset("digits", "test")
    first, hit1 = cached_maps(_loaded(0), ds, cache=cache)
    second, hit2 = cached_maps(_loaded(0), ds, cache=cache)
    other, hit3 = cached_maps(_loaded(1), ds, cache=cache)
    assert (hit1, hit2, hit3) == (False, True, False)
    np.testing.assert_array_equal(first["conv1"].counts, second["conv1"].counts)
    assert not np.array_equal(first["conv2"].counts, other["conv2"].counts)
    _, hit4 = cached_maps(_loaded(0), ds, threshold=0.1, cache=cache)
    assert not hit4


def test_corrupted_entry_is_recomputed_not_served(tmp_path):
    cache = DiskCache(tmp_path)
    ds = load_dataset("digits", "test")
    good, _ = cached_maps(_loaded(0), ds, cache=cache)
    (entry,) = (tmp_path / "maps").glob("*.npz")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    again, hit = cached_maps(_loaded(0), ds, cache=cache)
    assert not hit
    np.testing.assert_array_equal(again["conv1"].counts, good["conv1"].counts)
    entry.write_bytes(entry.read_bytes()[:100])  # half-written
    _, hit = cached_maps(_loaded(0), ds, cache=cache)
    assert not hit

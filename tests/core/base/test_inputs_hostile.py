"""Hostile inputs (issue #22): weights paths that are not files, numbers out of range, ambiguous pixels, exiting models.

Each test closes a mechanism: the weights reader refuses every non-regular file before
opening it and sizes every file before reading it; every number has one range
(:mod:`aomcore.base.limits`); integer pixels whose range contradicts their dtype say so; a
model's own code cannot end the process.
"""

import os
import threading

import numpy as np
import pytest
import torch
from torch import nn

import aomcore
from aomcore import InputError, list_layers, load_dataset
from aomcore.base import limits
from aomcore.base.editing import Edit, load_edits, parse_edit
from aomcore.base.models import check_finite, load_checkpoint, load_state_dict


def _returns_within(fn, seconds: float = 1.0):
    """``fn()``'s outcome (value or exception), asserting that it came within ``seconds`` (a daemon thread)."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds}s"
    return box


# --------------------------------------------------------------------------------------
# Weights are read as regular files of a known size and dtype
# --------------------------------------------------------------------------------------


def _fifo(tmp_path):
    path = tmp_path / "w.pt"
    os.mkfifo(path)
    return path


def _socket(tmp_path):
    import socket

    path = tmp_path / "w.pt"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return path


@pytest.mark.parametrize("make,kind", [
    (lambda tmp: tmp, "a folder"),
    (_fifo, "a FIFO (named pipe)"),
    (lambda tmp: "/dev/zero", "a character device"),
    (_socket, "a socket"),
], ids=["folder", "fifo", "dev-zero", "socket"])
@pytest.mark.parametrize("reader", [load_checkpoint, load_state_dict], ids=["load_checkpoint", "load_state_dict"])
def test_weights_that_are_not_a_regular_file_are_named_and_never_block(tmp_path, make, kind, reader):
    path = make(tmp_path)
    outcome = _returns_within(lambda: reader(path))
    assert isinstance(outcome.get("error"), InputError), outcome
    assert str(outcome["error"]) == (f"the weights file is {kind}: expected a regular file: a state_dict (.pt or "
                                     f".safetensors), found {path}")


def test_a_sparse_file_larger_than_memory_is_refused_before_reading(tmp_path):
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    path = tmp_path / "huge.pt"
    with open(path, "wb") as f:
        f.truncate(memory + 2**30)  # sparse: no disk is used
    assert os.stat(path).st_blocks == 0
    outcome = _returns_within(lambda: load_checkpoint(path), seconds=5.0)
    error = outcome.get("error")
    assert isinstance(error, InputError), outcome
    assert f"the weights file huge.pt ({memory + 2**30:,} bytes) is too large to allocate" in str(error)


def test_the_memory_limit_counts_the_file_twice(tmp_path, monkeypatch):
    """The bytes and the tensors decoded from them are held at once: a file over half the limit is refused."""
    monkeypatch.setenv("AOMSCOPE_JOB_MEMORY_GB", str(1.5 * 2**20 / 2**30))  # 1.5 MiB
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2**18)}, path)  # 1 MiB of floats
    with pytest.raises(InputError, match=r"is too large to allocate: .* a job may use .*found it needs"):
        load_checkpoint(path)
    torch.save({"w": torch.zeros(2**16)}, path)  # 256 KiB
    assert load_checkpoint(path)[0]["w"].shape == (2**16,)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2, torch.uint16],
                         ids=["float8_e4m3fn", "float8_e5m2", "uint16"])
def test_unsupported_dtypes_are_named(tmp_path, suffix, dtype):
    from safetensors.torch import save_file

    path = tmp_path / f"w{suffix}"
    sd = {"fc.weight": torch.zeros(2, 3).to(dtype), "fc.bias": torch.zeros(2)}
    save_file(sd, str(path)) if suffix == ".safetensors" else torch.save(sd, path)
    with pytest.raises(InputError) as info:
        load_checkpoint(path)
    name = str(dtype).removeprefix("torch.")
    assert str(info.value) == ("state_dict holds tensors of an unsupported dtype: expected float16, bfloat16, float32 "
                               "or float64 weights (convert float8 and other low-precision formats with .float() "
                               f"before saving), found 1 entries, e.g. fc.weight ({name})")


def test_check_finite_names_float8_nan_instead_of_crashing():
    w = torch.tensor([1.0, float("nan"), 2.0]).to(torch.float8_e5m2)
    with pytest.raises(InputError, match=r"found w \(1 values\)"):
        check_finite({"w": w, "b": torch.zeros(1, dtype=torch.float8_e4m3fn)})
    check_finite({"b": torch.zeros(1, dtype=torch.float8_e4m3fn)})


# --------------------------------------------------------------------------------------
# Numbers: one range each
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("parse,good,bad", [
    (limits.seed, ["0", str(2**32 - 1)], ["-1", str(2**32), str(2**63), "1e9", "abc", ""]),
    (limits.bins, ["1", "1000"], ["0", "1001", "1000000000"]),
    (limits.positions, ["1", "all"], ["0", "-3", "ALL"]),
    (limits.positions_count, ["1"], ["0", "all"]),
    (limits.snapshots, ["0", "1000"], ["-3", "1001"]),
    (limits.max_resolution, ["1"], ["0"]),
    (limits.batch_size, ["1", "65536"], ["0", "65537"]),
    (limits.epochs, ["1"], ["0", "-1"]),
])
def test_each_cli_number_type_takes_its_range_and_nothing_else(parse, good, bad):
    import argparse

    for text in good:
        assert parse(text) == (text if text == "all" else int(text))
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer in \["):
            parse(text)


def test_the_ranges_are_constants_a_widget_can_use():
    assert (limits.SEED_MIN, limits.SEED_MAX) == (0, 2**32 - 1)
    assert (limits.BINS_MIN, limits.BINS_MAX) == (1, 1000)
    assert limits.POSITIONS_MIN == 1 and limits.SNAPSHOTS_MIN == 0 and limits.MAX_RESOLUTION_MIN == 1
    assert limits.BATCH_SIZE_MIN == 1 and limits.EPOCHS_MIN == 1
    np.random.RandomState(limits.SEED_MAX)  # every generator the project seeds accepts the bounds
    np.random.default_rng(limits.SEED_MAX)
    torch.Generator().manual_seed(limits.SEED_MAX)


@pytest.mark.parametrize("record,message", [
    ({"kind": "reinit", "layer": "conv1", "kernels": [0], "seed": -1}, "bad edit field 'seed': expected an integer "
     "in [0, 4294967295], found -1"),
    ({"kind": "widen", "layer": "conv1", "n": 2, "seed": 2**63}, f"found {2**63}"),
    ({"kind": "remove", "layer": "conv1", "kernels": []}, "an empty remove edit"),
    ({"kind": "reinit", "layer": "conv1", "kernels": []}, "an empty reinit edit"),
    ({"kind": "insert", "layer": "conv1", "name": "a.b"}, "bad edit field 'name': expected a Python identifier"),
    ({"kind": "insert", "layer": "conv1", "name": "../x"}, "found '../x'"),
])
def test_edit_lists_are_checked_against_the_same_ranges(record, message):
    import json

    with pytest.raises(InputError, match=None) as info:
        load_edits(json.dumps([record]))
    assert message in str(info.value)
    with pytest.raises(InputError):
        Edit.from_dict(record)


def test_parse_edit_validates_its_seed():
    with pytest.raises(InputError, match=r"bad edit field 'seed'"):
        parse_edit("conv1:+2", "widen", seed=-5)
    assert parse_edit("conv1:+2", "widen", seed=limits.SEED_MAX).seed == limits.SEED_MAX


# --------------------------------------------------------------------------------------
# Ambiguous pixels say how they were read
# --------------------------------------------------------------------------------------


def test_uint16_pixels_within_0_255_are_read_as_8_bit_with_a_note(tmp_path):
    x = np.arange(4 * 8 * 8).reshape(4, 8, 8).astype(np.uint16) % 256
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", "test")
    assert any(n.startswith("x holds uint16 values in [0, 255]: read as 8-bit pixels") for n in ds.notes), ds.notes
    images = torch.stack([ds[i][0] for i in range(4)])
    assert torch.equal(images, torch.from_numpy(x[:, None].astype(np.float32)) / 255)


def test_uint16_pixels_above_255_are_16_bit_without_a_note(tmp_path):
    x = np.full((4, 8, 8), 65535, np.uint16)
    x[:, 0, 0] = 0
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", "test")
    assert not ds.notes
    assert ds[0][0].max().item() == 1.0 and ds[0][0].min().item() == 0.0


def test_16_bit_png_folders_within_0_255_say_so(tmp_path):
    from PIL import Image

    for i, cls in enumerate(("a", "b")):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((8, 8), 100 + i, np.uint16)).save(tmp_path / cls / "0.png")
    ds = load_dataset(f"imagefolder:{tmp_path}", "test")
    assert any("16-bit images with values in [100, 101]: read as 8-bit pixels" in n for n in ds.notes), ds.notes
    assert ds[0][0].flatten()[0].item() == pytest.approx(100 / 255)


# --------------------------------------------------------------------------------------
# A model's own code cannot end the process
# --------------------------------------------------------------------------------------


class _Exits(nn.Module):
    def __init__(self, exc):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.exc = exc

    def forward(self, x):
        self.conv(x)
        raise self.exc


@pytest.mark.parametrize("exc", [SystemExit(0), SystemExit(), GeneratorExit()], ids=["exit0", "exit", "genexit"])
def test_an_exiting_forward_is_an_input_error_naming_the_model(exc):
    with pytest.raises(InputError) as info:
        list_layers(_Exits(exc), (1, 8, 8))
    assert str(info.value).startswith("the forward pass of _Exits raised an exception: expected a forward that runs")
    assert type(exc).__name__ in str(info.value)


def test_ctrl_c_in_forward_stays_an_interrupt():
    with pytest.raises(KeyboardInterrupt):
        list_layers(_Exits(KeyboardInterrupt()), (1, 8, 8))


# --- result .npz files (maps, DeepEyes, projections): one reader, every failure names the file -----------
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


LOADERS = {"maps": "load_maps_npz", "deepeyes": "load_deepeyes_npz", "embed": "load_embedding_npz"}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", ["garbage", "pickled", "no_meta", "meta_list", "meta_not_json", "folder", "fifo",
                                  "truncated"])
def test_result_npz_files_are_refused_naming_the_file(tmp_path, loader, case):
    load = getattr(aomcore, LOADERS[loader])
    path = tmp_path / f"hostile_{case}.npz"
    good = {"classes": np.array(["a"]), "class_sizes": np.array([1]), "points": np.zeros((1, 2))}
    if case == "garbage":
        path.write_bytes(b"not a zip at all")
    elif case == "pickled":
        np.savez(path, meta=np.array('{"layers": []}'), classes=np.array([{"x": 1}], dtype=object),
                 class_sizes=np.array([1]), points=np.array([{"x": 1}], dtype=object))
    elif case == "no_meta":
        _npz(path, **good)
    elif case == "meta_list":
        _npz(path, meta=np.array("[1, 2]"), **good)
    elif case == "meta_not_json":
        _npz(path, meta=np.array("{layers:"), **good)
    elif case == "folder":
        path.mkdir()
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "truncated":
        _npz(tmp_path / "whole.npz", meta=np.array('{"layers": []}'), **good)
        path.write_bytes((tmp_path / "whole.npz").read_bytes()[:-40])
    outcome = _returns_within(lambda: load(path), seconds=5.0)  # a FIFO must not block
    error = outcome.get("error")
    assert isinstance(error, InputError), outcome
    assert path.name in str(error) and "\n" not in str(error), str(error)


def test_result_npz_declared_size_is_checked_before_unpacking(tmp_path, monkeypatch):
    """A 64 MiB array of zeros packs to a few hundred KiB: its declared size is checked against the limit."""
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, meta=np.array('{"layers": []}'), points=np.zeros(2**23))
    assert path.stat().st_size < 2**20
    monkeypatch.setenv("AOMSCOPE_JOB_MEMORY_GB", str(16 * 2**20 / 2**30))  # 16 MiB
    with pytest.raises(InputError, match="bomb.npz .* bytes unpacked"):
        aomcore.load_embedding_npz(path)


def test_a_maps_file_whose_layer_lacks_counts_names_it(tmp_path):
    path = _npz(tmp_path / "m.npz", meta=np.array('{"layers": ["conv1"]}'), classes=np.array(["a"]),
                class_sizes=np.array([1]))
    with pytest.raises(InputError, match=r"m.npz.*'conv1/counts'"):
        aomcore.load_maps_npz(path)

"""Weights load safely and mismatches are spelled out."""

import io
import pickle

import pytest
import torch

from aomcore import (
    InputError,
    apply_state_dict,
    architecture_classes,
    build_model,
    load_model,
    load_state_dict,
    save_state_dict,
    weights_digest,
)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_roundtrip(tmp_path, suffix):
    model = build_model("zoo:digits_net", 10, (1, 8, 8))
    path = save_state_dict(model, tmp_path / f"w{suffix}")
    loaded = load_model("zoo:digits_net", path, 10, (1, 8, 8))
    assert loaded.digest == weights_digest(model)
    again = load_model("zoo:digits_net", path.read_bytes(), 10, (1, 8, 8), weights_name=path.name)
    assert again.digest == loaded.digest


def test_digest_changes_with_one_weight():
    model = build_model("zoo:digits_net", 10, (1, 8, 8))
    before = weights_digest(model)
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] += 1e-6
    assert weights_digest(model) != before


def test_mismatch_lists_missing_unexpected_and_misshaped():
    sd = build_model("zoo:digits_net", 10, (1, 8, 8)).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["fc2.bias"]
    sd["conv1.weight"] = torch.zeros(4, 1, 3, 3)
    with pytest.raises(InputError) as err:
        apply_state_dict(build_model("zoo:digits_net", 10, (1, 8, 8)), sd)
    msg = str(err.value)
    assert "missing: fc2.bias" in msg and "unexpected: extra.weight" in msg
    assert "conv1.weight (4, 1, 3, 3) vs (8, 1, 3, 3)" in msg


class Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payload_never_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    target = tmp_path / "pwned.txt"
    buf = io.BytesIO()
    torch.save({"w": Payload(str(target))}, buf)
    with pytest.raises(InputError, match="could not read weights"):
        load_state_dict(buf.getvalue(), name="evil.pt")
    assert not target.exists()
    raw = pickle.dumps(Payload(str(target)))
    with pytest.raises(InputError):
        load_state_dict(raw, name="evil.pt")
    assert not target.exists()


@pytest.mark.parametrize("name,data,match", [
    ("empty.pt", b"", "weights file is empty"),
    ("junk.pt", b"\x00\x01garbage" * 10, "could not read weights"),
    ("junk.safetensors", b"\x00\x01garbage" * 10, "could not read safetensors"),
])
def test_garbage_files(name, data, match):
    with pytest.raises(InputError, match=match):
        load_state_dict(data, name=name)


def test_nan_weights_are_named():
    sd = build_model("zoo:digits_net", 10, (1, 8, 8)).state_dict()
    sd["fc1.weight"][0, 0] = float("nan")
    with pytest.raises(InputError, match="fc1.weight"):
        apply_state_dict(build_model("zoo:digits_net", 10, (1, 8, 8)), sd)


def test_architecture_file(tmp_path):
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 2, 3)\n"
        "        self.fc = nn.Linear(2 * 6 * 6, num_classes)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.conv(x).relu().flatten(1))\n")
    model = build_model(f"{tmp_path / 'net.py'}:Net", 3, (1, 8, 8))
    assert model.fc.out_features == 3
    with pytest.raises(InputError, match="no nn.Module class 'Nope'"):
        build_model(f"{tmp_path / 'net.py'}:Nope", 3, (1, 8, 8))
    with pytest.raises(InputError, match="unknown architecture spec"):
        build_model("resnet", 3, (1, 8, 8))


def test_architecture_classes_are_read_without_running_the_file(tmp_path):
    marker = tmp_path / "ran"
    source = (f"import torch\nfrom torch import nn\nopen({str(marker)!r}, 'w').write('x')\n"
              "class Config:\n    pass\n"
              "class A(torch.nn.Module):\n    pass\n"
              "class B(nn.Module):\n    pass\n"
              "def helper():\n    class Inner(nn.Module):\n        pass\n")
    assert architecture_classes(source.encode()) == ["A", "B", "Config"]  # modules first, file order
    assert not marker.exists()
    for bad, message in ((b"\xff\xfe", "not a Python file"), (b"class (", "not a Python file"),
                         (b"x = 1\n", "no class in the architecture file")):
        with pytest.raises(InputError, match=message):
            architecture_classes(bad)

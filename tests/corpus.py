"""Bad inputs shared by the dashboard and CLI corpus tests (all written to a temp folder)."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aomcore import build_model, load_dataset, weights_digest


class Payload:
    """Unpickling this creates a file: a stand-in for code execution."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


FIVE_OUT = '''import torch.nn as nn
class FiveOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)
    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))
class Needs28(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)
    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))
'''


def make_corpus(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    f = {}
    torch.manual_seed(0)
    good = build_model("zoo:digits_net", 10, (1, 8, 8)).state_dict()
    f["good"] = root / "good.pt"
    torch.save(good, f["good"])
    f["empty"] = root / "empty.pt"
    f["empty"].write_bytes(b"")
    buf = io.BytesIO()
    torch.save(good, buf)
    f["truncated"] = root / "truncated.pt"
    f["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    rng = np.random.default_rng(0)
    f["random_pt"] = root / "random.pt"
    f["random_pt"].write_bytes(rng.bytes(4096))
    f["random_st"] = root / "random.safetensors"
    f["random_st"].write_bytes(rng.bytes(4096))
    f["other_arch"] = root / "other_arch.pt"
    torch.save(build_model("zoo:paper_mnist", 10, (1, 28, 28)).state_dict(), f["other_arch"])
    nan = {k: v.clone() for k, v in good.items()}
    nan["fc1.weight"][3, 4] = float("nan")
    f["nan_weights"] = root / "nan_weights.pt"
    torch.save(nan, f["nan_weights"])
    f["pwned"] = root / "pwned.txt"
    buf = io.BytesIO()
    torch.save({"conv1.weight": Payload(str(f["pwned"]))}, buf)
    f["payload"] = root / "payload.pt"
    f["payload"].write_bytes(buf.getvalue())
    f["arch_file"] = root / "archs.py"
    f["arch_file"].write_text(FIVE_OUT)
    namespace: dict = {}
    exec(FIVE_OUT, namespace)  # noqa: S102 - the test's own code
    f["five_out"] = root / "five_out.pt"
    torch.save(namespace["FiveOut"]().state_dict(), f["five_out"])
    f["needs28"] = root / "needs28.pt"
    torch.save(namespace["Needs28"]().state_dict(), f["needs28"])
    f["resnet"] = root / "resnet18.pt"
    torch.save(build_model("torchvision:resnet18", 10, (3, 32, 32)).state_dict(), f["resnet"])

    x = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 10
    f["npz_no_y"] = root / "no_y.npz"
    np.savez(f["npz_no_y"], x=x)
    f["npz_range"] = root / "range.npz"
    np.savez(f["npz_range"], x=x, y=y + 5, classes=np.array([str(i) for i in range(10)]))
    f["npz_float_y"] = root / "float_y.npz"
    np.savez(f["npz_float_y"], x=x, y=y + 0.5)
    xf = x.astype(np.float32) / 255
    xf[7, 2, 3] = np.inf
    f["npz_nan"] = root / "nan_x.npz"
    np.savez(f["npz_nan"], x=xf, y=y)
    f["npz_one_class"] = root / "one_class.npz"
    np.savez(f["npz_one_class"], x=x, y=np.zeros(40, dtype=np.int64), classes=np.array(["only"]))
    f["npz_empty_class"] = root / "empty_class.npz"
    np.savez(f["npz_empty_class"], x=x, y=np.arange(40) % 2, classes=np.array(["a", "b", "c"]))

    f["imagefolder"] = root / "images"
    for cls in ("cat", "dog"):
        (f["imagefolder"] / cls).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(f["imagefolder"] / cls / f"{i}.png")
    (f["imagefolder"] / "dog" / "corrupt.png").write_bytes(b"\x89PNG not really")

    f["allowed"] = root / "allowed"
    (f["allowed"] / "data").mkdir(parents=True, exist_ok=True)
    f["secret"] = root / "secret"
    f["secret"].mkdir(exist_ok=True)
    f["escape_link"] = f["allowed"] / "escape"
    if not f["escape_link"].exists():
        os.symlink(f["secret"], f["escape_link"])
    f["edits_bad"] = root / "edits.json"
    f["edits_bad"].write_text("{not json")

    # issue #15: values that used to be cast, truncated or used silently
    for key, dtype in (("int_weights", torch.int64), ("bool_weights", torch.bool),
                       ("complex_weights", torch.complex64)):
        sd = dict(good)
        sd["fc1.weight"] = good["fc1.weight"].to(dtype)
        f[key] = root / f"{key}.pt"
        torch.save(sd, f[key])
    buf = io.BytesIO()
    torch.save(good, buf)
    f["bad_crc"] = root / "bad_crc.pt"
    f["bad_crc"].write_bytes(_flip_member_byte(buf.getvalue(), "data/0"))
    for key, text in (("edits_float_index", '[{"kind": "remove", "layer": "conv1", "kernels": [1.7]}]'),
                      ("edits_string_n", '[{"kind": "widen", "layer": "conv1", "n": "5"}]'),
                      ("edits_string_kernels", '[{"kind": "remove", "layer": "conv1", "kernels": "abc"}]'),
                      ("edits_nested", "[" * 100_000 + "]" * 100_000)):
        f[key] = root / f"{key}.json"
        f[key].write_text(text)
    f["int_keys"] = root / "int_keys.pt"
    torch.save({i: v for i, v in enumerate(good.values())}, f["int_keys"])
    # issue #15, data side: arrays that used to be misread, and sizes that cannot be allocated
    f["npy_as_npz"] = root / "single.npz"
    np.save(open(f["npy_as_npz"], "wb"), x)
    f["npz_int8"] = root / "int8.npz"
    np.savez(f["npz_int8"], x=(x.astype(np.int16) - 128).astype(np.int8), y=y)
    f["npz_u64"] = root / "u64.npz"
    np.savez(f["npz_u64"], x=x, y=np.where(y == 9, 2**63 + 5, y).astype(np.uint64),
             classes=np.array([str(i) for i in range(10)]))
    f["npz_0d_classes"] = root / "classes_0d.npz"
    np.savez(f["npz_0d_classes"], x=x, y=y, classes=np.array("0123456789"))
    f["huge_arch"] = root / "huge.py"
    f["huge_arch"].write_text("import torch.nn as nn\nclass Huge(nn.Module):\n    def __init__(self):\n"
                              "        super().__init__()\n        self.fc = nn.Linear(200000, 200000)\n"
                              "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    digest = weights_digest(good)
    sizes = load_dataset("digits", "train").class_sizes().astype(np.int64)
    for key, tap, change in (("maps_negative", "relu1", -1), ("maps_too_many", "relu1", 10**6),
                             ("maps_other_tap", "relu2", 0)):
        counts = np.zeros((8, 10, 8, 8), np.int64)
        counts[2, 3, 4, 5] = change
        meta = {"model_digest": digest, "layers": ["conv1"], "taps": {"conv1": tap}, "threshold": 0.0}
        f[key] = root / f"{key}.npz"
        np.savez(f[key], **{"conv1/counts": counts, "class_sizes": sizes,
                            "classes": np.array([str(i) for i in range(10)]), "meta": np.array(json.dumps(meta))})
    return f


def _flip_member_byte(data: bytes, suffix: str) -> bytes:
    """Corrupt one byte inside a zip member's stored data (its CRC-32 no longer matches)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(suffix))
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    at = info.header_offset + 30 + name_len + extra_len + 5
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]

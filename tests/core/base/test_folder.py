"""Image folders streamed from disk: exact counts against a literal pass, workers, identity, bad files."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from aomcore import InputError, Preprocessing, load_dataset
from aomcore.aom import compute_maps
from aomcore.base.transforms import build, output_shape, parse_transform


def _mixed_folder(root, n_per_class=7, seed=0):
    """Three classes of images of mixed sizes and modes: L, RGB, RGBA (binary alpha), P, CMYK JPEG."""
    rng = np.random.default_rng(seed)
    for c in ("ant", "bee", "cow"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            h, w = (int(v) for v in rng.integers(20, 48, 2))
            kind = ("L", "RGB", "RGBA", "P", "CMYK", "RGB")[i % 6]
            if kind == "L":
                Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(root / c / f"{i}.png")
            elif kind == "RGBA":
                a = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
                a[..., 3] = np.where(rng.random((h, w)) < 0.3, 0, 255)
                Image.fromarray(a).save(root / c / f"{i}.png")
            elif kind == "P":
                rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(rgb).quantize(16).save(root / c / f"{i}.png")
            elif kind == "CMYK":
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert("CMYK").save(
                    root / c / f"{i}.jpg", quality=90)
            else:
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / c / f"{i}.jpg", quality=90)
    return root


def _literal(path):
    """PIL decode → RGB as a person sees it (transparency on white) → uint8 (C, H, W) tensor."""
    im = Image.open(path)
    if im.mode == "RGBA":
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im.convert("RGB"), mask=im.getchannel("A"))  # binary alpha: the same as compositing
        im = background
    return TF.pil_to_tensor(im.convert("RGB"))


class _Net(nn.Module):
    def __init__(self, size):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * (size - 2) ** 2, 3)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


@pytest.mark.parametrize("spec,size", [("CenterCrop(16)", 16), ("Resize(20), CenterCrop(16)", 16)])
def test_counts_equal_a_literal_pass_with_any_number_of_workers(tmp_path, spec, size):
    folder = _mixed_folder(tmp_path / "f")
    model = _Net(size).eval()
    steps = v2.Compose([getattr(v2, name)(int(arg[:-1])) for name, arg in
                        (s.strip().split("(") for s in spec.split(","))])
    classes = sorted(os.listdir(folder))
    expected = torch.zeros(4, 3, size - 2, size - 2, dtype=torch.int64)
    for label, c in enumerate(classes):
        for file in sorted(os.listdir(folder / c)):
            x = steps(_literal(folder / c / file)).float().div(255)[None]
            expected[:, label] += (model.relu(model.conv(x))[0] > 0).to(torch.int64)
    for workers in (0, 1, 2):
        data = load_dataset(f"imagefolder:{folder}", "train", preprocessing=Preprocessing(transform=spec),
                            workers=workers)
        assert data.input_shape == (3, size, size) and data.classes == classes
        maps = compute_maps(model, data, ["conv"], batch_size=5)["conv"]
        assert torch.equal(torch.as_tensor(maps.counts).to(torch.int64), expected), workers
        assert maps.class_sizes.tolist() == [7, 7, 7]
    assert any("composited on white" in n for n in data.notes) and any("CMYK" in n for n in data.notes)
    assert any("grayscale and RGB images mixed: 6 grayscale" in n for n in data.notes)


def test_identity_follows_the_index_and_the_preprocessing(tmp_path):
    folder = _mixed_folder(tmp_path / "f", n_per_class=3)
    prep = Preprocessing(transform="Resize(20), CenterCrop(16)")
    first = load_dataset(f"imagefolder:{folder}", "test", preprocessing=prep)
    assert load_dataset(f"imagefolder:{folder}", "test", preprocessing=prep).digest == first.digest
    assert first.identity()["preprocessing"]["transform"] == "Resize(20), CenterCrop(16)"
    other = load_dataset(f"imagefolder:{folder}", "test", preprocessing=Preprocessing(transform="CenterCrop(16)"))
    assert other.identity() != first.identity()
    keys = {first.digest}
    file = folder / "ant" / "1.jpg"
    os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns + 10**9))  # touched
    keys.add(load_dataset(f"imagefolder:{folder}", "test", preprocessing=prep).digest)
    Image.new("RGB", (30, 30)).save(folder / "bee" / "new.png")  # added
    keys.add(load_dataset(f"imagefolder:{folder}", "test", preprocessing=prep).digest)
    (folder / "cow" / "0.png").unlink()  # removed
    keys.add(load_dataset(f"imagefolder:{folder}", "test", preprocessing=prep).digest)
    assert len(keys) == 4


def test_bad_files_stop_the_pass_naming_the_file(tmp_path):
    folder = _mixed_folder(tmp_path / "f", n_per_class=3)
    prep = Preprocessing(transform="Resize(20), CenterCrop(16)")
    data = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=2)
    good = (folder / "bee" / "1.jpg").read_bytes()
    (folder / "bee" / "1.jpg").write_bytes(good[: len(good) // 2])  # truncated after the index was made
    with pytest.raises(InputError, match=r"an image changed since the folder was indexed.*bee/1.jpg"):
        for _ in data.batches(4):
            pass
    data = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=2)  # indexed as truncated
    with pytest.raises(InputError, match=r"unreadable image file.*bee/1.jpg"):
        for _ in data.batches(4):
            pass
    (folder / "cow" / "zero.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"unreadable image file.*cow/zero.png"):
        load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep)
    (folder / "cow" / "zero.png").unlink()
    with pytest.raises(InputError, match=r"images differ in size.*add a transform"):
        load_dataset(f"imagefolder:{folder}", "train")
    with pytest.raises(InputError, match=r"the crop is larger than the image.*found 30×30 for"):
        load_dataset(f"imagefolder:{folder}", "train",
                     preprocessing=Preprocessing(transform="Resize(25), CenterCrop(30)"))


def test_skip_unreadable_leaves_the_bad_files_out_of_every_count_and_names_them(tmp_path):
    """#21: a zero-byte file, a truncated JPEG and a text file named .png among good images. Without
    the option the load or the pass stops naming the file; with it they are left out, named in the
    notes, and the maps equal a literal pass over the good files alone, from 0 and 2 workers."""
    folder = _mixed_folder(tmp_path / "f", n_per_class=5)
    good = (folder / "bee" / "1.jpg").read_bytes()
    (folder / "bee" / "1.jpg").write_bytes(good[: len(good) // 2])  # truncated: its header still reads
    (folder / "cow" / "zero.png").write_bytes(b"")
    (folder / "ant" / "notes.png").write_text("not an image")
    bad = {"bee/1.jpg", "cow/zero.png", "ant/notes.png"}
    spec, size = "Resize(20), CenterCrop(16)", 16
    with pytest.raises(InputError, match=r"unreadable image file.*ant/notes.png"):
        load_dataset(f"imagefolder:{folder}", "train", preprocessing=Preprocessing(transform=spec))
    model = _Net(size).eval()
    steps = v2.Compose([v2.Resize(20), v2.CenterCrop(16)])
    classes = sorted(os.listdir(folder))
    expected = torch.zeros(4, 3, size - 2, size - 2, dtype=torch.int64)
    for label, c in enumerate(classes):
        for file in sorted(os.listdir(folder / c)):
            if f"{c}/{file}" not in bad:
                x = steps(_literal(folder / c / file)).float().div(255)[None]
                expected[:, label] += (model.relu(model.conv(x))[0] > 0).to(torch.int64)
    prep = Preprocessing(transform=spec, skip_unreadable=True)
    for workers in (0, 2):
        data = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=workers)
        assert len(data) == 14 and data.labels.bincount().tolist() == [5, 4, 5]
        (note,) = [n for n in data.notes if "unreadable" in n]
        assert note.startswith("3 unreadable image(s) left out") and all(name in note for name in bad)
        maps = compute_maps(model, data, ["conv"], batch_size=4)["conv"]
        assert torch.equal(torch.as_tensor(maps.counts).to(torch.int64), expected), workers
        assert maps.class_sizes.tolist() == [5, 4, 5]
    # the identity covers what was left out; with nothing to leave out it is the plain folder's
    plain = tmp_path / "plain"
    _mixed_folder(plain, n_per_class=3)
    assert load_dataset(f"imagefolder:{plain}", "train", preprocessing=prep).digest == \
        load_dataset(f"imagefolder:{plain}", "train", preprocessing=Preprocessing(transform=spec)).digest
    assert data.digest != load_dataset(f"imagefolder:{plain}", "train", preprocessing=prep).digest
    assert Preprocessing.from_key(prep.key()) == prep and "skip_unreadable" not in Preprocessing().to_dict()
    for file in folder.glob("*/*"):
        file.write_bytes(b"")
    with pytest.raises(InputError, match=r"no readable image.*all 17 files unreadable"):
        load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep)


def test_transform_specs_are_literal_allow_listed_and_sized_like_torchvision():
    assert str(Preprocessing(transform=" Resize( 40 ),CenterCrop(size=[32, 32])").transform) == \
        "Resize(40), CenterCrop((32, 32))"
    for bad, message in (("__import__('os').system('x')", "each transform step is a call"),
                         ("Resize(open('f'))", "arguments must be literal"), ("RandomCrop(8)", "not allowed"),
                         ("Normalize([0.5], [0.5])", "--mean/--std"), ("Resize(0)", "size out of range"),
                         ("Resize(8", "not a list of calls"), ("Grayscale(2)", "1 or 3 channels")):
        with pytest.raises(InputError, match=message):
            Preprocessing(transform=bad)
    preset = Preprocessing(transform="torchvision:ResNet18_Weights.IMAGENET1K_V1")
    assert preset.transform == "Resize((256,)), CenterCrop((224,))" and preset.mean == (0.485, 0.456, 0.406)
    with pytest.raises(InputError, match="the preset sets its own mean"):
        Preprocessing(mean=(0.5,), std=(0.5,), transform="torchvision:ResNet18_Weights.IMAGENET1K_V1")
    rng = random.Random(0)
    for spec in ("Resize(40)", "Resize(17, max_size=30)", "Resize([30, 20])", "Resize(33), CenterCrop(32)",
                 "Pad(3)", "Pad([1, 2])", "Pad([1, 2, 3, 4])", "Grayscale(3)", "Grayscale()"):
        steps = parse_transform(spec)
        for _ in range(20):
            shape = (3, rng.randint(33, 120), rng.randint(33, 120))
            assert tuple(build(steps)(torch.zeros(shape, dtype=torch.uint8)).shape) == output_shape(steps, shape), spec


def test_in_memory_datasets_take_the_same_transform():
    plain = load_dataset("digits", "test")
    padded = load_dataset("digits", "test", preprocessing=Preprocessing(transform="Pad(2), Resize(16)"))
    assert padded.input_shape == (1, 16, 16)
    x, _ = next(padded.batches(10))
    expected = v2.Compose([v2.Pad(2), v2.Resize(16)])(plain.images[:10]).float().div(16)
    assert torch.equal(x, expected)


def test_per_class_reads_the_same_stratified_sample_of_any_dataset(tmp_path):
    folder = _mixed_folder(tmp_path / "f", n_per_class=7)
    prep = Preprocessing(transform="Resize(20), CenterCrop(16)", per_class=3)
    quick = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=0)
    assert quick.class_sizes().tolist() == [3, 3, 3] and "a stratified sample of 9 of 21 images" in quick.notes[-2]
    again = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=0)
    assert again.index.names == quick.index.names and again.digest == quick.digest
    whole = load_dataset(f"imagefolder:{folder}", "train", preprocessing=Preprocessing(transform="Resize(20), "
                                                                                       "CenterCrop(16)"), workers=0)
    assert whole.digest != quick.digest and set(quick.index.names) < set(whole.index.names)
    x, y = next(quick.batches(9))
    rows = [whole.index.names.index(n) for n in quick.index.names]
    assert torch.equal(x, torch.stack([whole[i][0] for i in rows])) and y.tolist() == whole.labels[rows].tolist()
    digits = load_dataset("digits", "test", preprocessing=Preprocessing(per_class=4))
    assert digits.class_sizes().tolist() == [4] * 10 and digits.identity()["preprocessing"]["per_class"] == 4


def test_the_survey_in_worker_processes_reads_the_same_and_names_the_first_bad_file(tmp_path, monkeypatch):
    import aomcore.base.folder as folder_module

    folder = _mixed_folder(tmp_path / "f", n_per_class=7)
    prep = Preprocessing(transform="Resize(20), CenterCrop(16)")
    alone = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=0)
    monkeypatch.setattr(folder_module, "_CHUNK", 4)
    monkeypatch.setenv("AOMSCOPE_WORKERS", "2")
    folder_module._SURVEYS.clear()
    pooled = load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep, workers=0)
    assert pooled.notes == alone.notes and pooled.input_shape == alone.input_shape
    for name in ("bee/3.png", "cow/0.png"):
        (folder / name).write_bytes(b"broken")
    with pytest.raises(InputError, match=r"unreadable image file.*bee/3.png"):
        load_dataset(f"imagefolder:{folder}", "train", preprocessing=prep)

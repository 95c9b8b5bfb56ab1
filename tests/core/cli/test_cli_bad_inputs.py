"""The bad-input corpus through the CLI: exit code 2 and a one-line `error: ...`."""

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.corpus import make_corpus


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def maps(weights, arch="zoo:digits_net", *extra):
    return ["maps", "--arch", arch, "--weights", str(weights), "--dataset", "digits", *extra]


def edit(f, *what):
    return ["edit", "--arch", "zoo:digits_net", "--weights", str(f["good"]), *what, "--out", str(f["secret"] / "x.pt"),
            "--log", str(f["secret"] / "x.json")]


def experiment(f, maps_file):
    return ["selectivity-experiment", "--arch", "zoo:digits_net", "--weights", str(f["good"]), "--dataset", "digits",
            "--layer", "conv1", "--maps", str(f[maps_file])]


CASES = [
    ("empty weights", lambda f: maps(f["empty"]), "weights file is empty"),
    ("truncated .pt", lambda f: maps(f["truncated"]), "truncated or corrupted checkpoint"),
    ("random bytes .pt", lambda f: maps(f["random_pt"]), "not a PyTorch checkpoint"),
    ("random bytes .safetensors", lambda f: maps(f["random_st"]), "could not read safetensors"),
    ("weights of another architecture", lambda f: maps(f["other_arch"]),
     "mis-shaped (file vs model): conv1.weight (16, 1, 3, 3) vs (8, 1, 3, 3)"),
    ("NaN in weights", lambda f: maps(f["nan_weights"]), "weights contain NaN or Inf: expected finite weights, "
     "found fc1.weight (1 values)"),
    ("pickle payload", lambda f: maps(f["payload"]), "loading it would run code, so it is refused"),
    ("output size differs from the classes", lambda f: ["selectivity-experiment", "--arch",
     f"{f['arch_file']}:FiveOut", "--weights", str(f["five_out"]), "--dataset", "digits", "--layer", "conv"],
     "the model's output does not match the classes"),
    ("images of the wrong size", lambda f: maps(f["needs28"], f"{f['arch_file']}:Needs28"),
     "the model cannot take this input"),
    ("images with the wrong channel count", lambda f: maps(f["resnet"], "torchvision:resnet18"),
     "the model cannot take this input"),
    ("npz without y", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_no_y']}"),
     "missing ['y']"),
    ("labels out of range", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_range']}"),
     "labels out of range"),
    ("non-integer labels", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_float_y']}"),
     "labels must be integers"),
    ("Inf in images", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_nan']}"),
     "first at index [7, 2, 3]"),
    ("single-class dataset", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_one_class']}"),
     "the dataset has a single class"),
    ("class without images", lambda f: maps(f["five_out"], f"{f['arch_file']}:FiveOut", "--dataset",
                                            f"npz:{f['npz_empty_class']}"), "no images of class 'c'"),
    ("unreadable image in a folder", lambda f: maps(f["good"], "zoo:digits_net", "--dataset",
                                                    f"imagefolder:{f['imagefolder']}"), "unreadable image file"),
    ("data root that does not exist", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", "mnist",
                                                     "--data-root", str(f["secret"] / "nowhere")),
     "data root does not exist"),
    ("unknown layer", lambda f: maps(f["good"], "zoo:digits_net", "--layers", "conv9"),
     "no analysable layer named 'conv9'"),
    ("threshold not a number", lambda f: maps(f["good"], "zoo:digits_net", "--threshold", "abc"),
     "invalid float value: 'abc'"),
    ("unknown architecture", lambda f: maps(f["good"], "zoo:nope"), "unknown zoo model"),
    ("edit removing every kernel", lambda f: ["edit", "--arch", "zoo:digits_net", "--weights", str(f["good"]),
                                              "--remove", "conv1:0,1,2,3,4,5,6,7", "--out", str(f["secret"] / "x.pt"),
                                              "--log", str(f["secret"] / "x.json")],
     "cannot remove every kernel of conv1"),
    ("malformed edit list", lambda f: maps(f["good"], "zoo:digits_net", "--edits", str(f["edits_bad"])),
     "edit list is not JSON"),
    ("missing weights file", lambda f: maps(f["secret"] / "none.pt"), "weights file does not exist"),
    # issue #15: values that used to be cast, truncated or used silently
    ("int weights", lambda f: maps(f["int_weights"]), "the weights are not floating-point numbers"),
    ("bool weights", lambda f: maps(f["bool_weights"]), "found fc1.weight (torch.bool)"),
    ("complex weights", lambda f: maps(f["complex_weights"]), "found fc1.weight (torch.complex64)"),
    ("zip member failing its CRC", lambda f: maps(f["bad_crc"]),
     "bad_crc.pt: member archive/data/0 fails its checksum"),
    ("NaN mean", lambda f: maps(f["good"], "zoo:digits_net", "--mean", "nan", "--std", "1"),
     "mean must be finite numbers"),
    ("Inf std", lambda f: maps(f["good"], "zoo:digits_net", "--mean", "0", "--std", "inf"),
     "std must be finite numbers"),
    ("batch size 0", lambda f: maps(f["good"], "zoo:digits_net", "--batch-size", "0"),
     "bad batch size: expected an integer >= 1, found 0"),
    ("max resolution 0", lambda f: maps(f["good"], "zoo:digits_net", "--max-resolution", "0"),
     "bad max_resolution"),
    ("diverging training", lambda f: ["train", "--dataset", "digits", "--epochs", "1", "--lr", "1e12",
                                      "--cache-dir", str(f["secret"] / "cache")], "training diverged"),
    ("epochs 0", lambda f: ["train", "--dataset", "digits", "--epochs", "0"],
     "epochs, batch size and learning rate must be positive"),
    ("train batch size 0", lambda f: ["train", "--dataset", "digits", "--batch-size", "0"],
     "found epochs=30, batch_size=0"),
    ("fractional kernel index", lambda f: edit(f, "--remove", "conv1:1.7"), "bad --remove value"),
    ("fractional kernel index in an edit list", lambda f: maps(f["good"], "zoo:digits_net", "--edits",
                                                               str(f["edits_float_index"])),
     "kernel indices must be integers: expected whole numbers such as 3, found 1.7"),
    ("string n in an edit list", lambda f: maps(f["good"], "zoo:digits_net", "--edits", str(f["edits_string_n"])),
     "bad edit field 'n': expected an integer, found '5'"),
    ("string kernels in an edit list", lambda f: maps(f["good"], "zoo:digits_net", "--edits",
                                                      str(f["edits_string_kernels"])),
     "bad edit field 'kernels': expected a list of kernel indices, found 'abc'"),
    ("deeply nested edit list", lambda f: maps(f["good"], "zoo:digits_net", "--edits", str(f["edits_nested"])),
     "edit list is nested too deeply"),
    ("state_dict with int keys", lambda f: maps(f["int_keys"]), "state_dict keys must be parameter names"),
    ("torchvision option that is code", lambda f: maps(f["resnet"], "torchvision:resnet18(x=open('f'))"),
     "option 'x' of resnet18 is not a literal"),
    ("maps file that is not an npz", lambda f: experiment(f, "random_pt"), "cannot read the maps file"),
    ("maps file with negative counts", lambda f: experiment(f, "maps_negative"), "negative counts for layer conv1"),
    ("maps file with counts above the class size", lambda f: experiment(f, "maps_too_many"),
     "counts above the class size for layer conv1"),
    ("maps file read at another layer's tap", lambda f: experiment(f, "maps_other_tap"),
     "the maps of conv1 do not belong to this model: expected 8 kernels read at relu2, found 8 kernels read at relu1"),
    # issue #15, data side
    ("a .npy named .npz", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npy_as_npz']}"),
     "a .npy file, not an .npz archive"),
    ("int8 pixels with negatives", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_int8']}"),
     "pixel values out of range"),
    ("uint64 labels near 2**63", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_u64']}"),
     "found min 0, max 9223372036854775813 (dtype uint64)"),
    ("0-d classes string", lambda f: maps(f["good"], "zoo:digits_net", "--dataset", f"npz:{f['npz_0d_classes']}"),
     "classes must be a 1-D array of names"),
    ("unknown device", lambda f: maps(f["good"], "zoo:digits_net", "--device", "xyz"), "no such device here"),
    ("mps on a machine without it", lambda f: maps(f["good"], "zoo:digits_net", "--device", "mps"),
     "found 'mps'"),
    ("resize that cannot be allocated", lambda f: maps(f["good"], "zoo:digits_net", "--resize", "60000"),
     "is too large to allocate"),
    ("widen that cannot be allocated", lambda f: edit(f, "--widen", "conv1:+100000000"),
     "widening conv1 by 100000000 kernels is too large to allocate"),
    ("200000×200000 Linear", lambda f: maps(f["good"], f"{f['huge_arch']}:Huge"), "Huge (40,000,200,000 values)"),
    ("empty --insert-after", lambda f: edit(f, "--insert-after", ""), "bad --insert-after value: no layer name"),
    ("optical-flow model", lambda f: maps(f["good"], "torchvision:raft_small"),
     "torchvision:raft_small is not an image classifier"),
]


@pytest.mark.parametrize("case,args,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(files, tmp_path, case, args, message):
    argv = args(files)
    if argv[0] != "edit":
        argv += ["--out", str(tmp_path / "out.npz")]
    out = subprocess.run([sys.executable, "-m", "aomcore", *argv], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    errors = [line for line in out.stderr.splitlines() if line.startswith(("error:", "python -m aomcore"))]
    assert len(errors) == 1 and errors[0] == out.stderr.strip().splitlines()[-1], out.stderr
    assert message in errors[0], errors[0]
    assert "Traceback" not in out.stderr
    assert not files["pwned"].exists()

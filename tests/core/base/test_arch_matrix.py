"""Architecture matrix (issue #15): every analysis and edit on real torchvision models and on small
hand-written ones either works exactly or is refused with one line naming the limitation.

Per model: list_layers; maps on a middle and the last layer (4 images, 2 classes); then, on the
model as edited so far, remove two kernels of LAYER, widen LAYER by 3, insert a conv after LAYER;
finally rebuild the architecture from the successful edits (build_edited) and load the edited
state_dict: the outputs must be identical. Before the removal, silencing the same two kernels is
compared with it (silencing_vs_removal, which the criteria comparison reports): equal on chains,
different where the removal takes coupled channels too (residual adds, a depthwise conv's
BatchNorm, a concatenation the next layer normalises), None where the removal is refused.
"ok" cells must hold exactly (widen/insert leave the output unchanged to 1e-5; remove keeps its
shape); a refusal cell names the expected message.
A change in either direction (a refusal that starts working, a working edit that starts being
refused) fails. Random init with BatchNorm statistics from two train-mode passes; inputs are
the smallest that the model accepts comfortably (32×32; 75×75 for Inception v3; 16×16 for the
hand-written models). About 1 minute on one CPU thread.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from aomcore import (
    Edit,
    InputError,
    apply_edit,
    build_edited,
    build_model,
    compute_maps,
    list_layers,
    silencing_vs_removal,
)
from tests.core.helpers import tiny_dataset

pytestmark = pytest.mark.archmatrix

HANDMADE = Path(__file__).resolve().parents[1] / "handmade.py"
OK = "ok"
GROUPED = "torch-pruning does not handle grouped convolutions that are not depthwise"
SHUFFLE_TRACE = "torch-pruning cannot trace this model's channel dependencies"
SHUFFLE_VIEW = "reshape that splits the channel axis"
TRANSPOSED = "its channels reach a transposed convolution"
NOT_CONV = "insert goes after a 2-D conv layer"

# arch, input side, LAYER, expected outcome of (remove, widen, insert)
MATRIX = [
    ("torchvision:resnet18", 32, "layer2.0.conv2", (OK, OK, OK)),  # feeds a residual add
    ("torchvision:mobilenet_v2", 32, "features.3.conv.0.0", (OK, OK, OK)),  # through a depthwise conv
    ("torchvision:mobilenet_v3_small", 32, "features.4.block.0.0", (OK, OK, OK)),  # Hardswish, SE
    ("torchvision:efficientnet_b0", 32, "features.2.0.block.0.0", (OK, OK, OK)),  # SiLU, SE
    ("torchvision:squeezenet1_1", 32, "features.3.expand1x1", (OK, OK, OK)),  # first input of a concat
    ("torchvision:shufflenet_v2_x0_5", 32, "stage2.1.branch2.0", (SHUFFLE_TRACE, SHUFFLE_TRACE, OK)),
    ("torchvision:regnet_y_400mf", 32, "trunk_output.block2.block2-0.f.a.0", (GROUPED, GROUPED, OK)),
    ("torchvision:convnext_tiny", 32, "features.1.0.block.3", (OK, OK, NOT_CONV)),  # Linear on (N, H, W, C)
    ("torchvision:googlenet(aux_logits=False, init_weights=False)", 32, "inception3a.branch1.conv", (OK, OK, OK)),
    ("torchvision:resnet50", 32, "layer1.0.conv3", (OK, OK, OK)),
    ("torchvision:densenet121", 32, "features.denseblock1.denselayer1.conv2", (OK, OK, OK)),  # concat skip
    ("torchvision:vgg11_bn", 32, "features.4", (OK, OK, OK)),
    ("torchvision:inception_v3(aux_logits=False, init_weights=False)", 75, "Mixed_5b.branch1x1.conv", (OK, OK, OK)),
    (f"{HANDMADE}:CatNet", 16, "a", (OK, OK, OK)),
    (f"{HANDMADE}:ConcatSkip", 16, "stem", (OK, OK, OK)),
    (f"{HANDMADE}:GroupedSE", 16, "conv1", (GROUPED, GROUPED, OK)),
    (f"{HANDMADE}:DepthwiseSeparable", 16, "conv1", (OK, OK, OK)),
    (f"{HANDMADE}:TransposeNet", 16, "conv1", (TRANSPOSED, TRANSPOSED, OK)),
    (f"{HANDMADE}:Activations", 16, "conv2", (OK, OK, OK)),  # GELU, SiLU, LeakyReLU, F.relu, tanh
    (f"{HANDMADE}:ChannelsLastMLP", 16, "up", (OK, OK, NOT_CONV)),
    (f"{HANDMADE}:Residual", 16, "conv2", (OK, OK, OK)),
    (f"{HANDMADE}:Shuffle", 16, "conv1", (SHUFFLE_VIEW, SHUFFLE_VIEW, OK)),
]


# arch -> does silencing the removed kernels compute the removal? (None: the removal is refused)
SILENCING_IS_REMOVAL = {
    "torchvision:resnet18": False,  # layer2.0's output is added to its shortcut: the removal takes both
    "torchvision:resnet50": False,
    "torchvision:densenet121": False,  # the next dense layer's BatchNorm normalises the concatenation
    f"{HANDMADE}:DepthwiseSeparable": False,  # the depthwise conv's BatchNorm turns a zeroed input into a constant
    f"{HANDMADE}:Residual": False,
    **{arch: None for arch, _, _, (remove, _, _) in MATRIX if remove != OK},
}


def _calibrated(arch: str, shape: tuple[int, int, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(arch, 10, shape)
    gen = torch.Generator().manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn((4, *shape), generator=gen))
    return model.eval()


def _out(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("arch,side,layer,expected", MATRIX, ids=[m[0].split("/")[-1].split("(")[0] for m in MATRIX])
def test_architecture_matrix(arch, side, layer, expected):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    shape = (3, side, side)
    model = _calibrated(arch, shape)

    layers = list_layers(model, shape)
    names = [la.name for la in layers]
    assert layer in names
    mid, last = names[len(names) // 2], names[-1]
    data = tiny_dataset(np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32), [0, 1, 0, 1])
    maps = compute_maps(model, data, [mid, last], batch_size=4, device="cpu")
    by_name = {la.name: la for la in layers}
    for name in (mid, last):
        k, h, w = by_name[name].kernels, *by_name[name].positions
        assert maps[name].counts.shape == (k, 2, h, w)
        assert 0 <= maps[name].counts.min() and maps[name].counts.max() <= 2  # 2 images per class

    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(1))
    k = by_name[layer].kernels
    edits = [Edit("remove", layer, (0, k // 2)), Edit("widen", layer, n=3), Edit("insert", layer)]
    current, done, outcome = model, [], []
    for edit, want in zip(edits, expected, strict=True):
        before = _out(current, x)
        if edit.kind == "remove":
            check = silencing_vs_removal(current, by_name[layer], list(edit.kernels), x, shape)
            assert check["equal"] is SILENCING_IS_REMOVAL.get(arch, True), check
            if check["equal"] is False:
                assert check["difference"] > 1e-3, check  # far from the equality tolerance either way
        try:
            edited = apply_edit(current, edit, shape)
        except InputError as exc:
            message = str(exc)
            assert "\n" not in message
            outcome.append(message)
            assert want != OK and want in message, f"{edit.kind}: expected {want!r}, refused with {message!r}"
            continue
        assert want == OK, f"{edit.kind}: expected a refusal naming {want!r}, but it applied"
        after = _out(edited, x)
        assert after.shape == before.shape
        if edit.kind in ("widen", "insert"):
            torch.testing.assert_close(after, before, rtol=0, atol=1e-5 * float(before.abs().max()))
        if edit.kind == "remove":
            assert by_name[layer].kernels - 2 == {la.name: la.kernels for la in list_layers(edited, shape)}[layer]
        current, done = edited, [*done, edit]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuilt = build_edited(arch, 10, shape, done)
    rebuilt.load_state_dict(current.state_dict())
    assert rebuilt.state_dict().keys() == current.state_dict().keys()
    assert all(torch.equal(v, current.state_dict()[k]) for k, v in rebuilt.state_dict().items())
    assert torch.equal(_out(rebuilt, x), _out(current, x))


def test_gated_layers_are_read_before_the_gate():
    shape = (3, 32, 32)
    layers = {la.name: la for la in list_layers(_calibrated("torchvision:efficientnet_b0", shape), shape)}
    se = layers["features.2.0.block.2.fc2"]
    assert se.tap == se.name and "Sigmoid gate features.2.0.block.2.scale_activation" in se.tap_note

"""Layer listing and the default tap (the activation as the next layer sees it)."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from aomcore import InputError, build_model, list_layers, resolve_layers, save_state_dict, unanalysable_layers
from tests.conftest import REPO


def test_paper_mnist_layers_and_taps():
    layers = list_layers(build_model("zoo:paper_mnist", 10, (1, 28, 28)), (1, 28, 28))
    assert [(la.name, la.kind, la.output_shape, la.tap) for la in layers] == [
        ("conv1", "conv", (16, 26, 26), "relu1"),
        ("conv2", "conv", (16, 24, 24), "relu2"),
        ("fc1", "fc", (128,), "relu3"),
        ("fc2", "fc", (10,), "fc2"),
    ]
    assert layers[0].params == 16 * 9 + 16 and layers[2].positions == (1, 1)


def test_conv_bn_relu_tap_is_the_relu():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 2))
    assert list_layers(model, (1, 8, 8))[0].tap == "2"


def test_resnet18_reused_relu_stops_at_batchnorm():
    model = build_model("torchvision:resnet18", 10, (3, 32, 32))
    by_name = {la.name: la for la in list_layers(model, (3, 32, 32))}
    assert by_name["conv1"].tap == "relu"  # stem: conv1 -> bn1 -> relu (called once)
    # inside a block the ReLU module is called twice: stop at bn1 (same sign as relu(bn1))
    assert by_name["layer1.0.conv1"].tap == "layer1.0.bn1"
    assert by_name["layer1.0.conv2"].tap == "layer1.0.bn2"  # the residual add comes next
    # bn1 -> shared relu: the same sign, no note; bn2 += identity before the shared relu: said plainly
    assert by_name["conv1"].tap_note == by_name["layer1.0.conv1"].tap_note == ""
    assert "changed in place" in by_name["layer1.0.conv2"].tap_note
    assert "counts are of layer1.0.bn2 > 0" in by_name["layer1.0.conv2"].tap_note
    assert by_name["fc"].kind == "fc"
    assert "layer1.0" in {la.name for la in list_layers(model, (3, 32, 32), include_all=True)}


def test_resolve_layers_defaults_and_errors():
    layers = list_layers(build_model("zoo:paper_mnist", 10, (1, 28, 28)), (1, 28, 28))
    assert [la.name for la in resolve_layers(layers, None)] == ["conv1", "conv2"]
    with pytest.raises(InputError, match="no analysable layer named 'conv9'"):
        resolve_layers(layers, ["conv9"])


def test_wrong_input_size_is_a_clear_error():
    with pytest.raises(InputError, match="cannot take this input"):
        list_layers(build_model("zoo:paper_mnist", 10, (1, 28, 28)), (3, 32, 32))


def test_listing_leaves_no_hooks_and_keeps_mode():
    model = build_model("zoo:paper_mnist", 10, (1, 28, 28)).train()
    list_layers(model, (1, 28, 28))
    assert model.training and all(not m._forward_hooks for m in model.modules())
    assert torch.is_grad_enabled()


def test_a_residual_add_outside_any_module_is_named_in_the_note():
    class Block(nn.Module):
        def __init__(self, inplace: bool):
            super().__init__()
            self.conv, self.bn, self.relu = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU()
            self.inplace = inplace
            self.head = nn.Linear(2 * 8 * 8, 3)

        def forward(self, x):
            out = self.bn(self.conv(x))
            if self.inplace:
                out += x
            else:
                out = out + x
            return self.head(torch.flatten(self.relu(out), 1))

    # out += x, then a ReLU of its own: the ReLU reads the same tensor, ReLU(bn + x), what the next layer sees
    conv = list_layers(Block(True), (2, 8, 8))[0]
    assert (conv.tap, conv.tap_note) == ("relu", "")
    conv = list_layers(Block(False), (2, 8, 8))[0]  # out = out + x: a new tensor, made outside any module
    assert conv.tap == "bn" and "counts are of bn > 0" in conv.tap_note
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 36, 2))
    assert [la.tap_note for la in list_layers(plain, (1, 8, 8))] == ["", ""]


LEFT_OUT = '''
import torch
from torch import nn


class Net(nn.Module):
    """A conv called twice per forward, a Conv3d, a Linear the forward never calls (1x8x8 digits)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.shared = nn.Conv2d(1, 1, 3, padding=1)
        self.volume = nn.Conv3d(1, 2, 1)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.unused = nn.Linear(3, 3)
        self.fc = nn.Linear(4 * 8 * 8, num_classes)

    def forward(self, x):
        x = self.shared(self.shared(x))
        x = self.volume(x.unsqueeze(1)).squeeze(2)
        return self.fc(torch.relu(self.conv(x)).flatten(1))
'''


def test_the_conv_and_fc_modules_left_out_are_named_with_why(tmp_path):
    # "every conv layer" used to drop a shared module and a Conv3d without a word (issue #22)
    (tmp_path / "leftout.py").write_text(LEFT_OUT)
    model = build_model(f"{tmp_path / 'leftout.py'}:Net", 10, (1, 8, 8))
    assert [la.name for la in list_layers(model, (1, 8, 8))] == ["conv", "fc"]
    why = dict(unanalysable_layers(model, (1, 8, 8)))
    assert list(why) == ["shared", "volume", "unused"]
    assert why["shared"].startswith("called 2 times per forward")
    assert "(2, 1, 8, 8)" in why["volume"] and "(K, H, W)" in why["volume"]
    assert why["unused"] == "never called by the forward pass"
    assert unanalysable_layers(build_model("zoo:paper_mnist", 10, (1, 28, 28)), (1, 28, 28)) == []

    save_state_dict(model, tmp_path / "w.safetensors")
    out = subprocess.run([sys.executable, "-m", "aomcore", "layers", "--arch", f"{tmp_path / 'leftout.py'}:Net",
                          "--weights", str(tmp_path / "w.safetensors"), "--dataset", "digits"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stdout.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {name} is not analysable: {text}" for name, text in why.items()]

"""Training checkpoints are unwrapped (and say so); odd tensors, odd keys and odd code are messages."""

import io

import pytest
import torch

from aomcore import InputError, build_model, list_layers, load_model
from aomcore.base.models import load_checkpoint

ARCH, SHAPE = "zoo:digits_net", (1, 8, 8)


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sd():
    torch.manual_seed(0)
    return build_model(ARCH, 10, SHAPE).state_dict()


@pytest.mark.parametrize("wrap,note", [
    (lambda sd: {"state_dict": sd, "epoch": 3}, "unwrapped the checkpoint's 'state_dict' entry"),
    (lambda sd: {"model": sd, "optimizer": {"lr": 0.1}}, "unwrapped the checkpoint's 'model' entry"),
    (lambda sd: {f"module.{k}": v for k, v in sd.items()}, "stripped the 'module.' prefix from every key"),
    (lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}},
     "unwrapped the checkpoint's 'state_dict' entry; stripped the 'model.' prefix from every key"),
])
def test_wrapped_checkpoints_load_identically_and_say_how(sd, wrap, note):
    loaded = load_model(ARCH, _bytes(wrap(sd)), 10, SHAPE, weights_name="ckpt.pt")
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in sd.items())
    assert loaded.note == note and loaded.source == f"ckpt.pt ({note})"


def test_a_plain_state_dict_has_no_note(sd):
    assert load_model(ARCH, _bytes(sd), 10, SHAPE, weights_name="w.pt").note == ""


@pytest.mark.parametrize("obj,message", [
    ({0: torch.zeros(2)}, "state_dict keys must be parameter names"),
    ({"w": torch.zeros(3, 3).to_sparse()}, "state_dict holds sparse tensors"),
    ({"w": torch.zeros(3, device="meta")}, "state_dict holds meta"),
    ({"w": torch.quantize_per_tensor(torch.zeros(3), 0.1, 0, torch.qint8)}, "state_dict holds quantized tensors"),
    ({"state_dict": {}}, "weights file holds no state_dict"),
])
def test_odd_state_dicts_are_refused(obj, message):
    with pytest.raises(InputError, match=message):
        load_checkpoint(_bytes(obj), "x.pt")


CODE = '''import torch.nn as nn
class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        raise KeyError("no config")
class BadForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
    def forward(self, x):
        raise KeyError("todo")
class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
    def forward(self, x):
        return self.conv(x), x
class Named(Pair):
    def forward(self, x):
        return {"out": self.conv(x)}
'''


@pytest.mark.parametrize("cls,message", [
    ("BadForward", "the forward pass of BadForward raised an exception: expected a forward that runs (and returns "
                   "logits, not exits), found KeyError: 'todo'"),
    ("Pair", "forward must return one tensor of logits: expected a tensor (batch, classes), found a tuple of 2"),
    ("Named", "found a dict with keys ['out']"),
])
def test_user_forward_failures_are_messages(tmp_path, cls, message):
    (tmp_path / "a.py").write_text(CODE)
    model = build_model(f"{tmp_path / 'a.py'}:{cls}", 10, SHAPE)
    with pytest.raises(InputError) as info:
        list_layers(model, SHAPE)
    assert message in str(info.value)


def test_user_init_failure_is_a_message(tmp_path):
    (tmp_path / "a.py").write_text(CODE)
    with pytest.raises(InputError, match="Boom.__init__ raised an exception: .* found KeyError: 'no config'"):
        build_model(f"{tmp_path / 'a.py'}:Boom", 10, SHAPE)


@pytest.mark.parametrize("spec,check", [
    ("torchvision:googlenet(aux_logits=False)", lambda m: m.aux_logits is False and m.aux1 is None),
    ("torchvision:fasterrcnn_mobilenet_v3_large_fpn", lambda m: True),  # would fetch an ImageNet backbone
])
def test_torchvision_builder_options_and_no_backbone_download(spec, check, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    assert check(build_model(spec, 10, (3, 32, 32)))


@pytest.mark.parametrize("spec,message", [
    ("torchvision:resnet18(weights='DEFAULT')", "torchvision:resnet18 would download weights"),
    ("torchvision:resnet18(pretrained=True)", "would download weights"),
    ("torchvision:googlenet(__import__('os').system('x'))", "bad torchvision architecture spec"),
    ("torchvision:resnet18(x=open('f'))", "option 'x' of resnet18 is not a literal"),
    ("torchvision:resnet18(nope=1)", "cannot build torchvision:resnet18(nope=1)"),
    ("torchvision:resnet18(num_classes=3)", "num_classes comes from the dataset"),
])
def test_bad_torchvision_specs(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model(spec, 10, (3, 32, 32))

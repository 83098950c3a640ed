"""`cd.models`: save/load round trips, parameter counts, symmetry, the Hub cache, strict loading."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from changeanywhere.cd import CDModel, load_cd_model
from changeanywhere.errors import ChangeAnywhereError, WeightsNotFoundError


@pytest.mark.parametrize("arch,widths", [("changerex-r18", [8, 16, 16, 32]), ("siamdiff", [8, 8, 16, 16]),
                                         ("tiny", None)])
def test_save_load_round_trip(tmp_path, arch, widths):
    torch.manual_seed(0)
    model = CDModel(arch=arch, widths=widths, head_channels=16).eval()
    model.save_pretrained(tmp_path / "m")
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / "m").iterdir()}
    loaded = load_cd_model(tmp_path / "m", device="cpu")
    x, y = torch.rand(2, 3, 64, 48) * 2 - 1, torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x, y), loaded(x, y))
    assert loaded.arch == arch and not loaded.training


def test_default_parameter_counts():
    assert 11.0e6 < CDModel().num_parameters < 11.8e6  # ChangerEx-R18: ~11.4 M
    assert CDModel(arch="tiny").num_parameters < 0.4e6
    assert 4.0e6 < CDModel(arch="siamdiff").num_parameters < 6.0e6  # mid-size: ≤ 12 MB in fp16


def test_siamdiff_is_symmetric_in_the_dates():
    """Its fusion uses |a − b| and (a + b) / 2 only: swapping A and B gives the same prediction (eval mode)."""
    torch.manual_seed(0)
    model = CDModel(arch="siamdiff", widths=[8, 8, 16, 16]).eval()
    for m in model.modules():  # non-trivial BN statistics, so the check is not vacuous
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.weight.data.uniform_(0.5, 1.5)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ab, ba = model(a, b), model(b, a)
    torch.testing.assert_close(ab, ba, atol=1e-5, rtol=1e-5)
    assert ab.std() > 0


def _fake_hub_cache(cache: Path, repo: str, folder: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(folder / f, snap / f)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(sha)


def test_load_from_fake_hub_cache(tmp_path):
    torch.manual_seed(1)
    model = CDModel(arch="tiny", widths=[8, 8, 8, 8]).eval()
    model.save_pretrained(tmp_path / "m")
    _fake_hub_cache(tmp_path / "cache", "org/cd-tiny", tmp_path / "m")
    loaded = load_cd_model("org/cd-tiny", cache_dir=tmp_path / "cache")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(WeightsNotFoundError, match="offline"):
        load_cd_model("org/not-there", cache_dir=tmp_path / "cache")


def test_load_errors(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="config.json"):
        load_cd_model(tmp_path / "nowhere")
    model = CDModel(arch="tiny", widths=[8, 8, 8, 8])
    model.save_pretrained(tmp_path / "m")
    sd = load_file(str(tmp_path / "m" / "model.safetensors"))
    sd.pop(next(iter(sd)))  # a missing tensor
    sd["extra.weight"] = torch.zeros(1)  # an unexpected one
    save_file(sd, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ChangeAnywhereError, match="do not fit"):
        load_cd_model(tmp_path / "m")
    # a config that does not match the weights (strict shapes)
    model.save_pretrained(tmp_path / "m2")
    cfg = json.loads((tmp_path / "m2" / "config.json").read_text())
    cfg["widths"] = [8, 8, 8, 16]
    (tmp_path / "m2" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ChangeAnywhereError, match="do not fit"):
        load_cd_model(tmp_path / "m2")


def test_default_model_message(monkeypatch, tmp_path):
    import changeanywhere.cd.models as models

    monkeypatch.setattr(models, "DEFAULT_CD_MODEL", tmp_path / "absent")
    with pytest.raises(WeightsNotFoundError, match="--method cva"):
        models.load_cd_model(None)

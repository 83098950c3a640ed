"""`changeanywhere eval-cd`: a missing default model, the deep-CVA method with and without its extra."""

import json

from changeanywhere.cli import main
from tests.helpers import make_cd_folder, needs_weights


def test_eval_cd_missing_default_model(tmp_path, monkeypatch, capsys):
    import changeanywhere.cd.models as models

    monkeypatch.setattr(models, "DEFAULT_CD_MODEL", tmp_path / "absent")
    data = make_cd_folder(tmp_path / "data", n=1)
    assert main(["eval-cd", "--data", str(data), "--no-progress"]) == 2
    assert "--model" in capsys.readouterr().err


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

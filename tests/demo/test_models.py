"""`demo.models`: loading the app's generator and CD models, and saying what is missing."""


import pytest

from changeanywhere import demo
from changeanywhere.errors import ChangeAnywhereError


def test_load_models_uses_the_given_folders(models, dubai):
    assert models.pipe is not None and models.cd_model is not None
    assert models.class_set == dubai and models.notices == []
    text = demo.status_markdown(models)
    assert "Generator **generator**" in text and "CD model **cd**" in text and "⚠️" not in text


def test_missing_weights_give_messages_not_errors(tmp_path):
    models = demo.load_models(tmp_path / "nope", tmp_path / "no-cd", device="cpu", fallback=tmp_path / "none",
                              cd_fallback=tmp_path / "none-cd")
    assert models.pipe is None and models.cd_model is None
    text = demo.status_markdown(models)
    assert "No generator loaded" in text and "nope" in text and "model_index.json" in text
    assert "CVA" in text
    with pytest.raises(ChangeAnywhereError, match="no generator is loaded"):
        models.require_pipe()


def test_broken_weights_give_messages_not_errors(tiny_model_dirs, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{ not json")
    models = demo.load_models(broken, tiny_model_dirs[1], device="cpu", fallback=None)
    assert models.pipe is None and models.cd_model is not None
    assert "broken" in models.notices[0]


def test_missing_model_falls_back_to_the_default(tiny_model_dirs, tmp_path):
    models = demo.load_models(tmp_path / "typo", tiny_model_dirs[1], device="cpu", fallback=tiny_model_dirs[0])
    assert models.pipe is not None and models.model_source == str(tiny_model_dirs[0])
    assert any("typo" in n for n in models.notices) and any("using" in n for n in models.notices)

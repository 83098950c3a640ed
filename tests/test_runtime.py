"""`changeanywhere.runtime`: the environment read in one place, the folder-or-Hub-id rule, embedded files."""

import pytest
import torch

from changeanywhere import runtime


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("TRUE", True), ("yes", True), ("on", True),
                                                ("0", False), ("", False), ("off", False)])
def test_one_truthy_set_for_hf_hub_offline(monkeypatch, value, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert runtime.hub_offline() is offline
    assert ("offline" in runtime.hub_failure_hint()) is offline


def test_backend_reads_its_variable_only_when_not_given(monkeypatch):
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    assert runtime.resolve_backend(None, "cpu") == "torch"
    assert runtime.resolve_backend("onnx", "cpu") == "onnx"
    monkeypatch.setenv(runtime.BACKEND_ENV, "")
    assert runtime.resolve_backend(None, "cuda") == "torch"  # auto: PyTorch on a GPU


def test_auto_choices():
    assert runtime.resolve_device("cpu") == "cpu"
    assert runtime.resolve_dtype("auto", "cuda") == torch.float16
    assert runtime.resolve_dtype(None, "cpu") == torch.float32
    assert runtime.resolve_noise_source("auto", torch.device("cpu")) == "step"
    with pytest.raises(ValueError, match="noise source"):
        runtime.resolve_noise_source("gpu", torch.device("cpu"))


def test_folder_or_hub_id(tmp_path):
    assert not runtime.looks_local("org/name") and not runtime.looks_local("name")
    assert runtime.looks_local("./name") and runtime.looks_local("a/b/c") and runtime.looks_local(str(tmp_path))


def test_embedded_files_come_from_the_checkout_else_the_package_data(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "changeanywhere"
    (package / "embedded" / "assets" / "examples").mkdir(parents=True)
    monkeypatch.setattr(runtime, "PACKAGE_DIR", package)
    monkeypatch.setattr(runtime, "EMBEDDED_DIR", package / "embedded")
    assert runtime.embedded_path("assets/examples") == package / "embedded" / "assets" / "examples"
    assert runtime.embedded_path("checkpoints/none") == package.parent / "checkpoints" / "none"  # named in errors
    (package.parent / "assets" / "examples").mkdir(parents=True)
    assert runtime.embedded_path("assets/examples") == package.parent / "assets" / "examples"


def test_this_checkout_finds_the_default_weights():
    assert (runtime.DEFAULT_MODEL / "model_index.json").is_file()
    assert (runtime.EXAMPLES_DIR / "examples.json").is_file()

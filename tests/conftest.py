"""Test set-up: offline Hub, deterministic CPU torch, the fixtures shared by test files (their plain helpers are in
tests/helpers.py)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # read once when huggingface_hub is imported: set it first
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ["CHANGEANYWHERE_BACKEND"] = "torch"  # "auto" would export ONNX files to ~/.cache: tests ask for it
# banks built on the fly (generate, eval-generator) are cached here, not in ~/.cache
os.environ.setdefault("CHANGEANYWHERE_CACHE", __import__("tempfile").mkdtemp(prefix="changeanywhere-tests-"))

from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tests.helpers import (  # noqa: E402
    DUBAI,
    SIZE,
    make_fake_dataset,
    make_folder,
    make_tiny_pipe,
    saved_model_and_data,
    start_app,
    town,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real data beside the project; skip (with the reason) when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (it lives beside the repository, never in it)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_thread():
    """CPU float results can differ in the last bits with the thread count: one thread for a module's tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dubai():
    from changeanywhere import ClassSet

    return ClassSet.builtin("dubai-landcover")


@pytest.fixture(scope="session")
def tiny_pipe(dubai):
    """A tiny random pipeline (32×32 images, 8×8 latents) for the Dubai class set."""
    return make_tiny_pipe(dubai)


@pytest.fixture
def before_pair():
    """A 32×32 before map (land with a building block and water strip) and a matching random image."""
    m = np.zeros((32, 32), np.uint8)
    m[4:14, 4:14] = 2
    m[20:32, :] = 1
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return img, m


@pytest.fixture
def fake_dataset(tmp_path, dubai) -> Path:
    return make_fake_dataset(tmp_path / "data", dubai)


# ---------------------------------------------------------------- the app's tiny models (tests/test_app.py, demo/)


@pytest.fixture(scope="session")
def tiny_model_dirs(tiny_pipe, tmp_path_factory):
    """Folders holding the tiny generator and a fresh tiny CD model, as `save_pretrained` writes them."""
    import torch

    from changeanywhere.cd import build_cd_model

    root = tmp_path_factory.mktemp("models")
    tiny_pipe.save_pretrained(root / "generator")
    torch.manual_seed(0)
    build_cd_model("tiny").save_pretrained(root / "cd")
    return root / "generator", root / "cd"


@pytest.fixture(scope="session")
def models(tiny_model_dirs):
    from changeanywhere import demo

    gen, cd = tiny_model_dirs
    return demo.load_models(gen, cd, device="cpu", fallback=None, cd_building_fallback=None)


@pytest.fixture
def before_map(dubai):
    """The 64×64 example map of the tiny app (seed 3)."""
    from changeanywhere.examples import make_example_map

    return make_example_map(dubai, size=SIZE, seed=3)


@pytest.fixture(scope="module")
def app_url(models):
    """The app launched in this process on the tiny models, one server per test module."""
    blocks, url = start_app(models)
    yield url
    blocks.close()


@pytest.fixture
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


# ------------------------------------------------------------------------------------------------ the rest


@pytest.fixture
def bank():
    """A bank cut from three test towns."""
    from changeanywhere.bank import ObjectBank

    return ObjectBank.build([(f"tile{i}.png", *town(i)) for i in range(3)], DUBAI, origin="three towns")


@pytest.fixture
def no_weights(monkeypatch):
    """As if the `imagenet` extra were not installed."""
    import changeanywhere.features as features

    monkeypatch.setattr(features, "WEIGHTS_PACKAGE", "no_such_weights_package_xyz")


@pytest.fixture(scope="module")
def change_classes_setup(tmp_path_factory, tiny_pipe):
    """(root, data) for the change-class `generate` runs: the tiny model and a fake Dubai-like dataset."""
    return saved_model_and_data(tmp_path_factory, tiny_pipe, "change_classes", DUBAI)


@pytest.fixture(scope="module")
def inpaint_pipe(dubai):
    """The tiny pipeline with its UNet widened for inpainting and the new channels given random weights (so a
    test can see that the context reaches the network)."""
    from changeanywhere.generator.inpainting import inpaint_channels, widen_for_inpainting

    pipe = make_tiny_pipe(dubai)
    latent = pipe.vae.config.latent_channels
    wide = widen_for_inpainting(pipe.unet, latent)
    with torch.no_grad():
        torch.manual_seed(1)
        w = wide.conv_in.weight
        w[:, -inpaint_channels(latent):] = torch.randn_like(w[:, -inpaint_channels(latent):]) * 0.1
    pipe.register_modules(unet=wide)
    return pipe


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three Dubai-like tiles for the training commands (`a_008` is val by the Dubai convention)."""
    return make_folder(tmp_path_factory.mktemp("data"), ["a_001", "a_002", "a_008"])


@pytest.fixture
def restore_threads():
    """The commands run with --num-threads 1 in-process; give the session its thread count back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def skip_reasons(reports) -> Counter:
    """How many skipped tests gave each reason (pytest's `longrepr` of a skip is (file, line, reason))."""
    reasons = Counter()
    for report in reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    return reasons


def pytest_terminal_summary(terminalreporter):
    """One line at the end of the run: how many tests skipped, grouped by why."""
    reasons = skip_reasons(terminalreporter.stats.get("skipped", []))
    grouped = "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common())
    terminalreporter.write_line(f"skipped {sum(reasons.values())}" + (f": {grouped}" if grouped else ""))

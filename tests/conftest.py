"""Test set-up: offline Hub, deterministic CPU torch, shared tiny fixtures."""

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


def make_tiny_pipe(class_set):
    """A tiny random pipeline (32×32 images, 8×8 latents), the same weights on every call (seeded)."""
    from changeanywhere.generator.presets import build_pipeline

    torch.manual_seed(0)
    pipe = build_pipeline(class_set, preset="tiny")
    # untrained encoders give tiny latents: scale them to unit std like a trained model's scaling_factor
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        std = pipe.encode_images(x).std().item()
        pipe.vae.register_to_config(scaling_factor=pipe.vae.config.scaling_factor / std)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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


def make_fake_dataset(root: Path, class_set, n: int = 3, shape: tuple[int, int] = (48, 64)) -> Path:
    """A tiny `images/` + `labels/` folder: blocky colour maps and images whose colour follows the class."""
    from PIL import Image

    from changeanywhere.maps import write_map

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        m = rng.integers(0, class_set.num_classes, (shape[0] // 8, shape[1] // 8)).repeat(8, 0).repeat(8, 1)
        m = m.astype(np.uint8)
        img = class_set.palette[m].astype(np.int16) + rng.integers(-20, 21, (*shape, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"tile_{i:03d}.png")
        write_map(root / "labels" / f"tile_{i:03d}.png", m, class_set)
    return root


@pytest.fixture
def fake_dataset(tmp_path, dubai) -> Path:
    return make_fake_dataset(tmp_path / "data", dubai)


def saved_model_and_data(tmp_path_factory, pipe, name: str, class_set):
    """(root, data): `pipe` saved to root/model and a fake Dubai-like dataset in root/data, for CLI tests."""
    root = tmp_path_factory.mktemp(name)
    pipe.save_pretrained(root / "model")
    return root, make_fake_dataset(root / "data", class_set)


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

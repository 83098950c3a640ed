"""The demo: its logic (`changeanywhere.demo`) on tiny models, and the launched app driven by `gradio_client`."""

import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from changeanywhere import ClassSet, demo
from changeanywhere.errors import ChangeAnywhereError, MapSizeError, UnknownColorsError
from changeanywhere.events import UserEdit
from changeanywhere.examples import make_example_map
from changeanywhere.maps import read_map
from changeanywhere.pairs import PairSettings

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64  # example maps of the tiny app


# ------------------------------------------------------------------------------------------- helpers


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
    gen, cd = tiny_model_dirs
    return demo.load_models(gen, cd, device="cpu", fallback=None, cd_building_fallback=None)


@pytest.fixture
def before_map(dubai):
    return make_example_map(dubai, size=SIZE, seed=3)


# ------------------------------------------------------------------------------------- loading models


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


# ------------------------------------------------------------------------------------- reading uploads


def test_colour_and_index_maps_are_read(tmp_path, dubai, before_map):
    colour = write_png(tmp_path / "colour.png", dubai.indices_to_colors(before_map))
    index = write_png(tmp_path / "index.png", before_map)
    rgba = write_png(tmp_path / "rgba.png", np.dstack([dubai.indices_to_colors(before_map),
                                                       np.full(before_map.shape, 255, np.uint8)]))
    palette = Image.fromarray(before_map, mode="L").convert("P")
    palette.putpalette(dubai.palette.ravel().tolist())
    pal = tmp_path / "palette.png"
    palette.save(pal)
    for path in (colour, index, rgba, pal):
        got, _ = demo.read_uploaded_map(path, dubai)
        np.testing.assert_array_equal(got, before_map)
    got, _ = demo.read_uploaded_map(colour, dubai, choice="dubai-landcover")
    np.testing.assert_array_equal(got, before_map)


def test_map_of_another_class_set_is_refused(tmp_path, dubai, before_map):
    loveda = ClassSet.builtin("loveda")
    path = write_png(tmp_path / "loveda.png", loveda.indices_to_colors(before_map))
    with pytest.raises(ChangeAnywhereError, match="'loveda'.*generator draws 'dubai-landcover'"):
        demo.read_uploaded_map(path, dubai)
    with pytest.raises(ChangeAnywhereError, match="'potsdam'"):
        demo.read_uploaded_map(path, dubai, choice="potsdam")


def test_unknown_colours_are_named_or_snapped(tmp_path, dubai, before_map):
    rgb = dubai.indices_to_colors(before_map).copy()
    rgb[:4, :4] = (0x86, 0x2B, 0xF4)  # slightly off "land", as a JPEG would leave it
    path = write_png(tmp_path / "lossy.png", rgb)
    with pytest.raises(UnknownColorsError, match="#862BF4.*snap unknown colours"):
        demo.read_uploaded_map(path, dubai)
    got, notices = demo.read_uploaded_map(path, dubai, snap=True)
    assert (got[:4, :4] == dubai.index_of("land")).all() and "snapped" in notices[0]


def test_corrupt_and_missing_files_give_clear_errors(tmp_path, dubai):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ChangeAnywhereError, match="cannot read the land-cover map broken.png"):
        demo.read_uploaded_map(bad, dubai)
    with pytest.raises(ChangeAnywhereError, match="cannot read the before image"):
        demo.read_before_image(bad)
    with pytest.raises(ChangeAnywhereError, match="not found"):
        demo.read_uploaded_map(tmp_path / "gone.png", dubai)
    with pytest.raises(ChangeAnywhereError, match="out of range|outside|not classes"):
        demo.read_uploaded_map(write_png(tmp_path / "idx.png", np.full((16, 16), 9, np.uint8)), dubai)


def test_fit_to_model_downscales_and_crops(dubai):
    big = make_example_map(dubai, size=600, seed=0)[:, :520]
    image = np.zeros((600, 520, 3), np.uint8)
    m, img, notices = demo.fit_to_model(big, image, multiple=16, max_side=512)
    assert m.shape == img.shape[:2] == (512, 432)  # 600×520 -> 512×444 -> crop to multiples of 16
    assert set(np.unique(m)) <= set(np.unique(big))  # nearest: no new labels
    assert "downscaled" in notices[0] and "Centre-cropped" in notices[1]
    same, _, none = demo.fit_to_model(big[:64, :64], None, multiple=16)
    assert same.shape == (64, 64) and none == []
    with pytest.raises(MapSizeError, match="at least 16×16"):
        demo.fit_to_model(big[:10, :40], None, multiple=16)
    with pytest.raises(MapSizeError, match="before image is 520×600 px but the map is 64×64"):
        demo.fit_to_model(big[:64, :64], image, multiple=16)


def test_real_examples_load_with_their_image(dubai):
    """The Example tab's default is a real Dubai crop: its map and its real image (so the first Generate shows a
    real before image), with the dataset's attribution."""
    from changeanywhere.examples import real_examples

    names = demo.example_names(dubai)
    real = real_examples()
    assert 2 <= len(real) <= 4 and names[: len(real)] == [e.name for e in real] and names[-1] == "Town (seed 3)"
    before_map, image, notices = demo.load_example(names[0], dubai, SIZE)
    assert image.shape == (*before_map.shape, 3) and image.dtype == np.uint8 and max(before_map.shape) <= 512
    assert len(np.unique(before_map)) >= 3 and "MBRSC" in notices[0] and "Humans in the Loop" in notices[0]
    assert demo.example_names(ClassSet.builtin("loveda"))[0] == "Town (seed 0)"  # real ones only for their set
    town, none, _ = demo.load_example("Town (seed 1)", dubai, SIZE)
    assert town.shape == (SIZE, SIZE) and none is None


# ------------------------------------------------------------------------------------------- editing


def test_painted_strokes_become_snapped_edits(dubai, before_map):
    water = dubai.palette[dubai.index_of("water")]
    road = dubai.palette[dubai.index_of("road")]
    layers = [stroke_layer(before_map.shape, (10, 20, 10, 30), water),
              stroke_layer(before_map.shape, (15, 25, 25, 40), road)]
    edits = demo.painted_edits({"background": None, "layers": layers, "composite": None}, dubai, before_map.shape)
    by_target = {e.target: e.mask for e in edits}
    assert set(by_target) == {dubai.index_of("water"), dubai.index_of("road")}
    assert by_target[dubai.index_of("water")].sum() == 10 * 20 - 5 * 5  # the later layer paints over
    assert by_target[dubai.index_of("road")].sum() == 10 * 15  # faint rim (alpha 60) not counted
    assert demo.painted_edits({"background": None, "layers": [], "composite": None}, dubai, (8, 8)) == []
    assert demo.painted_edits(None, dubai, (8, 8)) == []


def test_display_palette_tells_classes_apart_and_the_brush_starts_on_a_change(dubai, before_map):
    """Land and building are both purple in the Dubai data: the app shows building in another colour (display
    only: the class set itself keeps the data's colours); the brush starts on building, not on land."""
    shown = demo.display_class_set(dubai)
    assert shown.names == dubai.names and ClassSet.builtin("dubai-landcover") == dubai  # untouched
    land, building = shown.palette[dubai.index_of("land")], shown.palette[dubai.index_of("building")]
    assert np.abs(land.astype(int) - building).sum() > 200 and len({tuple(c) for c in shown.palette}) == 5
    assert dubai.names[demo.default_brush(dubai)] == "building"
    layer = stroke_layer(before_map.shape, (10, 20, 10, 30), building, soft_edge=False)
    (edit,) = demo.painted_edits({"layers": [layer]}, shown, before_map.shape)
    assert edit.target == dubai.index_of("building") and edit.mask.sum() == 200


def test_change_events_read_as_words(dubai, before_map):
    events = {"transition": "land turned into road", "add": "new building on land",
              "remove": "land removed, filled with the water around it", "edit": "painted building over land"}
    for kind, words in events.items():
        to = {"transition": "road", "remove": "water"}.get(kind, "building")
        event = {"type": kind, "from": "land", "to": to, "area": 1234}
        assert demo.describe_event(event) == f"{words} (1,234 px)"


def test_bad_layers_are_refused(dubai):
    with pytest.raises(MapSizeError, match="painted layer 1 is 32×16 px but the map is 64×64"):
        demo.painted_edits({"layers": [np.zeros((16, 32, 4), np.uint8)]}, dubai, (64, 64))
    with pytest.raises(ChangeAnywhereError, match="RGBA"):
        demo.painted_edits({"layers": [np.zeros((64, 64, 3), np.uint8)]}, dubai, (64, 64))


def test_after_map_from_events_and_edits(dubai, before_map):
    mask = np.zeros(before_map.shape, bool)
    mask[:8, :8] = True
    edit = UserEdit(mask, dubai.index_of("water"))
    result = demo.make_after_map(before_map, dubai, [edit], num_events=2, seed=1)
    assert (result.after[:8, :8] == dubai.index_of("water")).all()
    assert any(e["type"] != "edit" for e in result.events)
    assert "of the map changes" in demo.describe_change(result)
    nothing = demo.make_after_map(before_map, dubai)
    assert "No change yet" in demo.describe_change(nothing)
    with pytest.raises(ChangeAnywhereError, match="the edit changes nothing"):
        demo.require_change(nothing)
    with pytest.raises(ChangeAnywhereError, match="at least one event type"):
        demo.make_after_map(before_map, dubai, num_events=2, event_types=[])


# ---------------------------------------------------------------------------------------- generation


def test_generate_and_package(models, dubai, before_map, tmp_path):
    change = demo.make_after_map(before_map, dubai, num_events=3, seed=2)
    steps = []
    gen = demo.generate(models, before_map, change, seed=7, num_inference_steps=3, variants=2,
                        progress=lambda f, d: steps.append((f, d)))
    assert [s.pair.seed for s in gen.samples] == [7, 8]
    # bank content at strength 0: the model samples only where non-change re-renders (none with this tiny model)
    rerendered = any(s.pair.rerendered is not None and s.pair.rerendered.any() for s in gen.samples)
    assert PairSettings.content_strength == 0 and len(steps) == 3 + (3 if rerendered else 0) + 1
    assert steps[-1][1].startswith("change detection")
    assert all(0 < a <= b <= 1 for (a, _), (b, _) in zip(steps, steps[1:], strict=False))
    for s in gen.samples:
        assert s.pair.before_image.shape == s.pair.after_image.shape == (SIZE, SIZE, 3)
        np.testing.assert_array_equal(s.pair.change_mask, before_map != s.pair.after_map)  # what was pasted
        assert not (s.pair.change_mask & (change.after == before_map)).any()  # within the planned change
        assert s.prediction.shape == (SIZE, SIZE) and 0 <= s.metrics["f1"] <= 1
        assert demo.prediction_overlay(s).shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(gen.samples[0].pair.before_image, gen.samples[1].pair.before_image)  # one
    assert gen.settings["before_image"] == "synthesized" and gen.settings["before_seed"] == 7

    real = np.full((SIZE, SIZE, 3), 90, np.uint8)
    gen2 = demo.generate(models, before_map, change, real, seed=1, num_inference_steps=2)
    assert gen2.timings["synthesis"] == 0 and (gen2.samples[0].pair.before_image == real).all()

    path = demo.write_sample_zip(gen, dubai, tmp_path, source="test")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("metadata.json"))
        sample_meta = json.loads(zf.read("meta/000001.json"))
        label = np.asarray(Image.open(io.BytesIO(zf.read("label/000001.png"))))
        after_map = read_map(Image.open(io.BytesIO(zf.read("label_B/000001.png"))), dubai)
    folders = ("A", "B", "label", "label_A", "label_B", "change_type")  # the layout of `changeanywhere generate`
    expected = {f"{d}/00000{i}.png" for d in folders for i in (0, 1)} | {"meta/000000.json", "meta/000001.json"}
    assert names == expected | {"metadata.json"}
    np.testing.assert_array_equal(label == 255, before_map != after_map)
    assert [s["seed"] for s in meta["samples"]] == [7, 8] and meta["sampler"]["steps"] == 3
    assert sample_meta["events"] == change.events and meta["class_set"] == "dubai-landcover"
    assert sample_meta["content_scale"] == pytest.approx(demo.DEFAULT_CONTENT_SCALE)
    assert sample_meta["drift"] is None and demo.DEFAULT_DRIFT == 0  # non-change replaced the global drift
    assert sample_meta["nonchange"]["settings"]["strength"] == pytest.approx(demo.DEFAULT_NONCHANGE)
    assert meta["sampler"]["nonchange"] == demo.DEFAULT_NONCHANGE


def test_what_counts_as_change_picks_the_label_and_the_model(tiny_model_dirs, dubai, before_map, tmp_path):
    """Building change: the label marks only changes to or from building (the maps keep every change) and the
    building model predicts, which the info says; without a building model the any-change model stands in."""
    import torch

    from changeanywhere.cd import build_cd_model

    torch.manual_seed(1)
    build_cd_model("tiny").save_pretrained(tmp_path / "cd-building")
    gen_dir, cd_dir = tiny_model_dirs
    models = demo.load_models(gen_dir, cd_dir, device="cpu", fallback=None, cd_building_model=tmp_path / "cd-building")
    assert models.notices == [] and "**cd-building** (building change)" in demo.status_markdown(models)
    building = dubai.names.index("building")
    change = None
    for seed in range(20):  # events that change building and something else
        c = demo.make_after_map(before_map, dubai, num_events=4, seed=seed)
        moved = c.after != before_map
        counted = moved & ((before_map == building) | (c.after == building))
        if counted.any() and (moved & ~counted).any():
            change = c
            break
    assert change is not None
    painted = demo.generate(models, before_map, change, seed=3, num_inference_steps=2, counts="building",
                            content="diffusion").samples[0].pair
    np.testing.assert_array_equal(painted.change_mask, counted)  # painting follows the planned map exactly
    np.testing.assert_array_equal(painted.after_map, change.after)
    gen = demo.generate(models, before_map, change, seed=3, num_inference_steps=2, counts="building")
    pair = gen.samples[0].pair  # bank content: the map is what was pasted, inside the planned change
    moved = pair.after_map != before_map
    assert moved.any() and not (moved & (change.after == before_map)).any()
    counted = moved & ((before_map == building) | (pair.after_map == building))
    np.testing.assert_array_equal(pair.change_mask, counted)
    assert gen.settings["counts"] == "building" and gen.settings["cd_model"] == str(tmp_path / "cd-building")
    assert "building-change CD model cd-building" in gen.settings["cd_method"]
    any_change = demo.generate(models, before_map, change, seed=3, num_inference_steps=2)
    np.testing.assert_array_equal(any_change.samples[0].pair.change_mask, moved)
    assert any_change.settings["cd_model"] == str(cd_dir)
    alone = demo.load_models(gen_dir, cd_dir, device="cpu", fallback=None, cd_building_fallback=tmp_path / "none")
    assert any("No building-change CD model" in n for n in alone.notices)
    stand_in = demo.generate(alone, before_map, change, seed=3, num_inference_steps=2, counts="building")
    assert "no building-change model loaded" in stand_in.settings["cd_method"]
    with pytest.raises(ChangeAnywhereError, match="what counts as change"):
        demo.generate(models, before_map, change, counts="roads")


def test_generate_refuses_no_change_and_no_model(models, dubai, before_map, tmp_path):
    with pytest.raises(ChangeAnywhereError, match="changes nothing"):
        demo.generate(models, before_map, demo.make_after_map(before_map, dubai))
    empty = demo.Models(None, None, dubai, "x", "cva", ["Generator: no pipeline at x"])
    with pytest.raises(ChangeAnywhereError, match="no pipeline at x"):
        demo.generate(empty, before_map, demo.make_after_map(before_map, dubai, num_events=2))


def test_error_messages_keep_file_names_as_given():
    app = load_app_module()
    assert app.error_text(ChangeAnywhereError("photo.jpg: not an image"), "load") == "photo.jpg: not an image"
    assert app.error_text(ChangeAnywhereError("the edit changes nothing"), "gen") == "The edit changes nothing"


def test_a_failing_handler_keeps_every_output_and_says_why():
    app = load_app_module()

    def load(session, name):
        raise ChangeAnywhereError("cannot read the land-cover map a_b.png")

    a, notice, c = object(), object(), object()  # stand-ins for components
    out = app.keep_page(load, [a, notice, c], notice, app.still_loaded)(
        demo.Session(np.zeros((8, 8), np.uint8), None, "x*y"), "n"
    )
    assert out[0] == out[2] == {"__type__": "update"}  # gr.skip(): the value on the page stays
    assert out[1] == "⚠️ Cannot read the land-cover map a\\_b.png  \nStill loaded: **x\\*y** (the editor keeps it)."

    def crash():
        raise RuntimeError("CUDA out of memory")

    (text,) = app.keep_page(crash, [notice], notice)()
    assert "Something went wrong \\(RuntimeError\\). Try fewer variants" in text


def test_output_files_are_unique_and_pruned_with_gradios_copies(tmp_path):
    served = tmp_path / "gradio"
    files = demo.OutputFiles(tmp_path / "out", max_age_s=60, served=served, served_max_age_s=60)
    image = np.zeros((4, 4, 3), np.uint8)
    first, second = files.png(image), files.png(image)
    assert first != second and read_png(first).shape == (4, 4, 3)  # one file per call, even for equal images
    assert files.convert({"a": [image], "b": "text"})["b"] == "text"
    for name in ("h1/out-old.png", "h2/other.png"):
        (served / name).parent.mkdir(parents=True)
        (served / name).write_bytes(b"x")
        os.utime(served / name, (time.time() - 120,) * 2)
    os.utime(first, (time.time() - 120,) * 2)
    files.prune(force=True)
    assert not Path(first).exists() and Path(second).exists()
    assert not (served / "h1").exists() and (served / "h2/other.png").exists()  # only the app's own files


def test_warm_up_runs_one_small_generation(models):
    assert demo.warm_up(models, size=32) > 0
    assert demo.warm_up(demo.Models(None, None, models.class_set, "none", "cva")) == 0


def test_progress_shows_before_any_work(models, dubai, before_map):
    """Generate reports progress (fraction 0, "Preparing") before it reads the edit or touches the model."""
    app = load_app_module()
    h = app.Handlers(models, SIZE, demo.MAX_SIDE, str(ROOT / "out"))
    calls = []

    def progress(fraction, desc=None):
        calls.append((fraction, desc))

    with pytest.raises(ChangeAnywhereError, match="Load an example"):
        h.generate(None, None, 0, [], 0, 0, False, 2, 1.0, 0.0, 1, 1.0, progress=progress)
    assert calls == [(0, "Preparing the change")]


# ---------------------------------------------------------------------------- the launched app (API)
# the tests below launch a server: marked `slow` (left out of the quick loop, `pytest -m "not slow"`)


def test_app_flags_are_built_from_its_config():
    from dataclasses import fields

    from changeanywhere.demo.config import AppConfig, app_parser, parse_app_args

    flags = {a.dest: a.default for a in app_parser()._actions if a.option_strings and a.dest != "help"}
    assert flags == {f.name: f.default for f in fields(AppConfig)}  # a flag per field, same default, no other
    assert parse_app_args([]) == AppConfig()
    argv = ["--model", "M", "--cd-model", "C", "--cd-building-model", "B", "--device", "cpu", "--host", "0.0.0.0",
            "--port", "7861", "--share", "--backend", "onnx", "--cache-max-age", "120", "--no-warm-up",
            "--no-fallback"]
    assert parse_app_args(argv) == AppConfig(
        model="M", cd_model="C", cd_building_model="B", device="cpu", host="0.0.0.0", port=7861, share=True,
        backend="onnx", cache_max_age=120, no_warm_up=True, no_fallback=True)
    with pytest.raises(SystemExit):
        parse_app_args(["--backend", "tensorflow"])


def test_app_main_runs_on_its_config(monkeypatch):
    """`python app.py` hands the parsed config to the model loader, the page and the server (none started here)."""
    app = load_app_module()
    calls = {}
    models = demo.Models(None, None, ClassSet.builtin("dubai-landcover"), "none", "cva")

    def load_models(model, cd_model, **kw):
        calls["load"] = (model, cd_model, kw)
        return models

    monkeypatch.setattr(app.demo, "load_models", load_models)
    monkeypatch.setattr(app, "build_demo", lambda m, cache_max_age: calls.setdefault("build", (m, cache_max_age)))
    monkeypatch.setattr(app, "launch", lambda blocks, **kw: calls.setdefault("launch", kw))
    app.main(["--model", "M", "--device", "cpu", "--backend", "torch", "--no-fallback", "--cache-max-age", "60",
              "--port", "7862"])
    assert calls["load"] == ("M", None, {"device": "cpu", "backend": "torch", "cd_building_model": None,
                                         "fallback": None, "cd_fallback": None, "cd_building_fallback": None})
    assert calls["build"] == (models, 60)
    assert calls["launch"] == {"host": None, "port": 7862, "share": False}


@pytest.fixture(scope="module")
def app_url(models):
    blocks, url = start_app(models)
    yield url
    blocks.close()


@pytest.fixture
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def editor_input(layers=()):
    from gradio_client import handle_file

    return {"background": None, "layers": [handle_file(str(p)) for p in layers], "composite": None}


GENERATE_DEFAULTS = dict(n_events=0, types=["remove", "add", "transition"], ev_seed=0, seed=3, randomize=False,
                         steps=3, content_scale=0.8, drift=1.0, variants=1, guidance=1.0)


def call_generate(client, editor, **kw):
    args = {**GENERATE_DEFAULTS, **kw}
    return client.predict(editor, *args.values(), api_name="/generate")


@pytest.mark.slow
def test_api_upload_events_generate(client, tmp_path, dubai, before_map):
    from gradio_client import handle_file

    assert {"/load_example", "/load_map", "/preview", "/generate", "/show_variant"} <= set(
        client.view_api(return_format="dict")["named_endpoints"]
    )
    map_path = write_png(tmp_path / "map.png", dubai.indices_to_colors(before_map))
    loaded = client.predict(handle_file(str(map_path)), demo.AUTO, False, None, api_name="/load_map")
    assert "map.png" in loaded[2] and "64×64" in loaded[2]
    preview_map, summary = client.predict(editor_input(), 3, ["remove", "add", "transition"], 6,
                                          api_name="/preview")
    assert "of the map changes" in summary
    out = call_generate(client, editor_input(), n_events=3, ev_seed=6, variants=2)
    seed, picker, before, after, truth, pred, metrics, before_m, after_m, slider, zip_path, notice = out
    assert seed == 3 and len(picker["choices"]) == 2 and "F1" in metrics and "Generated 2 pair(s)" in notice
    for path in (before, after, truth, pred, before_m, after_m, *slider):
        assert read_png(path).shape == (SIZE, SIZE, 3)
    shown = demo.display_class_set(dubai)  # the page shows maps in display colours, the zip in the data's
    after_map = read_map(after_m, shown)
    previewed = read_map(preview_map, shown)  # bank content: the shown map is what was pasted, within the preview
    assert not ((after_map != before_map) & (previewed == before_map)).any()
    assert ((after_map != before_map) == (previewed != before_map)).mean() > 0.9
    np.testing.assert_array_equal(read_png(truth)[..., 0] == 255, before_map != after_map)  # label = map diff
    with zipfile.ZipFile(zip_path) as zf:
        assert len([n for n in zf.namelist() if n.startswith("B/")]) == 2
        np.testing.assert_array_equal(read_map(Image.open(io.BytesIO(zf.read("label_B/000000.png"))), dubai),
                                      after_map)  # the dataset's colours on disk
    second = client.predict("2 (seed 4)", api_name="/show_variant")
    assert read_png(second[1]).shape == (SIZE, SIZE, 3) and "Seed 4" in second[4]


@pytest.mark.slow
def test_api_painted_layer(client, tmp_path, dubai):
    client.predict("Town (seed 1)", api_name="/load_example")
    before_map = make_example_map(dubai, size=SIZE, seed=1)
    water = dubai.index_of("water")
    layer = write_png(tmp_path / "layer.png",
                      stroke_layer(before_map.shape, (20, 40, 8, 30), demo.display_class_set(dubai).palette[water],
                                   soft_edge=False))
    out = call_generate(client, editor_input([layer]), randomize=True)
    truth = read_png(out[4])[..., 0] == 255
    expected = np.zeros_like(truth)
    expected[20:40, 8:30] = before_map[20:40, 8:30] != water
    np.testing.assert_array_equal(truth, expected)
    assert 0 <= out[0] < 2**31


LOAD_NOTICE, GENERATE_NOTICE = 2, -1  # where the API's outputs of /load_map and /generate hold their message


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, message",
    [
        ("empty edit", "The edit changes nothing"),
        ("wrong layer size", "Painted layer 1 is 32×32 px but the map is 64×64"),
        ("unknown colours", "not in class set 'dubai-landcover'"),
        ("corrupt file", "Cannot read the land-cover map"),
        ("no map", "Upload a land-cover map first"),
        ("too small", "at least 8×8"),
        ("image size", "before image is 32×32 px but the map is 64×64"),
    ],
)
def test_api_bad_inputs_leave_the_page_as_it_was(client, tmp_path, dubai, before_map, case, message):
    """Each bad input gives its message in the notice beside the control that caused it, and every other output
    is left as it was (skipped), so the loaded map and the last result stay on the page."""
    from gradio_client import handle_file

    good_map = handle_file(str(write_png(tmp_path / "map.png", dubai.indices_to_colors(before_map))))
    client.predict("Town (seed 0)", api_name="/load_example")

    def load(map_file, image=None):
        return client.predict(map_file, demo.AUTO, False, image, api_name="/load_map")

    if case == "empty edit":
        out, notice = call_generate(client, editor_input()), GENERATE_NOTICE
    elif case == "wrong layer size":
        out = call_generate(client, editor_input([write_png(tmp_path / "l.png", np.zeros((32, 32, 4), np.uint8))]))
        notice = GENERATE_NOTICE
    else:
        notice = LOAD_NOTICE
        if case == "unknown colours":
            rgb = dubai.indices_to_colors(before_map).copy()
            rgb[0, 0] = (1, 2, 3)
            out = load(handle_file(str(write_png(tmp_path / "u.png", rgb))))
        elif case == "corrupt file":
            (tmp_path / "c.png").write_bytes(b"garbage")
            out = load(handle_file(str(tmp_path / "c.png")))
        elif case == "no map":
            out = load(None)
        elif case == "too small":
            out = load(handle_file(str(write_png(tmp_path / "s.png", dubai.indices_to_colors(before_map[:5, :5])))))
        elif case == "image size":
            out = load(good_map, handle_file(str(write_png(tmp_path / "i.png", np.zeros((32, 32, 3), np.uint8)))))
        assert "Still loaded: **example Town \\(seed 0\\)**" in out[notice], out[notice]
    assert out[notice].startswith("⚠️") and message in out[notice].replace("\\", ""), out[notice]
    assert "Traceback" not in out[notice]
    skipped = [v for i, v in enumerate(out) if i != notice % len(out)]
    assert all(v is None or v == {"__type__": "update"} for v in skipped), skipped


@pytest.mark.slow
def test_api_generate_before_loading_a_map(app_url):
    from gradio_client import Client

    fresh = Client(app_url, verbose=False)  # a new session: its state holds no map (no page load ran)
    out = call_generate(fresh, editor_input(), n_events=2)
    assert "Load an example or upload a map first" in out[GENERATE_NOTICE]


def file_urls(value) -> list[str]:
    """The served file URLs in an API result (`download_files=False`: files come back as FileData dicts)."""
    if isinstance(value, dict):
        return ([value["url"]] if value.get("url") else []) + [u for v in value.values() for u in file_urls(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in file_urls(v)]
    return []


def fetch_complete(url: str) -> bytes:
    """The body of `url`; raises unless it is as long as its Content-Length and decodes (an image or a zip)."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        body, declared = resp.read(), resp.headers.get("Content-Length")
    if declared is not None and len(body) != int(declared):
        raise AssertionError(f"{url}: {len(body)} of {declared} bytes")
    if url.endswith(".zip"):
        assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None, url
    else:
        Image.open(io.BytesIO(body)).load()
    return body


@pytest.mark.slow
def test_concurrent_calls_on_one_example_serve_complete_files(app_url, dubai):
    """Regression (issue 24): many clients load the same real example and generate the same pair at once, while
    others download the served files; every file response is complete and decodes. Gradio used to write
    identical outputs to one content-addressed cache file in place, truncating it under a response still
    sending it (`Too little data for declared Content-Length`); the app now hands Gradio per-request files,
    which it caches by an atomic rename."""
    import threading

    from gradio_client import Client

    name = demo.example_names(dubai)[0]  # a real example (256² image and map)
    errors: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def caller(i: int) -> None:
        client = Client(app_url, verbose=False, download_files=False)
        for k in range(4):
            try:
                out = client.predict(name, api_name="/load_example")
                if i % 2 and k % 2:
                    out = call_generate(client, editor_input(), n_events=2, ev_seed=1, steps=1)
                    assert not str(out[GENERATE_NOTICE]).startswith("⚠️"), out[GENERATE_NOTICE]
                urls = file_urls(out)
                seen.update(urls)
                for url in urls:
                    fetch_complete(url)
            except Exception as err:  # noqa: BLE001 - every failure is reported
                errors.append(f"caller {i} round {k}: {type(err).__name__}: {err}")

    def downloader() -> None:
        while not stop.is_set():
            for url in list(seen):
                try:
                    fetch_complete(url)
                except Exception as err:  # noqa: BLE001
                    errors.append(f"downloader: {type(err).__name__}: {err}")
                time.sleep(0.005)  # the server runs in this process: leave it the interpreter

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    downloaders = [threading.Thread(target=downloader) for _ in range(2)]
    for t in (*callers, *downloaders):
        t.start()
    for t in callers:
        t.join(timeout=300)
    stop.set()
    for t in downloaders:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in callers), "a call hung"
    assert seen and not errors, errors[:8]


# ------------------------------------------------------------------------ start-up without weights


@pytest.mark.slow
def test_app_starts_without_weights(tmp_path):
    """`python app.py` with no weights at all (no fallback to the embedded ones) still serves the page, which
    says what is missing and offers no generation."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "CHANGEANYWHERE_CD_MODEL": str(tmp_path / "no-cd")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", str(tmp_path / "missing"),
                             "--no-fallback", "--port", str(port), "--device", "cpu"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read().decode()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.poll() is not None else ""
                    pytest.fail(f"app did not start: {out[-2000:]}")
                time.sleep(0.5)
        assert f"no pipeline at {tmp_path / 'missing'}" in config and "no-cd" in config
        assert "No generator loaded: generation is disabled" in config  # the no-generator page, not a fallback
        assert "Generator: using" not in config
        generate_button = next(c for c in json.loads(config)["components"]
                               if c.get("props", {}).get("elem_id") == "generate")
        assert generate_button["props"]["interactive"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=20)

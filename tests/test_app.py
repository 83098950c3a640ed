"""The app (`app.py` at the repository root): its handlers, and the launched app driven by `gradio_client`.
The logic it wires up (`changeanywhere.demo`) is tested in tests/demo/."""

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile

import numpy as np
import pytest
from PIL import Image

from changeanywhere import demo
from changeanywhere.classes import ClassSet
from changeanywhere.errors import ChangeAnywhereError
from changeanywhere.examples import make_example_map
from changeanywhere.maps import read_map
from tests.helpers import (
    GENERATE_NOTICE,
    LOAD_NOTICE,
    ROOT,
    SIZE,
    call_generate,
    editor_input,
    free_port,
    load_app_module,
    read_png,
    stroke_layer,
    write_png,
)


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

"""ChangeAnywhere demo: paint a change on a land-cover map, generate the before/after pair, see a CD model's
zero-shot prediction. UI only: the logic lives in `changeanywhere.demo`.

    python app.py [--model REPO_OR_DIR] [--cd-model REPO_OR_DIR] [--cd-building-model REPO_OR_DIR] [--no-fallback]
                  [--host 0.0.0.0] [--port 7860] [--share] [--cache-max-age 3600]
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import random
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from types import SimpleNamespace

from changeanywhere.telemetry import disable_telemetry

disable_telemetry()  # no telemetry: before Gradio, the Hub and ONNX Runtime read their switches (at import)

import gradio as gr  # noqa: E402

from changeanywhere import demo  # noqa: E402
from changeanywhere.classes import BUILTIN_CLASS_SETS, ClassSet, rgb_to_hex  # noqa: E402
from changeanywhere.demo.config import CACHE_MAX_AGE_S, parse_app_args  # noqa: E402
from changeanywhere.errors import ChangeAnywhereError  # noqa: E402
from changeanywhere.events import EVENT_TYPES  # noqa: E402
from changeanywhere.labels import change_label_image  # noqa: E402

try:  # ZeroGPU Spaces: run generation on a borrowed GPU (a no-op elsewhere)
    import spaces
except ImportError:
    spaces = None

# Gradio's queue summarises its event analytics after every event with pandas options that pandas 3 deprecated
# (Pandas4Warning, a DeprecationWarning): silence exactly those two messages from that module, nothing else.
# pyproject.toml's pytest `filterwarnings` holds the same two lines (pytest resets filters for each test).
PANDAS3_WARNINGS = ("'future.no_silent_downcasting' is deprecated", "The copy keyword is deprecated")
for _message in PANDAS3_WARNINGS:
    warnings.filterwarnings("ignore", message=_message, category=DeprecationWarning, module=r"gradio\.queueing")

log = logging.getLogger("changeanywhere.app")
MAX_FILE_SIZE = "20mb"
GPU_QUEUE = "gpu"
# "What counts as change": (shown, demo.COUNTS key)
COUNTS_CHOICES = [("any land-cover change", "any"), ("building change", "building")]
CONTENT_CHOICES = [("real objects (bank)", "bank"), ("painted (diffusion)", "diffusion")]
IMAGE_HEIGHT = 300
MAP_VIEW = ["grow-image", "pixel-map"]  # CSS classes of the images that show maps (no smoothing)
# small maps are shown enlarged; maps and masks with hard pixel edges (no smoothing)
CSS = """
.grow-image .image-frame img { object-fit: contain !important; }
.pixel-map img { image-rendering: pixelated; }
"""


def error_text(err: Exception, where: str) -> str:
    """What to tell the user about an error: library and Gradio errors as they are (capitalised, unless they
    start with a file name), anything unexpected as a short message (the traceback goes to the server log)."""
    if isinstance(err, ChangeAnywhereError):
        text = str(err)
    elif isinstance(err, gr.Error):
        text = err.message
    else:
        log.error("unexpected error in %s", where, exc_info=err)
        hint = " Try fewer variants or a smaller map." if "out of memory" in str(err).lower() else ""
        text = f"Something went wrong ({type(err).__name__}).{hint} The details are in the server log."
    first_word = re.split(r"[\s:]", text, maxsplit=1)[0]
    return text[:1].upper() + text[1:] if first_word.isalpha() else text  # a file name stays as given


def keep_page(fn: Callable, outputs: Sequence, notice, still: Callable[..., str] | None = None) -> Callable:
    """Wrap an event handler so that no error breaks the page: on any error each of its `outputs` keeps its value
    (`gr.skip()`), and `notice` (one of them, a Markdown beside the control that caused it) says what went wrong
    until the next action. `still(*args)`: a line on what is still loaded, added to the message."""
    n, at = len(outputs), next(i for i, c in enumerate(outputs) if c is notice)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the page must survive whatever a handler raises
            out = [gr.skip()] * n
            message = f"⚠️ {demo.md_escape(error_text(err, fn.__name__))}"
            out[at] = message + (f"  \n{still(*args)}" if still is not None and still(*args) else "")
            return tuple(out)

    return wrapper


def as_files(fn: Callable, files: demo.OutputFiles) -> Callable:
    """Wrap an event handler so that the images it returns reach Gradio as files of their own (see
    `changeanywhere.demo.files`: arrays would be cached in place, a race between users)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return files.convert(fn(*args, **kwargs))

    return wrapper


def on_gpu(fn: Callable) -> Callable:
    return spaces.GPU(duration=120)(fn) if spaces is not None else fn


def still_loaded(session, *_) -> str:
    """For a failed load: the map that stays loaded."""
    return f"Still loaded: **{demo.md_escape(session.source)}** (the editor keeps it)." if session else ""


class Handlers:
    """The UI's event handlers: each takes the components' values and returns theirs; the logic is `demo`'s."""

    def __init__(self, models: demo.Models, example_size: int, max_side: int, zip_dir: str,
                 zip_max_age: float = demo.ZIP_MAX_AGE_S):
        self.models, self.cs = models, models.class_set
        self.view = demo.display_class_set(self.cs)  # the colours shown and painted (the zip keeps the data's)
        self.example_size, self.max_side, self.zip_dir = example_size, max_side, zip_dir
        self.zip_max_age = zip_max_age

    def start_session(self, before_map, image, source: str, notices: Sequence[str]):
        session = demo.start_session(before_map, image, source, notices, self.models.size_multiple, self.max_side)
        for n in session.fit_notices:
            gr.Warning(n)
        no_change = demo.describe_change(demo.make_after_map(session.before_map, self.cs))
        return (session, demo.editor_value(session.before_map, self.view), session.before_image, session.summary,
                self.view.indices_to_colors(session.before_map), no_change)

    def load_example(self, _session, name: str):
        before_map, image, notices = demo.load_example(name, self.cs, self.example_size)
        return self.start_session(before_map, image, f"example {name}", notices)

    def load_upload(self, _session, map_file: str | None, choice: str, snap: bool, image_file: str | None):
        if not map_file:
            raise gr.Error("Upload a land-cover map first (a colour or index PNG).", print_exception=False)
        before_map, notices = demo.read_uploaded_map(map_file, self.cs, choice, bool(snap))
        image = demo.read_before_image(image_file) if image_file else None
        return self.start_session(before_map, image, f"upload {os.path.basename(map_file)}", notices)

    def preview(self, session, editor, n_events, types, ev_seed):
        change = demo.session_change(session, editor, self.cs, n_events, types, ev_seed, brush=self.view)
        return self.view.indices_to_colors(change.after), demo.describe_change(change)

    def details(self, gen: demo.Generation | None, index: int):
        if gen is None:
            raise gr.Error("Generate a pair first.", print_exception=False)
        if not 0 <= index < len(gen.samples):
            raise gr.Error(f"There are {len(gen.samples)} variant(s); pick 1..{len(gen.samples)}.",
                           print_exception=False)
        s = gen.samples[index]
        p = s.pair
        return (
            p.before_image,
            p.after_image,
            change_label_image(p.before_map, p.after_map, p.label),
            demo.prediction_overlay(s),
            demo.metrics_markdown(s, gen.settings["cd_method"]),
            self.view.indices_to_colors(p.before_map),
            self.view.indices_to_colors(p.after_map),
            (p.before_image, p.after_image),
        )

    def generate(self, session, editor, n_events, types, ev_seed, seed, randomize, steps, content_scale, drift,
                 variants, guidance, nonchange=demo.DEFAULT_NONCHANGE, counts=COUNTS_CHOICES[0][1],
                 content=demo.DEFAULT_CONTENT, progress=gr.Progress()):  # noqa: B008 - Gradio's progress idiom
        progress(0, desc="Preparing the change")  # the bar shows from the first moment, not the first step
        t0 = time.perf_counter()
        change = demo.session_change(session, editor, self.cs, n_events, types, ev_seed, brush=self.view)
        seed = random.randrange(2**31) if randomize else int(seed or 0)
        gen = demo.generate_variants(
            self.models,
            session.before_map,
            change,
            session.before_image,
            seed=seed,
            num_inference_steps=int(steps),
            content_scale=float(content_scale),
            drift=float(drift),
            variants=int(variants or 1),
            guidance_scale=float(guidance) if guidance is not None else None,
            progress=lambda f, desc: progress(f, desc=desc),
            nonchange=float(nonchange if nonchange is not None else demo.DEFAULT_NONCHANGE),
            counts=str(counts or COUNTS_CHOICES[0][1]),
            content=str(content or demo.DEFAULT_CONTENT),
        )
        progress(1, desc="Packaging the sample")
        path = demo.write_sample_zip(gen, self.cs, self.zip_dir, source=session.source, max_age_s=self.zip_max_age)
        choices = [f"{i + 1} (seed {s.pair.seed})" for i, s in enumerate(gen.samples)]
        picker = gr.Radio(choices=choices, value=choices[0], visible=len(choices) > 1)
        done = f"Generated {len(choices)} pair(s) in {time.perf_counter() - t0:.1f} s (seed {seed})."
        return (gen, seed, picker, *self.details(gen, 0), path, done)

    def show_variant(self, gen, choice: str):
        try:
            index = int(str(choice).split()[0]) - 1
        except ValueError:
            raise gr.Error(f"Unknown variant {choice!r}.", print_exception=False) from None
        return (*self.details(gen, index), gr.skip())


def build_demo(models: demo.Models, *, example_size: int = 256, max_side: int = demo.MAX_SIDE,
               cache_max_age: int = CACHE_MAX_AGE_S) -> gr.Blocks:
    """The Blocks app around `models` (`example_size`: side of the procedural example maps; files served are
    deleted `cache_max_age` seconds after they were made). UI layout and event wiring only: the handlers are
    `Handlers`' methods; each panel has its builder."""
    cs = models.class_set
    view = demo.display_class_set(cs)
    zip_dir = tempfile.mkdtemp(prefix="changeanywhere-app-")
    atexit.register(shutil.rmtree, zip_dir, ignore_errors=True)
    h = Handlers(models, example_size, max_side, zip_dir, zip_max_age=cache_max_age)
    files = demo.OutputFiles(zip_dir, max_age_s=min(cache_max_age, demo.OUTPUT_FILE_MAX_AGE_S),
                             served=gr.utils.get_upload_folder(), served_max_age_s=cache_max_age)
    with gr.Blocks(title="ChangeAnywhere", delete_cache=(max(cache_max_age // 2, 10), cache_max_age)) as blocks:
        gr.Markdown(
            "# ChangeAnywhere\nSynthetic change-detection pairs from one land-cover map: pick or upload a map, "
            "paint a change (or add random events), generate the before/after images, and see how a "
            "change-detection model trained only on synthetic pairs does on them, zero-shot."
        )
        gr.Markdown(demo.status_markdown(models), elem_id="status")
        states = SimpleNamespace(session=gr.State(), result=gr.State())
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                before = _map_panel(cs)
            with gr.Column(scale=2, min_width=360):
                paint = _paint_panel(cs, view, example_size)
            with gr.Column(scale=1, min_width=280):
                after = _after_map_panel()
        panels = (states, before, paint, after, _generate_panel(models), _result_panel())
        ui = SimpleNamespace(**{name: c for panel in panels for name, c in vars(panel).items()})
        _wire_events(blocks, ui, h, files)
    blocks.swatch_css = demo.swatch_names_css(view)  # the class names under the brush colours (see `launch`)
    return blocks


def _map_panel(cs: ClassSet) -> SimpleNamespace:
    """1. The before map: an example, or an uploaded map (and optionally its real image)."""
    gr.Markdown("### 1. Before map")
    with gr.Tab("Example"):
        names = demo.example_names(cs)
        example = gr.Dropdown(names, value=names[0], label="Example map",
                              info="real: a Dubai aerial image with its map; Town: drawn by code",
                              elem_id="example")
    with gr.Tab("Upload"):
        map_file = gr.File(label="Land-cover map (colour or index PNG, or GeoTIFF)",
                           file_types=["image", ".tif", ".tiff"],
                           elem_id="map-file")
        class_choice = gr.Dropdown([demo.AUTO, *BUILTIN_CLASS_SETS], value=demo.AUTO,
                                   label="Class set", info=f"the generator draws {cs.name}")
        snap = gr.Checkbox(False, label="Snap unknown colours to the nearest class")
        image_file = gr.File(label="Real before image (optional, same size; GeoTIFF: bands 1-3)",
                             file_types=["image", ".tif", ".tiff"])
        load_button = gr.Button("Use this map", elem_id="load-map")
    load_notice = gr.Markdown(label="Loaded map", elem_id="load-notice")
    source_image = gr.Image(label="Real before image", format="png",
                            interactive=False, height=200, elem_id="source-image",
                            elem_classes=["grow-image"])
    return SimpleNamespace(example=example, map_file=map_file, class_choice=class_choice, snap=snap,
                           image_file=image_file, load_button=load_button, load_notice=load_notice,
                           source_image=source_image)


def _paint_panel(cs: ClassSet, view: ClassSet, example_size: int) -> SimpleNamespace:
    """2. The editor (one brush colour per class) and the random change events."""
    colours = [rgb_to_hex(c.color) for c in view.classes]
    gr.Markdown("### 2. Paint the change")
    gr.HTML(demo.legend_html(view), padding=False)
    editor = gr.ImageEditor(
        type="numpy",
        image_mode="RGBA",
        format="png",
        sources=(),
        transforms=(),
        layers=False,
        brush=gr.Brush(colors=colours, default_color=colours[demo.default_brush(cs)], color_mode="fixed",
                       default_size=max(2, example_size // 24)),
        eraser=gr.Eraser(default_size=max(2, example_size // 24)),
        label="Before map: paint with a class colour (brush), erase or undo strokes",
        height=460,
        elem_id="editor",
    )
    with gr.Accordion("Random change events", open=True):
        with gr.Row():
            n_events = gr.Slider(0, 10, 0, step=1, label="Events")
            ev_seed = gr.Number(0, precision=0, label="Events seed")
        types = gr.CheckboxGroup(list(EVENT_TYPES), value=list(EVENT_TYPES), label="Event types")
    return SimpleNamespace(editor=editor, n_events=n_events, ev_seed=ev_seed, types=types)


def _after_map_panel() -> SimpleNamespace:
    """The after map, previewed live, and the change summary."""
    gr.Markdown("### After map")
    after_preview = gr.Image(label="After map (live)", format="png", interactive=False,
                             height=IMAGE_HEIGHT, elem_id="after-preview", elem_classes=MAP_VIEW)
    change_md = gr.Markdown(label="Change summary", elem_id="change-summary")
    return SimpleNamespace(after_preview=after_preview, change_md=change_md)


def _generate_panel(models: demo.Models) -> SimpleNamespace:
    """3. The sampler's settings and the Generate button."""
    gr.Markdown("### 3. Generate")
    with gr.Row():
        content = gr.Radio(CONTENT_CHOICES, value=demo.DEFAULT_CONTENT, label="Content of the change",
                           elem_id="content", info="real objects: buildings and textures cut from real imagery "
                           "(the bank), fitted into the scene; painted: drawn by the diffusion model")
        nonchange = gr.Slider(0, 2, demo.DEFAULT_NONCHANGE, step=0.1, label="Realistic non-change",
                              elem_id="nonchange",
                              info="unchanged areas differ as real dates do: objects re-rendered, light, "
                              "haze, misregistration, noise (0: B copies A there; never in the label)")
    with gr.Row():
        seed = gr.Number(0, precision=0, label="Seed", minimum=0)
        randomize = gr.Checkbox(True, label="Randomize seed")
        variants = gr.Slider(1, demo.MAX_VARIANTS, 1, step=1, label="Variants (after images)")
    with gr.Accordion("Advanced: the sampler", open=False), gr.Row():
        steps = gr.Slider(1, 200, models.default_steps, step=1, label="Denoising steps")
        content_scale = gr.Slider(0, 1, demo.DEFAULT_CONTENT_SCALE, step=0.01, label="Content scale s",
                                  info="share of steps anchored to the before image")
        drift = gr.Slider(0, 2, demo.DEFAULT_DRIFT, step=0.1, label="Drift",
                          info="seeded light/colour change of the whole after image (0: off)")
        guidance = gr.Slider(1, 5, models.default_guidance, step=0.1, label="Guidance scale")
    counts = gr.Radio(COUNTS_CHOICES, value=COUNTS_CHOICES[0][1], label="What counts as change", elem_id="counts",
                      info="the label marks this change only (other simulated changes still happen), and the "
                      "matching CD model predicts: building change as LEVIR-CD counts it, any change as DSIFN-CD")
    generate_button = gr.Button("Generate", variant="primary", elem_id="generate",
                                interactive=models.pipe is not None)
    generate_notice = gr.Markdown(elem_id="generate-notice")
    return SimpleNamespace(seed=seed, randomize=randomize, variants=variants, steps=steps,
                           content_scale=content_scale, drift=drift, guidance=guidance, nonchange=nonchange,
                           counts=counts, content=content,
                           generate_button=generate_button, generate_notice=generate_notice)


def _result_panel() -> SimpleNamespace:
    """4. The pair, the label, the zero-shot prediction, both maps, a slider and the zip."""
    output = dict(format="png", interactive=False, height=IMAGE_HEIGHT)
    image_view = dict(elem_classes=["grow-image"], **output)
    gr.Markdown("### 4. Result")
    variant = gr.Radio(["1"], value="1", label="Variant", visible=False)
    with gr.Row():
        before_img = gr.Image(label="Before image (A)", elem_id="out-before", **image_view)
        after_img = gr.Image(label="After image (B)", elem_id="out-after", **image_view)
        truth_img = gr.Image(label="Ground-truth change", elem_id="out-label", elem_classes=MAP_VIEW,
                             **output)
        pred_img = gr.Image(label="Zero-shot prediction (TP/FP/FN)", elem_id="out-pred", elem_classes=MAP_VIEW,
                            **output)
    metrics_md = gr.Markdown(label="Metrics", elem_id="metrics")
    with gr.Row():
        before_map_img = gr.Image(label="Before map", elem_classes=MAP_VIEW, **output)
        after_map_img = gr.Image(label="After map", elem_classes=MAP_VIEW, **output)
        slider = gr.ImageSlider(label="Before / after", format="png", type="numpy", max_height=IMAGE_HEIGHT)
    download = gr.DownloadButton("Download sample (.zip)", elem_id="download")
    return SimpleNamespace(variant=variant, download=download, details=[
        before_img, after_img, truth_img, pred_img, metrics_md, before_map_img, after_map_img, slider])


def _wire_events(blocks: gr.Blocks, ui: SimpleNamespace, h: Handlers, files: demo.OutputFiles) -> None:
    """Every event of the page, each with its `api_name`."""
    loaded = [ui.session, ui.editor, ui.source_image, ui.load_notice, ui.after_preview, ui.change_md]
    event_inputs = [ui.session, ui.editor, ui.n_events, ui.types, ui.ev_seed]
    previewed = [ui.after_preview, ui.change_md]
    generated = [ui.result, ui.seed, ui.variant, *ui.details, ui.download, ui.generate_notice]
    load_example = keep_page(as_files(h.load_example, files), loaded, ui.load_notice, still_loaded)
    load_upload = keep_page(as_files(h.load_upload, files), loaded, ui.load_notice, still_loaded)
    preview = keep_page(as_files(h.preview, files), previewed, ui.change_md)
    generate = on_gpu(keep_page(as_files(h.generate, files), generated, ui.generate_notice))
    show_variant = keep_page(as_files(h.show_variant, files), [*ui.details, ui.generate_notice],
                             ui.generate_notice)
    # a load shows its progress on the notice only: an overlay on the image editor makes it redraw its
    # canvas, which can leave it blank for seconds on a slow machine (the editor keeps its map on an error)
    on_notice = dict(show_progress_on=[ui.load_notice])
    blocks.load(load_example, [ui.session, ui.example], loaded, api_name="startup", **on_notice)
    ui.example.input(load_example, [ui.session, ui.example], loaded, api_name="load_example", **on_notice)
    ui.load_button.click(load_upload, [ui.session, ui.map_file, ui.class_choice, ui.snap, ui.image_file], loaded,
                         api_name="load_map", **on_notice)
    gr.on(
        [ui.editor.change, ui.n_events.release, ui.types.input, ui.ev_seed.submit],
        preview,
        event_inputs,
        previewed,
        api_name="preview",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    ui.generate_button.click(
        generate,
        [*event_inputs, ui.seed, ui.randomize, ui.steps, ui.content_scale, ui.drift, ui.variants, ui.guidance,
         ui.nonchange, ui.counts, ui.content],
        generated,
        api_name="generate",
        concurrency_limit=1,
        concurrency_id=GPU_QUEUE,
    )
    ui.variant.input(show_variant, [ui.result, ui.variant], [*ui.details, ui.generate_notice],
                     api_name="show_variant")


def launch(blocks: gr.Blocks, *, host: str | None = None, port: int | None = None, share: bool = False,
           prevent_thread_lock: bool = False):
    """Queue and serve (host/port default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860)."""
    blocks.queue(max_size=32, default_concurrency_limit=4)
    css = CSS + getattr(blocks, "swatch_css", "")
    return blocks.launch(server_name=host, server_port=port, share=share, max_file_size=MAX_FILE_SIZE,
                         prevent_thread_lock=prevent_thread_lock, footer_links=["api", "gradio"], css=css)


def main(argv: Sequence[str] | None = None) -> None:
    # our INFO lines only: the ONNX exporter's libraries log hundreds of INFO lines on the first start
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("changeanywhere").setLevel(logging.INFO)
    cfg = parse_app_args(argv)
    fallback = {"fallback": None, "cd_fallback": None, "cd_building_fallback": None} if cfg.no_fallback else {}
    models = demo.load_models(cfg.model, cfg.cd_model, device=cfg.device, backend=cfg.backend,
                              cd_building_model=cfg.cd_building_model, **fallback)
    for notice in models.notices:
        log.warning(notice)
    if not cfg.no_warm_up and models.pipe is not None:
        log.info("warmed up in %.1f s (one small generation: the first Generate pays no set-up)",
                 demo.warm_up(models))
    launch(build_demo(models, cache_max_age=cfg.cache_max_age), host=cfg.host, port=cfg.port, share=cfg.share)


if __name__ == "__main__":
    main()

"""The interactive demo's logic: plain functions that `app.py` wires to a Gradio UI (and tests call directly).

The flow: load a before land-cover map (a procedural example, or an upload whose class set is detected from
its colours), optionally with its real image; turn painted brush strokes and/or random change events into an
after map; generate the before image (when there is none) and the after image(s); predict the change with a
change-detection (CD) model, zero-shot, and score it against the ground-truth label; package the sample as a
zip. Errors are `ChangeAnywhereError`s whose text is shown to the user as it is.

Sizes: a map larger than `MAX_SIDE` on its longer side is downscaled (nearest for the map, area averaging for
the image); every map is then centre-cropped to a multiple of the model's `size_multiple`. A map smaller than
one multiple is refused (there is nothing sensible to pad it with).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .cd import DEFAULT_CD_MODEL, BinaryConfusion, cva_predict, error_overlay, load_cd_model, predict
from .classes import BUILTIN_CLASS_SETS, ClassSet, pack_rgb, rgb_to_hex
from .errors import ChangeAnywhereError, MapSizeError, UnknownColorsError, WeightsNotFoundError
from .events import EVENT_TYPES, ChangeResult, UserEdit, simulate_changes
from .examples import make_example_map
from .generation import IMAGE_DIRS, META_DIR, PairSettings, render_pairs, sample_id, write_sample
from .hub import DEFAULT_MODEL, load_pipeline

MODEL_ENV = "CHANGEANYWHERE_MODEL"
CD_MODEL_ENV = "CHANGEANYWHERE_CD_MODEL"
MAX_SIDE = 512  # longer side of an uploaded map above which it is downscaled
ALPHA_THRESHOLD = 128  # a stroke pixel counts as painted from this opacity on (strokes are antialiased)
AUTO = "auto-detect"
FALLBACK_CLASS_SET = "dubai-landcover"  # offered for editing when no generator could be loaded
EXAMPLE_SEEDS = (0, 1, 2, 3)
DEFAULT_STEPS = 20  # DDIM steps per image: a 256² pair + prediction within ~15 s on a 2-core CPU (bench/)
DEFAULT_CONTENT_SCALE = PairSettings.content_scale[0]  # 1: unchanged region anchored to the end
DEFAULT_DRIFT = PairSettings.drift
ZIP_MAX_AGE_S = 3600  # packaged samples older than this are deleted when a new one is written

ProgressFn = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------------- models


@dataclass
class Models:
    """What the demo runs on: the generator (None when no weights could be loaded), the CD model (None: the
    training-free CVA baseline predicts instead), and messages about what was (not) loaded."""

    pipe: Any
    cd_model: Any
    class_set: ClassSet
    model_source: str
    cd_source: str
    notices: list[str] = field(default_factory=list)

    @property
    def size_multiple(self) -> int:
        return self.pipe.size_multiple if self.pipe is not None else 8

    @property
    def default_guidance(self) -> float:
        return float(self.pipe.config.default_guidance_scale) if self.pipe is not None else 1.0

    @property
    def cd_method(self) -> str:
        return "CD model" if self.cd_model is not None else "CVA + Otsu (training-free baseline)"

    def require_pipe(self) -> Any:
        if self.pipe is None:
            raise WeightsNotFoundError(
                "no generator is loaded, so nothing can be generated: "
                + (self.notices[0] if self.notices else "weights missing")
            )
        return self.pipe


def load_models(
    model: str | os.PathLike | None = None,
    cd_model: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    fallback: str | os.PathLike | None = DEFAULT_MODEL,
    cd_fallback: str | os.PathLike | None = DEFAULT_CD_MODEL,
) -> Models:
    """Load the generator and the CD model, never raising for missing weights.

    `model` / `cd_model` (or the environment variables `CHANGEANYWHERE_MODEL` / `CHANGEANYWHERE_CD_MODEL`)
    name a Hub repo id or a folder; when absent or unloadable the embedded defaults under `checkpoints/` are
    used (`fallback` / `cd_fallback`; None: none). What failed is recorded in `notices`, for the UI to show.
    """
    notices: list[str] = []
    model = model or os.environ.get(MODEL_ENV) or None
    pipe, source = None, str(model or fallback)
    for candidate in dict.fromkeys(str(s) for s in (model, fallback) if s):
        try:
            pipe, source = load_pipeline(candidate, device=device), candidate
            break
        except Exception as err:  # noqa: BLE001 - the app must start whatever the weights are
            notices.append(f"Generator: {_load_error(err, candidate)}")
    if pipe is not None and pipe.class_set is None:
        notices.append(f"Generator {source!r} stores no class set, so its maps cannot be read or painted.")
        pipe = None
    if pipe is not None and notices:
        notices.append(f"Generator: using {source}.")
    class_set = pipe.class_set if pipe is not None else BUILTIN_CLASS_SETS[FALLBACK_CLASS_SET]

    cd_model = cd_model or os.environ.get(CD_MODEL_ENV) or None
    cd, cd_source = None, "cva"
    for candidate in dict.fromkeys(str(s) for s in (cd_model, cd_fallback) if s):
        try:
            cd, cd_source = load_cd_model(candidate, device=device), candidate
            break
        except Exception as err:  # noqa: BLE001
            notices.append(f"Change detection: {_load_error(err, candidate)}")
    if cd is None:
        notices.append(
            "No change-detection model available: the prediction shown is the training-free CVA + Otsu baseline."
        )
    return Models(pipe, cd, class_set, source, cd_source, notices)


def _load_error(err: Exception, source: str) -> str:
    if isinstance(err, ChangeAnywhereError):
        return str(err)
    detail = str(err).splitlines()[0][:200] if str(err) else "no details"
    return f"could not load {source!r} ({type(err).__name__}: {detail})"


def status_markdown(models: Models) -> str:
    """One paragraph for the top of the page: what is loaded, and what went wrong."""
    cs = models.class_set
    gen = (
        f"Generator **{_short(models.model_source)}** ({cs.name}: {', '.join(cs.names)}; "
        f"sizes in multiples of {models.size_multiple} px) on {models.pipe.device}"
        if models.pipe is not None
        else "**No generator loaded: generation is disabled** (editing still works)"
    )
    cd = f"CD model **{_short(models.cd_source)}**" if models.cd_model is not None else "CD: CVA baseline"
    lines = [f"{gen} · {cd}"]
    lines += [f"> ⚠️ {n}" for n in models.notices]
    return "\n\n".join(lines)


def _short(source: str) -> str:
    p = Path(source)
    return p.name if p.is_absolute() else source


# ------------------------------------------------------------------------------------------ maps and images


def example_names() -> list[str]:
    return [f"Town (seed {s})" for s in EXAMPLE_SEEDS]


def load_example(name: str, class_set: ClassSet, size: int) -> np.ndarray:
    """The procedural example map called `name` (see `example_names`), `size`² px."""
    if name not in example_names():
        raise ChangeAnywhereError(f"unknown example {name!r}; choose one of: {', '.join(example_names())}")
    return make_example_map(class_set, size=size, seed=EXAMPLE_SEEDS[example_names().index(name)])


def _open_image(path: str | os.PathLike, what: str) -> Image.Image:
    name = Path(path).name
    try:
        im = Image.open(path)
        im.load()
        return im
    except FileNotFoundError:
        raise ChangeAnywhereError(f"the {what} {name} was not found (upload it again)") from None
    except Image.DecompressionBombError:
        raise ChangeAnywhereError(f"the {what} {name} has too many pixels to open safely: downscale it first") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise ChangeAnywhereError(
            f"cannot read the {what} {name}: not a readable image ({type(err).__name__}); upload a PNG"
        ) from None


def _is_colour_map(im: Image.Image) -> bool:
    """RGB(A) maps, and palette maps whose used palette entries are the colours of some built-in class set."""
    if im.mode in ("RGB", "RGBA", "RGBX"):
        return True
    if im.mode != "P":
        return False
    raw = np.asarray(im)
    palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    used = np.unique(raw)
    if used.max() >= len(palette):
        return False
    colours = set(pack_rgb(palette[used]).tolist())
    return any(colours <= _known_colours(cs) for cs in BUILTIN_CLASS_SETS.values())


def _known_colours(cs: ClassSet) -> set[int]:
    return set(pack_rgb(np.array([*(c.color for c in cs.classes), *cs.ignore_colors], np.uint8)).tolist())


def detect_class_set(rgb: np.ndarray, candidates: Sequence[ClassSet]) -> ClassSet | None:
    """The first class set whose class and ignore colours cover every colour of an HxWx3 map, or None."""
    colours = set(np.unique(pack_rgb(rgb[..., :3])).tolist())
    return next((cs for cs in candidates if colours <= _known_colours(cs)), None)


def read_uploaded_map(
    path: str | os.PathLike, class_set: ClassSet, choice: str = AUTO, snap: bool = False
) -> tuple[np.ndarray, list[str]]:
    """An uploaded land-cover map file -> HxW index map in `class_set` (the generator's), and notices.

    Colour maps: the class set is detected from the colours (or `choice` names it); a map of another class set
    than the generator's is refused with the reason. Index maps (greyscale PNG) are read with the generator's
    class set. Unknown colours are an error unless `snap` maps each to its nearest class colour.
    """
    if choice not in (AUTO, *BUILTIN_CLASS_SETS):
        raise ChangeAnywhereError(
            f"unknown class set {choice!r}; choose {AUTO} or one of {', '.join(BUILTIN_CLASS_SETS)}"
        )
    if choice != AUTO and choice != class_set.name:
        raise ChangeAnywhereError(_wrong_class_set(BUILTIN_CLASS_SETS[choice], class_set))
    im = _open_image(path, "land-cover map")
    name = Path(path).name
    if not _is_colour_map(im):
        try:
            return class_set.read_map(im), [f"{name}: read as an index map of {class_set.name!r}."]
        except ChangeAnywhereError as err:
            raise type(err)(f"{name}: {err}") from None
    rgb = np.asarray(im.convert("RGB"))
    candidates = [class_set] if choice != AUTO else [class_set, *BUILTIN_CLASS_SETS.values()]
    found = detect_class_set(rgb, candidates)
    if found is not None and found.name != class_set.name:
        raise ChangeAnywhereError(f"{name}: " + _wrong_class_set(found, class_set))
    if found is None and not snap:
        try:
            class_set.colors_to_indices(rgb)
        except UnknownColorsError as err:
            raise UnknownColorsError(
                f"{name}: {str(err).split(' Use the matching')[0]}. Upload a lossless (PNG) map of "
                f"{class_set.name!r}, or tick 'snap unknown colours' to map each to its nearest class."
            ) from None
    notices = [f"{name}: unknown colours snapped to the nearest class colour."] if found is None else []
    return class_set.colors_to_indices(rgb, snap=True), notices


def _wrong_class_set(found: ClassSet, model_set: ClassSet) -> str:
    return (
        f"this map uses the class set {found.name!r} ({', '.join(found.names)}), but the loaded generator "
        f"draws {model_set.name!r} ({', '.join(model_set.names)}). Upload a {model_set.name!r} map, or start "
        f"the app with a generator trained on {found.name!r} (--model / {MODEL_ENV})."
    )


def read_before_image(path: str | os.PathLike) -> np.ndarray:
    """An uploaded real before image -> HxWx3 uint8."""
    return np.asarray(_open_image(path, "before image").convert("RGB"))


def fit_to_model(
    before_map: np.ndarray, image: np.ndarray | None, multiple: int, max_side: int = MAX_SIDE
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Downscale a map (and its image) to at most `max_side`, then centre-crop both to a multiple of `multiple`."""
    h, w = before_map.shape
    if image is not None and image.shape[:2] != (h, w):
        raise MapSizeError(
            f"the before image is {image.shape[1]}×{image.shape[0]} px but the map is {w}×{h} px: "
            "upload the image that the map labels, at the same size"
        )
    notices = []
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        before_map = cv2.resize(before_map, size, interpolation=cv2.INTER_NEAREST)
        if image is not None:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        notices.append(f"The map was {w}×{h} px: downscaled to {size[0]}×{size[1]} px (limit {max_side} px).")
        h, w = before_map.shape
    h2, w2 = h // multiple * multiple, w // multiple * multiple
    if h2 == 0 or w2 == 0:
        raise MapSizeError(
            f"the map is {w}×{h} px; the generator needs at least {multiple}×{multiple} px (sides are multiples "
            f"of {multiple})"
        )
    if (h2, w2) != (h, w):
        y, x = (h - h2) // 2, (w - w2) // 2
        before_map = before_map[y : y + h2, x : x + w2]
        image = image[y : y + h2, x : x + w2] if image is not None else None
        notices.append(f"Centre-cropped from {w}×{h} to {w2}×{h2} px (sides must be multiples of {multiple}).")
    return np.ascontiguousarray(before_map), None if image is None else np.ascontiguousarray(image), notices


def editor_value(before_map: np.ndarray, class_set: ClassSet) -> dict[str, Any]:
    """The image editor's value for a map: its colours as an opaque RGBA background and one empty stroke layer.

    (Sending the empty layer also makes the editor report the user's first stroke: Gradio's editor ignores
    the first change after it is mounted, and adding a layer from the server counts as that one.)
    """
    rgb = class_set.indices_to_colors(before_map)
    rgba = np.dstack([rgb, np.full(before_map.shape, 255, np.uint8)])
    return {"background": rgba, "layers": [np.zeros_like(rgba)], "composite": rgba}


def legend_html(class_set: ClassSet) -> str:
    """A colour swatch and name per class (the brush colours of the editor)."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:14px;white-space:nowrap">'
        f'<span style="width:16px;height:16px;border:1px solid #888;margin-right:5px;background:{rgb_to_hex(c.color)}">'
        f"</span>{c.name}</span>"
        for c in class_set.classes
    )
    return f'<div style="line-height:2">{items}</div>'


# ----------------------------------------------------------------------------------------------- editing


def painted_edits(value: dict[str, Any] | None, class_set: ClassSet, shape: tuple[int, int]) -> list[UserEdit]:
    """Brush strokes of the editor's layers -> one `UserEdit` per painted class.

    A pixel is painted where a layer's alpha reaches `ALPHA_THRESHOLD`; its class is the class colour nearest
    to the stroke colour (antialiased edges blend colours). Later layers paint over earlier ones. The editor's
    background is ignored: the map itself is kept on the server.
    """
    if not value:
        return []
    target = np.full(shape, -1, np.int16)
    for i, layer in enumerate(value.get("layers") or []):
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.ndim != 3 or arr.shape[2] != 4 or arr.dtype != np.uint8:
            raise ChangeAnywhereError(
                f"painted layer {i + 1} must be an RGBA image (transparent where unpainted), got an array of "
                f"shape {arr.shape}"
            )
        if arr.shape[:2] != shape:
            raise MapSizeError(
                f"painted layer {i + 1} is {arr.shape[1]}×{arr.shape[0]} px but the map is {shape[1]}×{shape[0]} "
                "px: paint on the loaded map (reload it if the canvas was cropped or resized)"
            )
        painted = arr[..., 3] >= ALPHA_THRESHOLD
        if painted.any():
            target[painted] = nearest_class(arr[painted][:, :3], class_set)
    return [UserEdit(target == c, int(c)) for c in np.unique(target[target >= 0])]


def nearest_class(rgb: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """N×3 colours -> class index of the nearest class colour (RGB distance)."""
    d = ((rgb[:, None, :].astype(np.int32) - class_set.palette[None].astype(np.int32)) ** 2).sum(-1)
    return d.argmin(1)


def make_after_map(
    before_map: np.ndarray,
    class_set: ClassSet,
    edits: Sequence[UserEdit] = (),
    num_events: int = 0,
    event_types: Sequence[str] = EVENT_TYPES,
    seed: int = 0,
) -> ChangeResult:
    """Random change events (if any), then the painted edits, applied to the before map."""
    num_events = int(num_events)
    if num_events > 0 and not event_types:
        raise ChangeAnywhereError(f"tick at least one event type ({', '.join(EVENT_TYPES)}) or set events to 0")
    return simulate_changes(
        before_map,
        class_set,
        seed=int(seed),
        num_events=max(num_events, 0),
        event_types=tuple(event_types) or EVENT_TYPES,
        edits=edits,
    )


def describe_change(result: ChangeResult) -> str:
    """Markdown: what changed and how much of the map."""
    changed = float(result.change_mask.mean())
    if not result.change_mask.any():
        return "No change yet: paint with a class brush, or add random events."
    events = [e for e in result.events if e["area"]]
    lines = [f"**{changed:.1%}** of the map changes ({int(result.change_mask.sum()):,} px):"]
    lines += [f"- {e['type']}: {e['from']} → {e['to']} ({e['area']:,} px)" for e in events]
    return "\n".join(lines)


def require_change(result: ChangeResult) -> None:
    if not result.change_mask.any():
        raise ChangeAnywhereError(
            "the edit changes nothing: paint a region with a class brush (a class different from the map "
            "there), or set the number of random events above 0"
        )


# -------------------------------------------------------------------------------------------- generation


@dataclass
class Sample:
    """One generated pair (a record of `generation.render_pairs`: the dataset generator's own format) with the
    CD model's zero-shot prediction and its scores."""

    record: dict[str, Any]  # A, B (HxWx3 uint8), label (0/255), label_A, label_B (index maps), change_type, meta
    prediction: np.ndarray  # HxW bool
    metrics: dict[str, float]

    @property
    def before_image(self) -> np.ndarray:
        return self.record["A"]

    @property
    def after_image(self) -> np.ndarray:
        return self.record["B"]

    @property
    def before_map(self) -> np.ndarray:
        return self.record["label_A"]

    @property
    def after_map(self) -> np.ndarray:
        return self.record["label_B"]

    @property
    def change_mask(self) -> np.ndarray:
        return self.record["label"] > 0

    @property
    def seed(self) -> int:
        return int(self.record["meta"]["seed"])

    @property
    def content_scale(self) -> float:
        return float(self.record["meta"]["content_scale"])


@dataclass
class Generation:
    samples: list[Sample]
    settings: dict[str, Any]
    timings: dict[str, float]


def generate(
    models: Models,
    before_map: np.ndarray,
    change: ChangeResult,
    before_image: np.ndarray | None = None,
    *,
    seed: int = 0,
    num_inference_steps: int = DEFAULT_STEPS,
    content_scale: float = DEFAULT_CONTENT_SCALE,
    drift: float = DEFAULT_DRIFT,
    variants: int = 1,
    guidance_scale: float | None = None,
    progress: ProgressFn | None = None,
) -> Generation:
    """Before image (synthesized from the map with `seed` when none is given), `variants` after images (pair
    seeds `seed`, `seed + 1`, ..., made by the dataset generator's `render_pairs`), and the zero-shot CD
    prediction of each, scored against its label."""
    pipe = models.require_pipe()
    require_change(change)
    steps, variants, seed = int(num_inference_steps), int(variants), int(seed)
    if not 1 <= steps <= 1000:
        raise ChangeAnywhereError(f"steps must be 1..1000, got {steps}")
    if not 1 <= variants <= 16:
        raise ChangeAnywhereError(f"variants must be 1..16, got {variants}")
    if not 0.0 <= float(content_scale) <= 1.0:
        raise ChangeAnywhereError(f"content scale must be in [0, 1], got {content_scale}")
    if before_map.shape != change.after.shape:
        raise MapSizeError("the after map does not match the before map: reload the map and edit again")
    total = steps * (2 if before_image is None else 1) + 1
    done = 0

    def step(desc: str) -> Callable:
        def callback(_pipe, i, _t, kwargs):
            nonlocal done
            done += 1
            if progress is not None:
                progress(done / total, f"{desc}: step {i + 1}/{steps}")
            return kwargs

        return callback

    timings: dict[str, float] = {"synthesis": 0.0}
    synthesized = before_image is None
    if synthesized:
        t0 = time.perf_counter()
        out = pipe.synthesize(
            before_map,
            seed=seed,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            callback_on_step_end=step("before image"),
        )
        before_image = np.asarray(out.images[0])
        timings["synthesis"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    settings = PairSettings(steps=steps, content_scale=(float(content_scale),) * 2, drift=float(drift),
                            guidance_scale=guidance_scale)
    settings.check()
    records = render_pairs(
        pipe,
        [before_image] * variants,
        [change] * variants,
        [seed + i for i in range(variants)],
        models.class_set,
        settings,
        callback_on_step_end=step("after image" + ("s" if variants > 1 else "")),
    )
    timings["change"] = time.perf_counter() - t0
    if progress is not None:
        progress(done / total, f"change detection ({models.cd_method})")
    t0 = time.perf_counter()
    samples = []
    for rec in records:
        pred = zero_shot_prediction(models.cd_model, rec["A"], rec["B"])
        samples.append(Sample(rec, pred, pair_metrics(pred, label_of(rec["label_A"], rec["label_B"]))))
    timings["cd"] = time.perf_counter() - t0
    info = {
        "model": models.model_source,
        "class_set": models.class_set.name,
        "cd_method": models.cd_method,
        "cd_model": models.cd_source,
        "before_image": "synthesized" if synthesized else "uploaded",
        "before_seed": seed if synthesized else None,
        "num_inference_steps": steps,
        "content_scale": float(content_scale),
        "drift": float(drift),
        "guidance_scale": settings.resolved(pipe).guidance_scale,
        "variants": variants,
    }
    return Generation(samples, info, timings)


def label_of(before_map: np.ndarray, after_map: np.ndarray) -> np.ndarray:
    """CD label: 1 changed, 0 unchanged, 255 where either map is 'ignore'."""
    label = (before_map != after_map).astype(np.uint8)
    label[(before_map == ClassSet.IGNORE) | (after_map == ClassSet.IGNORE)] = 255
    return label


def zero_shot_prediction(cd_model: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """HxW bool change mask of a before/after pair: the CD model's, or CVA + Otsu when there is none."""
    return np.asarray(predict(cd_model, a, b) if cd_model is not None else cva_predict(a, b), bool)


def pair_metrics(prediction: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1, IoU (change class), OA and kappa of one prediction against its label."""
    return BinaryConfusion().update(prediction, label).report()


def prediction_overlay(sample: Sample) -> np.ndarray:
    """The after image darkened, true positives white, false positives red, false negatives green."""
    return error_overlay(sample.after_image, sample.prediction, label_of(sample.before_map, sample.after_map))


def metrics_markdown(sample: Sample, method: str) -> str:
    m = sample.metrics
    return (
        f"**Zero-shot prediction** ({method}) against the ground truth: **F1 {m['f1']:.3f} · IoU {m['iou']:.3f}** "
        f"(precision {m['precision']:.3f}, recall {m['recall']:.3f}; {m['change_fraction']:.1%} of pixels changed)."
        f"  \nOverlay: white = hit (TP), red = false alarm (FP), green = missed (FN).  \n"
        f"Seed {sample.seed}, content scale {sample.content_scale:.2f}."
    )


def mask_image(mask: np.ndarray) -> np.ndarray:
    """Bool mask -> 0/255 uint8 image."""
    return mask.astype(np.uint8) * 255


# ----------------------------------------------------------------------------------------------- download


def write_sample_zip(gen: Generation, class_set: ClassSet, out_dir: str | os.PathLike, source: str = "") -> Path:
    """Zip the pairs in the layout of `changeanywhere generate` (`A/`, `B/`, `label/` 0/255, `label_A/`,
    `label_B/` colour maps, `change_type/`, `meta/`; one `<id>.png` per variant) plus `metadata.json` (the
    app's settings, the source map, and the zero-shot prediction's scores)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _prune(out_dir)
    path = out_dir / f"changeanywhere-{uuid.uuid4().hex[:8]}.zip"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        folder = Path(tmp)
        for d in (*IMAGE_DIRS, META_DIR):
            (folder / d).mkdir()
        for i, s in enumerate(gen.samples):
            write_sample(folder, i, s.record, class_set)
        meta = {
            **gen.settings,
            "source": source,
            "samples": [{"id": sample_id(i), "seed": s.seed, "content_scale": s.content_scale,
                         "prediction_metrics": s.metrics} for i, s in enumerate(gen.samples)],
            "class_set_description": class_set.to_dict(),
        }
        (folder / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(folder).as_posix())
    return path


def _prune(folder: Path) -> None:
    now = time.time()
    for p in folder.glob("changeanywhere-*.zip"):
        try:
            if now - p.stat().st_mtime > ZIP_MAX_AGE_S:
                p.unlink()
        except OSError:
            pass

"""Generating in the app: the before image (the real one, or synthesized from the map), `variants` after
images made by the dataset generator's builder (`pairs.build_pairs`), and each pair's zero-shot change
prediction scored against its label."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cd import BinaryConfusion, CDModel, cva_predict, error_overlay, predict
from ..errors import MapSizeError, ParameterError
from ..events import ChangeResult
from ..generator.nonchange import describe_nonchange
from ..labels import change_target
from ..pairs import ChangePair, PairSettings, build_pairs, synthesize_before
from .editing import require_change
from .models import COUNTS, Models
from .uploads import MAX_SIDE

DEFAULT_CONTENT_SCALE = PairSettings.content_scale[0]  # 1: unchanged region anchored to the end
DEFAULT_DRIFT = PairSettings.drift
DEFAULT_NONCHANGE = PairSettings.nonchange
DEFAULT_CONTENT = PairSettings.content
MAX_VARIANTS = 4  # after images per generation

ProgressFn = Callable[[float, str], None]


@dataclass
class Sample:
    """One generated pair with the CD model's zero-shot prediction (HxW bool) and its scores."""

    pair: ChangePair
    prediction: np.ndarray
    metrics: dict[str, float]


@dataclass
class Generation:
    samples: list[Sample]
    settings: dict[str, Any]
    timings: dict[str, float]


class _Progress:
    """Turns the pipeline's per-step callbacks into one progress fraction over all denoising phases."""

    def __init__(self, report: ProgressFn | None, steps: int, total: int):
        self.report, self.steps, self.total, self.done = report, steps, total, 0

    def phase(self, desc: str) -> Callable:
        def callback(_pipe, i, _t, kwargs):
            self.done += 1
            if self.report is not None:
                self.report(self.done / self.total, f"{desc}: step {i + 1}/{self.steps}")
            return kwargs

        return callback

    def say(self, desc: str) -> None:
        if self.report is not None:
            self.report(self.done / self.total, desc)


def generate_variants(
    models: Models,
    before_map: np.ndarray,
    change: ChangeResult,
    before_image: np.ndarray | None = None,
    *,
    seed: int = 0,
    num_inference_steps: int | None = None,  # None: the model's measured default, as everywhere
    content_scale: float = DEFAULT_CONTENT_SCALE,
    drift: float = DEFAULT_DRIFT,
    variants: int = 1,
    guidance_scale: float | None = None,
    progress: ProgressFn | None = None,
    nonchange: float = DEFAULT_NONCHANGE,
    counts: str = "any",
    content: str = DEFAULT_CONTENT,
) -> Generation:
    """Before image (synthesized from the map with `seed` when none is given), `variants` after images (pair
    seeds `seed`, `seed + 1`, ...), and the zero-shot CD prediction of each, scored against its label.
    `counts` (a `COUNTS` key) is what counts as change: the label's classes and the CD model that predicts;
    `content` what fills the change ("bank": real objects of the embedded bank, "diffusion": the model's painting)."""
    pipe = models.require_pipe()
    require_change(change)
    variants, seed = int(variants), int(seed)
    if not 1 <= variants <= MAX_VARIANTS:
        raise ParameterError(f"`variants` must be 1..{MAX_VARIANTS}, got {variants}", "variants")
    if counts not in COUNTS:
        raise ParameterError(f"`counts` (what counts as change) must be one of {', '.join(COUNTS)}, got {counts!r}",
                             "counts")
    if before_map.shape != change.after.shape:
        raise MapSizeError("the after map does not match the before map: reload the map and edit again")
    steps_in = None if num_inference_steps is None else int(num_inference_steps)
    settings, record = pipe.resolve(PairSettings(  # checked there, the model's defaults filled in
        num_inference_steps=steps_in, content_scale=(float(content_scale),) * 2, drift=float(drift),
        nonchange=float(nonchange), guidance_scale=guidance_scale, change_classes=COUNTS[counts], content=content))
    steps = settings.num_inference_steps
    synthesized = before_image is None
    track = _Progress(progress, steps, steps * (2 if synthesized else 1) + 1)
    timings: dict[str, float] = {"synthesis": 0.0}
    t0 = time.perf_counter()
    if synthesized:
        (before_image,) = synthesize_before(pipe, [before_map], [seed], settings, track.phase("before image"))
        timings["synthesis"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = build_pairs(pipe, [before_image] * variants, [change] * variants, [seed + i for i in range(variants)],
                        models.class_set, settings,
                        callback_on_step_end=track.phase("after image" + ("s" if variants > 1 else "")))
    timings["change"] = time.perf_counter() - t0
    cd_model, cd_method, cd_source = models.cd_for(counts)
    track.say(f"change detection ({cd_method})")
    t0 = time.perf_counter()
    samples = []
    for pair in pairs:  # scored against the label: the change that counts
        pred = zero_shot_prediction(cd_model, pair.before_image, pair.after_image)
        target = change_target(pair.before_map, pair.after_map, pair.label)
        samples.append(Sample(pair, pred, pair_metrics(pred, target)))
    timings["cd"] = time.perf_counter() - t0
    info = {
        "model": models.model_source,
        "class_set": models.class_set.name,
        "counts": counts,
        "cd_method": cd_method,
        "cd_model": cd_source,
        "before_image": "synthesized" if synthesized else "uploaded",
        "before_seed": seed if synthesized else None,
        "sampler": record,  # the one record of the sampler settings (`SamplerSettings.record`)
        "content": content,
        "variants": variants,
    }
    return Generation(samples, info, timings)


def zero_shot_prediction(cd_model: CDModel | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """HxW bool change mask of a before/after pair: the CD model's, or CVA + Otsu when there is none."""
    if cd_model is None:
        return np.asarray(cva_predict(a, b), bool)
    # the app's pairs are at most MAX_SIDE² (512²): one pass over the whole pair (the models are fully
    # convolutional) instead of nine overlapping 256² tiles, about 2x faster on a CPU
    return np.asarray(predict(cd_model, a, b, tile_size=min(max(a.shape[:2]), MAX_SIDE), overlap=0), bool)


def pair_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1, IoU (change class), OA and kappa of one prediction against its CD target."""
    return BinaryConfusion().update(prediction, target).report()


def prediction_overlay(sample: Sample) -> np.ndarray:
    """The after image darkened, true positives white, false positives red, false negatives green."""
    p = sample.pair
    return error_overlay(p.after_image, sample.prediction, change_target(p.before_map, p.after_map))


def metrics_markdown(sample: Sample, method: str) -> str:
    m = sample.metrics
    return (
        f"**Zero-shot prediction** ({method}) against the ground truth: **F1 {m['f1']:.3f} · IoU {m['iou']:.3f}** "
        f"(precision {m['precision']:.3f}, recall {m['recall']:.3f}; {m['change_fraction']:.1%} of pixels changed)."
        f"  \nOverlay: white = hit (TP), red = false alarm (FP), green = missed (FN).  \n"
        f"Seed {sample.pair.seed}, content scale {sample.pair.content_scale:.2f}.  \n"
        f"Content: {describe_content(sample.pair.meta.get('content'))}.  \n"
        f"Realistic non-change: {describe_nonchange(sample.pair.meta.get('nonchange'))}."
    )


def describe_content(record: dict | None, most: int = 6) -> str:
    """Where the change's content came from, in words: every pasted object's source tile and position."""
    if not record or record.get("source") != "bank":
        return "painted by the diffusion model"
    pastes = record.get("pastes") or []
    words = []
    for p in pastes[:most]:
        if p["kind"] == "instance":
            words.append(f"{p['class']} from {p['source']} at x {p['x']}, y {p['y']}")
        elif p["kind"] == "texture" and p.get("from") == "bank":
            words.append(f"{p['class']} texture from {p['source']} at x {p['x']}, y {p['y']}")
        elif p["kind"] in ("texture", "scene"):
            words.append(f"{p['class']} from this image at x {p['x']}, y {p['y']}")
        else:
            words.append(f"{p['class']} inpainted from its surroundings")
    more = f" and {len(pastes) - most} more" if len(pastes) > most else ""
    return (f"real objects from the bank ({'; '.join(words)}{more}); "
            f"{record.get('refinement', 'not refined')}") if words else "nothing pasted"



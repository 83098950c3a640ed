"""The generator's quality report: semantic fidelity, autoencoder reconstruction, and change realism.

- semantic fidelity: a segmenter trained on real imagery scores real val tiles against their maps (the
  ceiling) and images synthesized from the same maps; the ratio of the two mIoUs is the headline figure;
- colour: saturation (per-pixel spread over R, G, B) of reconstructions and of synthesized images, each ÷
  the real tiles', and the autoencoder's per-channel mean error;
- autoencoder: PSNR and SSIM of reconstructed val tiles;
- change mode (the pipeline's default settings): SSIM and mean absolute difference of the unchanged region
  between the real before tile and the after tile, with drift off and on, next to the two references that
  bracket it (the autoencoder's copy and an unrelated synthesis from the same map); and whether the after
  image shows the new class inside the changed pixels (segmenter accuracy there).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .classes import ClassSet
from .data import DEFAULT_VAL_PATTERN, find_pairs, load_pairs, spread, tiles
from .events import simulate_changes
from .generator.drift import DriftSettings, apply_drift, draw_drift
from .generator.pipeline import ChangeAnywherePipeline
from .image_metrics import channel_means, colour_spread, psnr, ssim
from .image_utils import tensor_to_uint8, uint8_to_tensor
from .segmenter import LandCoverSegmenter, confusion_matrix, iou_per_class


@dataclass
class EvalTiles:
    """Fixed evaluation tiles: uint8 images (N,H,W,3) and index maps (N,H,W)."""

    images: np.ndarray
    maps: np.ndarray


def select_tiles(
    data_root: str,
    class_set: ClassSet,
    split: str | None = "val",
    size: int = 256,
    max_tiles: int = 32,
    val_pattern: Sequence[str] = DEFAULT_VAL_PATTERN,
) -> EvalTiles:
    """Deterministic, evenly spread non-overlapping tiles of a split (the same tiles on every run)."""
    loaded = load_pairs(find_pairs(data_root, split=split, val_pattern=tuple(val_pattern)), class_set)
    picked = spread(tiles(loaded, size), max_tiles)
    return EvalTiles(np.stack([t[0] for t in picked]), np.stack([t[1] for t in picked]))


def _miou(cm: np.ndarray) -> tuple[float, list[float]]:
    ious = iou_per_class(cm)
    return float(np.nanmean(ious)), [None if np.isnan(v) else round(float(v), 4) for v in ious]


def evaluate_generator(
    pipe: ChangeAnywherePipeline,
    segmenter: LandCoverSegmenter,
    eval_tiles: EvalTiles,
    class_set: ClassSet,
    *,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    batch_size: int = 4,
    seed: int = 0,
    include_change: bool = True,
) -> dict[str, Any]:
    """Run every measurement on `eval_tiles`; returns a JSON-serialisable dict of figures."""
    start = time.time()
    out = _render(pipe, eval_tiles, class_set, num_inference_steps, guidance_scale, batch_size, seed, include_change)
    report = _synthesis_report(segmenter, eval_tiles, class_set, out["generated"], out["recon"])
    report.update({
        "num_tiles": len(eval_tiles.maps),
        "tile_size": int(eval_tiles.maps.shape[1]),
        "num_inference_steps": pipe.check_inputs(num_inference_steps, guidance_scale, 1.0)[0],
        "guidance_scale": guidance_scale if guidance_scale is not None else pipe.config.default_guidance_scale,
        "guidance_interval": list(pipe.resolve_guidance_interval(None)),
        "seed": seed,
    })
    if include_change:
        report.update(_change_report(segmenter, eval_tiles, class_set, out, seed))
    report["wall_s"] = round(time.time() - start, 1)
    return report


def _render(
    pipe: ChangeAnywherePipeline, eval_tiles: EvalTiles, class_set: ClassSet, num_inference_steps: int,
    guidance_scale: float | None, batch_size: int, seed: int, include_change: bool,
) -> dict[str, np.ndarray]:
    """Images synthesized from the maps, autoencoder copies, and (change mode, default settings, drift off)
    after images of seeded simulated events, with their after maps."""
    real, maps = eval_tiles.images, eval_tiles.maps
    n = len(maps)
    kw = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, output_type="pt")
    parts: dict[str, list[np.ndarray]] = {"generated": [], "recon": [], "after_images": [], "after_maps": []}
    for b in tqdm([slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)], desc="eval-generator"):
        seeds = [seed + i for i in range(b.start, b.stop)]
        parts["generated"].append(tensor_to_uint8(pipe.synthesize(list(maps[b]), seed=seeds, **kw).images))
        with torch.no_grad():
            x = uint8_to_tensor(real[b]).to(pipe.device)
            parts["recon"].append(tensor_to_uint8(pipe.decode_latents(pipe.encode_images(x))))
        if include_change:
            afters = [simulate_changes(m, class_set, seed=s).after for m, s in zip(maps[b], seeds, strict=True)]
            out = pipe.change(list(real[b]), list(maps[b]), afters, seed=seeds, **kw)
            parts["after_images"].append(tensor_to_uint8(out.images))
            parts["after_maps"].append(out.after_maps)
    return {k: np.concatenate(v) for k, v in parts.items() if v}


def _synthesis_report(
    segmenter: LandCoverSegmenter, eval_tiles: EvalTiles, class_set: ClassSet, generated: np.ndarray,
    recon: np.ndarray,
) -> dict[str, Any]:
    """Semantic fidelity of synthesized images, colour of synthesized and reconstructed images, AE quality."""
    real, maps, k = eval_tiles.images, eval_tiles.maps, class_set.num_classes
    real_miou, real_ious = _miou(confusion_matrix(segmenter.predict(uint8_to_tensor(real)).numpy(), maps, k))
    gen_miou, gen_ious = _miou(confusion_matrix(segmenter.predict(uint8_to_tensor(generated)).numpy(), maps, k))
    real_spread = float(np.mean([colour_spread(x) for x in real]))
    pairs = list(zip(real, recon, strict=True))
    return {
        "ae_psnr": round(float(np.mean([psnr(a, b) for a, b in pairs])), 2),
        "ae_ssim": round(float(np.mean([ssim(a, b) for a, b in pairs])), 4),
        "ae_saturation_ratio": round(float(np.mean([colour_spread(x) for x in recon])) / real_spread, 4),
        "ae_channel_mean_error": [round(float(v), 2) for v in
                                  np.mean([np.abs(channel_means(a) - channel_means(b)) for a, b in pairs], axis=0)],
        "generated_saturation_ratio": round(float(np.mean([colour_spread(x) for x in generated])) / real_spread, 4),
        "real_saturation": round(real_spread, 4),
        "real_miou": round(real_miou, 4),
        "generated_miou": round(gen_miou, 4),
        "fidelity_ratio": round(gen_miou / real_miou, 4) if real_miou > 0 else None,
        "per_class": {
            name: {"real_iou": r, "generated_iou": g}
            for name, r, g in zip(class_set.names, real_ious, gen_ious, strict=True)
        },
    }


def _change_report(
    segmenter: LandCoverSegmenter, eval_tiles: EvalTiles, class_set: ClassSet, out: dict[str, np.ndarray], seed: int
) -> dict[str, Any]:
    """How well the after images keep the before image (drift off and on) and show the new class."""
    real, maps = eval_tiles.images, eval_tiles.maps
    after_imgs, after_maps = out["after_images"], out["after_maps"]
    unchanged = [(m == a) for m, a in zip(maps, after_maps, strict=True)]
    changed = ~np.stack(unchanged)
    pred_after = segmenter.predict(uint8_to_tensor(after_imgs)).numpy()
    cm_after = confusion_matrix(pred_after, after_maps, class_set.num_classes)
    drift = DriftSettings()
    drifted = np.stack([apply_drift(x, draw_drift(torch.Generator().manual_seed(seed + i), drift))
                        for i, x in enumerate(after_imgs)])
    return {
        "unchanged_ssim": _mean_masked_ssim(real, after_imgs, unchanged),
        "unchanged_mad": _mean_masked_mad(real, after_imgs, unchanged),
        "unchanged_ssim_drift": _mean_masked_ssim(real, drifted, unchanged),
        "unchanged_mad_drift": _mean_masked_mad(real, drifted, unchanged),
        "copy_unchanged_ssim": _mean_masked_ssim(real, out["recon"], unchanged),
        "unrelated_unchanged_ssim": _mean_masked_ssim(real, out["generated"], unchanged),
        "change_after_miou": round(_miou(cm_after)[0], 4),
        "changed_accuracy": round(float((pred_after[changed] == after_maps[changed]).mean()), 4)
        if changed.any() else None,
        "changed_fraction": round(float(changed.mean()), 4),
    }


def _mean_masked_mad(a: np.ndarray, b: np.ndarray, masks: Sequence[np.ndarray]) -> float:
    """Mean absolute difference (0-255) inside each mask, averaged over images."""
    vals = [np.abs(x.astype(np.float64) - y.astype(np.float64))[m].mean() for x, y, m in zip(a, b, masks, strict=True)
            if m.any()]
    return round(float(np.mean(vals)), 3)


def _mean_masked_ssim(a: np.ndarray, b: np.ndarray, masks: Sequence[np.ndarray]) -> float:
    vals = [ssim(x, y, m) for x, y, m in zip(a, b, masks, strict=True) if m.any()]
    return round(float(np.mean(vals)), 4)


def format_report(report: dict[str, Any]) -> str:
    """A human-readable table of the report's figures."""
    rows = [
        ("semantic fidelity: real mIoU (ceiling)", report["real_miou"]),
        ("semantic fidelity: generated mIoU", report["generated_miou"]),
        ("semantic fidelity: ratio", report["fidelity_ratio"]),
        ("synthesis: saturation ratio (generated ÷ real)", report["generated_saturation_ratio"]),
        ("autoencoder PSNR (dB)", report["ae_psnr"]),
        ("autoencoder SSIM", report["ae_ssim"]),
        ("autoencoder saturation ratio (recon ÷ real)", report["ae_saturation_ratio"]),
        ("autoencoder channel mean error (R, G, B; 0-255)", report["ae_channel_mean_error"]),
    ]
    if "unchanged_ssim" in report:
        rows += [
            ("change: unchanged-region SSIM (drift off)", report["unchanged_ssim"]),
            ("change: unchanged-region MAD, 0-255 (drift off)", report["unchanged_mad"]),
            ("change: unchanged-region SSIM (drift on)", report["unchanged_ssim_drift"]),
            ("change: unchanged-region MAD, 0-255 (drift on)", report["unchanged_mad_drift"]),
            ("  reference: autoencoder copy SSIM", report["copy_unchanged_ssim"]),
            ("  reference: unrelated synthesis SSIM", report["unrelated_unchanged_ssim"]),
            ("change: after-image mIoU vs after map", report["change_after_miou"]),
            ("change: accuracy inside the changed pixels", report["changed_accuracy"]),
        ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines.append(f"{'class':<14}{'real IoU':>10}{'generated IoU':>15}")
    for name, v in report["per_class"].items():
        lines.append(f"{name:<14}{_fmt(v['real_iou']):>10}{_fmt(v['generated_iou']):>15}")
    lines.append(
        f"({report['num_tiles']} tiles of {report['tile_size']}², {report['num_inference_steps']} steps, "
        f"guidance {report['guidance_scale']}, {report['wall_s']} s)"
    )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"

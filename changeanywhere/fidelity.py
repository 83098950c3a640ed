"""The generator's quality report: semantic fidelity, autoencoder reconstruction, and change realism.

- semantic fidelity: a segmenter trained on real imagery scores real val tiles against their maps (the
  ceiling) and images synthesized from the same maps; the ratio of the two mIoUs is the headline figure;
- autoencoder: PSNR and SSIM of reconstructed val tiles;
- change mode: SSIM of the unchanged region between the real before tile and the generated after tile, next
  to the two references that bracket it: the autoencoder's copy (too close) and an image synthesized from
  scratch from the same map (unrelated). A "reasonable change" sits between them.
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
from .data import DEFAULT_VAL_PATTERN, find_pairs, load_pairs, tiles
from .events import simulate_changes
from .image_metrics import psnr, ssim
from .image_utils import tensor_to_uint8
from .pipeline import ChangeAnywherePipeline
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
    all_tiles = tiles(loaded, size)
    idx = np.unique(np.linspace(0, len(all_tiles) - 1, min(max_tiles, len(all_tiles))).round().astype(int))
    picked = [all_tiles[i] for i in idx]
    return EvalTiles(np.stack([t[0] for t in picked]), np.stack([t[1] for t in picked]))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _miou(cm: np.ndarray) -> tuple[float, list[float]]:
    ious = iou_per_class(cm)
    return float(np.nanmean(ious)), [None if np.isnan(v) else round(float(v), 4) for v in ious]


def evaluate_generator(
    pipe: ChangeAnywherePipeline,
    segmenter: LandCoverSegmenter,
    eval_tiles: EvalTiles,
    class_set: ClassSet,
    *,
    num_inference_steps: int = 50,
    guidance_scale: float | None = None,
    batch_size: int = 4,
    seed: int = 0,
    include_change: bool = True,
) -> dict[str, Any]:
    """Run every measurement on `eval_tiles`; returns a JSON-serialisable dict of figures."""
    start = time.time()
    k = class_set.num_classes
    n = len(eval_tiles.maps)
    real = eval_tiles.images
    maps = eval_tiles.maps
    batches = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]

    cm_real = confusion_matrix(segmenter.predict(_to_tensor(real)).numpy(), maps, k)

    generated, recon, after_imgs, after_maps = [], [], [], []
    for b in tqdm(batches, desc="eval-generator"):
        seeds = [seed + i for i in range(b.start, b.stop)]
        gen = pipe.synthesize(
            list(maps[b]),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            seed=seeds,
            output_type="pt",
        ).images
        generated.append(tensor_to_uint8(gen))
        with torch.no_grad():
            x = _to_tensor(real[b]).to(pipe.device)
            recon.append(tensor_to_uint8(pipe.decode_latents(pipe.encode_images(x))))
        if include_change:
            afters = [simulate_changes(m, class_set, seed=s).after for m, s in zip(maps[b], seeds, strict=True)]
            out = pipe.change(
                list(real[b]),
                list(maps[b]),
                afters,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                seed=seeds,
                output_type="pt",
            )
            after_imgs.append(tensor_to_uint8(out.images))
            after_maps.append(out.after_maps)
    generated, recon = np.concatenate(generated), np.concatenate(recon)
    cm_gen = confusion_matrix(segmenter.predict(_to_tensor(generated)).numpy(), maps, k)
    real_miou, real_ious = _miou(cm_real)
    gen_miou, gen_ious = _miou(cm_gen)
    report: dict[str, Any] = {
        "real_miou": round(real_miou, 4),
        "generated_miou": round(gen_miou, 4),
        "fidelity_ratio": round(gen_miou / real_miou, 4) if real_miou > 0 else None,
        "per_class": {
            name: {"real_iou": r, "generated_iou": g}
            for name, r, g in zip(class_set.names, real_ious, gen_ious, strict=True)
        },
        "autoencoder_psnr": round(float(np.mean([psnr(a, b) for a, b in zip(real, recon, strict=True)])), 2),
        "autoencoder_ssim": round(float(np.mean([ssim(a, b) for a, b in zip(real, recon, strict=True)])), 4),
        "num_tiles": n,
        "tile_size": int(maps.shape[1]),
        "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale if guidance_scale is not None else pipe.config.default_guidance_scale,
        "seed": seed,
    }
    if include_change:
        after_imgs, after_maps = np.concatenate(after_imgs), np.concatenate(after_maps)
        unchanged = [(m == a) for m, a in zip(maps, after_maps, strict=True)]
        changed = ~np.stack(unchanged)
        pred_after = segmenter.predict(_to_tensor(after_imgs)).numpy()
        cm_after = confusion_matrix(pred_after, after_maps, k)
        report.update(
            {
                "change_unchanged_ssim": _mean_masked_ssim(real, after_imgs, unchanged),
                "copy_unchanged_ssim": _mean_masked_ssim(real, recon, unchanged),
                "unrelated_unchanged_ssim": _mean_masked_ssim(real, generated, unchanged),
                "change_after_miou": round(_miou(cm_after)[0], 4),
                "changed_pixel_accuracy": round(float((pred_after[changed] == after_maps[changed]).mean()), 4)
                if changed.any()
                else None,
                "changed_fraction": round(float(changed.mean()), 4),
            }
        )
    report["wall_s"] = round(time.time() - start, 1)
    return report


def _mean_masked_ssim(a: np.ndarray, b: np.ndarray, masks: Sequence[np.ndarray]) -> float:
    vals = [ssim(x, y, m) for x, y, m in zip(a, b, masks, strict=True) if m.any()]
    return round(float(np.mean(vals)), 4)


def format_report(report: dict[str, Any]) -> str:
    """A human-readable table of the report's figures."""
    rows = [
        ("semantic fidelity: real mIoU (ceiling)", report["real_miou"]),
        ("semantic fidelity: generated mIoU", report["generated_miou"]),
        ("semantic fidelity: ratio", report["fidelity_ratio"]),
        ("autoencoder PSNR (dB)", report["autoencoder_psnr"]),
        ("autoencoder SSIM", report["autoencoder_ssim"]),
    ]
    if "change_unchanged_ssim" in report:
        rows += [
            ("change: unchanged-region SSIM before/after", report["change_unchanged_ssim"]),
            ("  reference: autoencoder copy", report["copy_unchanged_ssim"]),
            ("  reference: unrelated synthesis", report["unrelated_unchanged_ssim"]),
            ("change: after-image mIoU vs after map", report["change_after_miou"]),
            ("change: pixel accuracy in changed regions", report["changed_pixel_accuracy"]),
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

"""The generator's quality report: semantic fidelity, autoencoder reconstruction, and change realism.

- semantic fidelity: a segmenter trained on real imagery scores real val tiles against their maps (the
  ceiling) and images synthesized from the same maps; the ratio of the two mIoUs is the headline figure;
- colour: saturation (per-pixel spread over R, G, B) of reconstructions and of synthesized images, each ÷
  the real tiles', and the autoencoder's per-channel mean error;
- autoencoder: PSNR and SSIM of reconstructed val tiles;
- change mode (the pipeline's default settings): SSIM and mean absolute difference of the unchanged region
  between the real before tile and the after tile, with drift off and on, next to the two references that
  bracket it (the autoencoder's copy and an unrelated synthesis from the same map); and whether the after
  image shows the new class inside the changed pixels (segmenter accuracy there);
- realistic non-change (the default): how much unchanged and changed pixels differ from A after a fitted
  per-channel colour map (real pairs: 23–35 / 255 on both), segmenter accuracy on re-rendered unchanged pixels,
  the colour jump across the change boundary next to real object boundaries, and the KID of painted content
  against real crops of the same class (ImageNet EfficientNet-Lite0 features, `features.py`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from .bank import ObjectBank
from .classes import ClassSet
from .data import DEFAULT_VAL_PATTERN, find_pairs, load_pairs, spread, tiles
from .generator.drift import DriftSettings, apply_drift, colour_stats, draw_drift
from .generator.pipeline import ChangeAnywherePipeline
from .generator.settings import SamplerSettings
from .image_metrics import channel_means, colour_fit_residuals, colour_spread, kid, psnr, ring_contrast, ssim
from .image_utils import tensor_to_uint8, uint8_to_tensor
from .pairs import PairSettings, build_pairs, simulate_events
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
    guidance_interval: Sequence[float] | None = None,
    batch_size: int = 4,
    seed: int = 0,
    include_change: bool = True,
    settings: PairSettings | None = None,
    bank: ObjectBank | None = None,
) -> dict[str, Any]:
    """Run every measurement on `eval_tiles`; returns a JSON-serialisable dict of figures. `settings`: the pairs'
    settings, as `generate` takes them (default: `PairSettings()`); `bank`: the object bank of `content="bank"`."""
    start = time.time()
    # checked before any work and resolved once (None: the model's); its record is the report's sampler block
    settings, record = pipe.resolve(settings or PairSettings(), num_inference_steps=num_inference_steps,
                                    guidance_scale=guidance_scale, guidance_interval=guidance_interval)
    out = _render(pipe, eval_tiles, class_set, batch_size, seed, include_change, settings, bank)
    report = _synthesis_report(segmenter, eval_tiles, class_set, out["generated"], out["recon"])
    report.update({
        "num_tiles": len(eval_tiles.maps),
        "tile_size": int(eval_tiles.maps.shape[1]),
        "seed": seed,
        "sampler": record,
        "content": {"source": settings.content, "strength": settings.content_strength,
                    "bank": bank.origin if bank is not None and settings.content == "bank" else None},
    })
    if include_change:
        report.update(_change_report(segmenter, eval_tiles, class_set, out, seed))
    report["wall_s"] = round(time.time() - start, 1)
    return report


def _render(
    pipe: ChangeAnywherePipeline, eval_tiles: EvalTiles, class_set: ClassSet, batch_size: int, seed: int,
    include_change: bool, settings: PairSettings, bank: ObjectBank | None = None,
) -> dict[str, np.ndarray]:
    """Images synthesized from the maps, autoencoder copies, and (change mode) the pairs `generate` makes: seeded
    events (`simulate_events`) and `build_pairs` with `settings` (non-change and drift styled after the next
    tile), and the same pairs with non-change and drift off; with their after maps and re-rendered pixels."""
    real, maps = eval_tiles.images, eval_tiles.maps
    n = len(maps)
    base = SamplerSettings(**{f.name: getattr(settings, f.name) for f in fields(SamplerSettings) if f.init
                              and f.name not in ("nonchange", "drift")})
    off = replace(settings, nonchange=0.0, drift=0.0)
    wants_on = settings.nonchange_strength > 0 or settings.drift_strength > 0
    references = [colour_stats(real[(i + 1) % n], maps[(i + 1) % n], class_set.num_classes) for i in range(n)]
    parts: dict[str, list[np.ndarray]] = {"generated": [], "recon": [], "after_images": [], "after_maps": [],
                                          "after_nonchange": [], "rerendered": []}
    for b in tqdm([slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)], desc="eval-generator"):
        seeds = [seed + i for i in range(b.start, b.stop)]
        parts["generated"].append(tensor_to_uint8(pipe.synthesize(list(maps[b]), seed=seeds, settings=base,
                                                                  output_type="pt").images))
        with torch.no_grad():
            x = uint8_to_tensor(real[b]).to(pipe.device)
            parts["recon"].append(tensor_to_uint8(pipe.decode_latents(pipe.encode_images(x))))
        if include_change:
            changes = [simulate_events(m, class_set, s, settings, bank, im)[0]
                       for m, s, im in zip(maps[b], seeds, real[b], strict=True)]
            plain = build_pairs(pipe, list(real[b]), changes, seeds, class_set, off, bank=bank)
            parts["after_images"].append(np.stack([p.after_image for p in plain]))
            parts["after_maps"].append(np.stack([p.after_map for p in plain]))
            if wants_on:
                on = build_pairs(pipe, list(real[b]), changes, seeds, class_set, settings, bank=bank,
                                 drift_references=references[b])
                parts["after_nonchange"].append(np.stack([p.after_image for p in on]))
                if on[0].rerendered is not None:
                    parts["rerendered"].append(np.stack([p.rerendered for p in on]))
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
    """How well the after images keep the before image (non-change off; the global drift on), show the new
    class, and, with realistic non-change at the default, how they differ from A where nothing changed."""
    real, maps = eval_tiles.images, eval_tiles.maps
    after_imgs, after_maps = out["after_images"], out["after_maps"]
    unchanged = [(m == a) for m, a in zip(maps, after_maps, strict=True)]
    changed = ~np.stack(unchanged)
    pred_after = segmenter.predict(uint8_to_tensor(after_imgs)).numpy()
    cm_after = confusion_matrix(pred_after, after_maps, class_set.num_classes)
    drift = DriftSettings()
    drifted = np.stack([apply_drift(x, draw_drift(torch.Generator().manual_seed(seed + i), drift))
                        for i, x in enumerate(after_imgs)])
    report = {
        "unchanged_ssim": _mean_masked_ssim(real, after_imgs, unchanged),
        "unchanged_mad": _mean_masked_mad(real, after_imgs, unchanged),
        "unchanged_ssim_drift": _mean_masked_ssim(real, drifted, unchanged),
        "unchanged_mad_drift": _mean_masked_mad(real, drifted, unchanged),
        "copy_unchanged_ssim": _mean_masked_ssim(real, out["recon"], unchanged),
        "unrelated_unchanged_ssim": _mean_masked_ssim(real, out["generated"], unchanged),
        "change_after_miou": round(_miou(cm_after)[0], 4),
        "changed_accuracy_nonchange_off": _accuracy(pred_after, after_maps, changed),
        "changed_fraction": round(float(changed.mean()), 4),
    }
    report.update(_residual_report("nonchange_off", real, after_imgs, unchanged))
    default = out.get("after_nonchange", after_imgs)
    pred = segmenter.predict(uint8_to_tensor(default)).numpy() if "after_nonchange" in out else pred_after
    report["changed_accuracy"] = _accuracy(pred, after_maps, changed)
    report["rerendered_accuracy"] = _accuracy(pred, after_maps, out["rerendered"]) if "rerendered" in out else None
    report["rerendered_fraction"] = round(float(out["rerendered"].mean()), 4) if "rerendered" in out else 0.0
    report.update(_residual_report("", real, default, unchanged))
    report.update(seam_report(real, default, maps, after_maps))
    # painted content alone (non-change off): appearance and acquisition effects are the residual keys' business
    report.update(changed_kid_report(real, after_imgs, maps, after_maps, seed))
    return report


def _accuracy(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float | None:
    return round(float((pred[mask] == target[mask]).mean()), 4) if mask.any() else None


def _residual_report(suffix: str, real: np.ndarray, after: np.ndarray, unchanged: Sequence[np.ndarray],
                     ) -> dict[str, Any]:
    """`unchanged_residual`, `changed_residual` (mean over pairs of |A − fit(B)|, 0-255, the per-channel linear
    colour map of B to A fitted on the unchanged pixels) and their ratio `changed_unchanged_ratio`."""
    res = [colour_fit_residuals(a, b, u, u, ~u) for a, b, u in zip(real, after, unchanged, strict=True)]
    un = float(np.mean([r[0] for r in res if r[0] is not None]))
    ch_values = [r[1] for r in res if r[1] is not None]
    ch = float(np.mean(ch_values)) if ch_values else None
    tail = f"_{suffix}" if suffix else ""
    return {f"unchanged_residual{tail}": round(un, 3), f"changed_residual{tail}": None if ch is None else round(ch, 3),
            f"changed_unchanged_ratio{tail}": round(ch / un, 4) if ch is not None and un > 0 else None}


def seam_report(real: np.ndarray, after: np.ndarray, maps: np.ndarray, after_maps: np.ndarray) -> dict[str, Any]:
    """`seam_error`: mean colour difference between 4-px rings just inside and just outside each changed region
    of B; `seam_error_real`: the same across the boundaries of real objects in A of the classes the changes
    paint (what a real boundary of that kind looks like)."""
    painted, real_edges = [], []
    for a, b, m, am in zip(real, after, maps, after_maps, strict=True):
        changed = m != am
        painted += ring_contrast(b, changed)
        targets = np.unique(am[changed])
        if targets.size:
            real_edges += ring_contrast(a, np.isin(m, targets))
    seam = float(np.mean(painted)) if painted else None
    real_seam = float(np.mean(real_edges)) if real_edges else None
    return {"seam_error": None if seam is None else round(seam, 3),
            "seam_error_real": None if real_seam is None else round(real_seam, 3),
            "seam_ratio": round(seam / real_seam, 4) if seam is not None and real_seam else None}


def changed_crops(images: np.ndarray, maps: np.ndarray, after_maps: np.ndarray, rng: np.random.Generator,
                  size: int = 64, min_area: int = 256, per_region: int = 4, jitter: int = 16,
                  ) -> tuple[list[np.ndarray], list[int]]:
    """`per_region` size² crops of each image around each changed region (≥ `min_area` px; centres jittered by
    up to `jitter` px, windows clipped to the tile), with the region's target class (its most common after-map
    class)."""
    crops, classes = [], []
    for img, m, am in zip(images, maps, after_maps, strict=True):
        n, comp, stats, cent = cv2.connectedComponentsWithStats((m != am).astype(np.uint8), connectivity=8)
        h, w = m.shape
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < min_area:
                continue
            target = int(np.bincount(am[comp == k], minlength=256)[:255].argmax())
            for dy, dx in rng.integers(-jitter, jitter + 1, (per_region, 2)):
                cy, cx = int(round(cent[k][1])) + dy, int(round(cent[k][0])) + dx
                y0, x0 = int(np.clip(cy - size // 2, 0, h - size)), int(np.clip(cx - size // 2, 0, w - size))
                crops.append(img[y0:y0 + size, x0:x0 + size])
                classes.append(target)
    return crops, classes


def class_crops(images: np.ndarray, maps: np.ndarray, classes: Sequence[int], rng: np.random.Generator,
                size: int = 64, min_area: int = 256, max_area: int = 16384, jitter: int = 16) -> list[np.ndarray]:
    """One real size² crop per entry of `classes`, centred on a real object of that class (a connected region of
    `min_area`..`max_area` px, the size range of painted changes) drawn at random, its centre jittered as the
    painted crops' are, so real and painted crops show an object in its surroundings alike; a class without such
    objects gets crops centred on its pixels."""
    h, w = maps.shape[1:]
    centres: dict[int, list[tuple[int, int, int]]] = {}
    for c in set(classes):
        found = []
        for i, m in enumerate(maps):
            n, _, stats, cent = cv2.connectedComponentsWithStats((m == c).astype(np.uint8), connectivity=8)
            found += [(i, int(round(cent[k][1])), int(round(cent[k][0]))) for k in range(1, n)
                      if min_area <= stats[k, cv2.CC_STAT_AREA] <= max_area]
        if not found:
            found = [(int(i), int(y), int(x)) for i, y, x in np.argwhere(maps == c)[::97]]
        centres[c] = found
    out = []
    for c in classes:
        i, cy, cx = centres[c][int(rng.integers(len(centres[c])))]
        cy, cx = (v + int(rng.integers(-jitter, jitter + 1)) for v in (cy, cx))
        y0, x0 = int(np.clip(cy - size // 2, 0, h - size)), int(np.clip(cx - size // 2, 0, w - size))
        out.append(images[i][y0:y0 + size, x0:x0 + size])
    return out


def crop_features(net: Any, crops: list[np.ndarray]) -> np.ndarray:
    """`changed_kid`'s features: the pooled ImageNet EfficientNet-Lite0 features of uint8 crops, upsampled 2×."""
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        return torch.cat([net.pooled(x[i:i + 32]) for i in range(0, len(x), 32)]).numpy()


def changed_kid_report(real: np.ndarray, after: np.ndarray, maps: np.ndarray, after_maps: np.ndarray, seed: int,
                       draws: int = 4) -> dict[str, Any]:
    """`changed_kid`: KID (the unbiased MMD², not ×1000) between ImageNet EfficientNet-Lite0 features of 64²
    crops of B centred in its changed regions and real 64² crops of the same target classes from the tiles'
    own images; `changed_kid_naive`: the same for naive copy-paste content (real texture of the target class
    pasted into the change: the floor); `changed_kid_real`: another draw of real crops (the noise level). Each
    is the mean over `draws` draws of the real crops. None when the `imagenet` extra is missing."""
    from .derived.naive import naive_after_image
    from .errors import MissingExtraError
    from .features import load_imagenet_lite0

    try:
        net = load_imagenet_lite0()
    except MissingExtraError as err:
        return {"changed_kid": None, "changed_kid_note": str(err)}
    rng = np.random.default_rng(seed)
    naive = np.stack([naive_after_image(a, m, am, rng, jitter=0.0)
                      for a, m, am in zip(real, maps, after_maps, strict=True)])
    fake, classes = changed_crops(after, maps, after_maps, np.random.default_rng(seed))
    if len(fake) < 8:
        return {"changed_kid": None, "changed_kid_note": "fewer than 2 changed regions of 256 px"}
    naive_crops, _ = changed_crops(naive, maps, after_maps, np.random.default_rng(seed))

    refs = [crop_features(net, class_crops(real, maps, classes, rng)) for _ in range(draws + 1)]
    fake_f, naive_f = crop_features(net, fake), crop_features(net, naive_crops)

    def mean_kid(other: np.ndarray) -> float:
        return round(float(np.mean([kid(r, other, seed=seed + i) for i, r in enumerate(refs[:draws])])), 5)

    return {"changed_kid": mean_kid(fake_f), "changed_kid_naive": mean_kid(naive_f),
            "changed_kid_real": mean_kid(refs[draws]), "changed_kid_crops": len(fake)}


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
            ("  same, non-change off", report["changed_accuracy_nonchange_off"]),
            ("non-change: fitted residual of unchanged pixels, 0-255", report["unchanged_residual"]),
            ("non-change: fitted residual of changed pixels, 0-255", report["changed_residual"]),
            ("non-change: changed ÷ unchanged residual", report["changed_unchanged_ratio"]),
            ("  same, non-change off: unchanged / ratio",
             f"{report['unchanged_residual_nonchange_off']} / {report['changed_unchanged_ratio_nonchange_off']}"),
            ("non-change: accuracy inside re-rendered pixels", report["rerendered_accuracy"]),
            ("change: seam error (4 px rings) / on real boundaries",
             f"{report['seam_error']} / {report['seam_error_real']}"),
            ("change: KID of changed crops / naive copy-paste / real vs real",
             f"{report.get('changed_kid')} / {report.get('changed_kid_naive')} / {report.get('changed_kid_real')}"),
        ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines.append(f"{'class':<14}{'real IoU':>10}{'generated IoU':>15}")
    for name, v in report["per_class"].items():
        lines.append(f"{name:<14}{_fmt(v['real_iou']):>10}{_fmt(v['generated_iou']):>15}")
    lines.append(
        f"({report['num_tiles']} tiles of {report['tile_size']}², {report['sampler']['num_inference_steps']} steps, "
        f"guidance {report['sampler']['guidance_scale']}, {report['wall_s']} s)"
    )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"

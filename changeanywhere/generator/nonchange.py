"""Realistic non-change: what differs between two real dates where nothing changed (docs/method.md's second rule).

Real unchanged pixels differ about as much as changed ones (a mean 23–35 / 255 after a colour fit, on LEVIR and
DSIFN); a CD model trained on pairs whose unchanged pixels are copies learns "any difference is change". Per
pair, seeded from the pair's own seed, `draw_nonchange` draws:

- **re-rendering**: unchanged objects and blobs (a share of the unchanged area) that the inpainting model paints
  again under the *same* map, a new instance of the same class (the pipeline does this; `rerender_region`);
- **scene appearance**: colour statistics pulled towards another real image, a per-class seasonal / material
  shift (vegetation, water, roofs, bare land), a sun-angle change (a smooth illumination field and cast
  shadows of the buildings at a new sun azimuth), and haze from the scattering model I = J·t + A·(1 − t);
- **acquisition**: a smooth local misregistration of 0.5–3 px, a blur or resampling mismatch, sensor noise and
  JPEG compression.

`apply_nonchange` applies the pixel parts to the after image. Nothing here touches a map or the change label:
the label stays the map difference. Parameters are plain JSON (every pair's `meta` records them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import ParameterError
from ..regions import blobs, objects

NONCHANGE_STREAM = 5  # the pair seed's stream for non-change draws (after `seeds`' TILE ... DRIFT_REFERENCE)


@dataclass(frozen=True)
class NonChangeSettings:
    """How much realistic non-change a pair gets. `strength` scales every appearance and acquisition amplitude
    (1 = the measured default, 0 = off); `rerender` is the (low, high) share of the unchanged area repainted
    under the same map, `rerender_anchored` the share of the sampling steps those cells follow A before they
    are painted freely (more: closer to A), `harmonise_sigma` the scale above which they keep A's colour and
    light (a new instance in the same light); the two switches turn whole groups off."""

    strength: float = 1.0
    rerender: tuple[float, float] = (0.3, 0.6)
    rerender_anchored: tuple[float, float] = (0.5, 0.75)  # share of the steps re-rendered cells follow A
    harmonise_sigma: float = 6.0  # re-rendered regions take A's colour and light above this scale (px; 0: off)
    # class kinds (`classes.KINDS`) never re-rendered: a "new instance" of open water is not what another date
    # shows (its colour changes, class_gain below), and the 3.9 M UNet paints water as darker ovals, buildings as
    # speckle and roads with double edges; bare land and vegetation it repaints as a second date would show them
    rerender_skip: tuple[str, ...] = ("water", "object", "paved")
    appearance: bool = True
    acquisition: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 3.0:
            raise ParameterError(f"`nonchange` must lie in [0, 3] (0: off), got {self.strength}", "nonchange")
        lo, hi = self.rerender
        if not 0.0 <= lo <= hi <= 0.9:
            raise ParameterError(f"`rerender` share must satisfy 0 ≤ low ≤ high ≤ 0.9, got {self.rerender}",
                                 "rerender")
        lo, hi = self.rerender_anchored
        if not 0.0 <= lo <= hi <= 1.0:
            raise ParameterError(f"`rerender_anchored` must satisfy 0 ≤ low ≤ high ≤ 1, got "
                                 f"{self.rerender_anchored}", "rerender_anchored")
        if self.harmonise_sigma < 0:
            raise ParameterError(f"`harmonise_sigma` must be ≥ 0, got {self.harmonise_sigma}", "harmonise_sigma")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def as_nonchange_settings(value: NonChangeSettings | float | bool | None, inpainting: bool = True
                          ) -> NonChangeSettings | None:
    """None/False/0 -> off; True -> the default; a float -> that strength, re-rendering only for an `inpainting`
    UNet (a plain one gets the appearance and acquisition parts); settings pass through. Checks the strength."""
    if value is None or value is False:
        return None
    if value is True or isinstance(value, int | float):
        settings = NonChangeSettings(strength=float(value), rerender=NonChangeSettings.rerender if inpainting
                                     else (0.0, 0.0))
        return settings if settings.strength > 0 else None
    if isinstance(value, NonChangeSettings):
        return value if value.strength > 0 or value.rerender[1] > 0 else None
    raise ParameterError(f"`nonchange` must be None, a bool, a strength or NonChangeSettings, got "
                         f"{type(value).__name__}", "nonchange")


def nonchange_rng(seed: int) -> np.random.Generator:
    """The non-change stream of a sample seed: independent of the diffusion noise drawn from the same seed."""
    return np.random.default_rng([int(seed) & (2**63 - 1), NONCHANGE_STREAM])


def rerender_region(unchanged: np.ndarray, label_map: np.ndarray, rng: np.random.Generator, share: float,
                    num_classes: int, skip: tuple[int, ...] = ()) -> np.ndarray:
    """Unchanged pixels to repaint under the same map: whole unchanged objects (about 2/3 of `share`) and smooth
    blobs (the rest), kept `4` px away from the change so the change boundary stays the model's to paint.
    `share` is of the unchanged pixels outside the `skip` classes, which are never repainted."""
    eligible = unchanged & ~np.isin(label_map, skip) if skip else unchanged
    if share <= 0 or not eligible.any():
        return np.zeros_like(unchanged)
    inner = cv2.erode(eligible.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    target = share * eligible.mean()
    region = objects(label_map, rng, 0.65 * target, allowed=inner, num_classes=num_classes, min_area=32)
    rest = target - region.mean()
    if rest > 0:
        region |= blobs(unchanged.shape, rng, min(0.9, rest / max(inner.mean(), 1e-6) * 1.1),
                        scale=int(rng.integers(4, 9))) & inner
    return region


def draw_nonchange(rng: np.random.Generator, settings: NonChangeSettings, reference: dict | None = None,
                   ) -> dict[str, Any]:
    """Draw one pair's pixel-level non-change parameters (appearance and acquisition) and its re-render share."""
    s = settings.strength
    p: dict[str, Any] = {"settings": settings.to_dict(),
                         "rerender_share": round(float(rng.uniform(*settings.rerender)), 4),
                         # share of the steps re-rendered cells stay anchored to A (then painted freely)
                         "rerender_anchored": round(float(rng.uniform(*settings.rerender_anchored)), 4),
                         "harmonise_sigma": settings.harmonise_sigma}
    if settings.appearance and s > 0:
        p["style"] = None
        if reference is not None:  # another real date: its colours class by class (or globally, weaker)
            per_class = bool(reference.get("classes"))
            p["style"] = {"mean": list(reference["mean"]), "std": list(reference["std"]),
                          "classes": reference.get("classes") or None,
                          "weight": round(float(rng.uniform(0.2, 0.5) if per_class else rng.uniform(0.05, 0.2))
                                          * min(s, 1.0), 4)}
        # per class kind: log-gain per channel (seasonal vegetation, water colour, roof tint, soil moisture)
        p["class_gain"] = {
            "vegetation": (rng.normal([-0.04, 0.0, -0.04], 0.07 * s)).round(4).tolist(),
            "water": (rng.normal(0.0, 0.06 * s, 3)).round(4).tolist(),
            "object": (rng.normal(0.0, 0.05 * s, 3)).round(4).tolist(),
            "bare": (rng.normal(0.0, 0.03 * s, 3)).round(4).tolist(),
        }
        p["white_balance"] = (rng.normal(0.0, 0.025 * s, 3)).round(4).tolist()  # log-gain
        p["exposure"] = round(float(rng.normal(0.0, 0.08 * s)), 4)  # log-gain
        p["illumination"] = (rng.normal(0.0, 0.1 * s, (3, 3))).round(4).tolist()  # smooth log-gain field
        p["shadow"] = {"azimuth_deg": round(float(rng.uniform(0, 360)), 1),
                       "length_px": round(float(rng.uniform(3, 10) * min(s, 1.5)), 2),
                       "darkness": round(float(rng.uniform(0.3, 0.55)), 3)} if rng.random() < 0.8 else None
        p["haze"] = {"depth": round(float(rng.uniform(0.0, 0.25) * min(s, 1.5)), 4),
                     "airlight": (0.78 + rng.uniform(-0.05, 0.1, 3)).round(4).tolist(),
                     "field": (rng.normal(0.0, 1.0, (3, 3))).round(4).tolist()} if rng.random() < 0.5 else None
    if settings.acquisition and s > 0:
        p["misregistration"] = {"max_px": round(float(rng.uniform(0.5, 3.0) * min(s, 1.0)), 3),
                                "field": rng.normal(0.0, 1.0, (2, 4, 4)).round(4).tolist()}
        kind = str(rng.choice(["blur", "resample", "sharp"], p=[0.4, 0.4, 0.2]))
        p["resolution"] = {"kind": kind,
                           "sigma": round(float(rng.uniform(0.4, 1.2) * min(s, 1.5)), 3),
                           "scale": round(float(rng.uniform(0.5, 0.85)), 3)}
        p["noise_std"] = round(float(rng.uniform(1.0, 4.0) * s), 3)  # 0-255
        p["noise_seed"] = int(rng.integers(0, 2**31))
        p["jpeg_quality"] = int(rng.integers(55, 95)) if rng.random() < 0.7 else None
    return p


def _smooth(grid: Any, h: int, w: int) -> np.ndarray:
    return cv2.resize(np.asarray(grid, np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _soft(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), radius) if mask.any() else mask.astype(np.float32)


def cast_shadows(buildings: np.ndarray, azimuth_deg: float, length_px: float) -> np.ndarray:
    """Where the buildings cast shadow with the sun at `azimuth_deg` (shadow points away from it), soft, 0-1."""
    h, w = buildings.shape
    if not buildings.any() or length_px <= 0:
        return np.zeros((h, w), np.float32)
    a = np.deg2rad(azimuth_deg)
    dx, dy = -np.sin(a), np.cos(a)
    shadow = np.zeros((h, w), np.float32)
    b = buildings.astype(np.float32)
    for k in np.linspace(0.5, length_px, max(2, int(np.ceil(length_px)) + 1)):
        shift = np.float32([[1, 0, dx * k], [0, 1, dy * k]])
        shadow = np.maximum(shadow, cv2.warpAffine(b, shift, (w, h), flags=cv2.INTER_LINEAR, borderValue=0))
    return cv2.GaussianBlur(shadow * (1.0 - b), (0, 0), 0.8)


def harmonise(after: torch.Tensor, before: torch.Tensor, region: np.ndarray, sigma: float, band: int = 6,
              ) -> torch.Tensor:
    """(3,H,W) after image with the low frequencies (Gaussian `sigma` px) of the before image inside `region`
    (feathered): a re-rendered object keeps its new detail but takes the scene's colour and light."""
    if sigma <= 0:
        return after
    diff = (before - after).permute(1, 2, 0).cpu().numpy().astype(np.float32)
    low = cv2.GaussianBlur(diff, (0, 0), sigma)
    # over the region and the seam band around it, where the decoded edge of the repainted cells shows
    grown = cv2.dilate(region.astype(np.uint8), np.ones((2 * band + 1, 2 * band + 1), np.uint8))
    weight = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 2.0)[..., None]
    return after + torch.from_numpy(weight * low).permute(2, 0, 1).to(after)


def headroom(x: np.ndarray, top: float = 0.95, q: float = 99.0) -> np.ndarray:
    """Per channel, the largest log-gain that keeps the `q`-th percentile of an HxWx3 image in [0, 1] at or below
    `top` (0 where it is already above)."""
    p = np.percentile(x.reshape(-1, x.shape[-1]), q, axis=0)
    return np.maximum(np.log(top / np.maximum(p, 1e-3)), 0.0).astype(np.float32)


def soft_clip(x: np.ndarray, knee: float = 0.85) -> np.ndarray:
    """Clip to [0, 1] with a smooth shoulder above `knee` (and a toe below 1 − knee's mirror, 0.15 × (1 − knee)),
    so bright sand and white roofs keep their texture when a date is brighter instead of burning out."""
    top = 1.0 - knee
    x = np.where(x > knee, knee + top * np.tanh((x - knee) / top), x)
    toe = 0.15 * top
    x = np.where(x < toe, toe * np.exp((x - toe) / toe), x)
    return np.clip(x, 0.0, 1.0)


def apply_nonchange(image: np.ndarray, params: dict[str, Any], label_map: np.ndarray, class_kinds: Sequence[str],
                    ) -> np.ndarray:
    """Apply drawn non-change parameters to an HxWx3 uint8 after image: its map and the kind of each class
    (`ClassSet.kind_of`: object, vegetation, water, bare ...) give the per-class parts."""
    x = image.astype(np.float32) / 255.0
    h, w = x.shape[:2]
    style = params.get("style")
    if style and style.get("classes"):  # each class part of the way to its colours in another real date
        matched = x.copy()
        weight = np.zeros((h, w), np.float32)
        for c, ref in style["classes"].items():
            mask = label_map == int(c)
            if mask.sum() < 64:
                continue
            mean, std = x[mask].mean(0), x[mask].std(0) + 1e-3
            # std ratios are capped: a flat class in one image must not amplify noise in the other
            gain = np.clip(np.asarray(ref["std"], np.float32) / std, 0.5, 2.0)
            matched[mask] = (x[mask] - mean) * gain + np.asarray(ref["mean"], np.float32)
            weight[mask] = style["weight"]
        weight = cv2.GaussianBlur(weight, (0, 0), 2)[..., None]
        x = (1 - weight) * x + weight * matched
    elif style:  # only global statistics: pull the whole image towards them
        mean, std = x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0) + 1e-4
        matched = (x - mean) / std * np.asarray(style["std"], np.float32) + np.asarray(style["mean"], np.float32)
        x = (1 - style["weight"]) * x + style["weight"] * matched
    log_gain = np.zeros((h, w, 3), np.float32)
    if params.get("class_gain"):
        for kind, gain in params["class_gain"].items():
            mask = np.isin(label_map, [i for i, k in enumerate(class_kinds) if k == kind])
            if mask.any():
                log_gain += _soft(mask)[..., None] * np.asarray(gain, np.float32)
    if "white_balance" in params:
        field = _smooth(params["illumination"], h, w)[..., None]
        log_gain += np.asarray(params["white_balance"], np.float32) + params["exposure"] + field
    # brightening only up to the scene's headroom: bright sand and white roofs keep their texture (a sensor
    # exposes a bright scene for it) instead of burning out; darkening is never capped
    x = x * np.exp(np.minimum(log_gain, headroom(x)))
    shadow = params.get("shadow")
    objects = [i for i, k in enumerate(class_kinds) if k == "object"]
    if shadow and objects:
        s = cast_shadows(np.isin(label_map, objects), shadow["azimuth_deg"], shadow["length_px"])
        x = x * (1.0 - shadow["darkness"] * s)[..., None]
    haze = params.get("haze")
    if haze and haze["depth"] > 0:
        field = _smooth(haze["field"], h, w)
        depth = haze["depth"] * (1.0 + 0.5 * np.tanh(field))  # thicker in patches, never negative
        t = np.exp(-depth)[..., None]
        x = np.clip(x, 0, 1) * t + np.asarray(haze["airlight"], np.float32) * (1 - t)
    x = soft_clip(x)
    mis = params.get("misregistration")
    if mis:
        field = np.asarray(mis["field"], np.float32)
        dx, dy = _smooth(field[0], h, w), _smooth(field[1], h, w)
        norm = max(float(np.abs(np.stack([dx, dy])).max()), 1e-6)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        scale = mis["max_px"] / norm
        x = cv2.remap(x, gx + dx * scale, gy + dy * scale, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    res = params.get("resolution")
    if res and res["kind"] == "blur":
        x = cv2.GaussianBlur(x, (0, 0), res["sigma"])
    elif res and res["kind"] == "resample":
        small = cv2.resize(x, (max(1, round(w * res["scale"])), max(1, round(h * res["scale"]))),
                           interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    elif res and res["kind"] == "sharp":  # a sharper sensor: unsharp mask
        x = x + 0.6 * (x - cv2.GaussianBlur(x, (0, 0), 1.0))
    if params.get("noise_std"):
        noise = np.random.default_rng(params["noise_seed"]).normal(0.0, params["noise_std"] / 255.0, x.shape)
        x = x + noise.astype(np.float32)
    out = (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if params.get("jpeg_quality"):
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(params["jpeg_quality"])])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out


def describe_nonchange(params: dict[str, Any] | None) -> str:
    """One line naming what a pair's non-change applied (for the app and logs)."""
    if not params:
        return "off (unchanged pixels copy the before image)"
    parts = []
    if params.get("rerendered_pixels"):
        parts.append(f"{params['rerendered_pixels']} unchanged px re-rendered")
    if params.get("style"):
        parts.append(f"colour pulled {params['style']['weight']:.0%} towards another image")
    if "exposure" in params:
        parts.append(f"exposure {params['exposure']:+.2f} (log)")
    if params.get("shadow"):
        parts.append(f"shadows at sun azimuth {params['shadow']['azimuth_deg']:.0f}°")
    if params.get("haze"):
        parts.append(f"haze depth {params['haze']['depth']:.2f}")
    if params.get("misregistration"):
        parts.append(f"misregistration ≤ {params['misregistration']['max_px']:.1f} px")
    res = params.get("resolution")
    if res:
        parts.append({"blur": f"blur σ {res['sigma']:.1f}", "resample": f"resampled ×{res['scale']:.2f}",
                      "sharp": "sharpened"}[res["kind"]])
    if params.get("noise_std"):
        parts.append(f"noise σ {params['noise_std']:.1f}")
    if params.get("jpeg_quality"):
        parts.append(f"JPEG q{params['jpeg_quality']}")
    return ", ".join(parts) or "nothing drawn"

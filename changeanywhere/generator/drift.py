"""Realistic radiometric drift between two dates: a seeded, spatially smooth change of the whole after image.

Real bi-temporal pairs differ everywhere (sun, season, sensor, haze), which is why real change detection is
hard; a CD model trained on pairs whose unchanged pixels are identical learns "any difference = change".
`draw_drift` draws the parameters (white balance, exposure, gamma, haze, a smooth illumination field, and
optionally a pull towards another real image's colour statistics); `apply_drift` applies them. Pixels only:
the change label is never touched. Parameters are plain JSON so each sample's metadata records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import ParameterError


@dataclass(frozen=True)
class DriftSettings:
    """How strong the drift is (`strength` 1 = the measured default; 0 = none) and its smooth field's grid."""

    strength: float = 1.0
    field_grid: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 3.0:
            raise ParameterError(f"`drift` must lie in [0, 3] (0: off), got {self.strength}", "drift")
        if self.field_grid < 1:
            raise ParameterError(f"drift `field_grid` must be at least 1, got {self.field_grid}", "field_grid")


def as_drift_settings(drift: DriftSettings | float | bool | None) -> DriftSettings | None:
    """None/False/0 -> no drift; True -> default; a float -> that strength; settings pass through. Checks the
    strength."""
    if drift is None or drift is False:
        return None
    if drift is True or isinstance(drift, int | float):
        settings = DriftSettings(strength=float(drift))
        return settings if settings.strength > 0 else None
    if isinstance(drift, DriftSettings):
        return drift if drift.strength > 0 else None
    raise ParameterError(f"`drift` must be None, a bool, a strength or DriftSettings, got {type(drift).__name__}",
                         "drift")


def colour_stats(image: np.ndarray, label_map: np.ndarray | None = None, num_classes: int = 0,
                 min_pixels: int = 64) -> dict[str, Any]:
    """Per-channel mean and std (0-1 scale) of an RGB uint8 image: what a drift reference contributes; with its
    land-cover map also per class (`classes`: class index as a string -> mean, std; classes of at least
    `min_pixels` px), which realistic non-change transfers class by class (another date's roofs, water, fields)."""
    x = image.reshape(-1, 3).astype(np.float64) / 255.0
    stats: dict[str, Any] = {"mean": x.mean(0).round(5).tolist(), "std": x.std(0).round(5).tolist()}
    if label_map is not None:
        flat = label_map.reshape(-1)
        stats["classes"] = {str(c): {"mean": x[flat == c].mean(0).round(5).tolist(),
                                     "std": x[flat == c].std(0).round(5).tolist()}
                            for c in range(num_classes) if (flat == c).sum() >= min_pixels}
    return stats


def draw_drift(
    generator: torch.Generator, settings: DriftSettings, reference: dict[str, list[float]] | None = None
) -> dict[str, Any]:
    """Draw one sample's drift parameters from its own generator (same seed -> same drift)."""
    s = settings.strength
    g = settings.field_grid
    u = torch.rand(8 + 3 + 3 + g * g, generator=generator, dtype=torch.float64).numpy()
    n = torch.randn(3 + 3 + g * g, generator=generator, dtype=torch.float64).numpy()
    params: dict[str, Any] = {
        "strength": s,
        "gain": (1.0 + 0.05 * s * n[0:3]).round(5).tolist(),  # white balance / sensor gain per channel
        "offset": (0.02 * s * n[3:6]).round(5).tolist(),
        "exposure": round(float(np.exp(0.10 * s * (2 * u[0] - 1))), 5),
        "gamma": round(float(np.exp(0.12 * s * (2 * u[1] - 1))), 5),
        "haze": round(float(0.10 * s * u[2] ** 2), 5),  # mostly light, sometimes noticeable
        "haze_colour": [round(float(0.75 + 0.15 * v), 5) for v in u[3:6]],
        "field": (0.06 * s * n[6:]).round(5).reshape(g, g).tolist(),  # smooth illumination, log-gain
        "reference": None,
    }
    if reference is not None:
        params["reference"] = {"mean": list(reference["mean"]), "std": list(reference["std"]),
                               "weight": round(float(0.25 + 0.35 * u[6]) * min(s, 1.0), 5)}
    return params


def apply_drift(image: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Apply drawn drift parameters to an HxWx3 uint8 image (float maths, rounded back to uint8)."""
    x = image.astype(np.float32) / 255.0
    h, w = x.shape[:2]
    ref = params.get("reference")
    if ref:  # move the colour statistics part of the way towards another real image of the set
        mean, std = x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0) + 1e-4
        target_mean, target_std = np.asarray(ref["mean"], np.float32), np.asarray(ref["std"], np.float32)
        matched = (x - mean) / std * target_std + target_mean
        x = (1 - ref["weight"]) * x + ref["weight"] * matched
    x = x * np.asarray(params["gain"], np.float32) + np.asarray(params["offset"], np.float32)
    field = np.asarray(params["field"], np.float32)
    smooth = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC) if field.size > 1 else field.reshape(1, 1)
    x = x * (params["exposure"] * np.exp(smooth))[..., None]
    x = np.clip(x, 0.0, 1.0) ** params["gamma"]
    x = (1 - params["haze"]) * x + params["haze"] * np.asarray(params["haze_colour"], np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)

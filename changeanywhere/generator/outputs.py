"""What the pipeline's entry points return: `SynthesisOutput` (`synthesize`) and `ChangeOutput` (`change`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.utils import BaseOutput
from PIL import Image

from ..image_utils import tensor_to_uint8


@dataclass
class SynthesisOutput(BaseOutput):
    """Images synthesized from land-cover maps (PIL list, (B,H,W,3) float array in [0,1], or tensor), the seeds
    and the sampler settings used (`pipe.resolve`: `SamplerSettings.record` plus the scheduler)."""

    images: list[Image.Image] | np.ndarray | torch.Tensor
    seeds: list[int | None]
    sampler: dict[str, Any]


@dataclass
class ChangeOutput(BaseOutput):
    """After images, full-resolution change masks (before ≠ after), after maps, and per sample what was used:
    content scale, anchored steps (`mix_steps`), seed, drift and non-change parameters (None when off) and the
    re-rendered unchanged pixels (bool masks, not in the label); and the sampler settings of the call."""

    images: list[Image.Image] | np.ndarray | torch.Tensor
    change_masks: np.ndarray
    after_maps: np.ndarray
    content_scales: list[float]
    seeds: list[int | None]
    mix_steps: list[int]
    drifts: list[dict | None]
    sampler: dict[str, Any]
    nonchange: list[dict | None] | None = None
    rerendered: list[np.ndarray] | None = None


def format_images(images: torch.Tensor, output_type: str):
    """Decoded images in [-1, 1] as the caller asked: "pt" / "latent" as they are, "np" floats in [0, 1], "pil"."""
    if output_type in ("pt", "latent"):
        return images
    arr = tensor_to_uint8(images)
    if output_type == "np":
        return arr.astype(np.float32) / 255.0
    return [Image.fromarray(a) for a in arr]  # "pil": `check_output_type` allowed no other

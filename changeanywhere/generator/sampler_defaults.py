"""The one home of the sampler's fallback defaults: what a pipeline uses for steps, guidance and the guidance
interval when neither the call nor the model's config (`model_index.json`: `default_num_inference_steps`,
`default_guidance_scale`, `default_guidance_interval`, the values a trained model was measured best at) names
one. Every other place reads them from here or from the model's config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerDefaults:
    """Steps, guidance scale (1: no classifier-free guidance) and the guided share of the steps, [start, stop)."""

    num_inference_steps: int = 50
    guidance_scale: float = 1.0
    guidance_interval: tuple[float, float] = (0.0, 1.0)  # every step


SAMPLER_DEFAULTS = SamplerDefaults()

"""A pipeline call's inputs, resolved once at the top of `synthesize` / `change` (diffusers' `check_inputs`):
the sampler settings (`resolve`: `settings.SamplerSettings`, checked there, the model's defaults filled), the
per-sample generators, seeds and values, and the maps' and images' sizes. Errors name the parameter.
`ChangeAnywherePipeline` takes these methods from `PipelineInputs`."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..errors import ChangeAnywhereError, MapSizeError, ParameterError
from ..image_utils import images_to_tensor, maps_to_tensor
from .sampler_defaults import SAMPLER_DEFAULTS
from .settings import CHANGE_SAMPLERS, ContentScale, SamplerSettings

__all__ = ["CHANGE_SAMPLERS", "ContentScale", "PipelineInputs"]


class PipelineInputs:
    """Input checks and resolution for `ChangeAnywherePipeline` (it provides `config`, `scheduler`,
    `size_multiple`, `is_inpainting`, `num_classes` and `class_set`)."""

    def _check_size(self, height: int, width: int) -> None:
        m = self.size_multiple
        if height % m or width % m:
            raise MapSizeError(
                f"size {width}×{height} px is not a multiple of {m}; crop or pad the map "
                f"(and image) to e.g. {width // m * m}×{height // m * m}"
            )

    @staticmethod
    def _generators(
        batch: int, seed: int | Sequence[int] | None, generator: Any
    ) -> tuple[list[torch.Generator], list[int | None]]:
        """One CPU generator per sample, from explicit generators, explicit seeds, or fresh random seeds."""
        if generator is not None:
            gens = list(generator) if isinstance(generator, list | tuple) else [generator]
            if len(gens) != batch:
                raise ChangeAnywhereError(f"got {len(gens)} generators for a batch of {batch}")
            return gens, [None] * batch
        if seed is None:
            seeds = [int(s) for s in np.random.SeedSequence().generate_state(batch)]
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(batch)]
        else:
            seeds = [int(s) for s in seed]
            if len(seeds) != batch:
                raise ChangeAnywhereError(f"got {len(seeds)} seeds for a batch of {batch}")
        return [torch.Generator("cpu").manual_seed(s) for s in seeds], list(seeds)

    def resolve(self, settings: SamplerSettings | None = None, **overrides: Any) -> tuple[SamplerSettings, dict]:
        """(resolved settings, their one record): `settings` (default `SamplerSettings()`) with the keyword
        `overrides` that are not None, the steps, guidance, guidance interval and change sampler left open filled
        from the model (its config, else `SAMPLER_DEFAULTS`), then every field checked once
        (`SamplerSettings.check`) and the sampler against the model. Settings this returned pass through as they
        are. The record is `SamplerSettings.record` plus the scheduler (class, algorithm, prediction type,
        whether it takes an eta)."""
        s = (settings if settings is not None else SamplerSettings()).with_(**overrides)
        if not s.is_resolved:
            s = replace(
                s,
                num_inference_steps=(s.num_inference_steps if s.num_inference_steps is not None
                                     else self.config.default_num_inference_steps),
                guidance_scale=s.guidance_scale if s.guidance_scale is not None else self.config.default_guidance_scale,
                guidance_interval=(s.guidance_interval if s.guidance_interval is not None
                                   else getattr(self.config, "default_guidance_interval", None)
                                   or SAMPLER_DEFAULTS.guidance_interval),
                sampler=s.sampler or ("inpaint" if self.is_inpainting else "anchored"),
            )
            s.check()
            if s.sampler == "inpaint" and not self.is_inpainting:
                raise ParameterError("`sampler` 'inpaint' needs an inpainting UNet; this model has a plain UNet: use "
                                     "'anchored'", "sampler")
            s = replace(s, num_inference_steps=int(s.num_inference_steps), guidance_scale=float(s.guidance_scale),
                        guidance_interval=tuple(float(v) for v in s.guidance_interval),
                        eta=float(s.eta)).mark_resolved()
        return s, {**s.record(), **self.scheduler_record()}

    @staticmethod
    def check_output_type(output_type: str) -> None:
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ParameterError(f"`output_type` must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}",
                                 "output_type")

    def scheduler_takes_eta(self) -> bool:
        """Whether the scheduler's `step` has an `eta` (DDIM); DPM-Solver, UniPC and Euler have none."""
        return "eta" in inspect.signature(self.scheduler.step).parameters

    def scheduler_record(self) -> dict[str, Any]:
        """The scheduler part of a call's record: its class (and algorithm), prediction type, and whether it
        takes an eta."""
        return {
            "scheduler": type(self.scheduler).__name__,
            **({"algorithm_type": self.scheduler.config["algorithm_type"]}
               if "algorithm_type" in self.scheduler.config else {}),
            "prediction_type": self.scheduler.config.get("prediction_type"),
            "scheduler_takes_eta": self.scheduler_takes_eta(),
        }

    def _change_inputs(self, before_image: Any, before_map: Any, after_map: Any):
        """(images in [-1, 1], before maps, after maps) as tensors, checked to match in batch and size."""
        if after_map is None:
            raise ParameterError("give `after_map` (user edits: `simulate_changes(before_map, classes, "
                                 "num_events=0, edits=[...]).after`)", "after_map")
        before = maps_to_tensor(before_map, self.num_classes, self.class_set)
        after = maps_to_tensor(after_map, self.num_classes, self.class_set)
        images = images_to_tensor(before_image)
        if before.shape != after.shape:
            raise MapSizeError(
                f"before map {tuple(before.shape[1:])} and after map {tuple(after.shape[1:])} differ in size"
            )
        if images.shape[0] != before.shape[0] or images.shape[2:] != before.shape[1:]:
            raise MapSizeError(
                f"before image batch {tuple(images.shape[:1])}×{tuple(images.shape[2:])} does not match the map "
                f"batch {tuple(before.shape[:1])}×{tuple(before.shape[1:])}"
            )
        self._check_size(*before.shape[1:])
        return images, before, after

    @staticmethod
    def _per_sample(value: Any, batch: int, name: str) -> list:
        """None or one value for every sample, or a list with one value per sample."""
        if value is None or isinstance(value, dict):
            return [value] * batch
        values = list(value)
        if len(values) != batch:
            raise ChangeAnywhereError(f"got {len(values)} {name} values for a batch of {batch}")
        return values

    @staticmethod
    def _draw_scale(content_scale: ContentScale, generator: torch.Generator) -> float:
        if isinstance(content_scale, int | float):
            lo = hi = float(content_scale)
        else:
            lo, hi = (float(v) for v in content_scale)
        u = torch.rand(1, generator=generator).item()  # drawn even for a fixed scale: same stream either way
        return lo + (hi - lo) * u

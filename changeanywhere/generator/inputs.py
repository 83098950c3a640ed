"""A pipeline call's inputs, checked and resolved once at the top of `synthesize` / `change` (diffusers'
`check_inputs`): steps, guidance and its interval, eta, output type, content scale, blend, the change sampler,
the per-sample generators, seeds and values, and the maps' and images' sizes. Errors name the parameter.
`ChangeAnywherePipeline` takes these methods from `PipelineInputs`."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ChangeAnywhereError, MapSizeError, ParameterError
from ..image_utils import images_to_tensor, maps_to_tensor
from .sampler_defaults import SAMPLER_DEFAULTS

ContentScale = float | tuple[float, float]
CHANGE_SAMPLERS = ("inpaint", "anchored")


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

    def check_inputs(
        self,
        num_inference_steps: int | None,
        guidance_scale: float | None,
        eta: float,
        output_type: str = "pil",
        *,
        content_scale: ContentScale = 1.0,
        blend: str = "pixel",
        feather: int = 0,
        free_band: int = 0,
        strength: float = 1.0,
    ) -> tuple[int, float, float]:
        """Validate every sampler setting once; returns (steps, guidance, eta) resolved (steps or guidance None ->
        the model's measured default). Errors name the parameter (`ParameterError`), the CLI shows its flag."""
        if num_inference_steps is None:
            num_inference_steps = self.config.default_num_inference_steps
        if int(num_inference_steps) != num_inference_steps or not 1 <= num_inference_steps <= 1000:
            raise ParameterError(
                f"`num_inference_steps` must be an integer in 1..1000, got {num_inference_steps}", "num_inference_steps"
            )
        if guidance_scale is None:
            guidance_scale = self.config.default_guidance_scale
        if not 0.0 <= float(guidance_scale) <= 30.0:
            raise ParameterError(f"`guidance_scale` must lie in [0, 30], got {guidance_scale}", "guidance_scale")
        if eta < 0:
            raise ParameterError(f"`eta` must be ≥ 0, got {eta}", "eta")
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ParameterError(f"`output_type` must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}",
                                 "output_type")
        lo, hi = (content_scale, content_scale) if isinstance(content_scale, int | float) else content_scale
        if not 0.0 <= float(lo) <= float(hi) <= 1.0:
            raise ParameterError(f"`content_scale` must lie in [0, 1] (low ≤ high), got {content_scale}",
                                 "content_scale")
        if blend not in ("pixel", "latent"):
            raise ParameterError(f"`blend` must be 'pixel' or 'latent', got {blend!r}", "blend")
        if feather < 0 or free_band < 0:
            raise ParameterError(f"`feather` and `free_band` must be ≥ 0, got {feather} and {free_band}",
                                 "feather", "free_band")
        if not 0.0 < strength <= 1.0:
            raise ParameterError(f"`strength` must lie in (0, 1], got {strength}", "strength")
        return int(num_inference_steps), float(guidance_scale), float(eta)

    def resolve_guidance_interval(self, guidance_interval: Sequence[float] | None) -> tuple[float, float]:
        """[start, stop) share of the steps that use classifier-free guidance (None: the model's default)."""
        if guidance_interval is None:
            model_default = getattr(self.config, "default_guidance_interval", None)
            guidance_interval = model_default or SAMPLER_DEFAULTS.guidance_interval
        try:
            start, stop = (float(v) for v in guidance_interval)
        except (TypeError, ValueError):
            raise ParameterError(f"`guidance_interval` must be two numbers (start, stop), got {guidance_interval!r}",
                                 "guidance_interval") from None
        if not 0.0 <= start < stop <= 1.0:
            raise ParameterError(f"`guidance_interval` must satisfy 0 ≤ start < stop ≤ 1, got {guidance_interval!r}",
                                 "guidance_interval")
        return start, stop

    def scheduler_takes_eta(self) -> bool:
        """Whether the scheduler's `step` has an `eta` (DDIM); DPM-Solver, UniPC and Euler have none."""
        return "eta" in inspect.signature(self.scheduler.step).parameters

    def sampler_record(self, num_inference_steps: int, guidance_scale: float, eta: float,
                       guidance_interval: tuple[float, float]) -> dict[str, Any]:
        """What a call actually used: the scheduler class (and its prediction type), steps, guidance (scale and
        the resolved interval), eta."""
        return {
            "scheduler": type(self.scheduler).__name__,
            **({"algorithm_type": self.scheduler.config["algorithm_type"]}
               if "algorithm_type" in self.scheduler.config else {}),
            "prediction_type": self.scheduler.config.get("prediction_type"),
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "guidance_interval": list(guidance_interval),
            "eta": eta if self.scheduler_takes_eta() else None,
        }

    def resolve_sampler(self, sampler: str | None) -> str:
        """The change sampler: "inpaint" (default for an inpainting UNet) or "anchored" (latent mixing)."""
        sampler = sampler or ("inpaint" if self.is_inpainting else "anchored")
        if sampler not in CHANGE_SAMPLERS:
            raise ParameterError(f"`sampler` must be one of {', '.join(CHANGE_SAMPLERS)}, got {sampler!r}", "sampler")
        if sampler == "inpaint" and not self.is_inpainting:
            raise ParameterError("`sampler` 'inpaint' needs an inpainting UNet (generator v3 weights); this model "
                                 "has a plain UNet: use 'anchored'", "sampler")
        return sampler

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

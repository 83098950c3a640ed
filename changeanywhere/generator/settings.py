"""`SamplerSettings`: every setting of the sampler in one frozen value, validated in one place (`check`).

A call's settings may leave the steps, guidance, guidance interval and change sampler open (None);
`ChangeAnywherePipeline.resolve(settings)` fills them once from the model (its `model_index.json` defaults, else
`sampler_defaults.SAMPLER_DEFAULTS`) and returns the resolved settings with their one record (`record`).
`synthesize` and `change` take `settings=`; their keyword arguments are sugar that replace single fields.
`pairs.PairSettings` is these settings plus the change events of a pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ..config_fields import arg
from ..errors import ParameterError
from .drift import DriftSettings, as_drift_settings
from .nonchange import NonChangeSettings, as_nonchange_settings

ContentScale = float | tuple[float, float]
CHANGE_SAMPLERS = ("inpaint", "anchored")
BLENDS = ("pixel", "latent")


@dataclass(frozen=True)
class SamplerSettings:
    """How the sampler runs. None: the model's default (`ChangeAnywherePipeline.resolve`). `drift` and
    `nonchange` are strengths (0: off) or `DriftSettings` / `NonChangeSettings`."""

    num_inference_steps: int | None = arg(None, "denoising steps (default: the model's measured default)")
    guidance_scale: float | None = arg(None, "classifier-free guidance scale, 1: none (default: the model's own)")
    # [start, stop) share of the steps that are guided (default: the model's own)
    guidance_interval: tuple[float, float] | None = None
    eta: float = arg(1.0, "DDIM eta, where the scheduler takes one (default 1)")
    content_scale: ContentScale = arg((1.0, 1.0), "S or LO:HI, drawn per pair (default 1: unchanged latents "
                                      "anchored to the end; the paper: 0.7:1 with --blend latent)")
    blend: Literal["pixel", "latent"] = arg("pixel", "pixel: keep the real before image outside the change, "
                                            "feathered (default); latent: decode the whole latent (the paper)")
    feather: int = arg(6, "seam width in px of the pixel blend (default 6)")
    free_band: int = 1  # latent cells around the change painted freely
    # < 1: free cells start from copied texture of their new class, or from the given image (SDEdit); 0: as given
    strength: float = 1.0
    drift: float | DriftSettings = arg(0.0, "strength of a global radiometric drift of B: white balance, "
                                       "exposure, gamma, haze (0: off, the default)")
    sampler: Literal["inpaint", "anchored"] | None = arg(
        None, "change sampler (default: the model's: inpaint for an inpainting UNet, else anchored)")
    nonchange: float | NonChangeSettings = arg(
        NonChangeSettings.strength, "strength of realistic non-change: unchanged objects re-rendered under the same "
        "map (with an inpainting UNet), scene appearance, misregistration, blur, noise, JPEG (0: off, unchanged pixels "
        "copy A; default 1)")
    # set by `ChangeAnywherePipeline.resolve`: every open field filled from the model and every field checked once
    is_resolved: bool = field(default=False, init=False, repr=False, compare=False)

    def with_(self, **overrides: Any) -> SamplerSettings:
        """These settings with the fields given (not None) replaced: keyword arguments as sugar over `settings=`."""
        names = {f.name for f in fields(SamplerSettings) if f.init}
        given = {k: v for k, v in overrides.items() if v is not None and k in names}
        return replace(self, **given) if given else self

    @property
    def drift_strength(self) -> float:
        """The drift's strength (0: off), whether `drift` is a number or `DriftSettings`."""
        return _strength(self.drift)

    @property
    def nonchange_strength(self) -> float:
        """Non-change's strength (0: off), whether `nonchange` is a number or `NonChangeSettings`."""
        return _strength(self.nonchange)

    def mark_resolved(self) -> SamplerSettings:
        """These settings, marked as resolved: `ChangeAnywherePipeline.resolve` passes them through unchecked."""
        object.__setattr__(self, "is_resolved", True)
        return self

    def check(self) -> None:
        """Validate every setting (errors name the parameter, `ParameterError`; the CLI shows its flag)."""
        n = self.num_inference_steps
        if n is not None and (int(n) != n or not 1 <= n <= 1000):
            raise ParameterError(f"`num_inference_steps` must be an integer in 1..1000, got {n}", "num_inference_steps")
        if self.guidance_scale is not None and not 0.0 <= float(self.guidance_scale) <= 30.0:
            raise ParameterError(f"`guidance_scale` must lie in [0, 30], got {self.guidance_scale}", "guidance_scale")
        if self.guidance_interval is not None:
            check_interval(self.guidance_interval)
        if self.eta < 0:
            raise ParameterError(f"`eta` must be ≥ 0, got {self.eta}", "eta")
        cs = self.content_scale
        lo, hi = (cs, cs) if isinstance(cs, int | float) else cs
        if not 0.0 <= float(lo) <= float(hi) <= 1.0:
            raise ParameterError(f"`content_scale` must lie in [0, 1] (low ≤ high), got {cs}", "content_scale")
        if self.blend not in BLENDS:
            raise ParameterError(f"`blend` must be 'pixel' or 'latent', got {self.blend!r}", "blend")
        if self.feather < 0 or self.free_band < 0:
            raise ParameterError(f"`feather` and `free_band` must be ≥ 0, got {self.feather} and {self.free_band}",
                                 "feather", "free_band")
        if not 0.0 <= self.strength <= 1.0:
            raise ParameterError(f"`strength` must lie in [0, 1], got {self.strength}", "strength")
        as_drift_settings(self.drift)  # each validates its own strength (`DriftSettings`, `NonChangeSettings`)
        as_nonchange_settings(self.nonchange)
        if self.sampler not in (None, *CHANGE_SAMPLERS):
            raise ParameterError(f"`sampler` must be one of {', '.join(CHANGE_SAMPLERS)}, got {self.sampler!r}",
                                 "sampler")

    def record(self) -> dict[str, Any]:
        """The one record of what a call used (JSON): generation.json's sampler block, the dataset card's, the
        app's info and `eval-generator`'s report read it. Call it on resolved settings."""
        cs = self.content_scale
        return {
            "num_inference_steps": self.num_inference_steps,
            "eta": float(self.eta),
            "guidance_scale": None if self.guidance_scale is None else float(self.guidance_scale),
            "guidance_interval": None if self.guidance_interval is None else [float(v) for v in self.guidance_interval],
            "content_scale": [float(cs)] * 2 if isinstance(cs, int | float) else [float(v) for v in cs],
            "blend": self.blend,
            "feather": int(self.feather),
            "free_band": int(self.free_band),
            "strength": float(self.strength),
            "drift": self.drift_strength,
            "nonchange": self.nonchange_strength,
            "sampler": self.sampler,
        }


def _strength(value: Any) -> float:
    """A drift or non-change setting as its strength (0: off)."""
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    return float(value) if isinstance(value, int | float) else float(getattr(value, "strength", 1.0))


def check_interval(interval: Any) -> tuple[float, float]:
    """(start, stop) with 0 ≤ start < stop ≤ 1, or a `ParameterError` naming `guidance_interval`."""
    try:
        start, stop = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ParameterError(f"`guidance_interval` must be two numbers (start, stop), got {interval!r}",
                             "guidance_interval") from None
    if not 0.0 <= start < stop <= 1.0:
        raise ParameterError(f"`guidance_interval` must satisfy 0 ≤ start < stop ≤ 1, got {interval!r}",
                             "guidance_interval")
    return start, stop

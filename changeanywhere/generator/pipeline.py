"""`ChangeAnywherePipeline`: semantic synthesis and change synthesis by latent mixing (docs/method.md §1, §3).

Two entry points share one denoising loop:

- `synthesize(label_map)`: land-cover map -> image (pure noise, never mixed);
- `change(before_image, before_map, after_map)`: the "after" image under the edited map, with the
  unchanged region anchored to the forward-noised before-latent for the first `s·N` steps, then free.

Every random draw of a sample (its content scale, start noise, the fresh q-sample noise and the DDIM noise
of every step) comes from that sample's own generator, so a sample's result does not depend on its batch.
`pipe.noise_source` says where the loop's noise is drawn (`generator.noise`): per step on the CPU (the CPU
default), all before the loop (same numbers, moved once), or on the device from per-sample device generators
(the GPU default: no host round trip per step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DModel, VQModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from PIL import Image

from ..errors import ChangeAnywhereError, MapSizeError, ParameterError
from ..image_utils import images_to_tensor, maps_to_tensor, tensor_to_uint8, uint8_to_tensor
from ..labels import change_mask
from ..runtime import resolve_backend
from .autoencoder import ColorAutoencoder
from .compositing import composite, latent_keep_mask, texture_init
from .drift import DriftSettings, apply_drift, as_drift_settings, draw_drift
from .inpainting import inpaint_channels, inpaint_condition, synthesis_condition
from .noise import NoiseSourceName, SamplerNoise
from .nonchange import (
    NonChangeSettings,
    apply_nonchange,
    as_nonchange_settings,
    draw_nonchange,
    harmonise,
    nonchange_rng,
    rerender_region,
)
from .onnx_backend import BACKENDS, OnnxNetworks
from .sampler_defaults import SAMPLER_DEFAULTS
from .semantic_encoder import SemanticEncoder

ContentScale = float | tuple[float, float]
CHANGE_SAMPLERS = ("inpaint", "anchored")


@dataclass
class SynthesisOutput(BaseOutput):
    """Images synthesized from land-cover maps (PIL list, (B,H,W,3) float array in [0,1], or tensor), the seeds
    and the sampler settings used (`sampler_record`)."""

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


def mix_known_region(
    x: torch.Tensor, known_noisy: torch.Tensor, keep: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """Replace the unchanged region (`keep` = 1) of `x` by the noised before-latent, for samples still `active`."""
    mixed = keep * known_noisy + (1 - keep) * x
    return torch.where(active.view(-1, 1, 1, 1), mixed, x)


def anchor_steps(keep: torch.Tensor, mix_steps: Sequence[int]) -> torch.Tensor:
    """(B,1,h,w) steps each latent cell stays anchored to the known latent: a sample's `mix_steps` where `keep`
    is 1, else 0 (the paper's one-region latent mixing as a per-cell schedule)."""
    return keep * torch.tensor([float(m) for m in mix_steps], device=keep.device).view(-1, 1, 1, 1)


def guided_steps(guidance_interval: Sequence[float], num_steps: int, guidance_scale: float) -> range:
    """The step indices that get classifier-free guidance: i with int(start·N) ≤ i < int(stop·N) (diffusers'
    guider convention), none at guidance scale 1."""
    start, stop = guidance_interval
    return range(int(start * num_steps), int(stop * num_steps)) if guidance_scale != 1.0 else range(0)


def latent_channels_of(vae: Any) -> int:
    """Latent channels of any supported autoencoder (`ColorAutoencoder` derives them from its config)."""
    return int(getattr(vae.config, "latent_channels", None) or vae.latent_channels)


class ChangeAnywherePipeline(DiffusionPipeline):
    """Semantic latent diffusion for change-detection pairs.

    Components: `vae` (`AutoencoderKL` or `VQModel`), `semantic_encoder` (`SemanticEncoder`), `unet`
    (`UNet2DModel` with `in_channels = latent + condition channels`) and any diffusers scheduler (the default
    is DDIM; DPM-Solver++, UniPC, Euler... swap in with `Scheduler.from_config(pipe.scheduler.config)`).
    """

    model_cpu_offload_seq = "semantic_encoder->unet->vae"

    def __init__(
        self,
        vae: AutoencoderKL | VQModel | ColorAutoencoder,
        semantic_encoder: SemanticEncoder,
        unet: UNet2DModel,
        scheduler: SchedulerMixin,
        default_guidance_scale: float = SAMPLER_DEFAULTS.guidance_scale,
        default_num_inference_steps: int = SAMPLER_DEFAULTS.num_inference_steps,
        default_guidance_interval: list[float] | tuple[float, float] = SAMPLER_DEFAULTS.guidance_interval,
    ):
        super().__init__()
        latent = latent_channels_of(vae)
        cond = semantic_encoder.config.condition_channels
        if unet.config.in_channels not in (latent + cond, latent + cond + inpaint_channels(latent)):
            raise ValueError(
                f"unet.in_channels ({unet.config.in_channels}) must equal latent channels ({latent}) + "
                f"condition channels ({cond}), plus {inpaint_channels(latent)} for an inpainting UNet"
            )
        self.register_modules(vae=vae, semantic_encoder=semantic_encoder, unet=unet, scheduler=scheduler)
        # the guidance a trained model was measured best at; calls with guidance_scale=None use it
        # and the fewest steps within 2 % of 200 DDIM steps with its scheduler (bench/steps_curve.py); calls
        # with num_inference_steps=None use them
        # and the share of the steps guidance is applied on, [start, stop) as in diffusers' guiders: the other
        # steps run the conditional branch alone (half the UNet batch)
        self.register_to_config(default_guidance_scale=float(default_guidance_scale),
                                default_num_inference_steps=int(default_num_inference_steps),
                                default_guidance_interval=[float(v) for v in default_guidance_interval])
        self.noise_source: NoiseSourceName = "auto"  # where per-sample noise is drawn: see `generator.noise`
        self._onnx: OnnxNetworks | None = None  # None: the modules themselves; see `set_backend`

    def set_backend(self, backend: str | None = "torch", **kwargs: Any) -> None:
        """Run the UNet and the autoencoder on `backend`: "torch" (the modules themselves), "onnx" (ONNX Runtime
        on the CPU, `generator.onnx_backend`, exported once per weights and cached; `threads`, `cache_dir`) or
        "auto" (onnx on a CPU when installed). Call again after changing weights."""
        backend = resolve_backend(backend, self.device)
        if backend not in BACKENDS:
            raise ParameterError(f"`backend` must be one of {', '.join(BACKENDS)}, got {backend!r}", "backend")
        if backend == "onnx" and self.device.type != "cpu":
            raise ParameterError("the onnx backend runs on the CPU: use the torch backend on a GPU", "backend")
        self._onnx = OnnxNetworks(self.unet, self.vae, self.size_multiple // self.vae_scale_factor,
                                  self.vae_scale_factor, **kwargs) if backend == "onnx" else None

    @property
    def backend(self) -> str:
        return "torch" if self._onnx is None else "onnx"

    def to(self, *args: Any, **kwargs: Any) -> ChangeAnywherePipeline:
        """As in diffusers; moving off the CPU drops the ONNX backend (it runs on the CPU only)."""
        out = super().to(*args, **kwargs)
        if out._onnx is not None and out.device.type != "cpu":
            out._onnx = None
        return out

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> ChangeAnywherePipeline:
        """As in diffusers, but weights stored in fp16 load as fp32 unless `dtype` is given: fp16 is slow on CPUs.

        (`changeanywhere.hub.load_pipeline` picks fp16 on CUDA and fp32 elsewhere.)
        """
        if "dtype" not in kwargs and "torch_dtype" not in kwargs:
            kwargs["dtype"] = torch.float32
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # ----------------------------------------------------------------- properties
    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (autoencoder factor × UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def is_inpainting(self) -> bool:
        """Whether the UNet also takes the masked known latent and the paint mask (`generator.inpainting`)."""
        latent = latent_channels_of(self.vae)
        return self.unet.config.in_channels == (latent + self.semantic_encoder.config.condition_channels
                                                + inpaint_channels(latent))

    @property
    def num_classes(self) -> int:
        return self.semantic_encoder.config.num_classes

    @property
    def class_set(self):
        """The `ClassSet` stored with the weights, or None for an anonymous model."""
        from ..classes import ClassSet

        d = self.semantic_encoder.config.class_set
        return ClassSet.from_dict(d) if d else None

    # ----------------------------------------------------------------- latents
    def _latent_norm(self, like: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """(shift, scale) so that normalised = (raw - shift) * scale: per channel when the autoencoder's config
        has `latents_mean`/`latents_std` (diffusers convention), else its global `shift_factor`/`scaling_factor`."""
        cfg = self.vae.config
        mean, std = getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, -1, 1, 1)
            m = torch.tensor(mean, dtype=like.dtype, device=like.device).view(shape)
            s = torch.tensor(std, dtype=like.dtype, device=like.device).view(shape)
            return m, cfg.scaling_factor / s
        return (getattr(cfg, "shift_factor", None) or 0.0), cfg.scaling_factor

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [-1,1] -> normalised latents (posterior mean for KL; pre-quantisation for VQ)."""
        if self._onnx is not None and self._onnx.encode is not None:
            z = self._onnx.encode(images.float())
        else:
            images = images.to(self.vae.device, self.vae.dtype)
            out = self.vae.encode(images)
            z = out.latent_dist.mean if hasattr(out, "latent_dist") else out.latents
        shift, scale = self._latent_norm(z)
        return (z - shift) * scale

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> (B,3,H,W) images in [-1,1]."""
        onnx = self._onnx is not None and self._onnx.decode is not None
        z = latents.float() if onnx else latents.to(self.vae.dtype)
        shift, scale = self._latent_norm(z)
        z = z / scale + shift
        return (self._onnx.decode(z) if onnx else self.vae.decode(z).sample).clamp(-1, 1)

    # ----------------------------------------------------------------- inputs
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

    def _condition(self, label_map: torch.Tensor, device: torch.device) -> torch.Tensor:
        return self.semantic_encoder(label_map.to(device))

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

    # ----------------------------------------------------------------- the loop
    def _noise_coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) with `scheduler.add_noise(x, ε, t) == a·x + b·ε`, evaluated on host probes so that the
        scheduler's lookups never touch a device tensor (no sync, no copy); bit-identical on a CPU."""
        ab = self.scheduler.add_noise(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), t.reshape(1))
        return ab[0], ab[1]

    @torch.no_grad()
    def _denoise(
        self,
        cond: torch.Tensor,
        generators: list[torch.Generator],
        num_inference_steps: int,
        eta: float,
        guidance_scale: float,
        device: torch.device,
        known_latents: torch.Tensor | None = None,
        keep_mask: torch.Tensor | None = None,
        mix_steps: Sequence[int] = (),
        anchor_until: torch.Tensor | None = None,
        init_latents: torch.Tensor | None = None,
        start_index: int = 0,
        callback_on_step_end: Callable | None = None,
        guidance_interval: tuple[float, float] = SAMPLER_DEFAULTS.guidance_interval,
        inpaint: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Any diffusers scheduler from pure noise under `cond` (and, for an inpainting UNet, its extra input
        `inpaint`: the masked known latent and the paint mask; None = plain synthesis). If `known_latents` is
        given, the cells where `keep_mask` is 1 are replaced, before step i of every sample with i < its
        `mix_steps`, by the known latent noised to the scheduler's own level at that step (docs/method.md §3);
        `anchor_until` ((B,1,h,w) step counts) instead gives every cell its own anchored steps (`mix_steps` then
        holds each sample's largest).
        With `init_latents`, the run starts at step `start_index` from them, noised to that step's level
        (SDEdit). Guidance applies on the steps i with start·N ≤ i < stop·N of the resolved
        `guidance_interval` (diffusers' guider convention).

        Nothing in the step loop reads a device value back or copies from the host with `noise_source`
        "device" or "predrawn": the scheduler keeps host timesteps (its arithmetic stays on host scalars), the
        UNet gets timesteps and mixing masks moved once before the loop."""
        scheduler = self.scheduler
        shape = (latent_channels_of(self.vae), *cond.shape[2:])
        unet = self._onnx.unet if self._onnx is not None else self.unet
        dtype = torch.float32 if self._onnx is not None else self.unet.dtype
        scheduler.set_timesteps(num_inference_steps, device="cpu")
        timesteps = scheduler.timesteps
        unet_timesteps = timesteps.to(device)
        step_params = set(inspect.signature(scheduler.step).parameters)
        variance = "variance_noise" in step_params and (eta > 0 or "eta" not in step_params)
        if init_latents is None:
            start_index = 0
        steps = range(start_index, len(timesteps))
        mixing = known_latents is not None
        if mixing and anchor_until is None:
            anchor_until = anchor_steps(keep_mask, mix_steps)
        mix = [int(m) for m in mix_steps] if mixing else []  # per sample, on the host: the most anchored steps
        noise = SamplerNoise(self.noise_source, generators, shape, device, steps, mix if mixing else None, variance)
        x = noise.start() * scheduler.init_noise_sigma
        if start_index > 0:
            a, b = self._noise_coefficients(timesteps[start_index])
            x = a * init_latents + b * (x / scheduler.init_noise_sigma)
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(start_index)
        last_mix = max(mix, default=0)
        cond = cond.to(dtype)
        guided = guided_steps(guidance_interval, len(timesteps), guidance_scale)
        cond_cfg = torch.cat([cond, torch.zeros_like(cond)]) if len(guided) else cond
        if self.is_inpainting:  # the image context is kept in both guidance branches; only the map is dropped
            if inpaint is None:
                inpaint = synthesis_condition(cond.shape[0], shape[0], shape[1:], device)
            inpaint = inpaint.to(device, dtype)
            cond = torch.cat([cond, inpaint], dim=1)
            cond_cfg = torch.cat([cond_cfg, torch.cat([inpaint, inpaint])], dim=1) if len(guided) else cond
        for i in self.progress_bar(steps):
            t = timesteps[i]
            if mixing and i < last_mix:
                a, b = self._noise_coefficients(t)
                keep = (anchor_until > i).to(x.dtype)
                x = keep * (a * known_latents + b * noise.mix(i)) + (1 - keep) * x
            use_cfg = i in guided
            x_in = torch.cat([x, x]) if use_cfg else x
            x_in = scheduler.scale_model_input(x_in, t)
            c = cond_cfg if use_cfg else cond
            out = unet(torch.cat([x_in.to(dtype), c], dim=1), unet_timesteps[i]).sample.float()
            if use_cfg:
                out_cond, out_uncond = out.chunk(2)
                out = out_uncond + guidance_scale * (out_cond - out_uncond)
            kwargs: dict[str, Any] = {}
            if "eta" in step_params:
                kwargs["eta"] = eta
            if variance:
                kwargs["variance_noise"] = noise.variance(i)
            elif "generator" in step_params and "variance_noise" not in step_params:
                kwargs["generator"] = noise.step_generators
            x = scheduler.step(out, t, x, **kwargs).prev_sample
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, t, {"latents": x})
        return x

    def _format_images(self, images: torch.Tensor, output_type: str):
        if output_type in ("pt", "latent"):
            return images
        arr = tensor_to_uint8(images)
        if output_type == "np":
            return arr.astype(np.float32) / 255.0
        return [Image.fromarray(a) for a in arr]  # "pil": `check_inputs` allowed no other

    # ----------------------------------------------------------------- entry points
    @torch.no_grad()
    def synthesize(
        self,
        label_map: Any,
        *,
        num_inference_steps: int | None = None,
        eta: float = 1.0,
        guidance_scale: float | None = None,
        guidance_interval: Sequence[float] | None = None,
        seed: int | Sequence[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
    ) -> SynthesisOutput | tuple:
        """Land-cover map(s) -> image(s): plain semantic synthesis from pure noise."""
        num_inference_steps, guidance_scale, eta = self.check_inputs(
            num_inference_steps, guidance_scale, eta, output_type
        )
        guidance_interval = self.resolve_guidance_interval(guidance_interval)
        maps = maps_to_tensor(label_map, self.num_classes, self.class_set)
        self._check_size(*maps.shape[1:])
        device = self._execution_device
        generators, seeds = self._generators(maps.shape[0], seed, generator)
        latents = self._denoise(
            self._condition(maps, device),
            generators,
            num_inference_steps,
            eta,
            guidance_scale,
            device,
            callback_on_step_end=callback_on_step_end,
            guidance_interval=guidance_interval,
        )
        images = latents if output_type == "latent" else self.decode_latents(latents)
        out = SynthesisOutput(
            images=self._format_images(images, output_type),
            seeds=seeds,
            sampler=self.sampler_record(num_inference_steps, guidance_scale, eta, guidance_interval),
        )
        return out if return_dict else out.to_tuple()

    @torch.no_grad()
    def change(
        self,
        before_image: Any,
        before_map: Any,
        after_map: Any,
        *,
        content_scale: ContentScale = 1.0,
        blend: str = "pixel",
        feather: int = 6,
        free_band: int = 1,
        strength: float = 1.0,
        drift: DriftSettings | float | bool | None = None,
        drift_reference: dict | Sequence[dict | None] | None = None,
        sampler: str | None = None,
        nonchange: NonChangeSettings | float | bool | None = None,
        nonchange_reference: dict | Sequence[dict | None] | None = None,
        num_inference_steps: int | None = None,
        eta: float = 1.0,
        guidance_scale: float | None = None,
        guidance_interval: Sequence[float] | None = None,
        seed: int | Sequence[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
    ) -> ChangeOutput | tuple:
        """Before image + before map + after map -> after image (user edits: `simulate_changes(..., edits=)`).

        The latent-mixing sampler of docs/method.md §3 keeps latent cells away from the change anchored to the
        forward-noised before-latent for the first `int(s·N)` steps (`content_scale` s: a float, or a (low, high)
        range drawn per sample); at s = 1 (default) they stay anchored to the end and are reset to the before
        latent, so only the change and a `free_band` of cells around it are painted. `blend="pixel"` (default)
        then keeps the real before image outside the change, feathered over `feather` px; `blend="latent"`
        decodes the whole latent. `strength` < 1 starts the free cells from real texture of their new class
        copied from elsewhere in the before image, noised to that share of the schedule (SDEdit), instead of
        pure noise (1, the paper). `drift` adds a seeded, smooth radiometric change of the whole after image
        (`drift_reference`: colour statistics of another real image, see `drift.colour_stats`); it never
        changes the label. The paper's original behaviour: `content_scale=(0.7, 1.0), blend="latent",
        free_band=0`.

        `sampler`: "inpaint" (the default for an inpainting UNet: the network sees the masked before latent and
        paints the change and its band to fit the scene; nothing is anchored) or "anchored" (the latent mixing
        above; the default for a plain UNet). `nonchange` (`generator.nonchange`: a strength, True or settings)
        makes unchanged areas differ as real dates do: unchanged objects and blobs are re-rendered under the same
        map (inpainting UNet only), then scene appearance and acquisition effects are applied to the whole after
        image; seeded per sample, parameters in `out.nonchange`, the label never touched.
        """
        num_inference_steps, guidance_scale, eta = self.check_inputs(
            num_inference_steps, guidance_scale, eta, output_type, content_scale=content_scale, blend=blend,
            feather=feather, free_band=free_band,
        )
        guidance_interval = self.resolve_guidance_interval(guidance_interval)
        if not 0.0 < strength <= 1.0:
            raise ParameterError(f"`strength` must lie in (0, 1], got {strength}", "strength")
        drift_settings = as_drift_settings(drift)
        nonchange_settings = as_nonchange_settings(nonchange)
        sampler = self.resolve_sampler(sampler)
        images, before, after = self._change_inputs(before_image, before_map, after_map)
        batch = before.shape[0]
        references = self._per_sample(drift_reference, batch, "drift_reference")
        nc_references = self._per_sample(nonchange_reference, batch, "nonchange_reference")
        generators, seeds = self._generators(batch, seed, generator)
        scales = [self._draw_scale(content_scale, g) for g in generators]
        inpaint_mode = sampler == "inpaint"
        mix_steps = [0 if inpaint_mode else int(s * num_inference_steps) for s in scales]

        device = self._execution_device
        known = self.encode_images(images).float().to(device)
        changed = change_mask(before, after)
        nonchanges = self._draw_nonchanges(nonchange_settings, generators, nc_references, changed, after)
        painted = changed | torch.from_numpy(np.stack([nc["rerender"] for nc in nonchanges])) \
            if nonchange_settings is not None else changed
        keep = latent_keep_mask(painted, self.vae_scale_factor, free_band).to(device)
        # re-rendered cells (away from the change) stay anchored for the first share of the steps, so they keep
        # A's layout and light and only their texture is new (the paper's non-change mechanism, per region)
        rerender = keep.new_zeros(keep.shape)
        if nonchange_settings is not None:
            rerender = (1 - keep) * latent_keep_mask(changed, self.vae_scale_factor, free_band).to(device)
        rr_steps = [round(nc.get("rerender_anchored", 0.0) * num_inference_steps) for nc in nonchanges]
        anchor = anchor_steps(rerender, rr_steps)
        if not inpaint_mode:
            anchor = anchor + anchor_steps(keep, mix_steps)
        start = min(int(round((1.0 - strength) * num_inference_steps)), num_inference_steps - 1)
        init = None
        if start > 0:
            init = texture_init(known, before, after, keep[:, 0] < 0.5, self.num_classes, self.vae_scale_factor,
                                generators)
        most = [max(r, 0 if inpaint_mode else m) for r, m in zip(rr_steps, mix_steps, strict=True)]
        latents = self._denoise(
            self._condition(after, device), generators, num_inference_steps, eta, guidance_scale, device,
            known_latents=known if any(most) else None, anchor_until=anchor, mix_steps=most, init_latents=init,
            start_index=start, callback_on_step_end=callback_on_step_end, guidance_interval=guidance_interval,
            inpaint=inpaint_condition(known, 1.0 - keep) if self.is_inpainting else None,
        )
        anchored = torch.tensor([inpaint_mode or m >= num_inference_steps for m in mix_steps], device=device)
        latents = mix_known_region(latents, known, keep, anchored)  # exactly the before latent
        drifts = [draw_drift(g, drift_settings, r) if drift_settings else None
                  for g, r in zip(generators, references, strict=True)]
        records = [{k: v for k, v in nc.items() if k != "rerender"} if nc else None for nc in nonchanges]
        rerendered = [nc.get("rerender") for nc in nonchanges]
        images_out = latents if output_type == "latent" else self._after_images(
            latents, images, painted, blend, feather, drifts, records, after, rerendered)
        out = ChangeOutput(
            images=self._format_images(images_out, output_type),
            change_masks=changed.numpy(),
            after_maps=after.numpy().astype(np.uint8),
            content_scales=scales,
            seeds=seeds,
            mix_steps=mix_steps,
            drifts=drifts,
            sampler=self.sampler_record(num_inference_steps, guidance_scale, eta, guidance_interval),
            nonchange=records,
            rerendered=rerendered if nonchange_settings is not None else None,
        )
        out.sampler["change_sampler"] = sampler
        return out if return_dict else out.to_tuple()

    def resolve_sampler(self, sampler: str | None) -> str:
        """The change sampler: "inpaint" (default for an inpainting UNet) or "anchored" (latent mixing)."""
        sampler = sampler or ("inpaint" if self.is_inpainting else "anchored")
        if sampler not in CHANGE_SAMPLERS:
            raise ParameterError(f"`sampler` must be one of {', '.join(CHANGE_SAMPLERS)}, got {sampler!r}", "sampler")
        if sampler == "inpaint" and not self.is_inpainting:
            raise ParameterError("`sampler` 'inpaint' needs an inpainting UNet (generator v3 weights); this model "
                                 "has a plain UNet: use 'anchored'", "sampler")
        return sampler

    def _draw_nonchanges(self, settings: NonChangeSettings | None, generators: list[torch.Generator],
                         references: list[dict | None], changed: torch.Tensor, after: torch.Tensor) -> list[dict]:
        """Per sample: non-change parameters (its own seeded stream) and the unchanged region to re-render."""
        if settings is None:
            return [{}] * len(generators)
        if settings.rerender[1] > 0 and not self.is_inpainting:
            raise ParameterError("re-rendering unchanged regions needs an inpainting UNet (generator v3 weights); "
                                 "pass NonChangeSettings(rerender=(0, 0)) with this model", "nonchange")
        out = []
        for g, ref, ch, m in zip(generators, references, changed.numpy(), after.numpy(), strict=True):
            rng = nonchange_rng(g.initial_seed())
            params = draw_nonchange(rng, settings, ref)
            params["rerender"] = rerender_region(~ch, m, rng, params["rerender_share"], self.num_classes)
            params["rerendered_pixels"] = int(params["rerender"].sum())
            out.append(params)
        return out

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

    def _after_images(
        self, latents: torch.Tensor, before: torch.Tensor, painted: torch.Tensor, blend: str, feather: int,
        drifts: Sequence[dict | None], nonchanges: Sequence[dict | None], after_maps: torch.Tensor,
        rerendered: Sequence[np.ndarray | None] = (),
    ) -> torch.Tensor:
        """Decode; keep the real before image outside the painted pixels (pixel blend); give re-rendered regions
        A's light (`harmonise`); apply each sample's drift and non-change appearance and acquisition effects."""
        out = self.decode_latents(latents)
        if blend == "pixel":
            out = composite(before, out, painted, feather)
        if any(r is not None and r.any() for r in rerendered):
            out = torch.stack([harmonise(o, a, r, nc["harmonise_sigma"]) if r is not None and r.any() else o
                               for o, a, r, nc in zip(out, before.to(out), rerendered, nonchanges, strict=True)])
        if any(d is not None for d in drifts) or any(nonchanges):
            names = list(self.class_set.names) if self.class_set is not None else []
            arr = tensor_to_uint8(out)
            arr = [apply_drift(a, d) if d else a for a, d in zip(arr, drifts, strict=True)]
            arr = [apply_nonchange(a, nc, m, names) if nc else a
                   for a, nc, m in zip(arr, nonchanges, after_maps.numpy(), strict=True)]
            out = uint8_to_tensor(np.stack(arr))
        return out

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

    def __call__(self, label_map: Any, **kwargs: Any) -> SynthesisOutput | tuple:
        """`pipe(map)` is `pipe.synthesize(map)`; the after image of a change has its own entry point, `change`."""
        if "image" in kwargs or "after_map" in kwargs:
            raise ParameterError("`pipe(...)` synthesizes from a map; for an after image call "
                                 "`pipe.change(before_image, before_map, after_map)`", "image")
        return self.synthesize(label_map, **kwargs)

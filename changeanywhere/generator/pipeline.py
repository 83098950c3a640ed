"""`ChangeAnywherePipeline`: semantic synthesis and change synthesis with one semantic latent diffusion model
(docs/method.md §1, §3).

Two entry points share one denoising loop:

- `synthesize(label_map)`: land-cover map -> image (pure noise, never mixed);
- `change(before_image, before_map, after_map)`: the "after" image under the edited map. With an inpainting
  UNet (sampler "inpaint", its default) the model paints the changed latent cells and a band around them from
  the masked before latent, and every other cell is the before latent; with a plain UNet (sampler "anchored",
  the paper's latent mixing) the unchanged region is anchored to the forward-noised before latent for the
  first `s·N` steps, then free.

Every random draw of a sample (its content scale, start noise, the fresh q-sample noise and the DDIM noise
of every step) comes from that sample's own generator, so a sample's result does not depend on its batch.
`pipe.noise_source` says where the loop's noise is drawn (`generator.noise`): per step on the CPU (the CPU
default), all before the loop (same numbers, moved once), or on the device from per-sample device generators
(the GPU default: no host round trip per step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DModel, VQModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..errors import ParameterError
from ..image_utils import maps_to_tensor, tensor_to_uint8, uint8_to_tensor
from ..labels import change_mask
from ..runtime import resolve_backend
from .autoencoder import ColorAutoencoder
from .compositing import composite, latent_keep_mask, texture_init
from .drift import DriftSettings, apply_drift, as_drift_settings, draw_drift
from .inpainting import inpaint_channels, inpaint_condition, synthesis_condition
from .inputs import ContentScale, PipelineInputs
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
from .outputs import ChangeOutput, SynthesisOutput, format_images
from .sampler_defaults import SAMPLER_DEFAULTS
from .sampling import (
    anchor_steps,
    guided_steps,
    latent_channels_of,
    mix_known_region,
    noise_coefficients,
    prepare_latents,
    prepare_timesteps,
    step_kwargs,
)
from .semantic_encoder import SemanticEncoder
from .settings import SamplerSettings

START_FROM = ("texture", "image")  # where `change` starts the painted cells from when strength < 1
SETTINGS_USED = ("num_inference_steps", "guidance_scale", "guidance_interval", "eta", "sampler", "content_scale",
                 "blend", "feather", "free_band", "strength")  # the `SamplerSettings` fields `change` unpacks


class ChangeAnywherePipeline(PipelineInputs, DiffusionPipeline):
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

    def _condition(self, label_map: torch.Tensor, device: torch.device) -> torch.Tensor:
        return self.semantic_encoder(label_map.to(device))

    # ----------------------------------------------------------------- the loop
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
        # 1. timesteps: the scheduler's stay on the host, the UNet's copy goes to the device once
        timesteps, unet_timesteps = prepare_timesteps(scheduler, num_inference_steps, device)
        # 2. step kwargs: what this scheduler's step() takes (eta, per-step variance noise)
        step_params = set(inspect.signature(scheduler.step).parameters)
        variance = "variance_noise" in step_params and (eta > 0 or "eta" not in step_params)
        steps = range(start_index if init_latents is not None else 0, len(timesteps))
        # 3. anchoring: how many steps each cell stays anchored to the known latent
        mixing = known_latents is not None
        if mixing and anchor_until is None:
            anchor_until = anchor_steps(keep_mask, mix_steps)
        mix = [int(m) for m in mix_steps] if mixing else []  # per sample, on the host: the most anchored steps
        last_mix = max(mix, default=0)
        # 4. latents: seeded noise, or `init_latents` noised to the first step's level (SDEdit)
        noise = SamplerNoise(self.noise_source, generators, shape, device, steps, mix if mixing else None, variance)
        x = prepare_latents(scheduler, noise, init_latents, timesteps, steps.start)
        # 5. conditions, with the unconditional half on the guided steps
        guided = guided_steps(guidance_interval, len(timesteps), guidance_scale)
        cond, cond_cfg = self._unet_conditions(cond.to(dtype), inpaint, bool(len(guided)), shape, device, dtype)
        # 6. the loop: anchor the known cells, predict (guided or not), step, report
        for i in self.progress_bar(steps):
            t = timesteps[i]
            if mixing and i < last_mix:
                a, b = noise_coefficients(scheduler, t)
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
            x = scheduler.step(out, t, x, **step_kwargs(step_params, eta, variance, noise, i)).prev_sample
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, t, {"latents": x})
        return x

    def _unet_conditions(self, cond: torch.Tensor, inpaint: torch.Tensor | None, guided: bool,
                         shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """The UNet's extra input channels without and with guidance (the unconditional half: the map zeroed).
        An inpainting UNet keeps the image context in both guidance branches; only the map is dropped."""
        cond_cfg = torch.cat([cond, torch.zeros_like(cond)]) if guided else cond
        if self.is_inpainting:
            if inpaint is None:
                inpaint = synthesis_condition(cond.shape[0], shape[0], shape[1:], device)
            inpaint = inpaint.to(device, dtype)
            cond = torch.cat([cond, inpaint], dim=1)
            cond_cfg = torch.cat([cond_cfg, torch.cat([inpaint, inpaint])], dim=1) if guided else cond
        return cond, cond_cfg

    # ----------------------------------------------------------------- entry points
    @torch.no_grad()
    def synthesize(
        self,
        label_map: Any,
        *,
        settings: SamplerSettings | None = None,
        num_inference_steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
        guidance_interval: Sequence[float] | None = None,
        seed: int | Sequence[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
    ) -> SynthesisOutput | tuple:
        """Land-cover map(s) -> image(s): plain semantic synthesis from pure noise.

        Args:
            label_map (`np.ndarray`, `torch.Tensor`, `PIL.Image.Image`, `str`/`Path`, or a list of them):
                The land-cover map(s) to draw: an HxW index map of class indices (0..K-1, `labels.IGNORE_INDEX`
                255 = ignore), a (B,H,W) batch, or colour maps (paths, PIL images, HxWx3 arrays) read with the
                model's class set (`pipe.class_set`). Height and width must be multiples of `pipe.size_multiple`;
                all maps of a batch have one size.
            settings (`SamplerSettings`, *optional*):
                Every sampler setting in one value; of its fields `synthesize` uses the steps, eta, guidance scale
                and guidance interval. None: `SamplerSettings()`. Its fields left None are filled from the model
                (`pipe.resolve`).
            num_inference_steps (`int`, *optional*):
                The number of denoising steps (1..1000). None: the value in `settings`, else the model's
                `default_num_inference_steps` (its config; `SAMPLER_DEFAULTS` 50 when the config has none).
            eta (`float`, *optional*):
                DDIM's eta (≥ 0); schedulers whose `step` takes no eta ignore it. None: the value in `settings`
                (`SamplerSettings` default 1.0).
            guidance_scale (`float`, *optional*):
                Classifier-free guidance scale in [0, 30]; 1 runs the conditional branch alone. The unconditional
                branch gets the map's condition zeroed. None: the value in `settings`, else the model's
                `default_guidance_scale`.
            guidance_interval (`Sequence[float]`, *optional*):
                (start, stop) with 0 ≤ start < stop ≤ 1: guidance applies on the steps i with
                int(start·N) ≤ i < int(stop·N) (diffusers' guider convention); the other steps run the conditional
                branch alone. None: the value in `settings`, else the model's `default_guidance_interval` (else
                every step).
            seed (`int` or `Sequence[int]`, *optional*):
                An int seeds sample i with `seed + i`; a sequence gives one seed per sample. None: fresh random
                seeds (returned in `seeds`). Ignored when `generator` is given.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                One CPU generator per sample (a single one only for a batch of one); every random draw of a sample
                comes from its own generator. None: generators seeded from `seed`.
            output_type (`str`, *optional*, defaults to `"pil"`):
                "pil" (a list of `PIL.Image.Image`), "np" ((B,H,W,3) float32 in [0, 1]), "pt" ((B,3,H,W) tensor in
                [-1, 1]) or "latent" (the normalised latents, not decoded).
            return_dict (`bool`, *optional*, defaults to `True`):
                Whether to return a `SynthesisOutput` instead of a plain tuple.
            callback_on_step_end (`Callable`, *optional*):
                Called after every denoising step as `callback_on_step_end(pipe, i, t, {"latents": latents})`;
                its return value is not used. None: no callback.

        Returns:
            `SynthesisOutput` or `tuple`: with `return_dict`, a `SynthesisOutput` holding `images` (as
            `output_type` says), `seeds` (one per sample; None where a `generator` was given) and `sampler` (the
            resolved settings' record plus the scheduler); else the tuple `(images, seeds, sampler)`.
        """
        s, record = self.resolve(settings, num_inference_steps=num_inference_steps, eta=eta,
                                 guidance_scale=guidance_scale, guidance_interval=guidance_interval)
        self.check_output_type(output_type)
        maps = maps_to_tensor(label_map, self.num_classes, self.class_set)
        self._check_size(*maps.shape[1:])
        device = self._execution_device
        generators, seeds = self._generators(maps.shape[0], seed, generator)
        latents = self._denoise(
            self._condition(maps, device),
            generators,
            s.num_inference_steps,
            s.eta,
            s.guidance_scale,
            device,
            callback_on_step_end=callback_on_step_end,
            guidance_interval=s.guidance_interval,
        )
        images = latents if output_type == "latent" else self.decode_latents(latents)
        out = SynthesisOutput(images=format_images(images, output_type), seeds=seeds, sampler=record)
        return out if return_dict else out.to_tuple()

    @torch.no_grad()
    def change(
        self,
        before_image: Any,
        before_map: Any,
        after_map: Any,
        *,
        settings: SamplerSettings | None = None,
        content_scale: ContentScale | None = None,
        blend: str | None = None,
        feather: int | None = None,
        free_band: int | None = None,
        strength: float | None = None,
        drift: DriftSettings | float | bool | None = None,
        drift_reference: dict | Sequence[dict | None] | None = None,
        sampler: str | None = None,
        nonchange: NonChangeSettings | float | bool | None = None,
        nonchange_reference: dict | Sequence[dict | None] | None = None,
        start_from: str = "texture",
        num_inference_steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
        guidance_interval: Sequence[float] | None = None,
        seed: int | Sequence[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
    ) -> ChangeOutput | tuple:
        """Before image + before map + after map -> after image (user edits: `simulate_changes(..., edits=)`).

        The changed pixels are where `before_map` and `after_map` differ. `sampler` "inpaint" (an inpainting UNet's
        default) paints the change and a `free_band` of latent cells around it from the masked before latent,
        and every other cell is the before latent; "anchored" is docs/method.md §3's latent mixing: the other
        cells stay anchored to the noised before latent for `int(s·N)` steps (`content_scale` s), then run free
        (to the end when s = 1: they are then the before latent). The paper's setting is
        `sampler="anchored", content_scale=(0.7, 1.0), blend="latent", free_band=0`. Every random draw of a
        sample comes from its own generator. docs/library.md says more.

        Args:
            before_image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`/`Path`, or a list of them):
                The before image(s), A: paths, PIL images, HxWx3 uint8 arrays or 3xHxW tensors in [-1, 1], one
                per sample, or a (B,3,H,W) tensor in [-1, 1]. Same size as the maps. With `start_from="image"`
                it already holds the new content inside the change.
            before_map (`np.ndarray`, `torch.Tensor`, `PIL.Image.Image`, `str`/`Path`, or a list of them):
                The land-cover map(s) of A, as `label_map` of `synthesize` (index or colour maps; sides multiples
                of `pipe.size_multiple`).
            after_map (same types as `before_map`):
                The edited map(s) B is drawn under, same batch and size as `before_map`. Required (None raises
                a `ParameterError` naming it).
            settings (`SamplerSettings`, *optional*):
                Every sampler setting in one value (a `pairs.PairSettings` too). None: `SamplerSettings()`. Its
                fields left None (steps, guidance, guidance interval, sampler) are filled from the model
                (`pipe.resolve`); the keyword arguments below that are not None replace single fields.
            content_scale (`float` or `tuple[float, float]`, *optional*):
                s in [0, 1] for the "anchored" sampler: the unchanged cells stay anchored for `int(s·N)` of the N
                steps; a (low, high) range draws s per sample (recorded in `content_scales`). The "inpaint"
                sampler draws it too but does not use it. None: the value in `settings` (default 1.0).
            blend (`str`, *optional*):
                "pixel": the output is the real before image outside the painted pixels, the decoded image inside,
                feathered over `feather` px; "latent": the whole decoded latent. None: the value in `settings`
                (default "pixel").
            feather (`int`, *optional*):
                Width in px (≥ 0) of the seam of the pixel blend. None: the value in `settings` (default 6).
            free_band (`int`, *optional*):
                Latent cells (≥ 0) around the painted pixels that are painted too rather than kept from A. None:
                the value in `settings` (default 1).
            strength (`float`, *optional*):
                In [0, 1]. 1: the painted cells start from pure noise. Below 1 they start at step `(1-strength)·N`
                (SDEdit) from copied texture of their new class (`start_from="texture"`) or from the given image
                (`start_from="image"`); 0 keeps the change as given (only with `start_from="image"`). None: the
                value in `settings` (default 1.0).
            drift (`DriftSettings`, `float` or `bool`, *optional*):
                A global radiometric drift of B (gain, offset, exposure, gamma, haze, a smooth illumination
                field), drawn per sample, never in the label: a strength in [0, 3] (0 or False: off; True:
                strength 1) or `DriftSettings`. None: the value in `settings` (default 0, off).
            drift_reference (`dict` or `Sequence[dict | None]`, *optional*):
                Colour statistics of another real image (`drift.colour_stats`) that the drift pulls B's colours
                towards: one for every sample or one per sample. None: no reference. Used only with `drift` on.
            sampler (`str`, *optional*):
                "inpaint" (needs an inpainting UNet) or "anchored". None: the value in `settings`, else the
                model's: "inpaint" for an inpainting UNet, "anchored" for a plain one.
            nonchange (`NonChangeSettings`, `float` or `bool`, *optional*):
                Realistic non-change (`generator.nonchange`): unchanged objects re-rendered under the same map
                (inpainting UNet only), scene appearance, misregistration, blur, noise, JPEG; drawn per sample,
                never in the label: a strength in [0, 3] (0 or False: off; True: strength 1) or
                `NonChangeSettings`. None: the value in `settings` (`SamplerSettings` default 0, off).
            nonchange_reference (`dict` or `Sequence[dict | None]`, *optional*):
                Colour statistics of another real image (`drift.colour_stats`, per class when given a map) whose
                appearance the non-change style transfers: one for every sample or one per sample. None: no
                reference.
            start_from (`str`, *optional*, defaults to `"texture"`):
                Where the painted cells start when `strength` < 1: "texture" (copied texture of each cell's new
                class from the same before image) or "image" (the before image as given, e.g. with real objects
                pasted by `content.paste_changes`).
            num_inference_steps (`int`, *optional*):
                As in `synthesize`: the number of denoising steps (1..1000); None: `settings`, else the model's.
            eta (`float`, *optional*):
                As in `synthesize`: DDIM's eta; None: the value in `settings` (default 1.0).
            guidance_scale (`float`, *optional*):
                As in `synthesize`: classifier-free guidance scale; None: `settings`, else the model's. An
                inpainting UNet keeps the image context in both guidance branches; only the map is dropped.
            guidance_interval (`Sequence[float]`, *optional*):
                As in `synthesize`: the guided (start, stop) share of the steps; None: `settings`, else the model's.
            seed (`int` or `Sequence[int]`, *optional*):
                As in `synthesize`: `seed + i` for sample i, or one seed per sample; None: fresh random seeds.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                As in `synthesize`: one CPU generator per sample; replaces `seed`.
            output_type (`str`, *optional*, defaults to `"pil"`):
                "pil", "np", "pt" or "latent", as in `synthesize`. With "latent" the latents are returned before
                decoding, so the pixel blend, drift and non-change appearance are not applied.
            return_dict (`bool`, *optional*, defaults to `True`):
                Whether to return a `ChangeOutput` instead of a plain tuple.
            callback_on_step_end (`Callable`, *optional*):
                As in `synthesize`: `callback_on_step_end(pipe, i, t, {"latents": latents})` after every step.

        Returns:
            `ChangeOutput` or `tuple`: with `return_dict`, a `ChangeOutput` holding `images` (the after images, as
            `output_type` says), `change_masks` ((B,H,W) bool, before ≠ after), `after_maps` ((B,H,W) uint8),
            per sample `content_scales`, `seeds` (None where a `generator` was given), `mix_steps` (anchored
            steps; 0 with "inpaint") and `drifts` (the drawn parameters; None where drift is off), `sampler` (the
            resolved settings' record plus the scheduler), per sample `nonchange` (the drawn parameters; None
            where non-change is off) and `rerendered` (bool masks of the re-rendered unchanged pixels; None when
            non-change is off); else the tuple of these fields in this order, without `rerendered` when None.
        """
        s, record = self.resolve(settings, content_scale=content_scale, blend=blend, feather=feather,
                                 free_band=free_band, strength=strength, drift=drift, sampler=sampler,
                                 nonchange=nonchange, num_inference_steps=num_inference_steps, eta=eta,
                                 guidance_scale=guidance_scale, guidance_interval=guidance_interval)
        self.check_output_type(output_type)
        num_inference_steps, guidance_scale, guidance_interval, eta, sampler, content_scale, blend, feather, \
            free_band, strength = (getattr(s, f) for f in SETTINGS_USED)
        if start_from not in START_FROM:
            raise ParameterError(f"`start_from` must be one of {', '.join(START_FROM)}, got {start_from!r}",
                                 "start_from")
        if strength == 0 and start_from != "image":
            raise ParameterError("`strength` 0 keeps the change as given: only with start_from='image'", "strength")
        drift_settings, nonchange_settings = as_drift_settings(s.drift), as_nonchange_settings(
            s.nonchange, self.is_inpainting)
        images, before, after = self._change_inputs(before_image, before_map, after_map)
        references = self._per_sample(drift_reference, len(before), "drift_reference")
        nc_references = self._per_sample(nonchange_reference, len(before), "nonchange_reference")
        generators, seeds = self._generators(len(before), seed, generator)
        scales = [self._draw_scale(content_scale, g) for g in generators]
        inpaint_mode = sampler == "inpaint"
        mix_steps = [0 if inpaint_mode else int(s * num_inference_steps) for s in scales]
        device = self._execution_device
        known = self.encode_images(images).float().to(device)
        changed = change_mask(before, after)
        nonchanges = self._draw_nonchanges(nonchange_settings, generators, nc_references, changed, after)
        paint = changed if strength > 0 else torch.zeros_like(changed)  # strength 0: the change stays as given
        painted = paint | torch.from_numpy(np.stack([nc["rerender"] for nc in nonchanges])) \
            if nonchange_settings is not None else paint
        keep, anchor, rr_steps = self._anchoring(painted, paint, nonchanges, nonchange_settings is not None,
                                                 mix_steps, inpaint_mode, num_inference_steps, free_band, device)
        start = min(int(round((1.0 - strength) * num_inference_steps)), num_inference_steps - 1) if strength else 0
        if not strength and inpaint_mode:  # only re-rendered cells are painted, and they follow A for their first
            start = min(min(rr_steps, default=0), num_inference_steps - 1)  # steps: start there, from A
        init = None
        if start > 0:
            init = known if start_from == "image" else texture_init(
                known, before, after, keep[:, 0] < 0.5, self.num_classes, self.vae_scale_factor, generators)
        most = [max(r, 0 if inpaint_mode else m) for r, m in zip(rr_steps, mix_steps, strict=True)]
        if not painted.any():  # nothing to paint (the change kept as given, no re-rendering): no sampling
            latents = known
        else:
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
        out = self._change_output(latents, images, painted, changed, after, blend, feather, output_type, drifts,
                                  nonchanges, nonchange_settings is not None, scales, seeds, mix_steps, record)
        return out if return_dict else out.to_tuple()

    def _change_output(self, latents: torch.Tensor, images: torch.Tensor, painted: torch.Tensor,
                       changed: torch.Tensor, after: torch.Tensor, blend: str, feather: int, output_type: str,
                       drifts: list[dict | None], nonchanges: list[dict], rerendering: bool, scales: list[float],
                       seeds: list[int | None], mix_steps: list[int], sampler: dict[str, Any]) -> ChangeOutput:
        """Decode and compose the after images (`_after_images`) and record what each sample used."""
        records = [{k: v for k, v in nc.items() if k != "rerender"} if nc else None for nc in nonchanges]
        rerendered = [nc.get("rerender") for nc in nonchanges]
        images_out = latents if output_type == "latent" else self._after_images(
            latents, images, painted, blend, feather, drifts, records, after, rerendered)
        return ChangeOutput(
            images=format_images(images_out, output_type),
            change_masks=changed.numpy(),
            after_maps=after.numpy().astype(np.uint8),
            content_scales=scales,
            seeds=seeds,
            mix_steps=mix_steps,
            drifts=drifts,
            sampler=sampler,
            nonchange=records,
            rerendered=rerendered if rerendering else None,
        )

    def _anchoring(self, painted: torch.Tensor, changed: torch.Tensor, nonchanges: list[dict], rerendering: bool,
                   mix_steps: list[int], inpaint_mode: bool, num_inference_steps: int, free_band: int,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(keep, anchor_until, re-rendered anchored steps): the latent cells kept from A (away from the painted
        pixels and their `free_band`), and per cell the steps it stays anchored to A."""
        keep = latent_keep_mask(painted, self.vae_scale_factor, free_band).to(device)
        # re-rendered cells (away from the change) stay anchored for the first share of the steps, so they keep
        # A's layout and light and only their texture is new (the paper's non-change mechanism, per region)
        rerender = keep.new_zeros(keep.shape)
        if rerendering:
            rerender = (1 - keep) * latent_keep_mask(changed, self.vae_scale_factor, free_band).to(device)
        rr_steps = [round(nc.get("rerender_anchored", 0.0) * num_inference_steps) for nc in nonchanges]
        anchor = anchor_steps(rerender, rr_steps)
        if not inpaint_mode:
            anchor = anchor + anchor_steps(keep, mix_steps)
        return keep, anchor, rr_steps

    def _draw_nonchanges(self, settings: NonChangeSettings | None, generators: list[torch.Generator],
                         references: list[dict | None], changed: torch.Tensor, after: torch.Tensor) -> list[dict]:
        """Per sample: non-change parameters (its own seeded stream) and the unchanged region to re-render."""
        if settings is None:
            return [{}] * len(generators)
        if settings.rerender[1] > 0 and not self.is_inpainting:
            raise ParameterError("re-rendering unchanged regions needs an inpainting UNet; "
                                 "pass NonChangeSettings(rerender=(0, 0)) with this model", "nonchange")
        skip = self.class_set.classes_of_kind(*settings.rerender_skip) if self.class_set is not None else ()
        out = []
        for g, ref, ch, m in zip(generators, references, changed.numpy(), after.numpy(), strict=True):
            rng = nonchange_rng(g.initial_seed())
            params = draw_nonchange(rng, settings, ref)
            params["rerender"] = rerender_region(~ch, m, rng, params["rerender_share"], self.num_classes, skip)
            params["rerendered_pixels"] = int(params["rerender"].sum())
            out.append(params)
        return out

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
            cs = self.class_set
            kinds = [cs.kind_of(i) for i in range(cs.num_classes)] if cs is not None else []
            arr = tensor_to_uint8(out)
            arr = [apply_drift(a, d) if d else a for a, d in zip(arr, drifts, strict=True)]
            arr = [apply_nonchange(a, nc, m, kinds) if nc else a
                   for a, nc, m in zip(arr, nonchanges, after_maps.numpy(), strict=True)]
            out = uint8_to_tensor(np.stack(arr))
        return out

    def __call__(self, label_map: Any, **kwargs: Any) -> SynthesisOutput | tuple:
        """`pipe(map)` is `pipe.synthesize(map)`; the after image of a change has its own entry point, `change`."""
        if "image" in kwargs or "after_map" in kwargs:
            raise ParameterError("`pipe(...)` synthesizes from a map; for an after image call "
                                 "`pipe.change(before_image, before_map, after_map)`", "image")
        return self.synthesize(label_map, **kwargs)

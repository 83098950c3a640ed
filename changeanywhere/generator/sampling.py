"""The small pure pieces of the sampler loop: latent mixing of the known region, per-cell anchored steps, the
guided steps of a guidance interval, and the latent channels of an autoencoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .noise import SamplerNoise


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


def noise_coefficients(scheduler: Any, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with `scheduler.add_noise(x, ε, t) == a·x + b·ε`, evaluated on host probes so that the
    scheduler's lookups never touch a device tensor (no sync, no copy); bit-identical on a CPU."""
    ab = scheduler.add_noise(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), t.reshape(1))
    return ab[0], ab[1]


def step_kwargs(step_params: set[str], eta: float, variance: bool, noise: SamplerNoise, i: int) -> dict[str, Any]:
    """What `scheduler.step` is given at step i, by its signature: `eta` where it takes one, the samples' own
    variance noise where it takes that, else their generators (diffusers' `prepare_extra_step_kwargs`)."""
    kwargs: dict[str, Any] = {}
    if "eta" in step_params:
        kwargs["eta"] = eta
    if variance:
        kwargs["variance_noise"] = noise.variance(i)
    elif "generator" in step_params and "variance_noise" not in step_params:
        kwargs["generator"] = noise.step_generators
    return kwargs


def prepare_timesteps(scheduler: Any, num_inference_steps: int, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(the scheduler's timesteps, kept on the host so its arithmetic stays on host scalars, and the UNet's copy
    on `device`)."""
    scheduler.set_timesteps(num_inference_steps, device="cpu")
    return scheduler.timesteps, scheduler.timesteps.to(device)


def prepare_latents(scheduler: Any, noise: SamplerNoise, init_latents: torch.Tensor | None, timesteps: torch.Tensor,
                    start_index: int) -> torch.Tensor:
    """The first latents: the sampler's noise, or (`start_index` > 0) `init_latents` noised to that step's level
    (SDEdit), the scheduler then starting there."""
    x = noise.start() * scheduler.init_noise_sigma
    if start_index > 0:
        a, b = noise_coefficients(scheduler, timesteps[start_index])
        x = a * init_latents + b * (x / scheduler.init_noise_sigma)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start_index)
    return x

"""The inpainting denoiser's extra input: the masked before-image latent and the paint mask (SD-inpainting).

UNet input = noisy latent | map condition | known latent × (1 − mask) | mask, with mask = 1 on the latent
cells to paint. A mask of all ones (known latent all zeros) is plain synthesis from the map, so one network
serves `synthesize` and `change`. `widen_for_inpainting` turns a trained plain UNet into one whose extra input
channels start at zero: it then computes exactly what the plain UNet did, and fine-tuning starts from there.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DModel


def inpaint_channels(latent_channels: int) -> int:
    """Extra UNet input channels of an inpainting denoiser: the masked latent and the mask."""
    return latent_channels + 1


def inpaint_condition(known_latents: torch.Tensor, paint: torch.Tensor) -> torch.Tensor:
    """(B,C,h,w) known latents and (B,1,h,w) paint mask (1 = paint) -> the (B,C+1,h,w) extra input."""
    paint = paint.to(known_latents.dtype)
    return torch.cat([known_latents * (1.0 - paint), paint], dim=1)


def synthesis_condition(batch: int, latent_channels: int, size: tuple[int, int], device: torch.device | str,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The extra input of plain synthesis: nothing known, everything painted."""
    return torch.cat([torch.zeros(batch, latent_channels, *size, device=device, dtype=dtype),
                      torch.ones(batch, 1, *size, device=device, dtype=dtype)], dim=1)


def widen_for_inpainting(unet: UNet2DModel, latent_channels: int) -> UNet2DModel:
    """A copy of `unet` that also takes the inpainting input, its new `conv_in` channels zero-initialised."""
    extra = inpaint_channels(latent_channels)
    config = dict(unet.config)
    config["in_channels"] = unet.config.in_channels + extra
    wide = UNet2DModel.from_config(config).to(dtype=unet.dtype)
    state = unet.state_dict()
    w = state["conv_in.weight"]
    state["conv_in.weight"] = torch.cat([w, torch.zeros(w.shape[0], extra, *w.shape[2:], dtype=w.dtype)], dim=1)
    wide.load_state_dict(state, strict=True)
    return wide

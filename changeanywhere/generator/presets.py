"""Named model sizes: fresh, untrained components for a class set (`paper`, `cpu`, `tiny`).

`paper` follows docs/method.md §1 (VQ f=4 with 3 latent channels, a 128-wide UNet with attention);
`cpu` is the recipe measured on a 2-core CPU (colour autoencoder f=4, a small UNet); `tiny` is for unit tests.
"""

from __future__ import annotations

from typing import Any

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DModel, VQModel

from ..classes import ClassSet
from ..errors import ChangeAnywhereError
from .autoencoder import COLOR_CHANNELS, ColorAutoencoder
from .inpainting import widen_for_inpainting
from .pipeline import ChangeAnywherePipeline
from .sampling import latent_channels_of
from .semantic_encoder import SemanticEncoder

CPU_LATENT_CHANNELS = 6  # the `cpu` preset's colour autoencoder: 3 colour + 3 detail channels (autoencoder.py)

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "autoencoder": "vq",
        "vae": dict(
            block_out_channels=(128, 256, 512),
            layers_per_block=2,
            latent_channels=3,
            num_vq_embeddings=8192,
            norm_num_groups=32,
        ),
        "unet": dict(
            block_out_channels=(128, 256, 512),
            layers_per_block=2,
            attention_head_dim=None,
            down_block_types=("AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D"),
            norm_num_groups=32,
        ),
        "condition_channels": 3,
    },
    "cpu": {
        "autoencoder": "color",
        "vae": dict(
            block_out_channels=(32, 64, 64), layers_per_block=1, latent_channels=CPU_LATENT_CHANNELS,
            norm_num_groups=8,
        ),
        "unet": dict(
            block_out_channels=(32, 64, 128),
            layers_per_block=2,
            attention_head_dim=8,
            down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
            norm_num_groups=8,
        ),
        "condition_channels": 4,
    },
    "tiny": {
        "autoencoder": "kl",
        "vae": dict(block_out_channels=(8, 8, 8), layers_per_block=1, latent_channels=3, norm_num_groups=4),
        "unet": dict(
            block_out_channels=(8, 16),
            layers_per_block=1,
            attention_head_dim=None,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
        ),
        "condition_channels": 3,
    },
}


Autoencoder = AutoencoderKL | VQModel | ColorAutoencoder
AUTOENCODER_KINDS = ("color", "kl", "vq")


def build_autoencoder(preset: str = "cpu", autoencoder: str | None = None) -> Autoencoder:
    """A fresh f=4 autoencoder of the preset's size (`color`, `kl` or `vq`)."""
    spec = _spec(preset)
    kind = autoencoder or spec["autoencoder"]
    cfg = dict(spec["vae"])
    n = len(cfg["block_out_channels"])
    common = dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
    )
    if kind == "vq":
        cfg.setdefault("num_vq_embeddings", 8192)
        return VQModel(**common, **cfg)
    cfg.pop("num_vq_embeddings", None)
    if kind == "kl":
        return AutoencoderKL(**common, **cfg)
    if kind == "color":
        detail = max(cfg.pop("latent_channels") - COLOR_CHANNELS, 1)
        return ColorAutoencoder(
            detail_channels=detail, block_out_channels=cfg["block_out_channels"],
            layers_per_block=cfg["layers_per_block"], norm_num_groups=cfg["norm_num_groups"],
        )
    raise ChangeAnywhereError(f"autoencoder must be one of {AUTOENCODER_KINDS}, got {kind!r}")


def build_unet(preset: str, latent_channels: int, condition_channels: int) -> UNet2DModel:
    """A fresh UNet taking the noisy latent concatenated with the condition."""
    cfg = dict(_spec(preset)["unet"])
    return UNet2DModel(in_channels=latent_channels + condition_channels, out_channels=latent_channels, **cfg)


def build_scheduler(clip_sample_range: float | None = 2.0, prediction_type: str = "epsilon") -> DDIMScheduler:
    """The paper's schedule: 1000 steps, linear betas 0.0015 → 0.0205; ε-prediction (the paper) or v.

    Sampling clips each step's x0 prediction to ±`clip_sample_range` (latents are normalised to unit std):
    measured on the CPU-trained default, an ε-model that is slightly off at high noise otherwise drifts to
    saturated latents (std 1.5-2 instead of 1) and black/white images. None turns clipping off.
    """
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.0015,
        beta_end=0.0205,
        beta_schedule="linear",
        prediction_type=prediction_type,
        clip_sample=clip_sample_range is not None,
        clip_sample_range=clip_sample_range or 1.0,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_pipeline(
    class_set: ClassSet, preset: str = "cpu", autoencoder: str | None = None, vae: Any = None,
    prediction_type: str = "epsilon", inpainting: bool = False,
) -> ChangeAnywherePipeline:
    """A fresh pipeline for `class_set` (optionally around an existing, trained autoencoder); `inpainting`: its
    UNet also takes the masked known latent and the paint mask (`generator.inpainting`)."""
    spec = _spec(preset)
    vae = vae if vae is not None else build_autoencoder(preset, autoencoder)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    encoder = SemanticEncoder(
        num_classes=class_set.num_classes,
        condition_channels=spec["condition_channels"],
        downsample_factor=factor,
        class_set=class_set.to_dict(),
    )
    unet = build_unet(preset, latent_channels_of(vae), spec["condition_channels"])
    if inpainting:
        unet = widen_for_inpainting(unet, latent_channels_of(vae))
    scheduler = build_scheduler(prediction_type=prediction_type)
    return ChangeAnywherePipeline(vae=vae, semantic_encoder=encoder, unet=unet, scheduler=scheduler)


def _spec(preset: str) -> dict[str, Any]:
    if preset not in PRESETS:
        raise ChangeAnywhereError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[preset]

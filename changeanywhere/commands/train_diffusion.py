"""`changeanywhere train-diffusion`: train the UNet and semantic encoder (autoencoder frozen)."""

from __future__ import annotations

import argparse

from ..training.config import DiffusionTrainConfig
from .options import add_config_args, config_from_args

HELP = "train the semantic latent diffusion model (UNet + semantic encoder) on a data folder"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-diffusion", help=HELP, description=HELP + ", with a frozen autoencoder from train-autoencoder. "
        "Runs on CPU, one GPU, or data parallel under `torchrun` / `accelerate launch`; resumes from the latest "
        "checkpoint in --output-dir; writes OUT/pipeline (diffusers format) at the end.",
    )
    add_config_args(p, DiffusionTrainConfig,
                    crop_size="random crop side in pixels (cpu preset: 128 px = 32×32 latents)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.diffusion import train_diffusion

    train_diffusion(config_from_args(DiffusionTrainConfig, args, val_pattern=tuple(args.val_pattern)))
    return 0

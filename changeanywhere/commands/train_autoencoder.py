"""`changeanywhere train-autoencoder`: train the f=4 autoencoder on image / land-cover pairs."""

from __future__ import annotations

import argparse

from ..training.config import AutoencoderTrainConfig
from .options import add_config_args, config_from_args

HELP = "train the autoencoder (KL or VQ, f=4) on random crops of a data folder"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-autoencoder", help=HELP, description=HELP + ". Runs on CPU, one GPU, or data parallel under "
        "`torchrun` / `accelerate launch`; resumes from the latest checkpoint in --output-dir.",
    )
    add_config_args(p, AutoencoderTrainConfig, crop_size="random crop side in pixels (cpu preset: 64)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.autoencoder import train_autoencoder

    train_autoencoder(config_from_args(AutoencoderTrainConfig, args, val_pattern=tuple(args.val_pattern)))
    return 0

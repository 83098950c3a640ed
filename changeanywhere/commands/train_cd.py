"""`changeanywhere train-cd`: train a change-detection model on `A/ B/ label/` folders (generated or real)."""

from __future__ import annotations

import argparse

from ..training.config import CDTrainConfig
from .options import add_config_args, config_from_args, split_list

HELP = "train a change-detection model (ChangerEx-R18 style, EfficientNet-Lite0, or tiny) on A/ B/ label/ folders"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-cd", help=HELP,
        description=HELP + " (e.g. `changeanywhere generate` output, or LEVIR-CD style data). Runs on CPU, one "
        "GPU, or data parallel under `torchrun` / `accelerate launch`; resumes from the latest checkpoint in "
        "--output-dir. Writes OUT/final (and OUT/best by change-class F1 on --val), loadable with --model of "
        "`changeanywhere eval-cd`.",
    )
    add_config_args(p, CDTrainConfig, skip=("sample_steps",), parsers={"change_classes": split_list},
                    output_dir="checkpoints, logs, OUT/best and OUT/final go here")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..cd.train import train_cd

    metrics = train_cd(config_from_args(CDTrainConfig, args))
    best = ""
    if "best_val_f1" in metrics:
        best = f", best val F1 {metrics['best_val_f1']:.4f} (step {metrics['best_step']})"
    print(f"train-cd: {metrics['step']} steps, loss {metrics['loss']:.4f}{best} -> {args.output_dir}/final")
    return 0

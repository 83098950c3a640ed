"""`changeanywhere train-segmenter`: train the fidelity judge on real image/map crops."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..classes import ClassSet
from ..config_fields import arg
from ..data import DEFAULT_VAL_PATTERN, find_pairs, load_pairs
from ..segmenter import SegmenterTrainConfig, train_segmenter
from .options import add_config_args, config_from_args


@dataclass(frozen=True, kw_only=True)
class TrainSegmenterConfig:
    """What `train-segmenter` needs: the data and output folder (one flag per field), and in `train` the training
    hyper-parameters (`SegmenterTrainConfig`: one flag per field but `color_jitter`)."""

    data: Path = arg(help="folder with images/ and labels/")
    classes: str = arg(help="built-in class set name or JSON file")
    split: Literal["train", "val", "all"] = "train"
    val_pattern: tuple[str, ...] = arg(DEFAULT_VAL_PATTERN, "globs of validation stems (default: the Dubai "
                                       "convention *_008, *_009)")
    output_dir: Path = arg(aliases=("--out",))
    train: SegmenterTrainConfig = field(default_factory=SegmenterTrainConfig)


TRAIN_SKIP = ("color_jitter",)  # SegmenterTrainConfig fields without a flag (their defaults)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-segmenter", help="train the land-cover segmenter used by eval-generator (real data only)"
    )
    add_config_args(p, TrainSegmenterConfig, skip=("train",))
    add_config_args(p, SegmenterTrainConfig, skip=TRAIN_SKIP)
    p.set_defaults(func=run)
    return p


def make_config(args: argparse.Namespace) -> TrainSegmenterConfig:
    """The config of the parsed flags."""
    return config_from_args(TrainSegmenterConfig, args, val_pattern=tuple(args.val_pattern),
                            train=config_from_args(SegmenterTrainConfig, args))


def run(args: argparse.Namespace) -> int:
    cfg = make_config(args)
    class_set = ClassSet.load(cfg.classes)
    split = None if cfg.split == "all" else cfg.split
    pairs = find_pairs(cfg.data, split=split, val_pattern=cfg.val_pattern)
    loaded = load_pairs(pairs, class_set)
    model, log = train_segmenter(loaded, class_set.num_classes, cfg.train, class_set=class_set.to_dict())
    model.save_pretrained(cfg.output_dir)
    info = {"data": str(cfg.data), "split": cfg.split, "num_pairs": len(pairs), **vars(cfg.train), **log}
    (Path(cfg.output_dir) / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved segmenter to {cfg.output_dir} ({log['steps']} steps, {log['wall_s']} s)")
    return 0

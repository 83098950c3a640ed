"""`changeanywhere build-bank`: an object bank (real instances and textures) from image and map folders."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..bank import BankSettings, ObjectBank
from ..classes import BUILTIN_CLASS_SETS, ClassSet
from ..config_fields import arg
from ..data import DEFAULT_VAL_PATTERN
from .options import add_config_args, config_from_args


@dataclass
class BuildBankConfig:
    """What `build-bank` needs (one flag per field)."""

    images: Path = arg(help="folder of source images (the same folder `generate` takes)")
    labels: Path = arg(help="folder of land-cover maps (same file stems)")
    classes: str = arg(help=f"built-in class set or a JSON file ({', '.join(BUILTIN_CLASS_SETS)}); its `kinds` say "
                       "which classes are objects (cut as instances) and which stuff (cut as textures)")
    out: Path = arg(help="output folder: bank.json, instances.png, textures.png")
    split: Literal["all", "train", "val"] = arg("all", "which pairs: all (default), train or val (val: file names "
                                                "matching --val-pattern)")
    val_pattern: tuple[str, ...] = arg(DEFAULT_VAL_PATTERN, "file-name globs of the val split (default "
                                       f"{' '.join(DEFAULT_VAL_PATTERN)}, the Dubai split)")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build-bank", help="cut real objects and textures from labelled imagery into an object bank",
        description="Cut every object instance (connected components of the class set's object classes, with a "
                    "ring of context, so shadows come along) and texture windows of every stuff class from the "
                    "image and map folders, and write them as an object bank (PNG + JSON). `generate --bank` and "
                    "the app paste them into change regions. The same data give the same bytes.")
    add_config_args(p, BuildBankConfig)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(BuildBankConfig, args)
    class_set = ClassSet.load(cfg.classes)
    split = None if cfg.split == "all" else cfg.split
    bank = ObjectBank.from_folders(cfg.images, cfg.labels, class_set, split, BankSettings(),
                                   val_pattern=tuple(cfg.val_pattern))
    bank.save(cfg.out)
    print(f"build-bank: {cfg.out}: {json.dumps(bank.summary())}")
    return 0

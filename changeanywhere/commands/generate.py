"""`changeanywhere generate`: a change-detection dataset from single-date imagery and land-cover maps."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..dataset.config import GenerateConfig
from ..pairs import PairSettings
from .options import (
    add_config_args,
    add_geo_args,
    add_scheduler_arg,
    config_from_args,
    parse_range,
    parse_ratios,
    split_list,
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate",
        help="generate a change-detection dataset (A/ B/ label/ ...) from images and land-cover maps",
        description=(
            "Generate N synthetic change pairs: a real size² tile (A) of each source image, change events "
            "simulated on its land-cover map, and the after image (B) generated under the edited map. Writes "
            "OUT/A, B, label (0/255, 127 = ignore), label_A, label_B, change_type, meta, manifest.jsonl, "
            "README.md (dataset card) and generation.json. Reproducible and resumable: rerun the same command to "
            "finish or extend (--num may grow) a run. Under `torchrun` or `accelerate launch` the processes share "
            "the work."
        ),
    )
    # one flag per field of the configs; the text-valued ones (X or LO:HI, comma lists, ratios) are parsed in
    # `run`, so that their errors name the flag like every other library error
    text = {name: str for name in ("content_scale", "num_events", "event_types", "change_classes", "splits")}
    add_config_args(p, GenerateConfig, skip=("scheduler", "backend", "pair", "split", "bands", "resample",
                                             "file_format"), parsers=text)
    add_config_args(p, PairSettings, skip=("guidance_interval", "free_band", "strength", "max_event_tries"),
                    parsers=text)
    add_scheduler_arg(p)
    p.add_argument("--split", choices=("all", "train", "val"), default="all",
                   help="which source pairs to use: all (default) or the train/val split given by --val-pattern")
    add_geo_args(p)
    p.add_argument("--push-to-hub", default=None, metavar="REPO",
                   help="upload the finished folder to this Hugging Face dataset repo (created if needed)")
    p.add_argument("--hub-private", action="store_true", help="create the --push-to-hub repo as private")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..dataset import format_plan, format_summary, generate
    from ..dataset.hf import push_dataset
    from ..hub import check_repo_id

    def parsed(name: str, parse: Callable[[str], Any]) -> Any:
        value = getattr(args, name)
        return parse(value) if isinstance(value, str) else value  # a default is already parsed

    pair = config_from_args(
        PairSettings, args,
        content_scale=parsed("content_scale", lambda t: parse_range(t, "--content-scale", float)),
        num_events=parsed("num_events", lambda t: parse_range(t, "--num-events", int)),
        event_types=parsed("event_types", split_list),
        change_classes=parsed("change_classes", split_list),
    )
    cfg = config_from_args(
        GenerateConfig, args, pair=pair, split=None if args.split == "all" else args.split,
        val_pattern=tuple(args.val_pattern), splits=parsed("splits", lambda t: parse_ratios(t, "--splits")),
        bands=tuple(args.bands) if args.bands else None,
    )
    if args.push_to_hub:
        check_repo_id(args.push_to_hub)
    try:
        result = generate(cfg)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished samples are kept; rerun the same command to resume {args.out}", file=sys.stderr)
        return 130
    if result.is_main:
        print(format_plan(result) if result.dry_run else format_summary(result))
        if args.push_to_hub and not result.dry_run:
            print(f"pushed {result.out} to the dataset repo {args.push_to_hub}: "
                  f"{push_dataset(result.out, args.push_to_hub, args.hub_private)}")
        sys.stdout.flush()
    return 0

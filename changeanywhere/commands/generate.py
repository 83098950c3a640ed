"""`changeanywhere generate`: a change-detection dataset from single-date imagery and land-cover maps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data import DEFAULT_VAL_PATTERN
from ..events import EVENT_TYPES
from .options import (
    add_event_args,
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
    _add_input_args(p)
    _add_sampler_args(p)
    _add_run_args(p)
    p.set_defaults(func=run)
    return p


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """Sources, output folder, size and count, and the change events."""
    p.add_argument("--images", required=True, type=Path,
                   help="folder of source images (RGB; PNG, JPEG or (Geo)TIFF of any size: TIFFs are read by windows)")
    p.add_argument("--labels", required=True, type=Path, help="folder of land-cover maps (same file stems; colour "
                   "or index PNG, or a GeoTIFF: one band of class indices, nodata = ignore)")
    p.add_argument("--classes", required=True, help="class set: a built-in name or a JSON file")
    p.add_argument("--out", "--output-dir", dest="out", required=True, type=Path,
                   help="output folder (created; rerun to resume)")
    p.add_argument(
        "--num",
        "--num-pairs",
        dest="num",
        required=True,
        type=int,
        help="number of pairs (under torchrun on Python < 3.12 spell it --num-pairs: torchrun's own parser "
        "rejects --num as an ambiguous abbreviation of --numa-binding)",
    )
    p.add_argument("--model", default=None, help="pipeline folder or Hub repo id (default: the embedded model)")
    p.add_argument("--size", type=int, default=256, help="tile side in pixels (default 256)")
    add_event_args(p, "1:6", EVENT_TYPES)


def _add_sampler_args(p: argparse.ArgumentParser) -> None:
    """How the after image is painted."""
    p.add_argument("--num-inference-steps", "--steps", dest="num_inference_steps", type=int, default=None,
                   help="denoising steps (default: the model's measured default)")
    add_scheduler_arg(p)
    p.add_argument("--eta", type=float, default=1.0, help="DDIM eta, where the scheduler takes one (default 1)")
    p.add_argument("--content-scale", default="1", help="S or LO:HI, drawn per pair (default 1: unchanged "
                   "latents anchored to the end; the paper: 0.7:1 with --blend latent)")
    p.add_argument("--blend", choices=("pixel", "latent"), default="pixel",
                   help="pixel: keep the real before image outside the change, feathered (default); latent: "
                   "decode the whole latent (the paper)")
    p.add_argument("--feather", type=int, default=6, help="seam width in px of the pixel blend (default 6)")
    p.add_argument("--drift", type=float, default=0.0,
                   help="strength of the older global radiometric drift of B (0: off, the default)")
    p.add_argument("--nonchange", type=float, default=1.0,
                   help="strength of realistic non-change: unchanged objects re-rendered under the same map, scene "
                   "appearance, misregistration, blur, noise, JPEG (0: off, unchanged pixels copy A; default 1)")
    p.add_argument("--sampler", choices=("inpaint", "anchored"), default=None,
                   help="change sampler (default: the model's: inpaint for an inpainting UNet, else anchored)")
    p.add_argument("--guidance-scale", type=float, default=None, help="default: the model's own")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """The label's classes, batching, seed, device, tiling, splits, formats, upload and progress."""
    p.add_argument("--change-classes", default=None, metavar="NAMES",
                   help="the change that counts: comma-separated classes (e.g. building); the label marks only "
                   "changes to or from them, other simulated changes stay in B as changes of no interest "
                   "(default: every change counts)")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per batch and process (default 8)")
    p.add_argument("--seed", type=int, default=0, help="global seed; pair i's seed derives from (seed, i)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (under a launcher: each process's GPU)")
    p.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, else fp32), fp32, fp16, bf16")
    p.add_argument(
        "--tiling",
        choices=("random", "grid"),
        default="random",
        help="random crops (source drawn by area; default) or the grid of non-overlapping tiles, cycled",
    )
    p.add_argument(
        "--split",
        choices=("all", "train", "val"),
        default="all",
        help="which source pairs to use: all (default) or the train/val split given by --val-pattern",
    )
    p.add_argument(
        "--val-pattern",
        nargs="+",
        default=list(DEFAULT_VAL_PATTERN),
        help="file-name globs of validation sources (default: the Dubai convention *_008.*, *_009.*)",
    )
    p.add_argument(
        "--splits",
        default=None,
        metavar="TRAIN:VAL[:TEST]",
        help="also write list/train.txt, val.txt[, test.txt] with these ratios (e.g. 0.8:0.1:0.1)",
    )
    p.add_argument("--snap-colors", action="store_true", help="map colours not in the class set to the nearest")
    add_geo_args(p)
    p.add_argument("--push-to-hub", default=None, metavar="REPO",
                   help="upload the finished folder to this Hugging Face dataset repo (created if needed)")
    p.add_argument("--hub-private", action="store_true", help="create the --push-to-hub repo as private")
    p.add_argument("--dry-run", action="store_true", help="print the plan (and check inputs); write nothing")
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..dataset import GenerateConfig, format_plan, format_summary, generate
    from ..dataset.hf import push_dataset
    from ..hub import check_repo_id
    from ..pairs import PairSettings

    pair = config_from_args(
        PairSettings, args,
        content_scale=parse_range(args.content_scale, "--content-scale", float),
        num_events=parse_range(args.num_events, "--num-events", int),
        event_types=split_list(args.event_types),
        change_classes=split_list(args.change_classes) if args.change_classes is not None else None,
    )
    cfg = config_from_args(
        GenerateConfig, args, pair=pair, split=None if args.split == "all" else args.split,
        val_pattern=tuple(args.val_pattern), splits=parse_ratios(args.splits, "--splits"),
        progress=not args.no_progress, bands=tuple(args.bands) if args.bands else None,
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

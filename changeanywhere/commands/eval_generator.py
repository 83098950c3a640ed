"""`changeanywhere eval-generator`: semantic fidelity, reconstruction and change realism of a generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bank import BankError, cached_bank, resolve_bank
from ..classes import ClassSet
from ..data import DEFAULT_VAL_PATTERN
from ..errors import ChangeAnywhereError
from ..fidelity import dumps, evaluate_generator, format_report, select_tiles
from ..generator.schedulers import use_scheduler
from ..hub import load_pipeline
from ..io import atomic_write_text
from ..pairs import CONTENT_SOURCES, PairSettings
from ..runtime import DEFAULT_SEGMENTER
from ..segmenter import load_segmenter
from .options import add_scheduler_arg


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval-generator", help="measure a generator's semantic fidelity and change realism")
    p.add_argument("--model", default=None, help="pipeline folder or Hub repo id (default: the embedded model)")
    p.add_argument("--data", required=True, type=Path, help="folder with images/ and labels/")
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--val-pattern", nargs="+", default=list(DEFAULT_VAL_PATTERN))
    p.add_argument("--classes", default=None, help="class set (default: the one stored with the model)")
    p.add_argument("--segmenter", default=str(DEFAULT_SEGMENTER), help="segmenter folder or Hub repo id")
    p.add_argument("--max-tiles", type=int, default=32, help="evenly spread 256² tiles to score (default 32)")
    p.add_argument("--tile-size", type=int, default=256)
    p.add_argument("--num-inference-steps", "--steps", dest="num_inference_steps", type=int, default=None,
                   help="denoising steps (default: the model's measured default)")
    add_scheduler_arg(p)
    p.add_argument("--guidance-scale", type=float, default=None, help="default: the model's own")
    p.add_argument("--guidance-interval", type=float, nargs=2, default=None, metavar=("START", "STOP"),
                   help="share of the steps guided, [START, STOP) (default: the model's own, e.g. 0 1: every step)")
    p.add_argument("--sampler", choices=("inpaint", "anchored"), default=None,
                   help="change sampler (default: the model's: inpaint for an inpainting UNet, else anchored)")
    p.add_argument("--nonchange", type=float, default=PairSettings.nonchange,
                   help=f"realistic non-change strength of the default after images (0: off; default "
                   f"{PairSettings.nonchange}, as `generate`)")
    p.add_argument("--drift", type=float, default=PairSettings.drift,
                   help=f"older global drift of the default after images (default {PairSettings.drift})")
    p.add_argument("--content", choices=CONTENT_SOURCES, default=PairSettings.content,
                   help=f"what fills the change (default {PairSettings.content}, as `generate`)")
    p.add_argument("--content-strength", type=float, default=PairSettings.content_strength,
                   help=f"refinement strength of bank content (default {PairSettings.content_strength})")
    p.add_argument("--bank", type=Path, default=None,
                   help="object bank folder (default: the embedded bank for its class set, else one built from "
                   "the train split of --data)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-change", action="store_true", help="skip the change-mode measurements")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    pipe = load_pipeline(args.model, device=args.device, dtype="fp32" if args.device == "cpu" else None)
    use_scheduler(pipe, args.scheduler)
    pipe.set_backend(args.backend)
    class_set = ClassSet.load(args.classes) if args.classes else pipe.class_set
    if class_set is None:
        raise ChangeAnywhereError("the model stores no class set: pass --classes")
    segmenter = load_segmenter(args.segmenter)
    if segmenter.num_classes != class_set.num_classes:
        raise ChangeAnywhereError(
            f"segmenter has {segmenter.num_classes} classes but the class set has {class_set.num_classes}"
        )
    bank = None
    if args.content == "bank":
        try:  # the bank given, else the embedded one when it holds this class set
            bank = resolve_bank(args.bank, class_set)
        except BankError:
            if args.bank is not None:
                raise
            bank = cached_bank(Path(args.data) / "images", Path(args.data) / "labels", class_set, "train",
                               val_pattern=tuple(args.val_pattern))
    tiles = select_tiles(str(args.data), class_set, args.split, args.tile_size, args.max_tiles, args.val_pattern)
    report = evaluate_generator(
        pipe,
        segmenter,
        tiles,
        class_set,
        num_inference_steps=args.num_inference_steps,
        guidance_scale=args.guidance_scale,
        guidance_interval=args.guidance_interval,
        batch_size=args.batch_size,
        seed=args.seed,
        include_change=not args.no_change,
        settings=PairSettings(sampler=args.sampler, nonchange=args.nonchange, drift=args.drift, content=args.content,
                              content_strength=args.content_strength),
        bank=bank,
    )
    report.update({"model": str(args.model or "embedded default"), "data": str(args.data), "split": args.split})
    print(format_report(report))
    if args.json:
        atomic_write_text(args.json, dumps(report))
        print(f"wrote {args.json}")
    return 0

"""`changeanywhere train-segmenter`: train the fidelity judge on real image/map crops."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..classes import ClassSet
from ..data import DEFAULT_VAL_PATTERN, find_pairs, load_pairs
from ..segmenter import SegmenterTrainConfig, train_segmenter


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-segmenter", help="train the land-cover segmenter used by eval-generator (real data only)"
    )
    p.add_argument("--data", required=True, type=Path, help="folder with images/ and labels/")
    p.add_argument("--classes", required=True, help="built-in class set name or JSON file")
    p.add_argument("--split", default="train", choices=["train", "val", "all"])
    p.add_argument(
        "--val-pattern",
        nargs="+",
        default=list(DEFAULT_VAL_PATTERN),
        help="globs of validation stems (default: the Dubai convention *_008, *_009)",
    )
    p.add_argument("--output-dir", "--out", dest="output_dir", required=True, type=Path)
    d = SegmenterTrainConfig()
    p.add_argument("--crop-size", type=int, default=d.crop_size)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    class_set = ClassSet.load(args.classes)
    split = None if args.split == "all" else args.split
    pairs = find_pairs(args.data, split=split, val_pattern=tuple(args.val_pattern))
    loaded = load_pairs(pairs, class_set)
    cfg = SegmenterTrainConfig(
        crop_size=args.crop_size,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        lr=args.lr,
        seed=args.seed,
    )
    model, log = train_segmenter(loaded, class_set.num_classes, cfg, class_set=class_set.to_dict())
    model.save_pretrained(args.output_dir)
    info = {"data": str(args.data), "split": args.split, "num_pairs": len(pairs), **vars(cfg), **log}
    (Path(args.output_dir) / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved segmenter to {args.output_dir} ({log['steps']} steps, {log['wall_s']} s)")
    return 0

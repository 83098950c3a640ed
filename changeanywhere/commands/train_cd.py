"""`changeanywhere train-cd`: train a change-detection model on `A/ B/ label/` folders (generated or real)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..training.config import CDTrainConfig
from .options import config_from_args, split_list

ARCHS = ("changerex-r18", "siamdiff", "tiny", "effnet-lite0")  # cd.models.ARCHS, without importing torch here
FUSIONS = ("diff", "diff-mean")  # cd.effnet.FUSIONS
HELP = "train a change-detection model (ChangerEx-R18 style, EfficientNet-Lite0, or tiny) on A/ B/ label/ folders"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    D = {f.name: f.default for f in fields(CDTrainConfig)}  # the config's defaults are the flags'

    p = subparsers.add_parser(
        "train-cd", help=HELP,
        description=HELP + " (e.g. `changeanywhere generate` output, or LEVIR-CD style data). Runs on CPU, one "
        "GPU, or data parallel under `torchrun` / `accelerate launch`; resumes from the latest checkpoint in "
        "--output-dir. Writes OUT/final (and OUT/best by change-class F1 on --val), loadable with --model of "
        "`changeanywhere eval-cd`.",
    )
    p.add_argument("--data", required=True, nargs="+", help="training folder(s) with A/, B/, label/")
    p.add_argument("--val", nargs="+", default=None,
                   help="validation folder(s) with A/, B/, label/: evaluated every --val-steps, best kept")
    p.add_argument("--change-classes", type=split_list, default=None, metavar="NAMES",
                   help="the change that counts: derive training labels from the generated maps (label_A/, "
                   "label_B/ and generation.json of `changeanywhere generate` folders), marking only changes to or "
                   "from these comma-separated classes, e.g. building (default: the folders' label/). --val "
                   "folders are scored on their own label/: generate them with the same --change-classes")
    p.add_argument("--output-dir", "--out", dest="output_dir", required=True,
                   help="checkpoints, logs, OUT/best and OUT/final go here")
    p.add_argument("--arch", "--variant", dest="arch", choices=ARCHS, default=D["arch"],
                   help=f"model (default {D['arch']}; effnet-lite0: the ImageNet EfficientNet-Lite0 encoder)")
    p.add_argument("--widths", type=int, nargs="+", default=None,
                   help="stage widths (default: changerex-r18 64 128 256 512, siamdiff 32 64 128 256, "
                   "tiny 16 32 64 96; effnet-lite0's encoder is fixed)")
    p.add_argument("--head-channels", type=int, default=None,
                   help="head width of changerex-r18 (default 128) or decoder width of effnet-lite0 (default 64)")
    p.add_argument("--fusion", choices=FUSIONS, default=D["fusion"],
                   help="effnet-lite0: per-level fusion of the dates, |a − b| (diff) or also (a + b) / 2 (diff-mean)")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=D["pretrained"],
                   help="start effnet-lite0 from ImageNet weights (default: yes; needs the `imagenet` extra); "
                   "--no-pretrained: random weights")
    p.add_argument("--freeze-encoder-steps", type=int, default=D["freeze_encoder_steps"],
                   help="effnet-lite0: keep the encoder frozen for the first N steps (default 0)")
    p.add_argument("--init", default=None, help="start from this CD model (folder or Hub id), e.g. to fine-tune")
    p.add_argument("--crop-size", type=int, default=D["crop_size"])
    p.add_argument("--batch-size", type=int, default=D["batch_size"], help="per process, per micro-batch")
    p.add_argument("--max-steps", type=int, default=D["max_steps"], help="optimizer steps in total (across resumes)")
    p.add_argument("--lr", type=float, default=D["lr"], help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=D["weight_decay"])
    p.add_argument("--lr-schedule", choices=("cosine", "constant"), default=D["lr_schedule"])
    p.add_argument("--warmup-steps", type=int, default=D["warmup_steps"])
    p.add_argument("--ohem-ratio", type=float, default=D["ohem_ratio"],
                   help="share of the hardest valid pixels the loss keeps (1 = plain cross-entropy)")
    p.add_argument("--ohem-min-kept", type=int, default=D["ohem_min_kept"], help="least pixels kept per batch")
    p.add_argument("--jitter", type=float, default=D["jitter"], help="colour jitter strength per date (0 = off)")
    p.add_argument("--gamma", type=float, default=D["gamma"], help="per-date gamma range exp(±g) (0 = off)")
    p.add_argument("--blur", type=float, default=D["blur"], help="per-date blur sigma up to this, px (0 = off)")
    p.add_argument("--noise", type=float, default=D["noise"], help="per-date noise std up to this (0 = off)")
    p.add_argument("--shadow", type=float, default=D["shadow"],
                   help="per-date cast shadows on half of the images, darkening up to this (0 = off, the default)")
    p.add_argument("--tone", type=float, default=D["tone"],
                   help="per-date random tone curve, strength (0 = off, the default; 0.5 is strong)")
    p.add_argument("--haze", type=float, default=D["haze"],
                   help="per-date fog / haze on half of the images, density up to this (0 = off, the default)")
    p.add_argument("--shift", type=int, default=D["shift"], help="misregistration of B up to this, px (0 = off)")
    p.add_argument("--scale", type=float, default=D["scale"], help="crop scale range exp(±s) (0 = off)")
    p.add_argument("--swap-prob", type=float, default=D["swap_prob"], help="probability of swapping A and B")
    p.add_argument("--val-steps", type=int, default=D["val_steps"], help="evaluate --val every N steps")
    p.add_argument("--tile-size", type=int, default=D["tile_size"], help="validation tile size")
    p.add_argument("--overlap", type=int, default=D["overlap"], help="validation tile overlap")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=D["mixed_precision"])
    p.add_argument("--gradient-accumulation-steps", type=int, default=D["gradient_accumulation_steps"])
    p.add_argument("--max-grad-norm", type=float, default=D["max_grad_norm"])
    p.add_argument("--checkpointing-steps", type=int, default=D["checkpointing_steps"])
    p.add_argument("--checkpoints-total-limit", type=int, default=D["checkpoints_total_limit"])
    p.add_argument("--resume", default=D["resume"],
                   help="'auto' (latest checkpoint in --output-dir, if any), 'none', or a checkpoint folder")
    p.add_argument("--log-steps", type=int, default=D["log_steps"])
    p.add_argument("--seed", type=int, default=D["seed"])
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

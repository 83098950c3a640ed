"""Command-line arguments of the generator's training commands: one flag per field of the configs in
`training/config.py` (same defaults), parsed into them by `config_from_args`."""

from __future__ import annotations

import argparse

from ..data import DEFAULT_VAL_PATTERN


def add_common_args(p: argparse.ArgumentParser, crop_help: str) -> None:
    """Arguments both training commands take (None = the preset's default)."""
    p.add_argument("--data", required=True, help="folder with images/ and labels/ (pairs match by file stem)")
    p.add_argument("--classes", required=True, help="class set: a built-in name or a JSON file")
    p.add_argument("--output-dir", "--out", dest="output_dir", required=True,
                   help="where checkpoints, samples, logs and results go")
    p.add_argument("--preset", default="paper", choices=("tiny", "cpu", "paper"),
                   help="model size and defaults: paper (docs/method.md §1), cpu (2-core recipe), tiny (tests)")
    p.add_argument("--val-pattern", nargs="+", default=list(DEFAULT_VAL_PATTERN),
                   help="file-name globs of validation pairs (default: the Dubai convention *_008, *_009)")
    p.add_argument("--split-file", default=None, help="text file of validation stems (replaces --val-pattern)")
    p.add_argument("--crop-size", type=int, default=None, help=crop_help)
    p.add_argument("--batch-size", type=int, default=None, help="per process, per micro-batch")
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps in total (across resumes)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (AdamW)")
    p.add_argument("--lr-schedule", choices=("cosine", "constant"), default=None)
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--checkpointing-steps", type=int, default=500, help="write a checkpoint every N steps")
    p.add_argument("--checkpoints-total-limit", type=int, default=3, help="keep at most this many checkpoints")
    p.add_argument("--resume", default="auto",
                   help="'auto' (latest checkpoint in --output-dir, if any), 'none', or a checkpoint folder")
    p.add_argument("--sample-steps", type=int, default=None, help="write a sample grid every N steps")
    p.add_argument("--log-steps", type=int, default=None, help="print a log line every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-threads", type=int, default=0,
                   help="torch CPU threads per process (0: torch's default; 1 is fastest on a busy CPU)")



def add_autoencoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--autoencoder", choices=("color", "kl", "vq"), default=None,
                   help="autoencoder type (default: the preset's; paper: vq, cpu: color, tiny: kl)")
    p.add_argument("--kl-weight", type=float, default=None, help="weight of the mean KL per latent element")
    p.add_argument("--eval-size", type=int, default=None, help="side of the val tiles for the final PSNR")
    p.add_argument("--eval-tiles", type=int, default=None, help="how many val tiles (spread evenly)")
    p.add_argument("--scale-crops", type=int, default=None, help="crops used for the latent scaling factor")


def add_diffusion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--autoencoder", required=True, help="trained autoencoder folder (OUT/autoencoder)")
    p.add_argument("--cache-latents", type=int, default=None, metavar="N",
                   help="encode N augmented random crops once and train on them (0: encode every batch)")
    p.add_argument("--cond-dropout", type=float, default=0.1,
                   help="share of samples trained without the map (enables classifier-free guidance)")
    p.add_argument("--ema-decay", type=float, default=None, help="EMA decay of UNet + semantic encoder")
    p.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default=None,
                   help="what the UNet predicts (paper: epsilon; cpu preset: v_prediction)")
    p.add_argument("--loss", choices=("l1", "mse"), default=None, help="loss on the prediction (paper: l1)")
    p.add_argument("--snr-gamma", type=float, default=None,
                   help="min-SNR-γ loss weighting (0: off; cpu preset: 5)")
    p.add_argument("--sample-inference-steps", type=int, default=None, help="DDIM steps of the sample grid")
    p.add_argument("--inpainting", action="store_true",
                   help="train an inpainting denoiser: the UNet also takes the masked latent and the paint mask")
    p.add_argument("--init-from", default=None, metavar="PIPELINE",
                   help="start from this pipeline folder's UNet and semantic encoder (new inputs zero-initialised)")
    p.add_argument("--save-dtype", choices=("fp32", "fp16"), default="fp32", help="dtype of OUT/pipeline")
    p.add_argument("--push-to-hub", default=None, metavar="REPO", help="upload OUT/pipeline to this Hub repo")
    p.add_argument("--hub-private", action="store_true", help="create the Hub repo as private")

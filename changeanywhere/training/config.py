"""Typed hyper-parameters of the three training loops (autoencoder, diffusion model, change detector).

The CLI's flags are built from these (`commands.options.add_config_args`: one flag per field, `--crop-size` for
`crop_size`, with the field's default, type, `Literal` choices and help) and parsed back into them; library code
builds them directly, so a training run is configured the same way from a script or a shell.
`None` means "the preset's default" (see `AUTOENCODER_DEFAULTS` / `DIFFUSION_DEFAULTS`); errors about a value
name the field, and the CLI shows its flag instead.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..data import DEFAULT_VAL_PATTERN


def arg(default: Any = MISSING, help: str | None = None, **flag: Any) -> Any:
    """A config field with what its command-line flag needs (`commands.options.add_config_args`): the help
    text and, in `flag`, `aliases` (other spellings of the flag) and `metavar`."""
    return field(default=default, metadata={"help": help, **flag})


@dataclass(kw_only=True)
class LoopConfig:
    """What the shared optimisation loop (`training.common.run_steps`) needs."""

    output_dir: str | Path = arg(help="where checkpoints, samples, logs and results go", aliases=("--out",))
    max_steps: int | None = arg(None, "optimizer steps in total (across resumes)")
    lr: float | None = arg(None, "peak learning rate (AdamW)")
    lr_schedule: Literal["cosine", "constant"] | None = None
    warmup_steps: int | None = None
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    checkpointing_steps: int = arg(500, "write a checkpoint every N steps")
    checkpoints_total_limit: int = arg(3, "keep at most this many checkpoints")
    log_steps: int | None = arg(None, "print a log line every N steps")
    sample_steps: int | None = arg(None, "write a sample grid every N steps (CD: validate)")
    resume: str = arg("auto", "'auto' (latest checkpoint in --output-dir, if any), 'none', or a checkpoint folder")
    seed: int = 0


@dataclass(kw_only=True)
class TrainConfig(LoopConfig):
    """The data and model size both generator trainings take (None: the preset's default)."""

    data: str | Path = arg(help="folder with images/ and labels/ (pairs match by file stem)")
    classes: str = arg(help="class set: a built-in name or a JSON file")
    preset: Literal["tiny", "cpu", "paper"] = arg(
        "paper", "model size and defaults: paper (docs/method.md §1), cpu (2-core recipe), tiny (tests)")
    val_pattern: tuple[str, ...] = arg(
        DEFAULT_VAL_PATTERN, "file-name globs of validation pairs (default: the Dubai convention *_008, *_009)")
    split_file: str | Path | None = arg(None, "text file of validation stems (replaces --val-pattern)")
    crop_size: int | None = arg(None, "random crop side in pixels")
    batch_size: int | None = arg(None, "per process, per micro-batch")
    num_threads: int = arg(0, "torch CPU threads per process (0: torch's default; 1 is fastest on a busy CPU)")


@dataclass(kw_only=True)
class AutoencoderTrainConfig(TrainConfig):
    """`train-autoencoder`."""

    autoencoder: Literal["color", "kl", "vq"] | None = arg(
        None, "autoencoder type (default: the preset's; paper: vq, cpu: color, tiny: kl)")
    kl_weight: float | None = arg(None, "weight of the mean KL per latent element")
    eval_size: int | None = arg(None, "side of the val tiles for the final PSNR")
    eval_tiles: int | None = arg(None, "how many val tiles (spread evenly)")
    scale_crops: int | None = arg(None, "crops used for the latent scaling factor")


@dataclass(kw_only=True)
class DiffusionTrainConfig(TrainConfig):
    """`train-diffusion`."""

    autoencoder: str | Path = arg(help="trained autoencoder folder (train-autoencoder's OUT/autoencoder)")
    cache_latents: int | None = arg(
        None, "encode N augmented random crops once and train on them (0: encode every batch)", metavar="N")
    cond_dropout: float = arg(0.1, "share of samples trained without the map (enables classifier-free guidance)")
    ema_decay: float | None = arg(None, "EMA decay of UNet + semantic encoder")
    prediction_type: Literal["epsilon", "v_prediction"] | None = arg(
        None, "what the UNet predicts (paper: epsilon; cpu preset: v_prediction)")
    loss: Literal["l1", "mse"] | None = arg(None, "loss on the prediction (paper: l1)")
    snr_gamma: float | None = arg(None, "min-SNR-γ loss weighting (0: off; cpu preset: 5)")
    sample_inference_steps: int | None = arg(None, "DDIM steps of the sample grid")
    inpainting: bool = arg(False, "train an inpainting denoiser: the UNet also takes the masked latent and the paint "
                           "mask (random training masks)")
    init_from: str | Path | None = arg(
        None, "start from this pipeline folder's UNet and semantic encoder (new inputs zero-initialised)",
        metavar="PIPELINE")
    save_dtype: Literal["fp32", "fp16"] = arg("fp32", "dtype of OUT/pipeline")
    push_to_hub: str | None = arg(None, "upload OUT/pipeline to this Hub repo", metavar="REPO")
    hub_private: bool = arg(False, "create the Hub repo as private")


@dataclass(kw_only=True)
class CDTrainConfig(LoopConfig):
    """`train-cd`: a change detector on A/ B/ label/ folders (every default set here, no presets)."""

    data: list[str | Path]  # training folder(s)
    val: list[str | Path] | None = None  # validation folder(s): evaluated every val_steps, best kept
    # the change that counts: train labels derived from the generated maps (label_A/, label_B/), only changes to
    # or from these classes (None: the folders' label/); --val folders are scored on their own label/
    change_classes: list[str] | None = None
    arch: str = "changerex-r18"  # changerex-r18 | siamdiff | tiny | effnet-lite0
    widths: list[int] | None = None
    head_channels: int | None = None
    fusion: str = "diff"  # effnet-lite0: per-level fusion of the dates, diff (|a − b|) or diff-mean (+ (a + b) / 2)
    pretrained: bool | None = None  # start from ImageNet weights (None: yes for effnet-lite0; the imagenet extra)
    freeze_encoder_steps: int = 0  # effnet-lite0: keep the pretrained encoder frozen for the first N steps
    init: str | None = None  # start from this CD model (folder or Hub id)
    crop_size: int = 256
    batch_size: int = 8
    max_steps: int = 4000
    lr: float = 1e-3
    weight_decay: float = 0.01
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    ohem_ratio: float = 0.25  # share of the hardest valid pixels the loss keeps (1: plain cross-entropy)
    ohem_min_kept: int = 10_000
    # bi-temporal augmentations (changeanywhere.cd.augment.BitemporalAugment; 0 turns one off)
    jitter: float = 0.2  # colour jitter strength per date
    gamma: float = 0.25  # per-date gamma exp(U(-g, g))
    blur: float = 1.0  # per-date Gaussian blur sigma up to this (px), on half of the images
    noise: float = 0.02  # per-date Gaussian noise std up to this ([0, 1] scale)
    shadow: float = 0.0  # per-date cast shadows on half of the images, darkening up to this
    tone: float = 0.0  # per-date random monotone tone curve, control points moved up to ±tone / 4
    haze: float = 0.0  # per-date fog / haze on half of the images, density up to this
    shift: int = 2  # misregistration of B against A, up to this many px
    scale: float = 0.2  # crop scale exp(U(-s, s))
    swap_prob: float = 0.5  # probability of swapping A and B
    val_steps: int = 500
    tile_size: int = 256  # validation tiles
    overlap: int = 32
    checkpoints_total_limit: int = 2
    log_steps: int = 20

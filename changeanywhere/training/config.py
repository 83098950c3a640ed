"""Typed hyper-parameters of the three training loops (autoencoder, diffusion model, change detector).

The CLI parses its flags into these, one flag per field under the same name (`--crop-size` -> `crop_size`),
and library code builds them directly, so a training run is configured the same way from a script or a shell.
`None` means "the preset's default" (see `AUTOENCODER_DEFAULTS` / `DIFFUSION_DEFAULTS`); errors about a value
name the field, and the CLI shows its flag instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import DEFAULT_VAL_PATTERN


@dataclass(kw_only=True)
class LoopConfig:
    """What the shared optimisation loop (`training.common.run_steps`) needs."""

    output_dir: str | Path
    max_steps: int | None = None  # optimizer steps in total (across resumes)
    lr: float | None = None  # peak learning rate (AdamW)
    lr_schedule: str | None = None  # cosine | constant
    warmup_steps: int | None = None
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # no | fp16 | bf16
    checkpointing_steps: int = 500
    checkpoints_total_limit: int = 3
    log_steps: int | None = None
    sample_steps: int | None = None  # sample grid (generator) or validation (CD) every N steps
    resume: str = "auto"  # auto (latest checkpoint in output_dir), none, or a checkpoint folder
    seed: int = 0


@dataclass(kw_only=True)
class TrainConfig(LoopConfig):
    """The data and model size both generator trainings take (None: the preset's default)."""

    data: str | Path  # folder with images/ and labels/
    classes: str  # class set: a built-in name or a JSON file
    preset: str = "paper"  # tiny | cpu | paper
    val_pattern: tuple[str, ...] = DEFAULT_VAL_PATTERN
    split_file: str | Path | None = None  # text file of validation stems (replaces val_pattern)
    crop_size: int | None = None
    batch_size: int | None = None  # per process, per micro-batch
    num_threads: int = 0  # torch CPU threads per process (0: torch's default)


@dataclass(kw_only=True)
class AutoencoderTrainConfig(TrainConfig):
    """`train-autoencoder`."""

    autoencoder: str | None = None  # the kind: color | kl | vq (default: the preset's)
    kl_weight: float | None = None
    eval_size: int | None = None  # side of the val tiles for the final PSNR
    eval_tiles: int | None = None
    scale_crops: int | None = None  # crops used for the latent scaling factor


@dataclass(kw_only=True)
class DiffusionTrainConfig(TrainConfig):
    """`train-diffusion`."""

    autoencoder: str | Path  # a trained autoencoder folder (train-autoencoder's OUT/autoencoder)
    cache_latents: int | None = None  # encode N augmented crops once and train on them (0: every batch)
    cond_dropout: float = 0.1  # share of samples trained without the map (classifier-free guidance)
    ema_decay: float | None = None
    prediction_type: str | None = None  # epsilon | v_prediction
    loss: str | None = None  # l1 | mse
    snr_gamma: float | None = None  # min-SNR-γ loss weighting (0: off)
    sample_inference_steps: int | None = None
    inpainting: bool = False  # the UNet also takes the masked latent and the paint mask (random training masks)
    init_from: str | Path | None = None  # start from this pipeline folder's UNet and semantic encoder
    save_dtype: str = "fp32"  # fp32 | fp16
    push_to_hub: str | None = None  # upload OUT/pipeline to this Hub repo
    hub_private: bool = False


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

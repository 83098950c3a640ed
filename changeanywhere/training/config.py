"""Typed hyper-parameters of the three training loops (autoencoder, diffusion model, change detector).

The CLI's flags are built from these (`commands.options.add_config_args`: one flag per field, `--crop-size` for
`crop_size`, with the field's default, type, `Literal` choices and help) and parsed back into them; library code
builds them directly, so a training run is configured the same way from a script or a shell.
`None` means "the preset's default" (see `AUTOENCODER_DEFAULTS` / `DIFFUSION_DEFAULTS`); errors about a value
name the field, and the CLI shows its flag instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..cd.augment import DEFAULT_AUGMENT as AUGMENT
from ..cd.tiling import TILE_OVERLAP, TILE_SIZE
from ..config_fields import arg
from ..data import DEFAULT_VAL_PATTERN

__all__ = ["arg"]  # re-exported: the training configs' fields are built with it


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

    data: list[str | Path] = arg(help="training folder(s) with A/, B/, label/")
    val: list[str | Path] | None = arg(
        None, "validation folder(s) with A/, B/, label/: evaluated every --val-steps, best kept")
    change_classes: list[str] | None = arg(
        None, "the change that counts: derive training labels from the generated maps (label_A/, label_B/ and "
        "generation.json of `changeanywhere generate` folders), marking only changes to or from these "
        "comma-separated classes, e.g. building (default: the folders' label/). --val folders are scored on their "
        "own label/: generate them with the same --change-classes", metavar="NAMES")
    arch: Literal["changerex-r18", "siamdiff", "tiny", "effnet-lite0"] = arg(
        "changerex-r18", "model (default changerex-r18; effnet-lite0: the ImageNet EfficientNet-Lite0 encoder)",
        aliases=("--variant",))
    widths: list[int] | None = arg(None, "stage widths (default: changerex-r18 64 128 256 512, siamdiff 32 64 128 "
                                   "256, tiny 16 32 64 96; effnet-lite0's encoder is fixed)")
    head_channels: int | None = arg(
        None, "head width of changerex-r18 (default 128) or decoder width of effnet-lite0 (default 64)")
    fusion: Literal["diff", "diff-mean"] = arg(
        "diff", "effnet-lite0: per-level fusion of the dates, |a − b| (diff) or also (a + b) / 2 (diff-mean)")
    pretrained: bool | None = arg(
        None, "start effnet-lite0 from ImageNet weights (default: yes; needs the `imagenet` extra); "
        "--no-pretrained: random weights", negatable=True)
    freeze_encoder_steps: int = arg(0, "effnet-lite0: keep the encoder frozen for the first N steps (default 0)")
    init: str | None = arg(None, "start from this CD model (folder or Hub id), e.g. to fine-tune")
    crop_size: int = 256
    batch_size: int = arg(8, "per process, per micro-batch")
    max_steps: int = arg(4000, "optimizer steps in total (across resumes)")
    lr: float = arg(1e-3, "peak learning rate (AdamW)")
    weight_decay: float = 0.01
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 100
    ohem_ratio: float = arg(0.25, "share of the hardest valid pixels the loss keeps (1 = plain cross-entropy)")
    ohem_min_kept: int = arg(10_000, "least pixels kept per batch")
    loss: Literal["ohem", "ohem-dice"] = arg(
        "ohem", "training loss: OHEM cross-entropy, or that plus the soft Dice loss of the change class, which "
        "cannot fall to 'no change' on few, sparse labels (default ohem)")
    freeze_bn: bool = arg(False, "keep every BatchNorm layer in eval mode, its statistics as loaded (fine-tuning on "
                          "a few pairs)", negatable=True)
    # bi-temporal augmentations: their defaults are `cd.augment.BitemporalAugment`'s (0 turns one off)
    jitter: float = arg(AUGMENT.jitter, "colour jitter strength per date (0 = off)")
    gamma: float = arg(AUGMENT.gamma, "per-date gamma range exp(±g) (0 = off)")
    blur: float = arg(AUGMENT.blur, "per-date blur sigma up to this, px, on half of the images (0 = off)")
    noise: float = arg(AUGMENT.noise, "per-date noise std up to this, [0, 1] scale (0 = off)")
    shadow: float = arg(AUGMENT.shadow, "per-date cast shadows on half of the images, darkening up to this (0 = "
                        "off, the default)")
    tone: float = arg(AUGMENT.tone, "per-date random tone curve, strength (0 = off, the default; 0.5 is strong)")
    haze: float = arg(AUGMENT.haze, "per-date fog / haze on half of the images, density up to this (0 = off, the "
                      "default)")
    shift: int = arg(AUGMENT.shift, "misregistration of B up to this, px (0 = off)")
    scale: float = arg(AUGMENT.scale, "crop scale range exp(±s) (0 = off)")
    swap_prob: float = arg(AUGMENT.swap_prob, "probability of swapping A and B")
    val_steps: int = arg(500, "evaluate --val every N steps")
    tile_size: int = arg(TILE_SIZE, "validation tile size")
    overlap: int = arg(TILE_OVERLAP, "validation tile overlap")
    log_steps: int = 20

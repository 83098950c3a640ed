"""Train the f=4 autoencoder (KL or VQ) on random crops: L1 + a tiny KL term (or the VQ commitment loss).

At the end the latent scaling factor (1 / std of latents over a few hundred crops; for KL also the mean as
`shift_factor`) is stored in the autoencoder's config, the model is saved with `save_pretrained` to
`OUT/autoencoder`, and the validation PSNR on deterministic val tiles is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, VQModel
from torch import nn

from ..classes import ClassSet
from ..data import LandCoverCrops, collate_tiles, spread, tiles
from ..generator.autoencoder import ColorAutoencoder
from ..generator.presets import PRESETS, build_autoencoder
from ..image_metrics import psnr
from ..image_utils import tensor_to_uint8
from .common import (
    RunLog,
    args_record,
    checkpoint_saver,
    crop_batch,
    fill_defaults,
    load_split,
    make_accelerator,
    rank_seed,
    resume_or_start,
    run_steps,
    save_grid,
    torch_generator,
    write_json,
)
from .config import AutoencoderTrainConfig

# Per-preset defaults of `train-autoencoder` (the KL weight multiplies the *mean* KL per latent element:
# 1e-6 on the summed KL washed the colours out in CPU runs, so it stays ~0).
AUTOENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": dict(crop_size=256, batch_size=16, max_steps=100_000, lr=4.5e-6 * 16, lr_schedule="constant",
                  warmup_steps=500, kl_weight=1e-6, sample_steps=1000, log_steps=50, eval_size=256,
                  eval_tiles=128, scale_crops=512),
    "cpu": dict(crop_size=64, batch_size=8, max_steps=1600, lr=1e-3, lr_schedule="cosine", warmup_steps=50,
                kl_weight=1e-6, sample_steps=400, log_steps=50, eval_size=256, eval_tiles=64, scale_crops=256),
    "tiny": dict(crop_size=32, batch_size=2, max_steps=2, lr=1e-3, lr_schedule="constant", warmup_steps=0,
                 kl_weight=1e-6, sample_steps=1, log_steps=1, eval_size=32, eval_tiles=4, scale_crops=8),
}


class AutoencoderLoss(nn.Module):
    """Wraps the autoencoder so one `forward` (what DDP synchronises) returns the training loss."""

    def __init__(self, vae: AutoencoderKL | VQModel, kl_weight: float):
        super().__init__()
        self.vae = vae
        self.kl_weight = kl_weight

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None):
        if isinstance(self.vae, ColorAutoencoder):
            rec, reg = self.vae(images).sample, 0.0
        elif isinstance(self.vae, VQModel):
            h = self.vae.encode(images).latents
            out = self.vae.decode(h)
            rec, reg = out.sample, out.commit_loss.mean()
        else:
            posterior = self.vae.encode(images).latent_dist
            z = posterior.sample(generator=generator)
            rec = self.vae.decode(z).sample
            kl = posterior.kl() / float(np.prod(z.shape[1:]))  # mean KL per latent element
            reg = self.kl_weight * kl.mean()
        return (rec.float() - images.float()).abs().mean() + reg, rec


def reconstruct(vae: AutoencoderKL | VQModel, images: torch.Tensor) -> torch.Tensor:
    """Deterministic reconstruction (posterior mean / quantised latents)."""
    if isinstance(vae, VQModel | ColorAutoencoder):
        return vae.decode(vae.encode(images).latents).sample.clamp(-1, 1)
    return vae.decode(vae.encode(images).latent_dist.mean).sample.clamp(-1, 1)


@torch.no_grad()
def latent_statistics(vae: AutoencoderKL | VQModel, dataset: LandCoverCrops, n: int, batch: int = 16):
    """Per-channel (mean, std) lists of the raw latents over `n` crops, and the global (mean, std)."""
    zs = []
    device = next(vae.parameters()).device
    for start in range(0, n, batch):
        dataset.set_epoch(10_000_000 + start)
        imgs = torch.stack([dataset[i % len(dataset)]["image"] for i in range(min(batch, n - start))])
        imgs = imgs.to(device)
        out = vae.encode(imgs)
        z = out.latent_dist.mean if hasattr(out, "latent_dist") else out.latents
        zs.append(z.float().cpu())
    z = torch.cat(zs)
    per = z.transpose(0, 1).flatten(1)
    return per.mean(1).tolist(), per.std(1).tolist(), float(z.mean()), float(z.std())


@torch.no_grad()
def evaluate_psnr(vae: AutoencoderKL | VQModel, items: list, batch: int = 8) -> float:
    """PSNR (dB) over all `items` (one MSE over every pixel of every tile)."""
    device = next(vae.parameters()).device
    se, count = 0.0, 0
    for start in range(0, len(items), batch):
        imgs = collate_tiles(items[start : start + batch])["image"].to(device)
        rec = reconstruct(vae, imgs)
        se += float((((rec.float() - imgs) / 2) ** 2).sum())
        count += imgs.numel()
    return float(10 * np.log10(1.0 / max(se / max(count, 1), 1e-12)))


def train_autoencoder(config: AutoencoderTrainConfig) -> dict[str, Any]:
    """Run `train-autoencoder`; returns the final metrics."""
    args = fill_defaults(config, AUTOENCODER_DEFAULTS)
    out = Path(args.output_dir)
    class_set = ClassSet.load(args.classes)
    accelerator = make_accelerator(args.mixed_precision, args.gradient_accumulation_steps, args.num_threads)
    main, rank = accelerator.is_main_process, accelerator.process_index
    if main:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    log = RunLog(out, main)

    train = load_split(args, class_set, "train")
    val = load_split(args, class_set, "val", required=False)
    dataset = LandCoverCrops(train, args.crop_size, length=args.batch_size, seed=rank_seed(args.seed, rank))
    eval_items = spread(tiles(val if val is not None else train, args.eval_size), args.eval_tiles)
    grid_items = spread(tiles(val if val is not None else train, args.crop_size), 4)

    torch.manual_seed(args.seed)
    vae = build_autoencoder(args.preset, args.autoencoder)
    wrapper = AutoencoderLoss(vae, args.kl_weight)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, betas=(0.5, 0.9) if args.preset == "paper" else
                                  (0.9, 0.999), weight_decay=0.0)
    start_step = resume_or_start(args.resume, out, {"vae": vae}, optimizer, log)
    wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    params = [p for p in vae.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in vae.parameters())
    log(f"train-autoencoder: {type(vae).__name__} {n_params / 1e6:.2f} M params, {len(train)} train pairs, "
        f"crops {args.crop_size}² × batch {args.batch_size} × {accelerator.num_processes} process(es) × "
        f"{args.gradient_accumulation_steps} accumulation, steps {start_step} → {args.max_steps}, lr {args.lr}")

    def loss_fn(micro: int) -> torch.Tensor:
        batch = crop_batch(dataset, micro, args.batch_size)
        gen = torch_generator(args.seed, rank, micro, accelerator.device)
        with accelerator.autocast():
            loss, _ = wrapper(batch["image"].to(accelerator.device), generator=gen)
        return loss

    def sample(step: int) -> None:
        imgs = collate_tiles(grid_items)["image"].to(accelerator.device)
        with torch.no_grad():
            rec = reconstruct(vae, imgs)
        rows = [list(tensor_to_uint8(imgs)), list(tensor_to_uint8(rec))]
        path = save_grid(rows, out / "samples" / f"step-{step:07d}.png")
        log(f"wrote {path} (val PSNR of these tiles {psnr(rec, imgs, data_range=2.0):.2f} dB)", event="sample",
            step=step, path=str(path))

    save = checkpoint_saver({"vae": vae}, optimizer, None, {"command": "train-autoencoder", "args": args_record(args)})
    result = run_steps(accelerator=accelerator, model=wrapper, optimizer=optimizer, params=params,
                       loss_fn=loss_fn, start_step=start_step, args=args, log=log, save=save, sample=sample,
                       desc="autoencoder")
    metrics: dict[str, Any] = {"step": result["step"], "loss": result.get("loss")}
    if main:
        vae.eval()
        stats_set = LandCoverCrops(train, args.crop_size, length=args.scale_crops, seed=args.seed + 12345)
        means, stds, mean, std = latent_statistics(vae, stats_set, args.scale_crops)
        config: dict[str, Any]
        if isinstance(vae, ColorAutoencoder):  # per-channel normalisation (diffusers' latents_mean/latents_std)
            config = {"scaling_factor": 1.0, "latents_mean": means, "latents_std": [max(s, 1e-6) for s in stds]}
        else:
            config = {"scaling_factor": 1.0 / max(std, 1e-6)}
        if isinstance(vae, AutoencoderKL):
            config["shift_factor"] = mean
        vae.register_to_config(**config)
        metrics.update(latent_mean=mean, latent_std=std, **config)
        metrics["val_psnr"] = evaluate_psnr(vae, eval_items)
        metrics["val_tiles"] = len(eval_items)
        metrics["eval_size"] = args.eval_size
        metrics["split"] = "val" if val is not None else "train (no val split found)"
        vae.save_pretrained(out / "autoencoder", safe_serialization=True)
        write_json(out / "autoencoder_metrics.json", metrics)
        log(f"saved {out / 'autoencoder'}: scaling_factor {config['scaling_factor']:.4f}"
            f"{f' shift_factor {mean:.4f}' if 'shift_factor' in config else ''}; per-channel std "
            f"{', '.join(f'{v:.3f}' for v in stds)}; PSNR on {len(eval_items)} "
            f"{metrics['split']} tiles of {args.eval_size}²: {metrics['val_psnr']:.2f} dB",
            event="end", **{k: v for k, v in metrics.items() if isinstance(v, int | float | str)})
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics


assert set(AUTOENCODER_DEFAULTS) == set(PRESETS)

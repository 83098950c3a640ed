"""Pieces shared by the training commands: accelerator set-up, resume, LR schedule, loop, logs, grids."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import runtime
from ..classes import ClassSet
from ..data import LandCoverCrops, find_pairs, load_pairs
from ..errors import ChangeAnywhereError, ParameterError
from ..io import atomic_write_png
from .checkpoint import latest_checkpoint, load_training_state, prune_checkpoints, save_training_state
from .config import LoopConfig, TrainConfig

# ----------------------------------------------------------------------------------------------- arguments


def fill_defaults(config: TrainConfig, table: dict[str, dict[str, Any]]) -> TrainConfig:
    """The config with every None field set from the preset's row of `table`; step and size fields checked."""
    if config.preset not in table:
        raise ParameterError(f"`preset` must be one of {', '.join(table)}, got {config.preset!r}", "preset")
    config = replace(config, **{k: v for k, v in table[config.preset].items() if getattr(config, k) is None})
    check_at_least_one(config, "crop_size", "batch_size", "max_steps", "gradient_accumulation_steps",
                       "checkpointing_steps")
    return config


def check_at_least_one(config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise ParameterError(f"`{name}` must be at least 1", name)


# ----------------------------------------------------------------------------------------------- set-up


def make_accelerator(mixed_precision: str, gradient_accumulation_steps: int, num_threads: int = 0):
    """An Accelerator on CUDA when there is one, else CPU (gloo DDP under torchrun)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if num_threads:
        torch.set_num_threads(num_threads)
    if AcceleratorState._shared_state and runtime.world_size() == 1:
        AcceleratorState._reset_state(reset_partial_state=True)  # a second run in the same process

    cuda = torch.cuda.is_available()
    if mixed_precision == "fp16" and not cuda:
        raise ParameterError("`mixed_precision` fp16 needs a GPU; use bf16 or no on the CPU", "mixed_precision")
    return Accelerator(
        mixed_precision=mixed_precision, gradient_accumulation_steps=gradient_accumulation_steps, cpu=not cuda
    )


def load_split(config: TrainConfig, class_set: ClassSet, split: str, required: bool = True):
    """Loaded pairs of one split (None for an empty optional split)."""
    try:
        pairs = find_pairs(config.data, split, val_pattern=config.val_pattern, split_file=config.split_file)
    except ChangeAnywhereError as err:
        if required or "split is empty" not in str(err):
            raise
        return None
    return load_pairs(pairs, class_set)


def rank_seed(seed: int, rank: int) -> int:
    """A data seed per process, so every rank draws different crops."""
    return int(seed) * 1_000_003 + int(rank)


def torch_generator(seed: int, rank: int, micro_step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator for one micro-step of one rank: resuming replays exactly the same noise."""
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(rank) * 10_007 + int(micro_step)) % (2**63 - 1))
    return g


def crop_batch(dataset: LandCoverCrops, micro_step: int, batch_size: int) -> dict[str, torch.Tensor]:
    """Micro-batch number `micro_step`: items 0..B-1 of "epoch" `micro_step` (deterministic, resumable)."""
    dataset.set_epoch(micro_step)
    items = [dataset[i % len(dataset)] for i in range(batch_size)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def resolve_resume(resume: str, output_dir: Path) -> Path | None:
    """The checkpoint folder to resume from (`auto`: the latest complete one, if any)."""
    if resume in (None, "", "none"):
        return None
    if resume == "auto":
        return latest_checkpoint(output_dir)
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise ParameterError(f"`resume` {resume}: not a checkpoint folder (no state.json)", "resume")
    return path



def resume_or_start(
    resume: str, output_dir: Path, models: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
    log: Any, ema: Any = None,
) -> int:
    """Load the checkpoint `resume` names (auto = the latest in `output_dir`) and log it; returns the step."""
    ckpt = resolve_resume(resume, output_dir)
    if ckpt is None:
        log(event="start", step=0)
        return 0
    step, _ = load_training_state(ckpt, models, optimizer, ema=ema)
    log(f"resumed from {ckpt} at step {step}", event="resume", step=step, path=str(ckpt))
    return step

def lr_at(step: int, base_lr: float, max_steps: int, warmup: int, schedule: str, min_ratio: float = 0.1) -> float:
    """Linear warm-up, then constant or cosine decay down to `min_ratio` × the peak."""
    if warmup and step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "constant":
        return base_lr
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# ----------------------------------------------------------------------------------------------- loop


class RunLog:
    """Log lines on stdout and JSON lines in `OUT/train_log.jsonl` (main process only)."""

    def __init__(self, output_dir: Path, enabled: bool):
        self.path = output_dir / "train_log.jsonl"
        self.enabled = enabled

    def __call__(self, message: str | None = None, **record: Any) -> None:
        if not self.enabled:
            return
        if message:
            tqdm.write(message)
        if record:
            record.setdefault("time", time.time())
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def run_steps(
    *,
    accelerator: Any,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.nn.Parameter],
    loss_fn: Callable[[int], torch.Tensor],
    start_step: int,
    args: LoopConfig,
    log: RunLog,
    save: Callable[[Path, int, dict[str, Any]], None],
    sample: Callable[[int], None] | None = None,
    ema: Any = None,
    desc: str = "train",
) -> dict[str, Any]:
    """The shared optimisation loop: grad accumulation, LR schedule, EMA, logs, checkpoints and samples.

    `loss_fn(micro_step)` computes the loss of one micro-batch; `save(dir, step, extra)` writes a checkpoint.
    """
    output_dir = Path(args.output_dir)
    ga = args.gradient_accumulation_steps
    main = accelerator.is_main_process
    bar = tqdm(total=args.max_steps, initial=start_step, desc=desc, disable=not main, dynamic_ncols=True)
    losses: list[float] = []
    t0, s0 = time.time(), start_step
    last: dict[str, Any] = {"loss": float("nan")}
    step = start_step
    model.train()
    while step < args.max_steps:
        lr = lr_at(step, args.lr, args.max_steps, args.warmup_steps, args.lr_schedule)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for j in range(ga):
            with accelerator.accumulate(model):
                loss = loss_fn(step * ga + j)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        if ema is not None:
            ema.step(params)
        step += 1
        bar.update(1)
        if step % args.log_steps == 0 or step == args.max_steps:
            mean = torch.tensor(float(np.mean(losses)), device=accelerator.device)
            mean = float(accelerator.reduce(mean, reduction="mean"))
            rate = (step - s0) / max(1e-9, time.time() - t0)
            last = {"loss": mean, "lr": lr, "steps_per_s": rate}
            bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}")
            log(f"step {step}/{args.max_steps} loss {mean:.4f} lr {lr:.3e} {rate:.2f} step/s "
                f"({1 / max(rate, 1e-9):.2f} s/step)", step=step, loss=mean, lr=lr, steps_per_s=rate)
            losses.clear()
        if step % args.checkpointing_steps == 0 or step == args.max_steps:
            if main:
                path = output_dir / f"checkpoint-{step}"
                save(path, step, {**last, "num_processes": accelerator.num_processes})
                pruned = prune_checkpoints(output_dir, args.checkpoints_total_limit)
                log(f"saved {path}" + (f" (pruned {', '.join(p.name for p in pruned)})" if pruned else ""),
                    event="checkpoint", step=step, path=str(path))
            accelerator.wait_for_everyone()
        if sample is not None and args.sample_steps and (step % args.sample_steps == 0 or step == args.max_steps):
            if main:
                model.eval()
                sample(step)
                model.train()
            accelerator.wait_for_everyone()
    bar.close()
    return {**last, "step": step}


def checkpoint_saver(
    models: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, ema: Any, base_extra: dict[str, Any]
) -> Callable[[Path, int, dict[str, Any]], None]:
    def save(path: Path, step: int, extra: dict[str, Any]) -> None:
        save_training_state(path, step, models, optimizer, ema=ema, extra={**base_extra, **extra})

    return save


# ----------------------------------------------------------------------------------------------- images


def save_grid(rows: Sequence[Sequence[np.ndarray]], path: Path, gap: int = 2) -> Path:
    """Write a grid of equally sized HxWx3 uint8 images (rows of columns) as one PNG."""
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + gap) - gap, ncol * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            grid[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = im[..., :3]
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_png(path, grid)


def write_json(path: Path, data: dict[str, Any]) -> None:
    from ..io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def args_record(config: LoopConfig) -> dict[str, Any]:
    """A training config as plain JSON values (for checkpoints and logs)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items() if not callable(v)}

"""`changeanywhere eval-generator`: semantic fidelity, reconstruction and change realism of a generator."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..bank import BankError, cached_bank, resolve_bank
from ..classes import ClassSet
from ..config_fields import arg
from ..data import DEFAULT_VAL_PATTERN
from ..errors import ChangeAnywhereError
from ..fidelity import dumps, evaluate_generator, format_report, select_tiles
from ..generator.schedulers import use_scheduler
from ..hub import load_pipeline
from ..io import atomic_write_text
from ..pairs import PairSettings
from ..runtime import DEFAULT_SEGMENTER, DEVICE_DEFAULT
from ..segmenter import load_segmenter
from .options import add_config_args, add_scheduler_arg, config_from_args


@dataclass(frozen=True, kw_only=True)
class EvalGeneratorConfig:
    """What `eval-generator` needs (one flag per field); the pair settings default to `PairSettings`'."""

    model: str | None = arg(None, "pipeline folder or Hub repo id (default: the embedded model)")
    data: Path = arg(help="folder with images/ and labels/")
    split: Literal["train", "val"] = "val"
    val_pattern: tuple[str, ...] = DEFAULT_VAL_PATTERN
    classes: str | None = arg(None, "class set (default: the one stored with the model)")
    segmenter: str = arg(str(DEFAULT_SEGMENTER), "segmenter folder or Hub repo id")
    max_tiles: int = arg(32, "evenly spread 256² tiles to score (default 32)")
    tile_size: int = 256
    num_inference_steps: int | None = arg(None, "denoising steps (default: the model's measured default)",
                                          aliases=("--steps",))
    scheduler: str | None = None  # a name from generator.schedulers; None keeps the model's own
    backend: str | None = None  # torch, onnx or auto (None: $CHANGEANYWHERE_BACKEND, else auto)
    guidance_scale: float | None = arg(None, "default: the model's own")
    guidance_interval: tuple[float, float] | None = arg(
        None, "share of the steps guided, [START, STOP) (default: the model's own, e.g. 0 1: every step)",
        metavar=("START", "STOP"))
    sampler: Literal["inpaint", "anchored"] | None = arg(
        None, "change sampler (default: the model's: inpaint for an inpainting UNet, else anchored)")
    nonchange: float = arg(PairSettings.nonchange, "realistic non-change strength of the default after images (0: "
                           f"off; default {PairSettings.nonchange}, as `generate`)")
    drift: float = arg(PairSettings.drift, f"older global drift of the default after images (default "
                       f"{PairSettings.drift})")
    content: Literal["bank", "diffusion"] = arg(PairSettings.content, f"what fills the change (default "
                                                f"{PairSettings.content}, as `generate`)")
    content_strength: float = arg(PairSettings.content_strength, f"refinement strength of bank content (default "
                                  f"{PairSettings.content_strength})")
    bank: Path | None = arg(None, "object bank folder (default: the embedded bank for its class set, else one built "
                            "from the train split of --data)")
    batch_size: int = 4
    seed: int = 0
    no_change: bool = arg(False, "skip the change-mode measurements")
    device: str = DEVICE_DEFAULT
    json: Path | None = arg(None, "write the figures to this JSON file")

    def pair_settings(self) -> PairSettings:
        """The settings of the pairs the change measurements make (as `generate` takes them)."""
        return PairSettings(sampler=self.sampler, nonchange=self.nonchange, drift=self.drift, content=self.content,
                            content_strength=self.content_strength)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval-generator", help="measure a generator's semantic fidelity and change realism")
    add_config_args(p, EvalGeneratorConfig, skip=("scheduler", "backend"))
    add_scheduler_arg(p)
    p.set_defaults(func=run)
    return p


def make_config(args: argparse.Namespace) -> EvalGeneratorConfig:
    """The config of the parsed flags."""
    interval = tuple(args.guidance_interval) if args.guidance_interval is not None else None
    return config_from_args(EvalGeneratorConfig, args, val_pattern=tuple(args.val_pattern), guidance_interval=interval)


def run(args: argparse.Namespace) -> int:
    cfg = make_config(args)
    pipe = load_pipeline(cfg.model, device=cfg.device, dtype="fp32" if cfg.device == "cpu" else None)
    use_scheduler(pipe, cfg.scheduler)
    pipe.set_backend(cfg.backend)
    class_set = ClassSet.load(cfg.classes) if cfg.classes else pipe.class_set
    if class_set is None:
        raise ChangeAnywhereError("the model stores no class set: pass --classes")
    segmenter = load_segmenter(cfg.segmenter)
    if segmenter.num_classes != class_set.num_classes:
        raise ChangeAnywhereError(
            f"segmenter has {segmenter.num_classes} classes but the class set has {class_set.num_classes}"
        )
    bank = None
    if cfg.content == "bank":
        try:  # the bank given, else the embedded one when it holds this class set
            bank = resolve_bank(cfg.bank, class_set)
        except BankError:
            if cfg.bank is not None:
                raise
            bank = cached_bank(Path(cfg.data) / "images", Path(cfg.data) / "labels", class_set, "train",
                               val_pattern=cfg.val_pattern)
    tiles = select_tiles(str(cfg.data), class_set, cfg.split, cfg.tile_size, cfg.max_tiles, cfg.val_pattern)
    report = evaluate_generator(
        pipe,
        segmenter,
        tiles,
        class_set,
        num_inference_steps=cfg.num_inference_steps,
        guidance_scale=cfg.guidance_scale,
        guidance_interval=cfg.guidance_interval,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        include_change=not cfg.no_change,
        settings=cfg.pair_settings(),
        bank=bank,
    )
    report.update({"model": str(cfg.model or "embedded default"), "data": str(cfg.data), "split": cfg.split})
    print(format_report(report))
    if cfg.json:
        atomic_write_text(cfg.json, dumps(report))
        print(f"wrote {cfg.json}")
    return 0

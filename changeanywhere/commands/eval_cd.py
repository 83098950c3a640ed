"""`changeanywhere eval-cd`: change-detection metrics of a model (or CVA + Otsu) on `A/ B/ label/` folders."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..cd.tiling import TILE_OVERLAP, TILE_SIZE
from ..config_fields import arg
from ..errors import ParameterError
from ..runtime import DEVICE_DEFAULT
from .options import add_config_args, config_from_args

HELP = "evaluate a change-detection model (or --method cva / deep-cva) on A/ B/ label/ folders"
COLUMNS = ("precision", "recall", "f1", "iou", "oa", "kappa")


@dataclass(frozen=True, kw_only=True)
class EvalCDConfig:
    """What `eval-cd` needs (one flag per field)."""

    data: tuple[Path, ...] = arg(help="folder(s) with A/, B/, label/ (0/255 or 0/1)")
    model: str | None = arg(None, "CD model folder (train-cd OUT/final or OUT/best) or Hub repo id (default: the "
                            "embedded checkpoints/cd-changeanywhere-dubai)")
    method: Literal["model", "cva", "deep-cva"] = arg(
        "model", "'model' (default); 'cva': change vector analysis + Otsu per pair; 'deep-cva': cosine distance of "
        "ImageNet EfficientNet-Lite0 features (strides 4, 8, 16), one Otsu threshold per folder (the `imagenet` "
        "extra). Both are training-free floors")
    json: Path | None = arg(None, "write the metrics to this JSON file")
    save_predictions: Path | None = arg(None, "write DIR/<folder>/<stem>_pred.png (0/255) and <stem>_errors.png "
                                        "(after image darkened; TP white, FP red, FN green)", metavar="DIR")
    tile_size: int = TILE_SIZE
    overlap: int = arg(TILE_OVERLAP, "pixels shared by neighbouring tiles")
    batch_size: int = arg(8, "tiles per forward pass")
    device: str = arg(DEVICE_DEFAULT, "'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    progress: bool = arg(True, "progress bars (default; --no-progress: none)", negatable=True)

    def check(self) -> None:
        """Validate the tiling before any folder is read or model loaded (errors name the parameters)."""
        if self.tile_size < 16 or not 0 <= self.overlap < self.tile_size:
            raise ParameterError("`tile_size` must be at least 16 and 0 <= `overlap` < `tile_size`",
                                 "tile_size", "overlap")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval-cd", help=HELP,
        description=HELP + ". Images of any size are tiled (--tile-size windows with --overlap, logits "
        "averaged). One confusion matrix per folder (never averaged per image): change-class precision, "
        "recall, F1, IoU, plus OA and kappa; also the all-change floor (everything predicted changed). With "
        "several folders, each is reported and all pooled. --json writes the metrics (top level: the single "
        "folder, or the pooled figures; per folder under 'datasets').",
    )
    add_config_args(p, EvalCDConfig)
    p.set_defaults(func=run)
    return p


def make_config(args: argparse.Namespace) -> EvalCDConfig:
    """The config of the parsed flags."""
    return config_from_args(EvalCDConfig, args, data=tuple(args.data))


def _names(folders: list[Path]) -> list[str]:
    """Display names: the folder names, made unique by their position when two are the same."""
    names: list[str] = []
    for i, f in enumerate(folders):
        name = f.resolve().name or f"data{i + 1}"
        names.append(f"{name}-{i + 1}" if name in names else name)
    return names


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """A fixed-width table: one row per dataset with pairs, change %, the metrics and the all-change F1."""
    head = f"{'dataset':<22} {'pairs':>5} {'change':>7} " + " ".join(f"{c:>9}" for c in COLUMNS) + \
        f" {'floor F1':>9}"
    lines = [head, "-" * len(head)]
    for name, r in rows:
        lines.append(f"{name[:22]:<22} {r['pairs']:>5} {r['change_fraction']:>7.2%} "
                     + " ".join(f"{r[c]:>9.4f}" for c in COLUMNS) + f" {r['all_change']['f1']:>9.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..cd.data import find_cd_pairs, read_cd_item
    from ..cd.inference import FolderResult, cva_predictor, evaluate_folder, model_predictor
    from ..cd.metrics import BinaryConfusion
    from ..io import atomic_write_text

    cfg = make_config(args)
    cfg.check()
    folders = list(cfg.data)
    for f in folders:  # fail on bad folders before loading a model
        find_cd_pairs(f)
    t0 = time.time()
    deep = None
    if cfg.method == "cva":
        predictor, model_name = cva_predictor(), None
    elif cfg.method == "deep-cva":
        from ..cd.deep_cva import DeepCVA
        from ..runtime import resolve_device

        deep, model_name = DeepCVA(device=resolve_device(cfg.device)), None
    else:
        from ..cd.models import load_cd_model
        from ..runtime import DEFAULT_CD_MODEL

        model = load_cd_model(cfg.model, device=cfg.device)
        model_name = str(cfg.model or DEFAULT_CD_MODEL)
        predictor = model_predictor(model, cfg.tile_size, cfg.overlap, cfg.batch_size)
    results: list[FolderResult] = []
    thresholds: dict[str, float] = {}
    for name, folder in zip(_names(folders), folders, strict=True):
        save = cfg.save_predictions / name if cfg.save_predictions else None
        if deep is not None:  # one Otsu threshold over the folder's pooled distances (images only)
            thresholds[name] = deep.fit(read_cd_item(it)[:2] for it in find_cd_pairs(folder))
            predictor = deep.predict
        results.append(evaluate_folder(predictor, folder, name=name, save_dir=save, progress=cfg.progress))
    pooled = BinaryConfusion()
    for r in results:
        pooled = pooled + r.confusion
    reports = [(r.name, {**r.report(), **({"threshold": round(thresholds[r.name], 6)} if thresholds else {})})
               for r in results]
    rows = list(reports)
    meta: dict[str, Any] = {"method": cfg.method, "model": model_name, "tile_size": cfg.tile_size,
                            "overlap": cfg.overlap, "seconds": round(time.time() - t0, 2)}
    if len(results) == 1:
        out: dict[str, Any] = {**reports[0][1], **meta}
    else:
        pooled_report = FolderResult("pooled", Path(), sum(r.pairs for r in results), pooled).report()
        pooled_report.pop("path")
        rows.append(("pooled", pooled_report))
        out = {**pooled_report, **meta, "datasets": dict(reports), "pooled": pooled_report}
    label = {"cva": "CVA + Otsu", "deep-cva": "deep CVA (ImageNet EfficientNet-Lite0) + Otsu over each folder"}.get(
        cfg.method, f"model {model_name}")
    print(f"eval-cd: {label}, {meta['seconds']:.1f} s")
    print(format_table(rows))
    if cfg.json:
        cfg.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg.json, json.dumps(out, indent=2) + "\n")
        print(f"wrote {cfg.json}")
    if cfg.save_predictions:
        print(f"predictions and error overlays (TP white, FP red, FN green) in {cfg.save_predictions}")
    return 0

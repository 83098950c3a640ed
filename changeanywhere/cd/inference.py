"""Inference and dataset evaluation: `predict(model, a, b)` for the app, `evaluate_folder` for eval-cd.

Error overlays (`error_overlay`): the after image darkened to 35 % brightness, with true positives white,
false positives red and false negatives green; ignored label pixels stay as the darkened image.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import MapSizeError
from ..image_utils import load_rgb, uint8_to_tensor
from ..io import atomic_write_png
from ..labels import IGNORE_INDEX
from .cva import cva_predict
from .data import find_cd_pairs, read_cd_item
from .metrics import BinaryConfusion
from .tiling import sliding_window

TP_COLOR, FP_COLOR, FN_COLOR = (255, 255, 255), (255, 0, 0), (0, 255, 0)

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@torch.no_grad()
def predict_proba(model: torch.nn.Module, a: Any, b: Any, tile_size: int = 256, overlap: int = 32,
                  batch_size: int = 8) -> np.ndarray:
    """HxW float32 change probability of two images (paths, PIL or HxWx3 uint8 arrays of the same size).

    The images are tiled into `tile_size`² windows with `overlap`, logits averaged, then softmaxed.
    """
    a, b = load_rgb(a), load_rgb(b)
    if a.shape != b.shape:
        raise MapSizeError(f"before and after images differ in size: {a.shape[1]}×{a.shape[0]} vs "
                           f"{b.shape[1]}×{b.shape[0]}")
    model.eval()
    device = next(model.parameters()).device
    logits = sliding_window(lambda x, y: model(x, y), uint8_to_tensor(a).to(device), uint8_to_tensor(b).to(device),
                            tile=tile_size, overlap=overlap, batch_size=batch_size)
    return torch.softmax(logits, dim=0)[1].cpu().numpy()


def predict(model: torch.nn.Module, a: Any, b: Any, tile_size: int = 256, overlap: int = 32,
            batch_size: int = 8, threshold: float = 0.5) -> np.ndarray:
    """HxW bool change mask of a before/after pair (numpy HxWx3 uint8, PIL or paths); argmax = threshold 0.5."""
    return predict_proba(model, a, b, tile_size, overlap, batch_size) > threshold


def error_overlay(after: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """HxWx3 uint8: darkened after image, TP white, FP red, FN green (ignore pixels left dark)."""
    out = (after.astype(np.float32) * 0.35).astype(np.uint8)
    valid = label != IGNORE_INDEX
    truth = (label == 1) & valid
    pred = pred.astype(bool) & valid
    out[pred & truth] = TP_COLOR
    out[pred & ~truth] = FP_COLOR
    out[~pred & truth] = FN_COLOR
    return out


@dataclass
class FolderResult:
    """The evaluation of one CD folder."""

    name: str
    path: Path
    pairs: int
    confusion: BinaryConfusion = field(default_factory=BinaryConfusion)
    seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        floor = self.confusion.all_change()
        return {
            **self.confusion.report(),
            "dataset": self.name,
            "path": str(self.path),
            "pairs": self.pairs,
            "seconds": round(self.seconds, 2),
            "all_change": {k: floor.report()[k] for k in ("precision", "recall", "f1", "iou", "oa", "kappa")},
        }


def model_predictor(model: torch.nn.Module, tile_size: int = 256, overlap: int = 32,
                    batch_size: int = 8) -> Predictor:
    return lambda a, b: predict(model, a, b, tile_size=tile_size, overlap=overlap, batch_size=batch_size)


def evaluate_folder(predictor: Predictor, root: str | Path, name: str | None = None,
                    save_dir: str | Path | None = None, progress: bool = True,
                    max_pairs: int | None = None) -> FolderResult:
    """One confusion matrix over every pair of a CD folder; optionally write `<stem>_pred.png` (0/255) and
    `<stem>_errors.png` (TP white, FP red, FN green) to `save_dir`."""
    root = Path(root)
    items = find_cd_pairs(root)
    if max_pairs is not None:
        items = items[:max_pairs]
    result = FolderResult(name or root.name, root, len(items))
    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for item in tqdm(items, desc=f"eval {result.name}", disable=not progress, leave=False):
        a, b, label = read_cd_item(item)
        assert label is not None
        pred = predictor(a, b)
        result.confusion.update(pred, label)
        if save_dir is not None:
            atomic_write_png(save_dir / f"{item.stem}_pred.png", pred.astype(np.uint8) * 255)
            atomic_write_png(save_dir / f"{item.stem}_errors.png", error_overlay(b, pred, label))
    result.seconds = time.time() - t0
    return result


def cva_predictor() -> Predictor:
    return cva_predict

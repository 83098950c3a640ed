"""Binary change-detection metrics from one confusion matrix accumulated over a whole dataset.

Change class = positive. precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R), IoU = TP/(TP+FP+FN),
OA = (TP+TN)/N, kappa = (OA − PE)/(1 − PE) with PE = ((TP+FP)(TP+FN) + (FN+TN)(FP+TN)) / N².

Zero denominators: a ratio whose denominator is 0 is 0.0, except when there is nothing to find and nothing was
found (TP = FP = FN = 0): then precision, recall, F1 and IoU are 1.0 (perfect agreement on the change class).
kappa is 1.0 when PE = 1 (both maps one and the same class everywhere, so OA = 1). An empty matrix gives 0.0.
Never average per image: add matrices (`BinaryConfusion.__add__`) and compute once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import IGNORE_INDEX

METRIC_KEYS = ("precision", "recall", "f1", "iou", "oa", "kappa")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def binary_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """precision, recall, f1, iou (change class), oa and kappa from confusion counts."""
    tp, fp, fn, tn = (int(v) for v in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    if n == 0:
        return dict.fromkeys(METRIC_KEYS, 0.0)
    if tp + fp + fn == 0:
        precision = recall = f1 = iou = 1.0
    else:
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall)
        iou = _ratio(tp, tp + fp + fn)
    oa = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    kappa = 1.0 if pe >= 1.0 else (oa - pe) / (1.0 - pe)
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou, "oa": oa, "kappa": kappa}


@dataclass
class BinaryConfusion:
    """Counts of the change class: TP, FP, FN, TN (ints; sums of whole datasets fit easily)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def update(self, pred: np.ndarray, target: np.ndarray, ignore: int | None = IGNORE_INDEX) -> BinaryConfusion:
        """Add one prediction (bool / 0-1) against one target (0/1, or `ignore` pixels left out)."""
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and label {target.shape} differ in shape")
        valid = target != ignore if ignore is not None else np.ones(target.shape, bool)
        p = pred.astype(bool) & valid
        t = (target if target.dtype == bool else target == 1) & valid
        tp = int(np.count_nonzero(p & t))
        fp = int(np.count_nonzero(p & ~t))
        fn = int(np.count_nonzero(~p & t))
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.tn += int(np.count_nonzero(valid)) - tp - fp - fn
        return self

    def __add__(self, other: BinaryConfusion) -> BinaryConfusion:
        return BinaryConfusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> int:
        """Changed pixels in the ground truth."""
        return self.tp + self.fn

    def metrics(self) -> dict[str, float]:
        return binary_metrics(self.tp, self.fp, self.fn, self.tn)

    def counts(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}

    def matrix(self) -> np.ndarray:
        """2×2, rows = truth (unchanged, changed), columns = prediction."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)

    def all_change(self) -> BinaryConfusion:
        """The confusion of the all-change floor (every valid pixel predicted changed) on the same labels."""
        return BinaryConfusion(tp=self.positives, fp=self.total - self.positives, fn=0, tn=0)

    def report(self) -> dict[str, float | int]:
        """Metrics + counts + change fraction, JSON-ready."""
        out: dict[str, float | int] = {**self.metrics(), **self.counts()}
        out["pixels"] = self.total
        out["change_fraction"] = _ratio(self.positives, self.total)
        return out


def all_change_f1(change_fraction: float) -> float:
    """F1 of predicting 'changed' everywhere for a change fraction p: 2p / (1 + p)."""
    return 2 * change_fraction / (1 + change_fraction)

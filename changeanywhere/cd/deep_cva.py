"""Deep CVA: a training-free floor on the same ImageNet backbone as `effnet-lite0`.

Per pixel, the cosine distance between the EfficientNet-Lite0 features of A and B at strides 4, 8 and 16,
each upsampled (bilinear) to the image and averaged; one Otsu threshold over the whole evaluation set (its
pooled histogram: no labels are used), so that it shows what ImageNet features alone find, beside the raw
colour CVA. Needs the `imagenet` extra.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ChangeAnywhereError, MapSizeError
from ..features import EfficientNetLite0, load_imagenet_lite0
from ..image_utils import uint8_to_tensor

LEVELS = (1, 2, 3)  # indices into forward_features: strides 4, 8, 16
BINS = 2048  # histogram bins over the cosine distance's range [0, 2]


def otsu_from_histogram(counts: np.ndarray, edges: np.ndarray) -> float:
    """Otsu's threshold of a histogram (`counts` per bin, `edges` one longer): the bin edge that maximises the
    between-class variance; values above it are the second class."""
    counts = counts.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1]
    w1 = counts.sum() - w0
    s0 = np.cumsum(counts * centers)[:-1]
    s1 = (counts * centers).sum() - s0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (s0 / w0 - s1 / w1) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    if between.size == 0 or between.max() <= 0:
        return float(edges[-1])  # one value only: nothing is above the threshold
    return float(edges[int(np.argmax(between)) + 1])


class DeepCVA:
    """Cosine distance of ImageNet features, thresholded by Otsu over a set (`fit`), then `predict` per pair."""

    def __init__(self, encoder: EfficientNetLite0 | None = None, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.encoder = (encoder if encoder is not None else load_imagenet_lite0()).to(self.device).eval()
        self.threshold: float | None = None

    @torch.no_grad()
    def magnitude(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """HxW float32 in [0, 2]: the mean over strides 4, 8, 16 of 1 − cos(features of A, features of B)."""
        if a.shape != b.shape:
            raise MapSizeError(f"the two images differ in size: {a.shape} vs {b.shape}")
        x = (torch.stack([uint8_to_tensor(a), uint8_to_tensor(b)]).to(self.device) + 1) / 2
        feats = self.encoder.forward_features(x)
        size = a.shape[:2]
        total = torch.zeros(size, device=self.device)
        for i in LEVELS:
            dist = 1 - F.cosine_similarity(feats[i][0:1], feats[i][1:2], dim=1, eps=1e-6)  # (1, h, w)
            total += F.interpolate(dist[None], size=size, mode="bilinear", align_corners=False)[0, 0]
        return (total / len(LEVELS)).clamp(0, 2).cpu().numpy().astype(np.float32)

    def fit(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
        """Set the threshold by Otsu over the pooled magnitudes of every pair of a set (images only)."""
        edges = np.linspace(0.0, 2.0, BINS + 1)
        counts = np.zeros(BINS, np.int64)
        for a, b in pairs:
            counts += np.histogram(self.magnitude(a, b), bins=edges)[0]
        self.threshold = otsu_from_histogram(counts, edges)
        return self.threshold

    def predict(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """HxW bool change mask (magnitude above the set's threshold); `fit` first."""
        if self.threshold is None:
            raise ChangeAnywhereError("DeepCVA.predict before fit: the threshold comes from the evaluation set")
        return self.magnitude(a, b) > self.threshold

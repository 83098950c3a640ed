"""Change vector analysis (CVA) + Otsu: the classical training-free change detector.

Per pixel, the Euclidean norm of the RGB difference vector; the magnitude is scaled to uint8 (by its maximum
over the image) and thresholded with Otsu's method (`cv2.threshold(..., THRESH_OTSU)`), one threshold per
image pair.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import MapSizeError


def cva_magnitude(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """HxW float32 magnitude of the per-pixel colour change vector of two HxWx3 images."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        raise MapSizeError(f"the two images differ in size: {a.shape} vs {b.shape}")
    return np.sqrt(((a - b) ** 2).sum(axis=-1))


def otsu_threshold(magnitude: np.ndarray) -> tuple[np.ndarray, float]:
    """(bool mask, threshold in the magnitude's units): Otsu on the magnitude scaled to 0..255."""
    peak = float(magnitude.max()) if magnitude.size else 0.0
    if peak <= 0:
        return np.zeros(magnitude.shape, bool), 0.0
    scaled = np.clip(np.round(magnitude * (255.0 / peak)), 0, 255).astype(np.uint8)
    t, mask = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return mask > 0, float(t) * peak / 255.0


def cva_predict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """HxW bool change mask of two HxWx3 uint8 images by CVA + Otsu."""
    return otsu_threshold(cva_magnitude(a, b))[0]

"""Image similarity: PSNR and SSIM (Wang et al. 2004, Gaussian window 11, σ = 1.5), optionally inside a mask."""

from __future__ import annotations

import cv2
import numpy as np

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of one shape."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two uint8 images (H×W or H×W×C; channels averaged)."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    return s.mean(axis=2) if s.ndim == 3 else s


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM, over the whole image or only where `mask` is true (NaN for an empty mask)."""
    s = ssim_map(a, b)
    if mask is None:
        return float(s.mean())
    return float(s[mask].mean()) if mask.any() else float("nan")

"""Image similarity and colour measures: PSNR, SSIM (Wang et al. 2004, Gaussian window 11, σ = 1.5), optionally
inside a mask, colour spread and drift residuals."""

from __future__ import annotations

import cv2
import numpy as np

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def psnr(a, b, data_range: float = 255.0) -> float:
    """PSNR in dB of two images of one shape: uint8 arrays (`data_range` 255), or arrays / tensors in [-1, 1]
    (`data_range` 2), over all their values (a whole batch gives one figure)."""
    a, b = (np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64) for x in (a, b))
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


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


def colour_spread(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean per-pixel std over R, G, B (0-1 scale): a saturation measure that PSNR does not see."""
    s = (image.astype(np.float64) / 255.0).std(axis=2)
    return float(s.mean() if mask is None else s[mask].mean())


def channel_means(image: np.ndarray) -> np.ndarray:
    """Per-channel mean (0-255 scale) of an H×W×3 image."""
    return image.reshape(-1, 3).astype(np.float64).mean(0)


def fit_residual(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean |after - (a·before + b)| (0-255) inside `mask`, with a, b fitted per channel (a global drift is
    forgiven, local repainting is not)."""
    errs = []
    for c in range(3):
        x, y = before[..., c][mask].astype(np.float64), after[..., c][mask].astype(np.float64)
        a, b = np.polyfit(x, y, 1) if x.std() > 0 else (0.0, y.mean())
        errs.append(np.abs(y - (a * x + b)))
    return float(np.mean(errs))


def distance_from(mask: np.ndarray) -> np.ndarray:
    """Per-pixel distance (px) to the nearest true pixel of `mask` (inf-like large values when it is empty)."""
    if not mask.any():
        return np.full(mask.shape, 1e9, np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


def colour_fit_residuals(a: np.ndarray, b: np.ndarray, fit: np.ndarray, *masks: np.ndarray) -> list[float | None]:
    """Mean |A − (g·B + o)| (0-255) inside each of `masks`, with the per-channel linear map (g, o) of B to A
    fitted by least squares on the `fit` pixels (the unchanged ones): how much two dates differ once a global
    colour change is forgiven. None for an empty mask."""
    fitted = np.empty(a.shape, np.float64)
    for c in range(3):
        x, y = b[..., c][fit].astype(np.float64), a[..., c][fit].astype(np.float64)
        g, o = np.polyfit(x, y, 1) if x.size > 1 and x.std() > 0 else (0.0, y.mean() if y.size else 0.0)
        fitted[..., c] = g * b[..., c] + o
    err = np.abs(a.astype(np.float64) - fitted).mean(axis=2)
    return [float(err[m].mean()) if m.any() else None for m in masks]


def ring_contrast(image: np.ndarray, region: np.ndarray, width: int = 4, min_area: int = 64) -> list[float]:
    """Per connected region (≥ `min_area` px): the mean colour difference (mean over R, G, B of |inside −
    outside|, 0-255) between the `width`-px ring just inside its boundary and the ring just outside."""
    n, comp = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    x = image.astype(np.float64)
    out = []
    for k in range(1, n):
        piece = (comp == k).astype(np.uint8)
        if piece.sum() < min_area:
            continue
        inner = piece.astype(bool) & ~cv2.erode(piece, kernel).astype(bool)
        outer = cv2.dilate(piece, kernel).astype(bool) & ~region
        if inner.sum() < 8 or outer.sum() < 8:
            continue
        out.append(float(np.abs(x[inner].mean(0) - x[outer].mean(0)).mean()))
    return out


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 50, subset_size: int = 100, seed: int = 0) -> float:
    """Kernel Inception Distance (Bińkowski et al. 2018) of two feature sets (N×D): the unbiased MMD² with the
    cubic polynomial kernel (x·y / D + 1)³, averaged over random subsets (size capped by the smaller set)."""
    rng = np.random.default_rng(seed)
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors on each side")
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return float(np.mean(values))

"""Image metrics (`changeanywhere.image_metrics`): PSNR, SSIM, colour-fit residuals, seam contrast, KID."""


import numpy as np
import pytest

from changeanywhere.image_metrics import colour_fit_residuals, kid, psnr, ring_contrast, ssim


def test_psnr_ssim():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    assert 15 < psnr(a, noisy) < 30
    assert ssim(a, noisy) < 0.99  # busy image: SSIM ≈ 2σ²/(2σ² + σ_noise²) ≈ 0.97
    smooth = np.tile(np.linspace(60, 200, 40, dtype=np.uint8)[None, :, None], (40, 1, 3))
    smooth_noisy = np.clip(smooth.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    assert ssim(smooth, smooth_noisy) < 0.5  # the same noise on a flat image destroys structure
    mask = np.zeros((40, 40), bool)
    mask[:, :20] = True
    half = a.copy()
    half[:, 30:] = 0
    assert ssim(a, half, mask) > ssim(a, half)
    assert np.isnan(ssim(a, a, np.zeros((40, 40), bool)))


def test_residual_seam_and_kid_figures():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 200, (32, 32, 3)).astype(np.uint8)
    b = (a.astype(float) * 0.5 + 20).astype(np.uint8)
    everything = np.ones((32, 32), bool)
    assert colour_fit_residuals(a, b, everything, everything)[0] < 1.5  # a linear colour change is forgiven
    c = b.copy()
    c[:8] = 0
    top = np.zeros_like(everything)
    top[:8] = True
    un, ch = colour_fit_residuals(a, c, ~top, ~top, top)
    assert un < 1.5 and ch > 30
    flat = np.full((40, 40, 3), 100, np.uint8)
    flat[10:30, 10:30] = 160
    region = np.zeros((40, 40), bool)
    region[10:30, 10:30] = True
    assert ring_contrast(flat, region) == [60.0]
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))  # two draws of one distribution: KID ≈ 0
    assert abs(kid(x, y)) < 0.05 and kid(x, y + 1) > 10 * abs(kid(x, y))

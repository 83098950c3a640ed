"""Masks that keep the before image where nothing changed: the latent anchor mask and the pixel feather.

The latent mask marks latent cells the sampler keeps anchored to the before image (cells touching a changed
pixel, plus a `free_band` of cells around them, are free, so the model can harmonise the seam). The pixel
weights say how much of the real before image a decoded after image keeps: 1 at `feather` px or more from
any change, ramping to 0 at the change, exactly 0 on changed pixels (the label stays honest).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def latent_keep_mask(changed: torch.Tensor, factor: int, free_band: int = 1) -> torch.Tensor:
    """(B,H,W) bool change mask -> (B,1,H/f,W/f) float: 1 where a latent cell is anchored to the before image."""
    touched = F.max_pool2d(changed.float()[:, None], factor)
    if free_band > 0:
        touched = F.max_pool2d(touched, 2 * free_band + 1, stride=1, padding=free_band)
    return 1.0 - touched


def feather_weights(changed: np.ndarray, feather: int) -> np.ndarray:
    """(H,W) bool change mask -> (H,W) float32 weight of the before image (0 on changed pixels)."""
    if not changed.any():
        return np.ones(changed.shape, np.float32)
    if feather <= 0:
        return (~changed).astype(np.float32)
    dist = cv2.distanceTransform((~changed).astype(np.uint8), cv2.DIST_L2, 5)
    t = np.clip(dist / float(feather), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep: no visible edge at either end


def composite(before: torch.Tensor, generated: torch.Tensor, changed: torch.Tensor, feather: int) -> torch.Tensor:
    """Blend (B,3,H,W) images: the real before image outside the change, the generated one inside, feathered."""
    w = np.stack([feather_weights(m, feather) for m in changed.cpu().numpy().astype(bool)])
    w = torch.from_numpy(w)[:, None].to(generated.device, generated.dtype)
    return w * before.to(generated.device, generated.dtype) + (1 - w) * generated

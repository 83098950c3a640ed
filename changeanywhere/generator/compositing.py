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


def cell_classes(maps: torch.Tensor, num_classes: int, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,H,W) index maps -> per latent cell: the majority class (B,h,w) and whether the cell is pure (all its
    f×f pixels of that class). Ignore pixels count for no class."""
    onehot = F.one_hot(maps.clamp(max=num_classes).long(), num_classes + 1)[..., :num_classes]
    share = F.avg_pool2d(onehot.permute(0, 3, 1, 2).float(), factor)
    best, cls = share.max(dim=1)
    return cls, best >= 1.0 - 1e-6


def texture_init(
    known: torch.Tensor, before_maps: torch.Tensor, after_maps: torch.Tensor, free: torch.Tensor,
    num_classes: int, factor: int, generators: list[torch.Generator],
) -> torch.Tensor:
    """Start latents for the free cells: real texture of each cell's new class copied from elsewhere in the same
    before image (the nearest pure cell of that class to a randomly shifted position, so patches stay
    coherent); cells whose class the image lacks keep the before latent. Denoised from a partial noise level,
    the model only has to harmonise real texture (the `strength` option of `change`)."""
    init = known.clone()
    free = free.cpu()  # indexes the host-side class maps (a GPU run's keep mask lives on the device)
    before_cls, pure = cell_classes(before_maps, num_classes, factor)
    after_cls, _ = cell_classes(after_maps, num_classes, factor)
    h, w = known.shape[2:]
    for b, g in enumerate(generators):
        shift = torch.randint(-h // 2, h // 2 + 1, (num_classes, 2), generator=g).tolist()
        for c in after_cls[b][free[b]].unique().tolist():
            source = (pure[b] & (before_cls[b] == c) & ~free[b]).cpu().numpy()
            if not source.any():
                continue
            _, labels = cv2.distanceTransformWithLabels((~source).astype(np.uint8), cv2.DIST_L2, 5,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
            ys, xs = np.nonzero(source)  # label k (1-based) is the k-th source pixel in row-major order
            order = np.zeros(labels.max() + 1, np.int64)
            order[labels[ys, xs]] = np.arange(len(ys))
            target = (free[b] & (after_cls[b] == c)).cpu().numpy()
            ty, tx = np.nonzero(target)
            qy, qx = np.clip(ty + shift[c][0], 0, h - 1), np.clip(tx + shift[c][1], 0, w - 1)
            k = order[labels[qy, qx]]
            init[b][:, ty, tx] = known[b][:, ys[k], xs[k]]
    return init

"""Sliding-window inference: tile² windows with overlap over an image of any size, logits averaged back.

Images smaller than a tile are padded (reflect, or replicate when too small to reflect) to one tile; the
windows of the last row/column are aligned to the image's edge, so every window lies inside the (padded)
image. Overlapping windows are averaged per pixel, so a pointwise model gives the same output tiled or whole.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

PairFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


TILE_SIZE, TILE_OVERLAP = 256, 32  # the window and overlap of tiled CD inference (eval-cd, train-cd's val)

def window_starts(length: int, tile: int, overlap: int = 0) -> list[int]:
    """Start offsets of windows of size `tile` covering [0, length) with at least `overlap` pixels shared."""
    if tile < 1:
        raise ValueError(f"tile size must be at least 1, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile size), got {overlap} for tile {tile}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph <= 0 and pw <= 0:
        return x
    ph, pw = max(ph, 0), max(pw, 0)
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


@torch.no_grad()
def sliding_window(
    fn: PairFn,
    a: torch.Tensor,
    b: torch.Tensor,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = 8,
) -> torch.Tensor:
    """Run `fn(a_windows, b_windows) -> (N, C, tile, tile)` over windows of two (3, H, W) images.

    Returns the (C, H, W) per-pixel average of the window outputs (on the inputs' device, float32).
    """
    if a.ndim == 4:
        a, b = a[0], b[0]
    if a.shape != b.shape:
        raise ValueError(f"the two images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    h, w = a.shape[-2:]
    hp, wp = max(h, tile), max(w, tile)
    pair = _pad_to(torch.stack([a, b]), hp, wp)  # (2, 3, hp, wp): pad both the same way
    th, tw = min(tile, hp), min(tile, wp)
    positions = [(y, x) for y in window_starts(hp, th, overlap) for x in window_starts(wp, tw, overlap)]
    total: torch.Tensor | None = None
    count = torch.zeros(1, hp, wp, device=a.device)
    for i in range(0, len(positions), max(1, batch_size)):
        chunk = positions[i : i + batch_size]
        wa = torch.stack([pair[0, :, y : y + th, x : x + tw] for y, x in chunk])
        wb = torch.stack([pair[1, :, y : y + th, x : x + tw] for y, x in chunk])
        out = fn(wa, wb).float()
        if total is None:
            total = torch.zeros(out.shape[1], hp, wp, device=a.device)
        for (y, x), o in zip(chunk, out, strict=True):
            total[:, y : y + th, x : x + tw] += o
            count[:, y : y + th, x : x + tw] += 1
    assert total is not None
    return (total / count)[:, :h, :w]

"""Random regions of a tile: object footprints from a land-cover map, smooth blobs and brush strokes.

They are the inpainting model's training masks (what it learns to repaint from its surroundings and the map)
and the unchanged regions that realistic non-change re-renders under the same map. Pixel masks, (H, W) bool;
every draw comes from the caller's `numpy.random.Generator`, so a seed gives the same region.
"""

from __future__ import annotations

import cv2
import numpy as np

REGION_KINDS = ("objects", "blobs", "strokes", "whole")
# share of each kind among the inpainting model's training masks (the whole tile is plain synthesis)
TRAINING_MIX = {"objects": 0.4, "blobs": 0.25, "strokes": 0.15, "whole": 0.2}


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool mask by `radius` px (an ellipse), 0 leaves it as it is."""
    if radius <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def objects(label_map: np.ndarray, rng: np.random.Generator, share: float, *, allowed: np.ndarray | None = None,
            min_area: int = 16, num_classes: int = 255, grow: int = 0) -> np.ndarray:
    """Whole connected objects (one class, 4-connected) picked at random until about `share` of the tile is
    covered, each grown by `grow` px; only objects inside `allowed` (bool, default everywhere) are taken.
    Ignore pixels (≥ `num_classes`) are never an object."""
    h, w = label_map.shape
    allowed = np.ones((h, w), bool) if allowed is None else allowed
    candidates = []
    for c in np.unique(label_map[allowed]):
        if c >= num_classes:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats((label_map == c).astype(np.uint8), connectivity=4)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] >= min_area:
                candidates.append((comp, k, int(stats[k, cv2.CC_STAT_AREA])))
    out = np.zeros((h, w), bool)
    target = share * h * w
    for i in rng.permutation(len(candidates)):
        if out.sum() >= target:
            break
        comp, k, area = candidates[i]
        piece = (comp == k) & allowed
        if area > 1.5 * target:  # a huge object (the background) would swamp the share
            continue
        out |= dilate(piece, grow) & allowed
    return out


def blobs(shape: tuple[int, int], rng: np.random.Generator, share: float, scale: int = 6) -> np.ndarray:
    """Smooth random blobs covering about `share` of the tile: a coarse Gaussian field, upsampled and cut at
    its (1 - share) quantile (`scale`: cells of the field across the shorter side)."""
    h, w = shape
    gh, gw = max(2, round(scale * h / min(h, w))), max(2, round(scale * w / min(h, w)))
    field = cv2.resize(rng.standard_normal((gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return field > np.quantile(field, 1.0 - share)


def strokes(shape: tuple[int, int], rng: np.random.Generator, count: int = 3, width: tuple[int, int] = (4, 16),
            ) -> np.ndarray:
    """`count` random brush strokes (polylines of 2–5 segments), each `width` px wide (a range)."""
    h, w = shape
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(count):
        points = [(int(rng.integers(0, w)), int(rng.integers(0, h)))]
        for _ in range(int(rng.integers(2, 6))):
            angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.4) * min(h, w)
            x, y = points[-1]
            points.append((int(np.clip(x + length * np.cos(angle), 0, w - 1)),
                           int(np.clip(y + length * np.sin(angle), 0, h - 1))))
        cv2.polylines(canvas, [np.array(points, np.int32)], False, 1, int(rng.integers(width[0], width[1] + 1)))
    return canvas.astype(bool)


def training_region(label_map: np.ndarray, rng: np.random.Generator, num_classes: int,
                    mix: dict[str, float] | None = None) -> tuple[np.ndarray, str]:
    """One inpainting training mask for a tile and its kind: dilated object footprints, blobs, strokes, or the
    whole tile. Falls back to blobs when the map has no object of a usable size."""
    mix = mix or TRAINING_MIX
    kinds = list(mix)
    kind = kinds[int(rng.choice(len(kinds), p=np.asarray([mix[k] for k in kinds]) / sum(mix.values())))]
    shape = label_map.shape
    if kind == "whole":
        return np.ones(shape, bool), kind
    share = float(rng.uniform(0.05, 0.4))
    if kind == "objects":
        mask = objects(label_map, rng, share, num_classes=num_classes, grow=int(rng.integers(1, 5)))
        if mask.any():
            return mask, kind
        kind = "blobs"
    if kind == "strokes":
        return strokes(shape, rng, count=int(rng.integers(1, 5)), width=(3, max(4, min(shape) // 8))), kind
    return blobs(shape, rng, share, scale=int(rng.integers(3, 9))), "blobs"

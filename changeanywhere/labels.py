"""What the project's labels mean: the ignore index of land-cover maps, and the change label of a pair.

A land-cover map is an HxW uint8 index map (0..K-1 classes, `IGNORE_INDEX` = unlabeled / no data). A pair's
change mask is where the before and after maps differ, ignore pixels of either date excluded; on disk it is
a 0/255 PNG, and change-detection training and scoring read it as 1/0 with 255 = ignore.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255


def change_mask(before_map, after_map):
    """HxW bool (numpy or torch, as given): changed pixels, ignore pixels of either date excluded."""
    return (before_map != after_map) & (before_map != IGNORE_INDEX) & (after_map != IGNORE_INDEX)


def change_target(before_map: np.ndarray, after_map: np.ndarray) -> np.ndarray:
    """The change-detection target of a pair: 1 changed, 0 unchanged, `IGNORE_INDEX` where either map is."""
    target = change_mask(before_map, after_map).astype(np.uint8)
    target[(before_map == IGNORE_INDEX) | (after_map == IGNORE_INDEX)] = IGNORE_INDEX
    return target


def mask_image(mask: np.ndarray) -> np.ndarray:
    """Bool mask -> 0/255 uint8 image (how change masks are written)."""
    return np.asarray(mask, bool).astype(np.uint8) * 255

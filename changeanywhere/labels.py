"""What the project's labels mean: the ignore index of land-cover maps, and the change label of a pair.

A land-cover map is an HxW uint8 index map (0..K-1 classes, `IGNORE_INDEX` = unlabeled / no data).

The change label has one contract. In memory (training, scoring, the app) it is a *target*: 1 changed,
0 unchanged, `IGNORE_INDEX` (255) where either date's map is ignore. On disk (`label/`, `change_mask.png`, the
app's zip) it is a *label image*: 0 unchanged, 255 changed, 127 ignore, so a 0/255 viewer shows change white
and ignore grey, and ignore survives the round trip. `encode_change_label` and `decode_change_label` convert.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255

# on disk: the label image's values
LABEL_UNCHANGED, LABEL_CHANGED, LABEL_IGNORE = 0, 255, 127
LABEL_CONVENTION = (f"{LABEL_UNCHANGED} unchanged, {LABEL_CHANGED} changed, {LABEL_IGNORE} ignore (no data in "
                    "either date's map)")


def change_mask(before_map, after_map):
    """HxW bool (numpy or torch, as given): changed pixels, ignore pixels of either date excluded."""
    return (before_map != after_map) & (before_map != IGNORE_INDEX) & (after_map != IGNORE_INDEX)


def change_target(before_map: np.ndarray, after_map: np.ndarray, changed: np.ndarray | None = None) -> np.ndarray:
    """The change-detection target of a pair: 1 changed, 0 unchanged, `IGNORE_INDEX` where either map is.
    `changed` (HxW bool) is the change that counts; by default every difference of the maps."""
    target = (change_mask(before_map, after_map) if changed is None else changed).astype(np.uint8)
    target[(before_map == IGNORE_INDEX) | (after_map == IGNORE_INDEX)] = IGNORE_INDEX
    return target


def encode_change_label(target: np.ndarray) -> np.ndarray:
    """A target (1 / 0 / `IGNORE_INDEX`, or a bool mask) -> the uint8 label image written to disk."""
    target = np.asarray(target)
    label = np.where(target == 1, LABEL_CHANGED, LABEL_UNCHANGED).astype(np.uint8)
    label[target == IGNORE_INDEX] = LABEL_IGNORE
    return label


def change_label_image(before_map: np.ndarray, after_map: np.ndarray, changed: np.ndarray | None = None) -> np.ndarray:
    """The label image written to disk for a pair (`change_target` encoded)."""
    return encode_change_label(change_target(before_map, after_map, changed))


def decode_change_label(image: np.ndarray) -> np.ndarray:
    """A label image read from disk -> the target (uint8 1 / 0 / `IGNORE_INDEX`).

    Ours and 0/255 masks (LEVIR-CD style; anti-aliased ones too): > 127 changed, 127 ignore. 0/1 masks, maybe
    with 255 = ignore (other data sets' convention), are taken as targets already."""
    image = np.asarray(image)
    values = set(np.unique(image).tolist())
    if values <= {0, 1} or (1 in values and values <= {0, 1, IGNORE_INDEX}):
        return image.astype(np.uint8)
    target = (image > LABEL_IGNORE).astype(np.uint8)
    target[image == LABEL_IGNORE] = IGNORE_INDEX
    return target

"""The change-label contract (`changeanywhere.labels`): targets in memory, label images on disk, ignore kept."""

import numpy as np
import torch
from PIL import Image

from changeanywhere.cd.data import read_label
from changeanywhere.cd.torchgeo_style import TorchGeoChangeFolder
from changeanywhere.labels import (
    IGNORE_INDEX,
    LABEL_CHANGED,
    LABEL_IGNORE,
    LABEL_UNCHANGED,
    change_label_image,
    change_target,
    decode_change_label,
    encode_change_label,
)


def maps():
    before = np.zeros((4, 6), np.uint8)
    after = before.copy()
    after[1, 1:3] = 2
    before[3, :] = IGNORE_INDEX
    return before, after


def test_target_round_trips_through_the_label_image():
    before, after = maps()
    target = change_target(before, after)
    image = encode_change_label(target)
    assert image.dtype == np.uint8 and set(np.unique(image)) == {LABEL_UNCHANGED, LABEL_CHANGED, LABEL_IGNORE}
    assert (image[3] == LABEL_IGNORE).all() and (image[1, 1:3] == LABEL_CHANGED).all()
    np.testing.assert_array_equal(decode_change_label(image), target)


def test_the_counted_change_replaces_the_map_difference():
    before, after = maps()
    counted = np.zeros(before.shape, bool)
    counted[1, 1] = True
    image = change_label_image(before, after, counted)
    assert image[1, 1] == LABEL_CHANGED and image[1, 2] == LABEL_UNCHANGED and (image[3] == LABEL_IGNORE).all()


def test_other_data_sets_conventions_decode():
    levir = np.array([[0, 255, 200, 30]], np.uint8)  # 0/255, anti-aliased edges thresholded
    np.testing.assert_array_equal(decode_change_label(levir), [[0, 1, 1, 0]])
    zero_one = np.array([[0, 1, 255, 1]], np.uint8)  # 0/1 with 255 = ignore
    np.testing.assert_array_equal(decode_change_label(zero_one), [[0, 1, IGNORE_INDEX, 1]])


def test_ignore_survives_a_folder_on_disk(tmp_path):
    before, after = maps()
    for d in ("A", "B", "label"):
        (tmp_path / d).mkdir()
    image = np.zeros((*before.shape, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "A" / "x.png")
    Image.fromarray(image).save(tmp_path / "B" / "x.png")
    Image.fromarray(change_label_image(before, after)).save(tmp_path / "label" / "x.png")
    target = change_target(before, after)
    np.testing.assert_array_equal(read_label(tmp_path / "label" / "x.png"), target)
    mask = TorchGeoChangeFolder(tmp_path)[0]["mask"]
    assert torch.equal(mask[0], torch.from_numpy(target.astype(np.int64)))  # ignore stays 255, never "change"

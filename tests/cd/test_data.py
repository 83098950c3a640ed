"""`cd.data`: A/B/label folders, label conventions, training batches, labels derived from the maps."""


import numpy as np
import pytest
import torch
from PIL import Image

from changeanywhere.cd import find_cd_pairs
from changeanywhere.cd.data import CDTrainData, read_label
from changeanywhere.change_classes import counted_target
from changeanywhere.classes import ClassSet
from changeanywhere.errors import ChangeAnywhereError, ParameterError
from changeanywhere.maps import read_map
from tests.helpers import generate_change_classes, make_cd_folder

DUBAI = ClassSet.builtin("dubai-landcover")
BUILDING = DUBAI.index_of("building")


def test_find_pairs_errors(tmp_path):
    root = make_cd_folder(tmp_path / "d", n=2)
    assert [it.stem for it in find_cd_pairs(root)] == ["p0", "p1"]
    (root / "B" / "p1.png").unlink()
    with pytest.raises(ChangeAnywhereError, match="no file in B/"):
        find_cd_pairs(root)
    with pytest.raises(ChangeAnywhereError, match="missing A/"):
        find_cd_pairs(tmp_path)


def test_read_label_conventions(tmp_path):
    for values, expect in [((0, 255), (0, 1)), ((0, 1), (0, 1)), ((0, 1, 255), (0, 1, 255))]:
        arr = np.array([values * 4], np.uint8)
        Image.fromarray(arr).save(tmp_path / "l.png")
        assert tuple(np.unique(read_label(tmp_path / "l.png"))) == expect


def test_train_batches_deterministic_and_augmented(tmp_path):
    root = make_cd_folder(tmp_path / "d", n=3, size=(40, 72))
    data = CDTrainData([root], crop_size=48, seed=3)
    b1, b2 = data.batch(5, 4), data.batch(5, 4)
    assert b1["a"].shape == (4, 3, 48, 48) and b1["label"].shape == (4, 48, 48)
    assert torch.equal(b1["a"], b2["a"]) and torch.equal(b1["label"], b2["label"])
    assert not torch.equal(b1["a"], data.batch(6, 4)["a"])
    assert set(torch.unique(b1["label"]).tolist()) <= {0, 1, 255}  # 255: padding of the 40-px side
    assert b1["a"].min() >= -1 and b1["a"].max() <= 1


@pytest.mark.usefixtures("one_thread")  # one torch thread, as tests/test_change_classes.py runs
def test_train_data_derives_building_labels_from_the_maps(change_classes_setup):
    from changeanywhere.cd.data import CDTrainData

    out = change_classes_setup[0] / "every"  # a folder whose label/ counts every change
    assert generate_change_classes(change_classes_setup, out) == 0
    every = CDTrainData([out], crop_size=32, augment=None)
    building = CDTrainData([out], crop_size=32, augment=None, change_classes=["building"])
    differs = 0
    for i in range(len(every)):
        _, _, label = every.load(i)
        _, _, counted = building.load(i)
        a_map, b_map = (read_map(out / d / every.items[i].label.name, DUBAI) for d in ("label_A", "label_B"))
        np.testing.assert_array_equal(counted, counted_target(a_map, b_map, (BUILDING,)))
        assert ((counted == 1) <= (label == 1)).all()  # building change is a part of all change
        differs += int((counted != label).sum())
    assert differs > 0
    with pytest.raises(ParameterError, match="`change_classes`"):
        CDTrainData([out], change_classes=["castle"])

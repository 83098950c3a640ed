"""The land-cover segmenter (`changeanywhere.segmenter`): confusion and IoU by hand, strict save/load."""


import numpy as np

from changeanywhere.segmenter import LandCoverSegmenter, confusion_matrix, iou_per_class, load_segmenter


def test_confusion_and_iou_by_hand():
    truth = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, truth, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    np.testing.assert_allclose(iou_per_class(cm), [1 / 2, 2 / 3, 1.0])
    assert np.isnan(iou_per_class(np.zeros((2, 2), int))).all()


def test_segmenter_save_load_strict(tmp_path, dubai):
    model = LandCoverSegmenter(num_classes=5, widths=(4, 8), class_set=dubai.to_dict())
    model.save_pretrained(tmp_path / "seg")
    loaded = load_segmenter(tmp_path / "seg")
    assert loaded.num_classes == 5 and loaded.class_set == dubai.to_dict()

"""`cd.metrics`: the metrics of one confusion matrix, by hand, and its accumulation."""


import numpy as np
import pytest

from changeanywhere.cd import BinaryConfusion, all_change_f1, binary_metrics


def test_metrics_hand_computed():
    # TP 30, FP 10, FN 20, TN 940 (N = 1000)
    m = binary_metrics(30, 10, 20, 940)
    p, r = 30 / 40, 30 / 50
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(2 * p * r / (p + r))  # 2/3
    assert m["f1"] == pytest.approx(2 * 30 / (2 * 30 + 10 + 20))
    assert m["iou"] == pytest.approx(30 / 60)
    assert m["oa"] == pytest.approx(0.97)
    pe = (40 * 50 + 960 * 950) / 1000**2  # 0.914
    assert m["kappa"] == pytest.approx((0.97 - pe) / (1 - pe))  # 0.651162...
    assert m["kappa"] == pytest.approx(0.6511627906976745)


def test_metrics_zero_denominators():
    assert binary_metrics(0, 0, 0, 0) == dict.fromkeys(("precision", "recall", "f1", "iou", "oa", "kappa"), 0.0)
    nothing = binary_metrics(0, 0, 0, 100)  # nothing to find, nothing found: perfect
    assert nothing["f1"] == nothing["iou"] == nothing["kappa"] == nothing["oa"] == 1.0
    missed = binary_metrics(0, 0, 10, 90)  # no prediction at all
    assert missed["precision"] == missed["recall"] == missed["f1"] == missed["iou"] == 0.0
    assert missed["oa"] == pytest.approx(0.9) and missed["kappa"] == pytest.approx(0.0)
    everything = binary_metrics(10, 90, 0, 0)  # all-change
    assert everything["f1"] == pytest.approx(all_change_f1(0.1)) and everything["kappa"] == pytest.approx(0.0)


def test_confusion_accumulates_over_images_with_ignore():
    t1 = np.array([[1, 0], [255, 1]], np.uint8)
    p1 = np.array([[1, 1], [1, 0]], bool)
    t2 = np.array([[0, 0], [0, 1]], np.uint8)
    p2 = np.array([[0, 0], [0, 1]], bool)
    cm = BinaryConfusion().update(p1, t1).update(p2, t2)
    assert cm.counts() == {"tp": 2, "fp": 1, "fn": 1, "tn": 3}
    assert (cm + cm).counts() == {"tp": 4, "fp": 2, "fn": 2, "tn": 6}
    assert cm.matrix().tolist() == [[3, 1], [1, 2]]
    floor = cm.all_change()
    assert floor.counts() == {"tp": 3, "fp": 4, "fn": 0, "tn": 0}
    assert floor.metrics()["f1"] == pytest.approx(all_change_f1(3 / 7))

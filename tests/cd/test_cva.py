"""`cd.cva`: change vector analysis with an Otsu threshold."""


import numpy as np

from changeanywhere.cd import BinaryConfusion, cva_predict


def test_cva_finds_bright_square():
    rng = np.random.default_rng(0)
    a = np.clip(rng.normal(90, 6, (128, 128, 3)), 0, 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-4, 5, a.shape), 0, 255).astype(np.uint8)
    b[40:80, 50:100] = 240
    truth = np.zeros((128, 128), np.uint8)
    truth[40:80, 50:100] = 1
    cm = BinaryConfusion().update(cva_predict(a, b), truth)
    assert cm.metrics()["f1"] > 0.9

"""Training regions (`changeanywhere.regions`): objects, blobs, strokes."""

import numpy as np

from changeanywhere.regions import REGION_KINDS, blobs, objects, strokes, training_region


def test_regions():
    rng = np.random.default_rng(0)
    m = np.zeros((64, 64), np.uint8)
    m[5:15, 5:15] = 2
    m[30:45, 30:45] = 3
    assert objects(m, rng, 0.05, min_area=16, num_classes=5).sum() in (100, 225)
    assert 0.15 < blobs((64, 64), rng, 0.2).mean() < 0.25
    assert strokes((64, 64), rng, 2).any()
    kinds = {training_region(m, np.random.default_rng(i), 5)[1] for i in range(40)}
    assert kinds == set(REGION_KINDS)

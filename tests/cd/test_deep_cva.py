"""The deep-CVA floor (`cd.deep_cva`) on the EfficientNet-Lite0 backbone."""


import numpy as np
import pytest
import torch

from changeanywhere.cd import BinaryConfusion
from changeanywhere.cd.deep_cva import DeepCVA, otsu_from_histogram
from changeanywhere.errors import ChangeAnywhereError
from changeanywhere.features import EfficientNetLite0
from tests.helpers import needs_weights


def test_otsu_from_histogram_splits_two_modes():
    edges = np.linspace(0, 2, 2049)
    values = np.concatenate([np.full(1000, 0.1), np.full(100, 0.9)])
    t = otsu_from_histogram(np.histogram(values, bins=edges)[0], edges)
    assert 0.1 < t < 0.9
    assert otsu_from_histogram(np.histogram(np.full(10, 0.3), bins=edges)[0], edges) == 2.0  # one value: no change


def test_deep_cva_mechanics_with_random_weights():
    torch.manual_seed(0)
    deep = DeepCVA(encoder=EfficientNetLite0())
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    b = a.copy()
    b[8:24, 8:24] = 255 - b[8:24, 8:24]
    assert np.abs(deep.magnitude(a, a)).max() < 1e-5  # the same image twice: no distance
    mag = deep.magnitude(a, b)
    assert mag.shape == (40, 56) and mag.dtype == np.float32 and 0 <= mag.min() and mag.max() <= 2
    with pytest.raises(ChangeAnywhereError, match="before fit"):
        deep.predict(a, b)
    t = deep.fit([(a, b), (a, a)])
    assert t == deep.threshold and deep.predict(a, b).shape == (40, 56)


@needs_weights
def test_deep_cva_finds_a_new_block_with_imagenet_features():
    rng = np.random.default_rng(1)
    deep = DeepCVA()
    pairs, truths = [], []
    for _ in range(3):
        a = np.clip(rng.normal(110, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
        truth = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(4, 28, 2)
        truth[y : y + 24, x : x + 24] = 1
        b[truth > 0] = (230, 215, 190)
        b[y : y + 24 : 4, x : x + 24] = (60, 60, 60)  # a roof with texture, not a flat patch
        pairs.append((a, b))
        truths.append(truth)
    deep.fit(pairs)
    cm = BinaryConfusion()
    for (a, b), truth in zip(pairs, truths, strict=True):
        cm.update(deep.predict(a, b), truth)
    assert cm.metrics()["f1"] > 0.6 > cm.all_change().metrics()["f1"]

"""`cd.inference`: prediction at any size, mismatched dates refused."""


import numpy as np
import pytest

from changeanywhere.cd import CDModel, predict
from changeanywhere.errors import MapSizeError


def test_predict_any_size_and_mismatch():
    model = CDModel(arch="tiny", widths=[8, 8, 8, 8]).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (70, 300, 3), dtype=np.uint8)
    mask = predict(model, a, a, tile_size=64, overlap=16)
    assert mask.shape == (70, 300) and mask.dtype == bool
    with pytest.raises(MapSizeError):
        predict(model, a, a[:60])

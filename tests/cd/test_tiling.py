"""`cd.tiling`: windows that cover any length, tiling exact for a pointwise model."""


import numpy as np
import pytest
import torch

from changeanywhere.cd import sliding_window, window_starts


@pytest.mark.parametrize("length,tile,overlap", [(256, 256, 32), (100, 256, 32), (600, 256, 32), (513, 128, 0)])
def test_window_starts_cover(length, tile, overlap):
    starts = window_starts(length, tile, overlap)
    covered = np.zeros(max(length, tile), bool)
    for s in starts:
        covered[s : s + tile] = True
        assert s + tile <= max(length, tile)
    assert covered[:length].all()
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("shape", [(300, 520), (100, 90), (256, 256), (257, 600)])
def test_tiling_exact_for_pointwise_model(shape):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 2, 1)  # pointwise: tiling must not change anything

    def fn(a, b):
        return conv(torch.cat([a, b], 1))

    a, b = torch.rand(3, *shape), torch.rand(3, *shape)
    with torch.no_grad():
        whole = fn(a[None], b[None])[0]
    tiled = sliding_window(fn, a, b, tile=128, overlap=40, batch_size=3)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, rtol=1e-6, atol=1e-6)
    assert torch.equal(tiled.argmax(0), whole.argmax(0))

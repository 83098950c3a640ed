"""`cd.augment`: bi-temporal geometry and radiometry, and the per-date augmentations of the published
synthetic-data methods (cast shadows, tone curves, haze)."""


import numpy as np
import pytest
import torch

from changeanywhere.cd.augment import (
    BitemporalAugment,
    cast_shadows,
    crop_pair,
    gaussian_blur,
    haze,
    radiometry,
    tone_curve,
)
from changeanywhere.cd.data import CDTrainData
from tests.helpers import make_cd_folder

NEW = {"shadow": 0.8, "tone": 0.5, "haze": 0.6}


def test_augment_geometry_follows_a_and_misregisters_b_within_bounds():
    """With B = A: no shift and no scale keep the crops equal; a shift of 2 px moves B by at most 2 px."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    label = (rng.random((80, 80)) > 0.5).astype(np.uint8)
    still = BitemporalAugment(shift=0, scale=0)
    ta, tb, tl = crop_pair(np.random.default_rng(1), img, img, label, 32, still)
    assert torch.equal(ta, tb) and tl.shape == (32, 32)
    moved = BitemporalAugment(shift=2, scale=0)
    offsets = set()
    for seed in range(12):
        ta, tb, tl = crop_pair(np.random.default_rng(seed), img, img, label, 32, moved)
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(ta[:, 2:-2, 2:-2], tb[:, 2 - dy : 30 - dy, 2 - dx : 30 - dx])]
        assert len(found) == 1  # B is A's window moved by one offset of at most 2 px
        offsets.add(found[0])
        # the label is A's: the crop of A and of the label come from the same window
        ya, xa = np.argwhere((np.lib.stride_tricks.sliding_window_view(img[..., 0], (32, 32))
                              == ((ta[0] + 1) * 127.5).round().byte().numpy()).all((2, 3)))[0]
        assert np.array_equal(tl.numpy(), label[ya : ya + 32, xa : xa + 32])
    assert len(offsets) > 3
    scaled = crop_pair(np.random.default_rng(3), img, img, label, 32, BitemporalAugment(shift=0, scale=0.3))
    assert scaled[0].shape == (3, 32, 32) and set(torch.unique(scaled[2]).tolist()) <= {0, 1}


def test_radiometry_is_per_date_seeded_and_in_range():
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    aug = BitemporalAugment()
    y1 = radiometry(x, aug, torch.Generator().manual_seed(0))
    y2 = radiometry(x, aug, torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2) and not torch.equal(y1, x)
    assert y1.min() >= -1 and y1.max() <= 1
    off = BitemporalAugment(jitter=0, gamma=0, blur=0, noise=0)
    torch.testing.assert_close(radiometry(x, off, torch.Generator().manual_seed(0)), x)
    blurred = gaussian_blur(x[0], 1.0)
    assert blurred.shape == x[0].shape and blurred.std() < x[0].std()


@pytest.mark.parametrize("fn", [cast_shadows, haze, tone_curve])
def test_each_is_seeded_in_range_and_changes_images(fn):
    x = torch.rand(8, 3, 32, 32)
    y1, y2 = fn(x, 0.8, torch.Generator().manual_seed(0)), fn(x, 0.8, torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2) and y1.shape == x.shape
    assert y1.min() >= 0 and y1.max() <= 1
    assert not torch.equal(y1, x) and not torch.equal(y1, fn(x, 0.8, torch.Generator().manual_seed(1)))


def test_shadows_only_darken_and_haze_lowers_contrast():
    x = torch.rand(16, 3, 48, 48) * 0.8 + 0.1
    shadowed = cast_shadows(x, 0.8, torch.Generator().manual_seed(0))
    assert (shadowed <= x + 1e-6).all()
    darkened = (shadowed < x - 0.05).flatten(1).any(1)
    assert 0 < darkened.sum() < 16  # on about half of the images
    hazy = haze(x, 1.0, torch.Generator().manual_seed(0))
    changed = (hazy - x).abs().flatten(1).amax(1) > 0.01
    assert 0 < changed.sum() < 16
    assert (hazy.std(dim=(1, 2, 3)) < x.std(dim=(1, 2, 3)))[changed].all()


def test_tone_curve_is_monotone_and_keeps_black_and_white():
    ramp = torch.linspace(0, 1, 101).view(1, 1, 1, -1).expand(6, 3, 1, 101).contiguous()
    y = tone_curve(ramp, 0.9, torch.Generator().manual_seed(3))
    assert (y[..., 1:] >= y[..., :-1] - 1e-6).all()
    torch.testing.assert_close(y[..., 0], torch.zeros(6, 3, 1))
    torch.testing.assert_close(y[..., -1], torch.ones(6, 3, 1))
    assert (y - ramp).abs().max() > 0.02


def test_new_augmentations_never_touch_the_label_and_are_off_by_default(tmp_path):
    root = make_cd_folder(tmp_path / "d", n=3, size=(48, 48))
    base = CDTrainData([root], crop_size=32, seed=7)
    more = CDTrainData([root], crop_size=32, seed=7, augment=BitemporalAugment(**NEW))
    for step in range(3):
        b0, b1 = base.batch(step, 4), more.batch(step, 4)
        assert torch.equal(b0["label"], b1["label"])  # same crops and labels, other radiometry
        assert not torch.equal(b0["a"], b1["a"]) and not torch.equal(b0["b"], b1["b"])
        assert torch.equal(b1["a"], more.batch(step, 4)["a"])  # seeded
    # off (the defaults): the draws of the other augmentations are unchanged
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(radiometry(x, BitemporalAugment(), torch.Generator().manual_seed(0)),
                               radiometry(x, BitemporalAugment(shadow=0, tone=0, haze=0),
                                          torch.Generator().manual_seed(0)))
    assert BitemporalAugment().shadow == BitemporalAugment().tone == BitemporalAugment().haze == 0

"""Per-date training augmentations of the published synthetic-data methods: cast shadows, tone curves, haze."""

import pytest
import torch
from test_cd import make_cd_folder

from changeanywhere.cd.augment import BitemporalAugment, cast_shadows, haze, radiometry, tone_curve
from changeanywhere.cd.data import CDTrainData
from changeanywhere.cli import main

NEW = {"shadow": 0.8, "tone": 0.5, "haze": 0.6}


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


def test_train_cd_takes_the_new_strengths(tmp_path, capsys):
    data = make_cd_folder(tmp_path / "data", n=2)
    common = ["train-cd", "--data", str(data), "--output-dir", str(tmp_path / "run"), "--arch", "tiny", "--widths",
              "8", "8", "8", "8", "--crop-size", "32", "--batch-size", "2", "--max-steps", "1", "--log-steps", "1"]
    assert main([*common, "--shadow", "0.5", "--tone", "0.3", "--haze", "0.4"]) == 0
    assert main([*common, "--shadow", "1.5"]) == 2
    assert "--shadow" in capsys.readouterr().err

"""Global drift (`generator.drift`): it never changes the label, its parameters."""


import numpy as np
import pytest
import torch

from changeanywhere import ChangeAnywhereError
from changeanywhere.generator.drift import DriftSettings, apply_drift, as_drift_settings, colour_stats, draw_drift
from changeanywhere.image_metrics import distance_from
from tests.helpers import remove_building

STEPS = 6


def test_drift_never_changes_the_label(tiny_pipe, before_pair):
    img, m = before_pair
    after = remove_building(m)
    kw = dict(num_inference_steps=STEPS, seed=3, output_type="np")
    off = tiny_pipe.change(img, m, after, **kw)
    on = tiny_pipe.change(img, m, after, drift=1.5, drift_reference=colour_stats(img[::-1]), **kw)
    again = tiny_pipe.change(img, m, after, drift=1.5, drift_reference=colour_stats(img[::-1]), **kw)
    np.testing.assert_array_equal(on.change_masks, off.change_masks)
    np.testing.assert_array_equal(on.after_maps, off.after_maps)
    np.testing.assert_array_equal(on.images, again.images)  # seeded
    assert off.drifts == [None] and on.drifts[0]["strength"] == 1.5 and on.drifts[0]["reference"]
    far = distance_from(on.change_masks[0]) >= 6
    diff = np.abs(on.images[0][far] - off.images[0][far]).mean()
    assert 0.005 < diff < 0.2, diff  # the whole image moves, realistically: a few percent


def test_drift_parameters():
    g = torch.Generator().manual_seed(0)
    p = draw_drift(g, DriftSettings(strength=1.0))
    img = np.full((16, 16, 3), 128, np.uint8)
    out = apply_drift(img, p)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert as_drift_settings(0) is None and as_drift_settings(None) is None
    assert as_drift_settings(True) == DriftSettings()
    with pytest.raises(ChangeAnywhereError):
        DriftSettings(strength=-1)
    # a zero-strength drift is the identity
    same = apply_drift(img, draw_drift(torch.Generator().manual_seed(0), DriftSettings(strength=0.0)))
    np.testing.assert_array_equal(same, img)

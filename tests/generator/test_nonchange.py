"""Realistic non-change (`generator.nonchange`): re-rendered regions, appearance and acquisition effects, never touching
the label, seeded and batch independent."""


import numpy as np
import pytest

from changeanywhere import simulate_changes
from changeanywhere.errors import ParameterError
from changeanywhere.generator.nonchange import (
    NonChangeSettings,
    apply_nonchange,
    cast_shadows,
    draw_nonchange,
    nonchange_rng,
    rerender_region,
)


def test_nonchange_never_touches_the_label(inpaint_pipe, before_pair):
    img, m = before_pair
    after = simulate_changes(m, inpaint_pipe.class_set, seed=5, num_events=2).after
    kw = dict(seed=[4, 5], output_type="np")
    off = inpaint_pipe.change([img, img], [m, m], [after, after], nonchange=0, **kw)
    on = inpaint_pipe.change([img, img], [m, m], [after, after], nonchange=NonChangeSettings(rerender=(0.3, 0.3)),
                             **kw)
    np.testing.assert_array_equal(on.change_masks, off.change_masks)
    np.testing.assert_array_equal(on.change_masks[0], m != after)
    for mask, record in zip(on.rerendered, on.nonchange, strict=True):
        assert mask.any() and record["rerendered_pixels"] == int(mask.sum())
        assert not (mask & (m != after)).any()  # only unchanged pixels are re-rendered ...
        assert (m[mask] == after[mask]).all()  # ... where both maps agree
    assert on.nonchange[0]["settings"]["rerender"] == [0.3, 0.3]
    assert off.nonchange == [None, None] and off.rerendered is None
    assert not np.allclose(on.images, off.images)


def test_nonchange_is_seeded_and_batch_independent(inpaint_pipe, before_pair):
    img, m = before_pair
    after = simulate_changes(m, inpaint_pipe.class_set, seed=5, num_events=2).after
    kw = dict(nonchange=1.0, output_type="np")
    inpaint_pipe.scheduler.set_timesteps(2)
    a = inpaint_pipe.change(img, m, after, seed=7, **kw)
    b = inpaint_pipe.change(img, m, after, seed=7, **kw)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.nonchange == b.nonchange
    batch = inpaint_pipe.change([255 - img, img, img], [m] * 3, [after] * 3, seed=[3, 7, 9], **kw)
    assert batch.nonchange[1] == a.nonchange[0]
    np.testing.assert_allclose(batch.images[1], a.images[0], atol=2 / 255)
    other = inpaint_pipe.change(img, m, after, seed=8, **kw)
    assert other.nonchange != a.nonchange


@pytest.mark.parametrize("bad", [dict(strength=-1), dict(strength=4), dict(rerender=(0.5, 0.2)),
                                 dict(rerender=(0.1, 0.95))])
def test_bad_nonchange_settings(bad):
    with pytest.raises(ParameterError):
        NonChangeSettings(**bad)


def test_rerender_region_stays_in_the_unchanged_area():
    m = np.zeros((64, 64), np.uint8)
    m[8:20, 8:20] = 2
    m[30:40, 40:60] = 2
    m[50:, :] = 1
    unchanged = np.ones_like(m, bool)
    unchanged[:, :12] = False
    region = rerender_region(unchanged, m, np.random.default_rng(0), 0.25, 5)
    assert region.any() and not region[:, :16].any()  # kept 4 px off the change
    assert 0.05 < region.mean() / unchanged.mean() < 0.5
    # skipped classes (open water by default) are never repainted; the share is of the rest
    kept = rerender_region(unchanged, m, np.random.default_rng(0), 0.25, 5, skip=(1,))
    assert kept.any() and not kept[m == 1].any() and not kept[:, :16].any()
    assert NonChangeSettings().rerender_skip == ("water", "object", "paved")
    assert NonChangeSettings().to_dict()["rerender_skip"] == ["water", "object", "paved"]  # recorded in meta as JSON


def test_apply_nonchange_effects_are_bounded():
    rng = np.random.default_rng(0)
    x = np.tile(np.linspace(0, 255, 64, dtype=np.float32)[None, :, None], (64, 1, 3)).astype(np.uint8)
    m = np.zeros((64, 64), np.uint8)
    names = ["bare", "water", "object", "vegetation", "paved"]  # the kinds of the Dubai classes
    params = draw_nonchange(rng, NonChangeSettings(appearance=False))
    params.update(resolution=None, noise_std=0, jpeg_quality=None)
    params["misregistration"]["max_px"] = 2.0
    y = apply_nonchange(x, params, m, names)
    assert y.shape == x.shape and y.dtype == np.uint8
    shift = np.abs(y[4:-4, 4:-4, 0].astype(float) - x[4:-4, 4:-4, 0]) / (255 / 63)  # a ramp: value ↔ position
    assert 0.2 < shift.max() <= 2.0 + 0.6
    full = draw_nonchange(nonchange_rng(3), NonChangeSettings())
    assert apply_nonchange(x, full, m, names).shape == x.shape


def test_a_brighter_date_does_not_burn_out_a_bright_scene():
    rng = np.random.default_rng(1)
    sand = np.clip(rng.normal(225, 12, (64, 64, 3)), 0, 255).astype(np.uint8)  # bright desert, textured
    m = np.zeros((64, 64), np.uint8)
    params = {"exposure": 0.3, "white_balance": [0.05, 0.05, 0.05], "illumination": [[0.1] * 3] * 3}
    y = apply_nonchange(sand, params, m, ["bare"])
    assert y.std() > 0.8 * sand.std() and (y >= 250).mean() < 0.05  # texture kept, not clipped to white
    assert np.percentile(y, 99) <= 0.95 * 255 + 8
    dark = (sand // 3).astype(np.uint8)  # a dark scene still gets the whole brightening
    assert apply_nonchange(dark, params, m, ["bare"]).mean() > dark.mean() * np.exp(0.3 + 0.05 + 0.1) * 0.95


def test_cast_shadows_fall_away_from_the_sun():
    b = np.zeros((40, 40), bool)
    b[15:25, 15:25] = True
    s = cast_shadows(b, azimuth_deg=0.0, length_px=6)  # sun in the north (up): shadows fall south (down)
    assert s[27:31, 17:23].mean() > 0.5 and s[9:13, 17:23].max() < 0.05 and s[b].max() < 0.3

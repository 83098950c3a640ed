"""Generator v3: the inpainting denoiser's extra inputs, its training masks, and realistic non-change."""

import numpy as np
import pytest
import torch
from conftest import make_tiny_pipe

from changeanywhere import simulate_changes
from changeanywhere.errors import ParameterError
from changeanywhere.generator.inpainting import inpaint_channels, inpaint_condition, widen_for_inpainting
from changeanywhere.generator.nonchange import (
    NonChangeSettings,
    apply_nonchange,
    as_nonchange_settings,
    cast_shadows,
    draw_nonchange,
    nonchange_rng,
    rerender_region,
)
from changeanywhere.generator.presets import build_pipeline
from changeanywhere.image_metrics import colour_fit_residuals, kid, ring_contrast
from changeanywhere.pairs import PairSettings, build_pairs, simulate_events
from changeanywhere.regions import REGION_KINDS, blobs, objects, strokes, training_region


@pytest.fixture(scope="module")
def inpaint_pipe(dubai):
    """The tiny pipeline with its UNet widened for inpainting and the new channels given random weights (so a
    test can see that the context reaches the network)."""
    pipe = make_tiny_pipe(dubai)
    latent = pipe.vae.config.latent_channels
    wide = widen_for_inpainting(pipe.unet, latent)
    with torch.no_grad():
        torch.manual_seed(1)
        w = wide.conv_in.weight
        w[:, -inpaint_channels(latent):] = torch.randn_like(w[:, -inpaint_channels(latent):]) * 0.1
    pipe.register_modules(unet=wide)
    return pipe


def test_widened_unet_computes_what_the_plain_one_did(tiny_pipe):
    """New input channels start at zero: whatever the masked latent and mask, the output is unchanged."""
    latent = tiny_pipe.vae.config.latent_channels
    wide = widen_for_inpainting(tiny_pipe.unet, latent)
    assert wide.config.in_channels == tiny_pipe.unet.config.in_channels + latent + 1
    x = torch.randn(2, tiny_pipe.unet.config.in_channels, 8, 8)
    extra = inpaint_condition(torch.randn(2, latent, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float())
    t = torch.tensor([10, 500])
    with torch.no_grad():
        ref = tiny_pipe.unet(x, t).sample
        out = wide(torch.cat([x, extra], 1), t).sample
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_inpaint_condition_hides_the_painted_cells():
    z = torch.ones(1, 3, 4, 4)
    paint = torch.zeros(1, 1, 4, 4)
    paint[..., :2, :] = 1
    c = inpaint_condition(z, paint)
    assert c.shape == (1, 4, 4, 4)
    assert c[:, :3, :2].abs().sum() == 0 and (c[:, :3, 2:] == 1).all() and torch.equal(c[:, 3:], paint)


def test_inpainting_pipeline_defaults_and_context(inpaint_pipe, tiny_pipe, before_pair):
    img, m = before_pair
    after = simulate_changes(m, inpaint_pipe.class_set, seed=3, num_events=2).after
    assert inpaint_pipe.is_inpainting and not tiny_pipe.is_inpainting
    assert inpaint_pipe.resolve()[0].sampler == "inpaint" and tiny_pipe.resolve()[0].sampler == "anchored"
    out = inpaint_pipe.change(img, m, after, seed=0, output_type="np", guidance_scale=1.0)
    assert out.sampler["change_sampler"] == "inpaint" and out.mix_steps == [0]
    # the before image is the network's context: another before image gives other painted pixels
    other = inpaint_pipe.change(255 - img, m, after, seed=0, output_type="np", guidance_scale=1.0)
    changed = out.change_masks[0]
    assert not np.allclose(out.images[0][changed], other.images[0][changed])
    # plain synthesis runs on the inpainting UNet too (nothing known, everything painted)
    assert inpaint_pipe.synthesize(m, seed=0, output_type="np").images.shape == (1, 32, 32, 3)


def test_sampler_errors(inpaint_pipe, tiny_pipe, before_pair):
    img, m = before_pair
    with pytest.raises(ParameterError, match="inpainting UNet"):
        tiny_pipe.change(img, m, m, sampler="inpaint")
    with pytest.raises(ParameterError, match="`sampler` must be one of"):
        inpaint_pipe.change(img, m, m, sampler="repaint")
    with pytest.raises(ParameterError, match="re-rendering"):
        tiny_pipe.change(img, m, m, nonchange=NonChangeSettings())
    anchored = inpaint_pipe.change(img, m, m, sampler="anchored", seed=0, output_type="np")
    assert anchored.sampler["change_sampler"] == "anchored"


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


def test_build_pairs_records_nonchange_in_meta(inpaint_pipe, tiny_pipe, before_pair):
    img, m = before_pair
    settings = PairSettings(num_inference_steps=2, num_events=(1, 2))
    change, record = simulate_events(m, inpaint_pipe.class_set, seed=2, settings=settings)
    (pair,) = build_pairs(inpaint_pipe, [img], [change], [2], inpaint_pipe.class_set, settings, meta=[record])
    nc = pair.meta["nonchange"]
    assert pair.meta["sampler"] == "inpaint" and nc["settings"]["strength"] == 1.0 and "misregistration" in nc
    np.testing.assert_array_equal(pair.change_mask, change.change_mask)
    # a plain (v2) UNet gets appearance and acquisition only
    (plain,) = build_pairs(tiny_pipe, [img], [change], [2], tiny_pipe.class_set, settings, meta=[record])
    assert plain.meta["nonchange"]["settings"]["rerender"] == [0.0, 0.0] and plain.meta["sampler"] == "anchored"
    off = PairSettings(num_inference_steps=2, num_events=(1, 2), nonchange=0.0)
    (copy,) = build_pairs(inpaint_pipe, [img], [change], [2], inpaint_pipe.class_set, off, meta=[record])
    assert copy.meta["nonchange"] is None
    far = ~np.asarray(torch.nn.functional.max_pool2d(torch.from_numpy(change.change_mask.astype(np.float32))[None],
                                                     25, 1, 12)[0], bool)
    np.testing.assert_array_equal(copy.after_image[far], img[far])  # off: B copies A away from the change


@pytest.mark.parametrize("bad", [dict(strength=-1), dict(strength=4), dict(rerender=(0.5, 0.2)),
                                 dict(rerender=(0.1, 0.95))])
def test_bad_nonchange_settings(bad):
    with pytest.raises(ParameterError):
        NonChangeSettings(**bad)


def test_bad_pair_settings():
    with pytest.raises(ParameterError, match="nonchange"):
        PairSettings(nonchange=-0.5).check()
    with pytest.raises(ParameterError, match="sampler"):
        PairSettings(sampler="magic").check()
    with pytest.raises(ParameterError, match="nonchange"):
        as_nonchange_settings("strong")
    assert as_nonchange_settings(0) is None and as_nonchange_settings(True) == NonChangeSettings()


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


def test_train_inpainting_from_a_plain_pipeline(tmp_path, dubai):
    """A plain pipeline initialises an inpainting run (zero-initialised inputs), which trains and saves."""
    from conftest import make_fake_dataset

    from changeanywhere.training.config import DiffusionTrainConfig
    from changeanywhere.training.diffusion import train_diffusion

    data = make_fake_dataset(tmp_path / "data", dubai, n=3)
    plain = build_pipeline(dubai, preset="tiny")
    plain.save_pretrained(tmp_path / "plain")
    plain.vae.save_pretrained(tmp_path / "ae")
    result = train_diffusion(DiffusionTrainConfig(
        data=data, classes="dubai-landcover", output_dir=tmp_path / "run", preset="tiny",
        autoencoder=tmp_path / "ae", inpainting=True, init_from=tmp_path / "plain", max_steps=2,
        val_pattern=("*_002.*",), sample_steps=0))
    from changeanywhere import ChangeAnywherePipeline

    pipe = ChangeAnywherePipeline.from_pretrained(result["pipeline"])
    assert pipe.is_inpainting


def test_residual_seam_and_kid_figures():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 200, (32, 32, 3)).astype(np.uint8)
    b = (a.astype(float) * 0.5 + 20).astype(np.uint8)
    everything = np.ones((32, 32), bool)
    assert colour_fit_residuals(a, b, everything, everything)[0] < 1.5  # a linear colour change is forgiven
    c = b.copy()
    c[:8] = 0
    top = np.zeros_like(everything)
    top[:8] = True
    un, ch = colour_fit_residuals(a, c, ~top, ~top, top)
    assert un < 1.5 and ch > 30
    flat = np.full((40, 40, 3), 100, np.uint8)
    flat[10:30, 10:30] = 160
    region = np.zeros((40, 40), bool)
    region[10:30, 10:30] = True
    assert ring_contrast(flat, region) == [60.0]
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))  # two draws of one distribution: KID ≈ 0
    assert abs(kid(x, y)) < 0.05 and kid(x, y + 1) > 10 * abs(kid(x, y))

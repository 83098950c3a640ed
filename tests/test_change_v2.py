"""Generator v2 on tiny random models: the change mode keeps the before image, drift, the colour autoencoder."""

import numpy as np
import pytest
import torch

from changeanywhere import ChangeAnywhereError
from changeanywhere.generator.autoencoder import ColorAutoencoder
from changeanywhere.generator.compositing import feather_weights, latent_keep_mask
from changeanywhere.generator.drift import DriftSettings, apply_drift, as_drift_settings, colour_stats, draw_drift
from changeanywhere.generator.presets import build_pipeline
from changeanywhere.image_metrics import distance_from

STEPS = 6


def _after(before_map):
    after = before_map.copy()
    after[4:14, 4:14] = 0  # the building is removed
    return after


def _known(pipe, img):
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        return pipe.encode_images(x)


def _keep_cells(pipe, m, after):
    return latent_keep_mask(torch.from_numpy(m != after)[None], pipe.vae_scale_factor)[0, 0].bool()


def test_default_change_keeps_before_latent_to_the_end(tiny_pipe, before_pair):
    """Default settings: every anchored latent cell ends exactly on the before latent. The paper's sampler
    (content scale drawn in 0.7..1, the last steps free) fails this criterion."""
    img, m = before_pair
    after = _after(m)
    known, keep = _known(tiny_pipe, img)[0], _keep_cells(tiny_pipe, m, after)
    assert keep.any() and not keep.all()
    ours = tiny_pipe.change(img, m, after, num_inference_steps=STEPS, seed=1, output_type="latent")
    assert ours.mix_steps == [STEPS]
    np.testing.assert_allclose(ours.images[0][:, keep].numpy(), known[:, keep].numpy(), atol=1e-6)
    paper = tiny_pipe.change(img, m, after, content_scale=(0.7, 0.9), blend="latent", free_band=0,
                             num_inference_steps=STEPS, seed=1, output_type="latent")
    assert paper.mix_steps[0] < STEPS
    err = (paper.images[0][:, keep] - known[:, keep]).abs().mean().item()
    assert err > 0.05, err
    # the free cells (the change and its band) are painted, not copied
    assert (ours.images[0][:, ~keep] - known[:, ~keep]).abs().mean().item() > 0.05


def test_default_change_keeps_before_pixels(tiny_pipe, before_pair):
    """Pixel blend (non-change off): unchanged pixels at least `feather` px from a change are the real before
    image."""
    img, m = before_pair
    after = _after(m)
    out = tiny_pipe.change(img, m, after, num_inference_steps=STEPS, seed=2, output_type="np", nonchange=0)
    b = (out.images[0] * 255).round().astype(np.uint8)
    far = distance_from(out.change_masks[0]) >= 6
    assert far.any()
    np.testing.assert_array_equal(b[far], img[far])
    changed = out.change_masks[0]
    assert np.abs(b[changed].astype(int) - img[changed]).mean() > 5  # the change is painted


def test_drift_never_changes_the_label(tiny_pipe, before_pair):
    img, m = before_pair
    after = _after(m)
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


def test_feather_and_keep_mask():
    changed = np.zeros((32, 32), bool)
    changed[10:14, 10:14] = True
    w = feather_weights(changed, 6)
    assert (w[changed] == 0).all() and w[0, 0] == 1 and 0 < w[10, 16] < 1
    keep = latent_keep_mask(torch.from_numpy(changed)[None], 4, free_band=1)[0, 0]
    assert keep[2:4, 2:4].eq(0).all() and keep[0, 0] == 1 and keep[1, 1] == 0 and keep[4, 4] == 0 and keep[5, 5] == 1


def test_change_option_errors(tiny_pipe, before_pair):
    img, m = before_pair
    with pytest.raises(ChangeAnywhereError, match="blend"):
        tiny_pipe.change(img, m, _after(m), blend="nope", num_inference_steps=1)
    with pytest.raises(ChangeAnywhereError, match="drift"):
        tiny_pipe.change(img, m, _after(m), drift="strong", num_inference_steps=1)


def test_colour_autoencoder_carries_colour(tmp_path):
    torch.manual_seed(0)
    ae = ColorAutoencoder(detail_channels=2, block_out_channels=(8, 8, 8), norm_num_groups=4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = ae.encode(x).latents
    assert z.shape == (2, 5, 8, 8) and ae.latent_channels == 5
    torch.testing.assert_close(z[:, :3], torch.nn.functional.avg_pool2d(x, 4))
    ae.register_to_config(latents_mean=[0.0] * 5, latents_std=[0.5] * 5)
    ae.save_pretrained(tmp_path / "ae")
    loaded = ColorAutoencoder.from_pretrained(tmp_path / "ae")
    torch.testing.assert_close(loaded.decode(z).sample, ae.decode(z).sample)
    assert loaded.config.latents_std == [0.5] * 5


def test_pipeline_with_colour_autoencoder(tmp_path, dubai, before_pair):
    torch.manual_seed(0)
    pipe = build_pipeline(dubai, preset="tiny", autoencoder="color")
    pipe.set_progress_bar_config(disable=True)
    n = pipe.vae.latent_channels
    pipe.vae.register_to_config(latents_mean=[0.0] * n, latents_std=[0.3] * n)
    img, m = before_pair
    known = _known(pipe, img)
    # per-channel normalisation: the colour channels are the block means scaled by 1/std
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    torch.testing.assert_close(known[:, :3], torch.nn.functional.avg_pool2d(x, 4) / 0.3)
    out = pipe.change(img, m, _after(m), num_inference_steps=2, seed=0, output_type="np")
    assert out.images.shape == (1, 32, 32, 3)
    pipe.save_pretrained(tmp_path / "p")
    from changeanywhere import ChangeAnywherePipeline

    again = ChangeAnywherePipeline.from_pretrained(tmp_path / "p")
    assert type(again.vae).__name__ == "ColorAutoencoder"


@pytest.mark.parametrize("name", ["DPMSolverMultistepScheduler", "UniPCMultistepScheduler",
                                  "EulerDiscreteScheduler", "DDIMScheduler", "dpm++2m-sde", "euler-a"])
def test_any_diffusers_scheduler(tiny_pipe, before_pair, name):
    """Swapped schedulers (diffusers classes, or the named ones of `generator.schedulers`, SDE and ancestral
    included) run both entry points, keep the anchored latents, and are recorded."""
    import copy

    import diffusers

    from changeanywhere.generator.schedulers import make_scheduler

    img, m = before_pair
    after = _after(m)
    pipe = copy.copy(tiny_pipe)
    if hasattr(diffusers, name):
        pipe.scheduler = getattr(diffusers, name).from_config(tiny_pipe.scheduler.config)
    else:
        pipe.scheduler = make_scheduler(name, tiny_pipe.scheduler.config)
    name = type(pipe.scheduler).__name__
    syn = pipe.synthesize(m, num_inference_steps=4, seed=0, output_type="np")
    assert np.isfinite(syn.images).all() and syn.sampler["scheduler"] == name
    out = pipe.change(img, m, after, num_inference_steps=4, seed=0, output_type="latent")
    known, keep = _known(pipe, img)[0], _keep_cells(pipe, m, after)
    np.testing.assert_allclose(out.images[0][:, keep].numpy(), known[:, keep].numpy(), atol=1e-6)
    assert torch.isfinite(out.images).all() and out.sampler["scheduler"] == name
    again = pipe.change(img, m, after, num_inference_steps=4, seed=0, output_type="latent")
    torch.testing.assert_close(out.images, again.images)  # seeded, whatever the scheduler


def test_pipeline_from_checkpoint_is_the_ema_pipeline(tmp_path, dubai):
    """A checkpoint of a running train-diffusion exports the same EMA weights the run's end would save."""
    from conftest import make_fake_dataset

    from changeanywhere.cli import main
    from changeanywhere.generator.presets import build_autoencoder
    from changeanywhere.training.diffusion import pipeline_from_checkpoint

    data = make_fake_dataset(tmp_path / "data", dubai)
    for sub in ("images", "labels"):  # one validation pair (the Dubai convention *_008)
        (data / sub / "tile_002.png").rename(data / sub / "tile_008.png")
    torch.manual_seed(0)
    ae = build_autoencoder("tiny", "color")
    ae.register_to_config(latents_mean=[0.0] * 4, latents_std=[0.5] * 4)
    ae.save_pretrained(tmp_path / "ae")
    out = tmp_path / "dm"
    argv = ["train-diffusion", "--data", str(data), "--classes", "dubai-landcover", "--output-dir", str(out),
            "--preset", "tiny", "--crop-size", "32", "--num-threads", "1", "--autoencoder", str(tmp_path / "ae"),
            "--max-steps", "2", "--sample-steps", "100"]
    assert main(argv) == 0
    pipe = pipeline_from_checkpoint(out / "checkpoint-2")
    saved = type(pipe).from_pretrained(out / "pipeline")
    assert pipe.scheduler.config.prediction_type == "v_prediction" == saved.scheduler.config.prediction_type
    for a, b in zip(pipe.unet.parameters(), saved.unet.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ChangeAnywhereError, match="not a train-diffusion"):
        import json

        (tmp_path / "fake").mkdir()
        (tmp_path / "fake" / "state.json").write_text(json.dumps({"step": 1, "extra": {"command": "x"}}))
        pipeline_from_checkpoint(tmp_path / "fake")


def test_texture_init_copies_the_new_class_from_elsewhere():
    """Free cells whose new class is water get latents of pure water cells of the same image."""
    from changeanywhere.generator.compositing import texture_init

    before = torch.zeros(1, 32, 32, dtype=torch.long)
    before[0, 24:, :] = 1  # a water strip
    after = before.clone()
    after[0, 4:12, 4:12] = 1  # land -> water
    known = torch.randn(1, 4, 8, 8)
    free = latent_keep_mask(after != before, 4, 1)[:, 0] < 0.5
    init = texture_init(known, before, after, free, 5, 4, [torch.Generator().manual_seed(0)])
    water_cells = {tuple(known[0, :, 6 + i // 8, i % 8].tolist()) for i in range(16)}
    for y in range(1, 3):
        for x in range(1, 3):
            assert tuple(init[0, :, y, x].tolist()) in water_cells  # changed cells: real water texture
    torch.testing.assert_close(init[0, :, 0, 5], known[0, :, 0, 5])  # band cells staying land keep theirs
    torch.testing.assert_close(init[:, :, 5:], known[:, :, 5:])


def test_strength_starts_from_texture_and_keeps_anchor(tiny_pipe, before_pair):
    img, m = before_pair
    after = m.copy()
    after[4:14, 4:14] = 1  # the building becomes water (present in the image)
    known, keep = _known(tiny_pipe, img)[0], _keep_cells(tiny_pipe, m, after)
    out = tiny_pipe.change(img, m, after, strength=0.5, num_inference_steps=STEPS, seed=1, output_type="latent")
    np.testing.assert_allclose(out.images[0][:, keep].numpy(), known[:, keep].numpy(), atol=1e-6)
    full = tiny_pipe.change(img, m, after, num_inference_steps=STEPS, seed=1, output_type="latent")
    assert (out.images - full.images).abs().max() > 1e-3
    with pytest.raises(ChangeAnywhereError, match="strength"):
        tiny_pipe.change(img, m, after, strength=0.0, num_inference_steps=2)

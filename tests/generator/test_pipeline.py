"""ChangeAnywherePipeline on tiny random components: determinism, latent mixing, labels, the change mode
keeping the before image, strength, the colour and VQ autoencoders, the inpainting UNet's sampler, I/O, errors."""

import json

import cv2
import numpy as np
import pytest
import torch

from changeanywhere import (
    ChangeAnywhereError,
    ChangeAnywherePipeline,
    MapSizeError,
    UnknownColorsError,
    simulate_changes,
)
from changeanywhere.errors import ParameterError
from changeanywhere.generator.nonchange import NonChangeSettings
from changeanywhere.generator.presets import build_pipeline
from changeanywhere.image_metrics import distance_from
from tests.helpers import encode_before, keep_cells, remove_building

STEPS = 8
CHANGE_STEPS = 6  # the change-mode tests (keeping the before image, strength)


def _after(before_map):
    after = before_map.copy()
    after[4:14, 4:14] = 0  # the building is removed
    after[24:30, 20:30] = 2  # a building appears on the water strip
    return after


def test_synthesize_shapes_and_seed_determinism(tiny_pipe, before_pair):
    _, m = before_pair
    a = tiny_pipe.synthesize(m, num_inference_steps=STEPS, seed=3, output_type="np").images
    b = tiny_pipe.synthesize(m, num_inference_steps=STEPS, seed=3, output_type="np").images
    c = tiny_pipe.synthesize(m, num_inference_steps=STEPS, seed=4, output_type="np").images
    assert a.shape == (1, 32, 32, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3
    pil = tiny_pipe.synthesize(m, num_inference_steps=2, seed=3).images
    assert pil[0].size == (32, 32) and pil[0].mode == "RGB"


def test_change_sample_independent_of_batch(tiny_pipe, before_pair):
    img, m = before_pair
    after = _after(m)
    kw = dict(num_inference_steps=STEPS, output_type="pt", guidance_scale=2.0)  # floats: no 8-bit rounding
    alone = tiny_pipe.change(img, m, after, seed=[5], **kw)
    batch = tiny_pipe.change([img] * 3, [m] * 3, [after] * 3, seed=[7, 5, 9], **kw)
    np.testing.assert_allclose(alone.images[0].numpy(), batch.images[1].numpy(), atol=1e-4)
    assert alone.content_scales[0] == batch.content_scales[1]
    assert 0.7 <= alone.content_scales[0] <= 1.0
    assert (batch.images[0] - batch.images[1]).abs().mean() > 1e-3


def test_label_is_full_resolution_xor(tiny_pipe, before_pair):
    img, m = before_pair
    after = _after(m)
    after[0, 0] = 1  # a single-pixel change, smaller than one latent cell
    m_ign = m.copy()
    m_ign[31, 31] = 255
    after[31, 31] = 255
    out = tiny_pipe.change(img, m_ign, after, num_inference_steps=2, seed=0)
    np.testing.assert_array_equal(out.change_masks[0], (m_ign != after) & (m_ign != 255))
    assert out.change_masks[0][0, 0] and not out.change_masks[0][31, 31]
    np.testing.assert_array_equal(out.after_maps[0], after)


def _unchanged_latent_error(pipe, img, m, after, scale):
    """RMS distance of the final latent to the before-latent, in latent cells far from any change."""
    out = pipe.change(
        img, m, after, content_scale=scale, num_inference_steps=STEPS, seed=1, output_type="latent"
    )
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        known = pipe.encode_images(x)
    changed = cv2.dilate((m != after).astype(np.uint8), np.ones((9, 9), np.uint8))
    far = torch.from_numpy(changed[::4, ::4] == 0)  # latent cells (f = 4) at least 4 px from a change
    return ((out.images - known)[0][:, far] ** 2).mean().sqrt().item() / known.std().item()


def test_content_scale_anchors_unchanged_region(tiny_pipe, before_pair):
    """s = 1: the unchanged region ends on the before-latent (up to the last step's noise); s = 0: free."""
    img, m = before_pair
    after = _after(m)
    anchored = _unchanged_latent_error(tiny_pipe, img, m, after, 1.0)
    free = _unchanged_latent_error(tiny_pipe, img, m, after, 0.0)
    assert anchored < 0.2, anchored  # the last step's noise and the sampler's x0 clipping at ±2σ
    assert free > 5 * anchored, (anchored, free)


def test_change_from_edits(tiny_pipe, before_pair, dubai):
    from changeanywhere import UserEdit, simulate_changes

    img, m = before_pair
    mask = np.zeros_like(m, dtype=bool)
    mask[0:4, 0:8] = True
    after = simulate_changes(m, dubai, num_events=0, edits=[UserEdit(mask=mask, target=4)]).after
    out = tiny_pipe.change(img, m, after, num_inference_steps=2, seed=0)
    assert out.change_masks[0].sum() == 32 and (out.after_maps[0][mask] == 4).all()
    with pytest.raises(ChangeAnywhereError, match="after_map"):
        tiny_pipe.change(img, m, None, num_inference_steps=2)


def test_entry_points_and_return_dict(tiny_pipe, before_pair):
    """diffusers conventions: `pipe(map)` synthesizes, the change has its own entry point; return_dict=False."""
    img, m = before_pair
    images, seeds, sampler = tiny_pipe(m, num_inference_steps=2, seed=4, output_type="np", return_dict=False)
    assert images.shape == (1, 32, 32, 3) and seeds == [4] and sampler["num_inference_steps"] == 2
    with pytest.raises(ChangeAnywhereError, match="pipe.change"):
        tiny_pipe(m, image=img)
    out = tiny_pipe.change(img, m, m, num_inference_steps=2, seed=1, output_type="np", return_dict=False)
    assert out[0].shape == (1, 32, 32, 3) and not out[1].any()  # images, change masks, ...
    for bad in (dict(num_inference_steps=0), dict(guidance_scale=-1), dict(content_scale=(0.9, 0.1)),
                dict(blend="x"), dict(feather=-1), dict(output_type="jpg")):
        with pytest.raises(ChangeAnywhereError, match=f"`{next(iter(bad))}`"):
            tiny_pipe.change(img, m, m, **{"num_inference_steps": 2, **bad})


def test_guidance_interval(tiny_pipe, before_pair, monkeypatch):
    """Guidance on the steps start·N ≤ i < stop·N only (diffusers' guider convention): the UNet batch halves
    elsewhere; the whole interval is the plain sampler; the record names it; a bad interval is refused."""
    img, m = before_pair
    kw = dict(num_inference_steps=4, seed=[2, 3], output_type="pt", guidance_scale=3.0)
    batches = []
    forward = type(tiny_pipe.unet).forward
    monkeypatch.setattr(type(tiny_pipe.unet), "forward",
                        lambda self, x, t, **k: batches.append(x.shape[0]) or forward(self, x, t, **k))
    full = tiny_pipe.synthesize([m] * 2, **kw)
    assert batches == [4] * 4 and full.sampler["guidance_interval"] == [0.0, 1.0]
    same = tiny_pipe.synthesize([m] * 2, guidance_interval=(0, 1), **kw)
    torch.testing.assert_close(same.images, full.images, rtol=0, atol=0)
    batches.clear()
    part = tiny_pipe.change([img] * 2, [m] * 2, [_after(m)] * 2, guidance_interval=(0.25, 0.75), **kw)
    assert batches == [2, 4, 4, 2] and part.sampler["guidance_interval"] == [0.25, 0.75]
    batches.clear()
    tiny_pipe.synthesize([m] * 2, guidance_interval=(0, 0.5), **{**kw, "guidance_scale": 1.0})
    assert batches == [2] * 4  # guidance 1 is unguided everywhere
    for bad in ((0.5, 0.5), (-0.1, 1), (0, 2), "x"):
        with pytest.raises(ChangeAnywhereError, match="`guidance_interval`"):
            tiny_pipe.change(img, m, m, num_inference_steps=2, guidance_interval=bad)


def test_save_load_round_trip_and_class_set(tmp_path, tiny_pipe, before_pair, dubai):
    _, m = before_pair
    tiny_pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["semantic_encoder"] == ["changeanywhere.generator.semantic_encoder", "SemanticEncoder"]
    assert not list((tmp_path / "pipe").rglob("*.bin")), "weights must be safetensors"
    loaded = ChangeAnywherePipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.class_set == dubai
    a = tiny_pipe.synthesize(m, num_inference_steps=STEPS, seed=2, output_type="np").images
    b = loaded.synthesize(m, num_inference_steps=STEPS, seed=2, output_type="np").images
    np.testing.assert_array_equal(a, b)


def test_vq_autoencoder_variant(dubai, before_pair):
    torch.manual_seed(0)
    pipe = build_pipeline(dubai, preset="tiny", autoencoder="vq")
    pipe.set_progress_bar_config(disable=True)
    img, m = before_pair
    out = pipe.change(img, m, _after(m), num_inference_steps=2, seed=0, output_type="np")
    assert out.images.shape == (1, 32, 32, 3)


def test_input_errors(tiny_pipe, before_pair, dubai):
    img, m = before_pair
    after = _after(m)
    with pytest.raises(MapSizeError, match="differ in size"):
        tiny_pipe.change(img, m, after[:16], num_inference_steps=2)
    with pytest.raises(MapSizeError, match="does not match"):
        tiny_pipe.change(img[:16], m, after, num_inference_steps=2)
    with pytest.raises(MapSizeError, match="multiple of 8"):
        tiny_pipe.synthesize(m[:30, :30], num_inference_steps=2)
    with pytest.raises(ChangeAnywhereError, match="RGB"):
        tiny_pipe.change(img[..., :2], m, after, num_inference_steps=2)
    with pytest.raises(ChangeAnywhereError, match="outside the 5 classes"):
        tiny_pipe.synthesize(np.full((32, 32), 7, np.uint8), num_inference_steps=2)
    colour = dubai.indices_to_colors(m)
    colour[0, 0] = (1, 2, 3)
    with pytest.raises(UnknownColorsError, match="#010203"):
        tiny_pipe.synthesize(colour, num_inference_steps=2)
    with pytest.raises(ChangeAnywhereError, match="content_scale"):
        tiny_pipe.change(img, m, after, content_scale=(0.9, 0.2), num_inference_steps=2)
    with pytest.raises(ChangeAnywhereError, match="after_map"):
        tiny_pipe.change(img, m, None, num_inference_steps=2)


def test_settings_and_keywords_are_the_same_call(tiny_pipe, before_pair):
    """`settings=` (`SamplerSettings`) and the keyword arguments are one call; `resolve` fills the model's
    defaults once and its record is the output's."""
    from changeanywhere.generator.settings import SamplerSettings

    img, m = before_pair
    s = SamplerSettings(num_inference_steps=2, guidance_interval=(0.25, 0.75))
    by_settings = tiny_pipe.synthesize(m, settings=s, seed=3, output_type="np")
    by_keywords = tiny_pipe.synthesize(m, num_inference_steps=2, guidance_interval=(0.25, 0.75), seed=3,
                                       output_type="np")
    assert np.array_equal(by_settings.images, by_keywords.images)
    resolved, record = tiny_pipe.resolve(s)
    assert by_settings.sampler == record and resolved.guidance_scale == tiny_pipe.config.default_guidance_scale
    assert record["num_inference_steps"] == 2 and record["guidance_interval"] == [0.25, 0.75]
    assert tiny_pipe.resolve(s, num_inference_steps=3)[0].num_inference_steps == 3  # keywords replace fields


def test_default_change_keeps_before_latent_to_the_end(tiny_pipe, before_pair):
    """Default settings: every anchored latent cell ends exactly on the before latent. The paper's sampler
    (content scale drawn in 0.7..1, the last steps free) fails this criterion."""
    img, m = before_pair
    after = remove_building(m)
    known, keep = encode_before(tiny_pipe, img)[0], keep_cells(tiny_pipe, m, after)
    assert keep.any() and not keep.all()
    ours = tiny_pipe.change(img, m, after, num_inference_steps=CHANGE_STEPS, seed=1, output_type="latent")
    assert ours.mix_steps == [CHANGE_STEPS]
    np.testing.assert_allclose(ours.images[0][:, keep].numpy(), known[:, keep].numpy(), atol=1e-6)
    paper = tiny_pipe.change(img, m, after, content_scale=(0.7, 0.9), blend="latent", free_band=0,
                             num_inference_steps=CHANGE_STEPS, seed=1, output_type="latent")
    assert paper.mix_steps[0] < CHANGE_STEPS
    err = (paper.images[0][:, keep] - known[:, keep]).abs().mean().item()
    assert err > 0.05, err
    # the free cells (the change and its band) are painted, not copied
    assert (ours.images[0][:, ~keep] - known[:, ~keep]).abs().mean().item() > 0.05


def test_default_change_keeps_before_pixels(tiny_pipe, before_pair):
    """Pixel blend (non-change off): unchanged pixels at least `feather` px from a change are the real before
    image."""
    img, m = before_pair
    after = remove_building(m)
    out = tiny_pipe.change(img, m, after, num_inference_steps=CHANGE_STEPS, seed=2, output_type="np", nonchange=0)
    b = (out.images[0] * 255).round().astype(np.uint8)
    far = distance_from(out.change_masks[0]) >= 6
    assert far.any()
    np.testing.assert_array_equal(b[far], img[far])
    changed = out.change_masks[0]
    assert np.abs(b[changed].astype(int) - img[changed]).mean() > 5  # the change is painted


def test_change_option_errors(tiny_pipe, before_pair):
    img, m = before_pair
    with pytest.raises(ChangeAnywhereError, match="blend"):
        tiny_pipe.change(img, m, remove_building(m), blend="nope", num_inference_steps=1)
    with pytest.raises(ChangeAnywhereError, match="drift"):
        tiny_pipe.change(img, m, remove_building(m), drift="strong", num_inference_steps=1)


def test_pipeline_with_colour_autoencoder(tmp_path, dubai, before_pair):
    torch.manual_seed(0)
    pipe = build_pipeline(dubai, preset="tiny", autoencoder="color")
    pipe.set_progress_bar_config(disable=True)
    n = pipe.vae.latent_channels
    pipe.vae.register_to_config(latents_mean=[0.0] * n, latents_std=[0.3] * n)
    img, m = before_pair
    known = encode_before(pipe, img)
    # per-channel normalisation: the colour channels are the block means scaled by 1/std
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    torch.testing.assert_close(known[:, :3], torch.nn.functional.avg_pool2d(x, 4) / 0.3)
    out = pipe.change(img, m, remove_building(m), num_inference_steps=2, seed=0, output_type="np")
    assert out.images.shape == (1, 32, 32, 3)
    pipe.save_pretrained(tmp_path / "p")
    from changeanywhere import ChangeAnywherePipeline

    again = ChangeAnywherePipeline.from_pretrained(tmp_path / "p")
    assert type(again.vae).__name__ == "ColorAutoencoder"


def test_strength_starts_from_texture_and_keeps_anchor(tiny_pipe, before_pair):
    img, m = before_pair
    after = m.copy()
    after[4:14, 4:14] = 1  # the building becomes water (present in the image)
    known, keep = encode_before(tiny_pipe, img)[0], keep_cells(tiny_pipe, m, after)
    out = tiny_pipe.change(img, m, after, strength=0.5, num_inference_steps=CHANGE_STEPS, seed=1, output_type="latent")
    np.testing.assert_allclose(out.images[0][:, keep].numpy(), known[:, keep].numpy(), atol=1e-6)
    full = tiny_pipe.change(img, m, after, num_inference_steps=CHANGE_STEPS, seed=1, output_type="latent")
    assert (out.images - full.images).abs().max() > 1e-3
    with pytest.raises(ChangeAnywhereError, match="strength"):
        tiny_pipe.change(img, m, after, strength=0.0, num_inference_steps=2)


def test_inpainting_pipeline_defaults_and_context(inpaint_pipe, tiny_pipe, before_pair):
    img, m = before_pair
    after = simulate_changes(m, inpaint_pipe.class_set, seed=3, num_events=2).after
    assert inpaint_pipe.is_inpainting and not tiny_pipe.is_inpainting
    assert inpaint_pipe.resolve()[0].sampler == "inpaint" and tiny_pipe.resolve()[0].sampler == "anchored"
    out = inpaint_pipe.change(img, m, after, seed=0, output_type="np", guidance_scale=1.0)
    assert out.sampler["sampler"] == "inpaint" and out.mix_steps == [0]
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
    assert anchored.sampler["sampler"] == "anchored"

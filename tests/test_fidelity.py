"""The generator evaluator (`changeanywhere.fidelity`): a tiny end-to-end report, and the sampler settings it
passes on."""

import json

import pytest

from changeanywhere.errors import ParameterError
from changeanywhere.fidelity import evaluate_generator, format_report, select_tiles
from changeanywhere.segmenter import LandCoverSegmenter, SegmenterTrainConfig, train_segmenter


def test_evaluate_generator_tiny(tmp_path, fake_dataset, dubai, tiny_pipe):
    from changeanywhere.data import find_pairs, load_pairs

    loaded = load_pairs(find_pairs(fake_dataset), dubai)
    cfg = SegmenterTrainConfig(crop_size=32, batch_size=4, max_steps=3)
    seg, log = train_segmenter(loaded, dubai.num_classes, cfg)
    assert log["steps"] == 3
    tiles = select_tiles(str(fake_dataset), dubai, split=None, size=32, max_tiles=3)
    assert tiles.images.shape == (3, 32, 32, 3) and tiles.maps.shape == (3, 32, 32)
    report = evaluate_generator(tiny_pipe, seg, tiles, dubai, num_inference_steps=2, batch_size=2)
    for key in (
        "real_miou",
        "generated_miou",
        "fidelity_ratio",
        "ae_psnr",
        "ae_ssim",
        "ae_saturation_ratio",
        "ae_channel_mean_error",
        "generated_saturation_ratio",
        "unchanged_ssim",
        "unchanged_mad",
        "unchanged_ssim_drift",
        "unchanged_mad_drift",
        "changed_accuracy",
        "copy_unchanged_ssim",
        "unrelated_unchanged_ssim",
    ):
        assert key in report, key
    assert report["real_miou"] > 0  # the 3-step segmenter already beats chance on its own training tiles
    assert report["fidelity_ratio"] == pytest.approx(report["generated_miou"] / report["real_miou"], abs=1e-3)
    # a random tiny model: its autoencoder copy is poor, yet the default change mode keeps the real before image
    assert report["unchanged_ssim"] > report["copy_unchanged_ssim"] + 0.2, report
    assert report["unchanged_mad"] < report["unchanged_mad_drift"]
    assert len(report["ae_channel_mean_error"]) == 3 and report["ae_saturation_ratio"] > 0
    assert "semantic fidelity: ratio" in format_report(report)
    json.dumps(report)


def test_the_guidance_interval_is_passed_not_written_into_the_model(fake_dataset, dubai, tiny_pipe, monkeypatch):
    seen = []
    synthesize = tiny_pipe.synthesize
    monkeypatch.setattr(tiny_pipe, "synthesize", lambda *a, **kw: seen.append(kw["settings"].guidance_interval) or
                        synthesize(*a, **kw))
    before = list(tiny_pipe.config.default_guidance_interval)
    tiles = select_tiles(str(fake_dataset), dubai, split=None, size=32, max_tiles=2)
    seg = LandCoverSegmenter(num_classes=dubai.num_classes, widths=(4, 8))
    report = evaluate_generator(tiny_pipe, seg, tiles, dubai, num_inference_steps=2, guidance_scale=2.0,
                                guidance_interval=(0.5, 1.0), include_change=False)
    assert report["sampler"]["guidance_interval"] == [0.5, 1.0] and seen == [(0.5, 1.0)]
    assert list(tiny_pipe.config.default_guidance_interval) == before
    with pytest.raises(ParameterError, match="guidance_interval"):
        evaluate_generator(tiny_pipe, seg, tiles, dubai, guidance_interval=(1.0, 0.5))


def test_the_change_renders_get_every_sampler_setting_of_the_pair(fake_dataset, dubai, tiny_pipe, monkeypatch):
    from changeanywhere.pairs import PairSettings

    seen = []
    change = tiny_pipe.change
    monkeypatch.setattr(tiny_pipe, "change", lambda *a, **kw: seen.append(kw["settings"]) or change(*a, **kw))
    tiles = select_tiles(str(fake_dataset), dubai, split=None, size=32, max_tiles=2)
    seg = LandCoverSegmenter(num_classes=dubai.num_classes, widths=(4, 8))
    settings = PairSettings(strength=0.5, free_band=2, feather=3, blend="latent", nonchange=0.0, content="diffusion")
    evaluate_generator(tiny_pipe, seg, tiles, dubai, num_inference_steps=2, batch_size=2, settings=settings)
    assert seen and all((s.strength, s.free_band, s.feather, s.blend) == (0.5, 2, 3, "latent") for s in seen)
    assert all(s.nonchange == 0.0 and s.drift == 0.0 for s in seen)  # the "off" render; non-change is passed apart

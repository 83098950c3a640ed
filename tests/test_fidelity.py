"""The generator evaluator: metric formulas, segmenter I/O, and a tiny end-to-end report."""

import json

import numpy as np
import pytest

from changeanywhere.cli import main
from changeanywhere.errors import ParameterError
from changeanywhere.fidelity import evaluate_generator, format_report, select_tiles
from changeanywhere.image_metrics import psnr, ssim
from changeanywhere.segmenter import (
    LandCoverSegmenter,
    SegmenterTrainConfig,
    confusion_matrix,
    iou_per_class,
    load_segmenter,
    train_segmenter,
)


def test_confusion_and_iou_by_hand():
    truth = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, truth, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    np.testing.assert_allclose(iou_per_class(cm), [1 / 2, 2 / 3, 1.0])
    assert np.isnan(iou_per_class(np.zeros((2, 2), int))).all()


def test_psnr_ssim():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    assert 15 < psnr(a, noisy) < 30
    assert ssim(a, noisy) < 0.99  # busy image: SSIM ≈ 2σ²/(2σ² + σ_noise²) ≈ 0.97
    smooth = np.tile(np.linspace(60, 200, 40, dtype=np.uint8)[None, :, None], (40, 1, 3))
    smooth_noisy = np.clip(smooth.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    assert ssim(smooth, smooth_noisy) < 0.5  # the same noise on a flat image destroys structure
    mask = np.zeros((40, 40), bool)
    mask[:, :20] = True
    half = a.copy()
    half[:, 30:] = 0
    assert ssim(a, half, mask) > ssim(a, half)
    assert np.isnan(ssim(a, a, np.zeros((40, 40), bool)))


def test_segmenter_save_load_strict(tmp_path, dubai):
    model = LandCoverSegmenter(num_classes=5, widths=(4, 8), class_set=dubai.to_dict())
    model.save_pretrained(tmp_path / "seg")
    loaded = load_segmenter(tmp_path / "seg")
    assert loaded.num_classes == 5 and loaded.class_set == dubai.to_dict()


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


def test_eval_generator_cli(tmp_path, fake_dataset, dubai, tiny_pipe, capsys):
    tiny_pipe.save_pretrained(tmp_path / "pipe")
    LandCoverSegmenter(num_classes=5, widths=(4, 8)).save_pretrained(tmp_path / "seg")
    out = tmp_path / "report.json"
    rc = main(
        [
            "eval-generator",
            "--model",
            str(tmp_path / "pipe"),
            "--data",
            str(fake_dataset),
            "--split",
            "train",
            "--val-pattern",
            "none",
            "--segmenter",
            str(tmp_path / "seg"),
            "--max-tiles",
            "2",
            "--tile-size",
            "32",
            "--steps",
            "2",
            "--json",
            str(out),
            "--device",
            "cpu",
            "--no-change",
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    assert {"real_miou", "generated_miou", "fidelity_ratio"} <= set(report)
    assert "generated mIoU" in capsys.readouterr().out
    rc = main(
        [
            "eval-generator",
            "--model",
            str(tmp_path / "missing"),
            "--data",
            str(fake_dataset),
            "--segmenter",
            str(tmp_path / "seg"),
        ]
    )
    assert rc == 2


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
    settings = PairSettings(strength=0.5, free_band=2, feather=3, blend="latent", nonchange=0.0)
    evaluate_generator(tiny_pipe, seg, tiles, dubai, num_inference_steps=2, batch_size=2, settings=settings)
    assert seen and all((s.strength, s.free_band, s.feather, s.blend) == (0.5, 2, 3, "latent") for s in seen)
    assert all(s.nonchange == 0.0 and s.drift == 0.0 for s in seen)  # the "off" render; non-change is passed apart


def test_train_segmenter_cli(tmp_path, fake_dataset, capsys):
    out = tmp_path / "seg"
    assert main(["train-segmenter", "--data", str(fake_dataset), "--classes", "dubai-landcover", "--out", str(out),
                 "--split", "all", "--crop-size", "32", "--batch-size", "2", "--max-steps", "2", "--seed", "1"]) == 0
    info = json.loads((out / "training.json").read_text())
    assert (info["split"], info["crop_size"], info["batch_size"], info["max_steps"], info["seed"], info["steps"]) == \
        ("all", 32, 2, 2, 1, 2)
    assert info["color_jitter"] == SegmenterTrainConfig().color_jitter and info["num_pairs"] > 0
    assert load_segmenter(out).num_classes == 5
    assert "saved segmenter to" in capsys.readouterr().out

"""`training.diffusion`: a checkpoint exports the EMA pipeline, a plain pipeline initialises an inpainting run."""


import pytest
import torch

from changeanywhere import ChangeAnywhereError
from changeanywhere.generator.presets import build_pipeline


def test_pipeline_from_checkpoint_is_the_ema_pipeline(tmp_path, dubai):
    """A checkpoint of a running train-diffusion exports the same EMA weights the run's end would save."""
    from changeanywhere.cli import main
    from changeanywhere.generator.presets import build_autoencoder
    from changeanywhere.training.diffusion import pipeline_from_checkpoint
    from tests.helpers import make_fake_dataset

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


def test_train_inpainting_from_a_plain_pipeline(tmp_path, dubai):
    """A plain pipeline initialises an inpainting run (zero-initialised inputs), which trains and saves."""
    from changeanywhere.training.config import DiffusionTrainConfig
    from changeanywhere.training.diffusion import train_diffusion
    from tests.helpers import make_fake_dataset

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

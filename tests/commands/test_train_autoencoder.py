"""`changeanywhere train-autoencoder` on tiny fake data (CPU): 2-step runs, outputs, checkpoints, the VQ variant."""

import json

import numpy as np
import pytest

from changeanywhere.cli import main
from tests.helpers import no_pickles, training_args

pytestmark = pytest.mark.usefixtures("restore_threads")  # the commands run with --num-threads 1 in-process


def test_train_autoencoder_two_steps(data_dir, tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["train-autoencoder",
                 *training_args(data_dir, out, "--max-steps", "2", "--checkpointing-steps", "1")]) == 0
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "autoencoder")
    metrics = json.loads((out / "autoencoder_metrics.json").read_text())
    assert metrics["step"] == 2 and np.isfinite(metrics["val_psnr"]) and metrics["split"] == "val"
    assert vae.config.scaling_factor == pytest.approx(1 / metrics["latent_std"])
    assert vae.config.shift_factor == pytest.approx(metrics["latent_mean"])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert json.loads((out / "checkpoint-2" / "state.json").read_text())["step"] == 2
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-0000001.png", "step-0000002.png"]
    assert "PSNR" in capsys.readouterr().out
    no_pickles(out)


def test_train_autoencoder_vq_bf16_accumulation(data_dir, tmp_path):
    out = tmp_path / "vq"
    argv = training_args(data_dir, out, "--autoencoder", "vq", "--max-steps", "1", "--mixed-precision", "bf16",
                  "--gradient-accumulation-steps", "2")
    assert main(["train-autoencoder", *argv]) == 0
    from diffusers import VQModel

    assert VQModel.from_pretrained(out / "autoencoder").config.scaling_factor > 0
    state = json.loads((out / "checkpoint-1" / "state.json").read_text())
    assert state["step"] == 1 and state["extra"]["args"]["gradient_accumulation_steps"] == 2

"""`changeanywhere train-diffusion` on tiny fake data (CPU): 2-step runs, outputs, resume, hub push, user errors,
torchrun."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from changeanywhere import ChangeAnywherePipeline, ClassSet
from changeanywhere.cli import main
from changeanywhere.generator.presets import build_autoencoder
from changeanywhere.training.checkpoint import latest_checkpoint
from tests.helpers import ROOT, no_pickles, training_args

pytestmark = pytest.mark.usefixtures("restore_threads")  # the commands run with --num-threads 1 in-process


@pytest.fixture(scope="module")
def autoencoder_dir(tmp_path_factory):
    """An untrained tiny autoencoder with a latent scaling in its config, as train-autoencoder saves it."""
    torch.manual_seed(0)
    vae = build_autoencoder("tiny")
    vae.register_to_config(scaling_factor=2.0, shift_factor=0.1)
    path = tmp_path_factory.mktemp("ae") / "autoencoder"
    vae.save_pretrained(path)
    return path


def diffusion_args(data_dir, ae, out, *extra):
    return ["train-diffusion", *training_args(data_dir, out, "--autoencoder", str(ae), *extra)]


def log_records(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_train_diffusion_two_steps_pipeline_loads_and_pushes(data_dir, autoencoder_dir, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)))

    def upload_folder(self, **kw):
        folder = Path(kw["folder_path"])
        calls.append(("upload_folder", kw["repo_id"], kw, sorted(p.name for p in folder.iterdir())))
        return "https://huggingface.co/me/ca/commit/0"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    out = tmp_path / "dm"
    argv = diffusion_args(data_dir, autoencoder_dir, out, "--max-steps", "2", "--cache-latents", "6",
                          "--push-to-hub", "me/ca", "--hub-private")
    assert main(argv) == 0
    pipe_dir = out / "pipeline"
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"]
    assert calls[0][1] == "me/ca" and calls[0][2]["private"] is True and calls[0][2]["exist_ok"] is True
    assert Path(calls[1][2]["folder_path"]) == pipe_dir and calls[1][1] == "me/ca"
    assert {"model_index.json", "unet", "vae", "semantic_encoder", "scheduler", "README.md"} <= set(calls[1][3])
    pipe = ChangeAnywherePipeline.from_pretrained(pipe_dir)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.class_set == ClassSet.builtin("dubai-landcover")
    assert pipe.vae.config.scaling_factor == 2.0
    m = np.zeros((32, 32), np.uint8)
    m[8:20, 8:20] = 2
    img = pipe.synthesize(m, num_inference_steps=2, guidance_scale=2.0, seed=0, output_type="np").images
    assert img.shape == (1, 32, 32, 3) and np.isfinite(img).all()
    assert (out / "samples" / "step-0000002.png").is_file()
    assert (out / "latent-cache" / "rank0.safetensors").is_file()
    state = json.loads((out / "checkpoint-2" / "state.json").read_text())
    assert state["step"] == 2 and state["ema"]["optimization_step"] == 2 and state["extra"]["num_processes"] == 1
    no_pickles(out)


def test_resume_continues_step_count_and_ignores_partial_checkpoint(data_dir, autoencoder_dir, tmp_path, capsys):
    out = tmp_path / "dm"
    first = diffusion_args(data_dir, autoencoder_dir, out, "--max-steps", "2", "--checkpointing-steps", "1",
                           "--checkpoints-total-limit", "5", "--sample-steps", "100")
    assert main(first) == 0
    w2 = load_file(str(out / "checkpoint-2" / "state.safetensors"))
    # a run killed while writing checkpoint-3 leaves only checkpoint-3.tmp behind
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-3.tmp")
    (out / "checkpoint-3.tmp" / "state.json").write_text('{"step": 3')
    assert latest_checkpoint(out).name == "checkpoint-2"
    capsys.readouterr()
    assert main([*first[:-8], "--max-steps", "4", "--checkpointing-steps", "1", "--checkpoints-total-limit", "2",
                 "--sample-steps", "100"]) == 0
    printed = capsys.readouterr().out
    assert f"resumed from {out / 'checkpoint-2'} at step 2" in printed and "step 3/4" in printed
    records = log_records(out)
    resume = [r for r in records if r.get("event") == "resume"]
    assert resume and resume[0]["step"] == 2
    assert [r["step"] for r in records if "loss" in r and "event" not in r] == [1, 2, 3, 4]
    assert sorted(p.name for p in out.glob("checkpoint-*[0-9]")) == ["checkpoint-3", "checkpoint-4"]
    w4 = load_file(str(out / "checkpoint-4" / "state.safetensors"))
    # AdamW's per-parameter step counter went on from 2 (the optimizer state was loaded, not rebuilt)
    steps = {float(v) for k, v in w4.items() if k.startswith("optim/") and k.endswith("/step")}
    assert steps == {4.0}
    assert {float(v) for k, v in w2.items() if k.startswith("optim/") and k.endswith("/step")} == {2.0}
    assert json.loads((out / "checkpoint-4" / "state.json").read_text())["ema"]["optimization_step"] == 4


def test_user_errors(data_dir, autoencoder_dir, tmp_path, capsys):
    assert main(diffusion_args(data_dir, tmp_path / "nothing", tmp_path / "o")) == 2
    assert "not an autoencoder folder" in capsys.readouterr().err
    assert main(diffusion_args(data_dir, autoencoder_dir, tmp_path / "o", "--crop-size", "36")) == 2
    assert "multiple of 8" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train-autoencoder", *training_args(data_dir, tmp_path / "o", "--mixed-precision", "fp16")]) == 2
        assert "fp16" in capsys.readouterr().err
    assert main(diffusion_args(data_dir, autoencoder_dir, tmp_path / "o", "--resume", str(tmp_path))) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes(data_dir, autoencoder_dir, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this python")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "changeanywhere.cli",
           *diffusion_args(data_dir, autoencoder_dir, out, "--max-steps", "2", "--cache-latents", "4")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "checkpoint-2" / "state.json").read_text())
    assert state["step"] == 2 and state["extra"]["num_processes"] == 2
    # each rank drew its own crops (its own latent cache) and both ranks trained
    c0 = load_file(str(out / "latent-cache" / "rank0.safetensors"))["latents"]
    c1 = load_file(str(out / "latent-cache" / "rank1.safetensors"))["latents"]
    assert c0.shape == c1.shape and not torch.equal(c0, c1)
    assert (out / "pipeline" / "model_index.json").is_file()
    assert "2 process(es)" in proc.stdout + proc.stderr

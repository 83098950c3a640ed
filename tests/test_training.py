"""Training commands on tiny fake data (CPU): 2-step runs, outputs, resume, checkpoints, hub push, torchrun."""

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
from test_data import make_folder

from changeanywhere import ChangeAnywherePipeline, ClassSet
from changeanywhere.cli import main
from changeanywhere.generator.presets import build_autoencoder
from changeanywhere.training.checkpoint import (
    export_compact_state,
    latest_checkpoint,
    load_training_state,
    prune_checkpoints,
    save_training_state,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_threads():
    """The commands run with --num-threads 1 in-process; give the session its thread count back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data"), ["a_001", "a_002", "a_008"])


@pytest.fixture(scope="module")
def autoencoder_dir(tmp_path_factory):
    """An untrained tiny autoencoder with a latent scaling in its config, as train-autoencoder saves it."""
    torch.manual_seed(0)
    vae = build_autoencoder("tiny")
    vae.register_to_config(scaling_factor=2.0, shift_factor=0.1)
    path = tmp_path_factory.mktemp("ae") / "autoencoder"
    vae.save_pretrained(path)
    return path


def common(data_dir, out, *extra):
    return ["--data", str(data_dir), "--classes", "dubai-landcover", "--output-dir", str(out), "--preset", "tiny",
            "--crop-size", "32", "--num-threads", "1", *extra]


def diffusion_args(data_dir, ae, out, *extra):
    return ["train-diffusion", *common(data_dir, out, "--autoencoder", str(ae), *extra)]


def log_records(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def no_pickles(folder):
    bad = [p for p in folder.rglob("*") if p.suffix in (".bin", ".pkl", ".pt", ".pth", ".ckpt")]
    assert not bad, bad


def test_train_autoencoder_two_steps(data_dir, tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["train-autoencoder", *common(data_dir, out, "--max-steps", "2", "--checkpointing-steps", "1")]) == 0
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
    argv = common(data_dir, out, "--autoencoder", "vq", "--max-steps", "1", "--mixed-precision", "bf16",
                  "--gradient-accumulation-steps", "2")
    assert main(["train-autoencoder", *argv]) == 0
    from diffusers import VQModel

    assert VQModel.from_pretrained(out / "autoencoder").config.scaling_factor > 0
    state = json.loads((out / "checkpoint-1" / "state.json").read_text())
    assert state["step"] == 1 and state["extra"]["args"]["gradient_accumulation_steps"] == 2


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


def test_checkpoint_round_trip_and_pruning(tmp_path):
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ema = EMAModel(model.parameters(), decay=0.9)
    for _ in range(3):
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        ema.step(model.parameters())
    for step in (1, 2, 3):
        save_training_state(tmp_path / f"checkpoint-{step}", step, {"m": model}, opt, ema=ema, extra={"x": step})
    (tmp_path / "checkpoint-9.tmp").mkdir()
    assert prune_checkpoints(tmp_path, 2) == [tmp_path / "checkpoint-1"]
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    ema2 = EMAModel(fresh.parameters(), decay=0.5)
    step, extra = load_training_state(tmp_path / "checkpoint-3", {"m": fresh}, opt2, ema=ema2)
    assert step == 3 and extra == {"x": 3}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt2.param_groups[0]["lr"] == 1e-3
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt2.state_dict()["state"][0][k]))
    assert ema2.decay == 0.9 and ema2.optimization_step == 3
    for a, b in zip(ema.shadow_params, ema2.shadow_params, strict=True):
        assert torch.equal(a, b)

    # the compact copy (committed beside released weights) is about half the size and resumes the same run
    compact = export_compact_state(tmp_path / "checkpoint-3", tmp_path / "resume")
    t = load_file(str(compact / "state.safetensors"))
    assert t["model/m/0.weight"].dtype == torch.float16 and t["optim/0/exp_avg_sq"].dtype == torch.bfloat16
    assert t["optim/0/step"].dtype == torch.float32
    opt3 = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    ema3 = EMAModel(fresh.parameters(), decay=0.5)
    assert load_training_state(compact, {"m": fresh}, opt3, ema=ema3)[0] == 3
    v = opt3.state_dict()["state"][0]["exp_avg_sq"]
    assert v.dtype == torch.float32 and torch.allclose(v, opt.state_dict()["state"][0]["exp_avg_sq"], rtol=1e-2)
    assert all(p.dtype == torch.float32 for p in ema3.shadow_params)
    assert torch.allclose(fresh[0].weight, model[0].weight, atol=1e-3)


def test_user_errors(data_dir, autoencoder_dir, tmp_path, capsys):
    assert main(diffusion_args(data_dir, tmp_path / "nothing", tmp_path / "o")) == 2
    assert "not an autoencoder folder" in capsys.readouterr().err
    assert main(diffusion_args(data_dir, autoencoder_dir, tmp_path / "o", "--crop-size", "36")) == 2
    assert "multiple of 8" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train-autoencoder", *common(data_dir, tmp_path / "o", "--mixed-precision", "fp16")]) == 2
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

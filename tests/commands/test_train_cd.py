"""`changeanywhere train-cd` on tiny folders: resume (and `eval-cd` of the result), the architectures, fine-tuning with
frozen BatchNorm, the augmentation and change-class flags."""

import json

import pytest
import torch
from safetensors.torch import load_file

from changeanywhere.cd import CDModel, load_cd_model
from changeanywhere.cli import main
from tests.helpers import generate_change_classes, make_cd_folder

TINY = ["--arch", "tiny", "--widths", "8", "16", "16", "16"]


def test_train_cd_resume_and_eval_cd(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=4)
    out = tmp_path / "run"
    common = ["train-cd", "--data", str(data), "--val", str(data), "--output-dir", str(out), *TINY,
              "--crop-size", "32", "--batch-size", "2", "--val-steps", "1", "--checkpointing-steps", "1",
              "--log-steps", "1", "--warmup-steps", "0", "--tile-size", "32", "--overlap", "8"]
    assert main([*common, "--max-steps", "2"]) == 0
    assert (out / "checkpoint-2" / "state.safetensors").is_file()
    assert (out / "final" / "model.safetensors").is_file() and (out / "best" / "val_metrics.json").is_file()
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["arch"] == "tiny" and cfg["train_info"]["step"] == 2
    assert main([*common, "--max-steps", "3"]) == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "resume"] == [2]
    assert (out / "checkpoint-3").is_dir()
    assert json.loads((out / "final" / "training.json").read_text())["step"] == 3

    js = tmp_path / "m.json"
    preds = tmp_path / "preds"
    argv = ["eval-cd", "--model", str(out / "final"), "--data", str(data), "--json", str(js), "--no-progress",
            "--tile-size", "32", "--overlap", "8", "--save-predictions", str(preds)]
    assert main(argv) == 0
    result = json.loads(js.read_text())
    for key in ("precision", "recall", "f1", "iou", "oa", "kappa", "tp", "fp", "fn", "tn"):
        assert key in result
    assert result["tp"] + result["fp"] + result["fn"] + result["tn"] == 4 * 64 * 64
    assert (preds / "data" / "p0_pred.png").is_file() and (preds / "data" / "p0_errors.png").is_file()
    # several folders + CVA: per dataset and pooled
    assert main(["eval-cd", "--method", "cva", "--data", str(data), str(data), "--json", str(js), "--no-progress"]) == 0
    result = json.loads(js.read_text())
    assert set(result["datasets"]) == {"data", "data-2"} and result["pooled"]["pairs"] == 8
    assert result["f1"] == pytest.approx(result["datasets"]["data"]["f1"])


def test_train_cd_changerex_one_step(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=2)
    out = tmp_path / "run"
    argv = ["train-cd", "--data", str(data), "--output-dir", str(out), "--arch", "changerex-r18", "--widths", "8",
            "16", "16", "32", "--head-channels", "16", "--crop-size", "64", "--batch-size", "2", "--max-steps", "1",
            "--log-steps", "1"]
    assert main(argv) == 0
    model = load_cd_model(out / "final")
    assert model.arch == "changerex-r18" and model.net.exchange == [None, "spatial", "channel", "channel"]


def test_fine_tune_with_frozen_batchnorm_keeps_its_statistics(tmp_path):
    """The few-shot recipe (`--freeze-bn --loss ohem-dice`) on tiny data: the weights move, the BatchNorm
    statistics stay as loaded, and the run records its recipe."""
    data = make_cd_folder(tmp_path / "data", n=2)
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    common = ["train-cd", "--data", str(data), *TINY, "--crop-size", "32", "--batch-size", "2", "--log-steps", "1",
              "--warmup-steps", "1"]
    assert main([*common, "--output-dir", str(base), "--max-steps", "2"]) == 0
    assert main([*common, "--output-dir", str(tuned), "--max-steps", "3", "--init", str(base / "final"),
                 "--freeze-bn", "--loss", "ohem-dice", "--lr", "0.01"]) == 0
    before, after = load_file(base / "final" / "model.safetensors"), load_file(tuned / "final" / "model.safetensors")
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in before if k.endswith("weight") and before[k].ndim == 4]
    assert stats and weights
    assert all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], after[k]) for k in weights)
    info = json.loads((tuned / "final" / "config.json").read_text())["train_info"]
    assert info["loss"] == "ohem-dice" and info["freeze_bn"] is True
    with pytest.raises(SystemExit):
        main([*common, "--output-dir", str(tmp_path / "bad"), "--max-steps", "1", "--loss", "focal"])


def test_train_cd_takes_the_new_strengths(tmp_path, capsys):
    data = make_cd_folder(tmp_path / "data", n=2)
    common = ["train-cd", "--data", str(data), "--output-dir", str(tmp_path / "run"), "--arch", "tiny", "--widths",
              "8", "8", "8", "8", "--crop-size", "32", "--batch-size", "2", "--max-steps", "1", "--log-steps", "1"]
    assert main([*common, "--shadow", "0.5", "--tone", "0.3", "--haze", "0.4"]) == 0
    assert main([*common, "--shadow", "1.5"]) == 2
    assert "--shadow" in capsys.readouterr().err


def test_train_cd_effnet_freezes_then_unfreezes(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=2)
    out = tmp_path / "run"
    argv = ["train-cd", "--data", str(data), "--output-dir", str(out), "--arch", "effnet-lite0", "--no-pretrained",
            "--head-channels", "8", "--crop-size", "32", "--batch-size", "2", "--max-steps", "2", "--log-steps", "1",
            "--checkpointing-steps", "1", "--warmup-steps", "0", "--freeze-encoder-steps", "1", "--seed", "5"]
    assert main(argv) == 0
    torch.manual_seed(5)  # train-cd's fresh model: seeded by --seed
    initial = CDModel(arch="effnet-lite0", head_channels=8).state_dict()
    after = [load_file(out / f"checkpoint-{s}" / "state.safetensors") for s in (1, 2)]
    stem, head = "net.encoder._conv_stem.weight", "net.head.2.weight"
    assert torch.equal(after[0][f"model/model/{stem}"], initial[stem])  # step 1: frozen
    assert not torch.equal(after[1][f"model/model/{stem}"], initial[stem])  # step 2: trained
    assert not torch.equal(after[0][f"model/model/{head}"], initial[head])  # the decoder trains from step 1
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "unfreeze"] == [1]
    info = json.loads((out / "final" / "config.json").read_text())["train_info"]
    assert info["arch"] == "effnet-lite0" and info["pretrained"] is False
    assert load_cd_model(out / "final").arch == "effnet-lite0"


def test_train_cd_pretrained_flag_checked(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=1)
    argv = ["train-cd", "--data", str(data), "--output-dir", str(tmp_path / "run"), "--arch", "tiny",
            "--pretrained", "--max-steps", "1"]
    assert main(argv) == 2


@pytest.mark.usefixtures("one_thread")  # one torch thread, as tests/test_change_classes.py runs
def test_train_cd_change_classes_needs_generated_maps(change_classes_setup, tmp_path, capsys):

    data = make_cd_folder(tmp_path / "plain", n=1)
    argv = ["train-cd", "--data", str(data), "--output-dir", str(tmp_path / "run"), "--arch", "tiny",
            "--change-classes", "building", "--max-steps", "1", "--crop-size", "32", "--batch-size", "1"]
    assert main(argv) == 2
    assert "--change-classes" in capsys.readouterr().err
    out = change_classes_setup[0] / "every-train"
    assert generate_change_classes(change_classes_setup, out) == 0
    argv[2] = str(out)
    assert main(argv) == 0
    info = json.loads((tmp_path / "run" / "final" / "config.json").read_text())["train_info"]
    assert info["change_classes"] == ["building"]

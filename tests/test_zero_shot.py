"""The zero-shot experiment (`experiments/zero_shot.py`, v3) end to end on tiny models."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from changeanywhere.cd.data import find_cd_pairs, read_label
from changeanywhere.maps import read_map, write_map
from tests.helpers import make_tiny_pipe

ROOT = Path(__file__).resolve().parents[1]


def load_experiment():
    spec = importlib.util.spec_from_file_location("zero_shot", ROOT / "experiments" / "zero_shot.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["zero_shot"] = module
    spec.loader.exec_module(module)
    return module


def fake_dubai(root: Path, class_set) -> Path:
    """Dubai-like `images/` + `labels/` (64² tiles; `*_008` are val by the Dubai convention)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name in ("tile1_001", "tile1_002", "tile2_001", "tile1_008", "tile2_008"):
        m = rng.integers(0, class_set.num_classes, (8, 8)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
        img = class_set.palette[m].astype(np.int16) + rng.integers(-20, 21, (64, 64, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"{name}.png")
        write_map(root / "labels" / f"{name}.png", m, class_set)
    return root


@pytest.mark.slow
def test_experiment_trains_without_the_real_sets_then_evaluates(tmp_path, dubai, shared_data):
    """v3 end to end on a tiny generator and a tiny CD model: the arms (building / any change, naive, random
    weights), seeds, checkpoint selection on synthetic val (building-labelled for building arms), all without the
    real sets; then eval with the three floors, the few-shot stage and the report with its gates."""
    zero_shot = load_experiment()
    pipe_dir = tmp_path / "pipe"
    make_tiny_pipe(dubai).save_pretrained(pipe_dir)
    data = fake_dubai(tmp_path / "dubai", dubai)
    work, results = tmp_path / "work", tmp_path / "results"
    common = ["--num", "6", "--val-num", "3", "--size", "32", "--gen-steps", "2", "--steps", "2", "--variant",
              "tiny", "--batch-size", "2", "--crop-size", "32", "--val-steps", "1", "--seeds", "0", "1",
              "--arms", "ours-building", "ours-any", "naive-building", "naive-any", "star-building", "--seed-arms",
              "ours-building",
              "--shots", "1", "2", "--fewshot-steps", "1", "--fewshot-seeds", "0",
              "--sets", "levir-test10", "dsifn-test10", "--generator", str(pipe_dir), "--device", "cpu",
              "--dubai", str(data), "--work", str(work), "--results", str(results)]
    missing = tmp_path / "no-real-sets-here"
    assert zero_shot.main([*common, "--real", str(missing), "--stages", "generate", "derive", "train"]) == 0
    for name in ("ours-building-s0", "ours-building-s1", "ours-any-s0", "naive-building-s0", "naive-any-s0",
                 "star-building-s0"):
        assert (work / f"cd-{name}" / "best" / "val_metrics.json").is_file(), name  # chosen on synthetic val
    assert not (work / "cd-naive-building-s1").exists()  # not a --seed-arms arm
    info = json.loads((work / "cd-ours-building-s0" / "final" / "config.json").read_text())["train_info"]
    assert info["change_classes"] == ["building"]
    # the building val labels count only changes to or from building
    from changeanywhere.cd.data import map_label_classes
    from changeanywhere.change_classes import counted_target

    class_set, ids = map_label_classes(work / "gen-val", ["building"])
    for item in find_cd_pairs(work / "gen-val-building"):
        maps = [read_map(work / "gen-val" / d / item.label.name, class_set) for d in ("label_A", "label_B")]
        assert np.array_equal(read_label(item.label) == 1, counted_target(*maps, ids) == 1)
    with pytest.raises(SystemExit, match="real CD set"):
        zero_shot.main([*common, "--real", str(missing), "--stages", "eval"])
    assert zero_shot.main([*common, "--real", str(shared_data / "cd-real"), "--stages", "eval", "fewshot",
                           "report"]) == 0
    report = json.loads((results / "zero_shot.json").read_text())
    assert set(report["zero_shot"]["floors"]) == {"all-change", "CVA + Otsu", "deep CVA + Otsu"}
    assert set(report["gates"]) == {"ours-building", "ours-any"}
    assert report["gates"]["ours-building"]["set"] == "levir-test10"
    assert {"gate_f1_0.40", "gate_2x_best_floor", "gate_star_mean_plus_0.10", "gate_at_least_naive_mean"} <= set(
        report["gates"]["ours-building"])
    assert {"gate_best_floor_plus_0.10", "gate_at_least_0.446"} <= set(report["gates"]["ours-any"])
    assert set(report["few_shot"]["table"]) == {"0", "1", "2"}
    assert set(report["few_shot"]["checks"]) == {"k1_synthetic_beats_imagenet", "k2_synthetic_beats_imagenet",
                                                 "synthetic_rises_with_k", "imagenet_rises_with_k",
                                                 "k2_beats_zero_shot"}
    # few-shot tiles come only from test_1-test_3 and have change; the test tiles only from test_4-test_10
    for folder in (work / "fewshot").glob("k*-s*"):
        assert all(int(f.name.split("_")[1]) in (1, 2, 3) for f in (folder / "A").iterdir())
    assert all(int(f.name.split("_")[1]) >= 4 for f in (work / "fewshot" / "test" / "A").iterdir())
    assert (results / "zero_shot_levir.jpg").is_file()
    has_plot = importlib.util.find_spec("matplotlib") is not None  # the [bench] extra; the report notes its absence
    assert (results / "few_shot.png").is_file() == has_plot
    assert ("![few-shot F1](few_shot.png)" in (results / "zero_shot.md").read_text()) == has_plot
    assert "LEVIR-CD → the building model" in (results / "zero_shot.md").read_text()

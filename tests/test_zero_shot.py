"""The zero-shot experiment end to end on tiny models: generation, the drift and naive arms, training with
checkpoint selection on synthetic val, never touching the real sets (they point at a missing folder), then
evaluation (which alone needs them) and the report with its pair-count curve."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_pipe
from PIL import Image

from changeanywhere.cd.data import find_cd_pairs, read_image
from changeanywhere.derived.drifted import build_drifted_set
from changeanywhere.maps import write_map

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


def test_drifted_set_changes_b_only(tmp_path):
    src = tmp_path / "gen"
    rng = np.random.default_rng(0)
    for d in ("A", "B", "label"):
        (src / d).mkdir(parents=True)
    for i in range(3):
        img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(img).save(src / "A" / f"p{i}.png")
        Image.fromarray(img).save(src / "B" / f"p{i}.png")
        Image.fromarray(((rng.random((16, 16)) > 0.5) * 255).astype(np.uint8)).save(src / "label" / f"p{i}.png")
    assert build_drifted_set(src, tmp_path / "d1", seed=0, progress=False) == 3
    build_drifted_set(src, tmp_path / "d2", seed=0, progress=False)
    for item in find_cd_pairs(tmp_path / "d1"):
        a, b = read_image(item.a), read_image(item.b)
        assert np.array_equal(a, read_image(src / "A" / item.a.name))
        assert np.array_equal(read_image(item.label), read_image(src / "label" / item.label.name))
        assert not np.array_equal(a, b)  # B drifted
        assert np.array_equal(b, read_image(tmp_path / "d2" / "B" / item.b.name))  # seeded
    records = [json.loads(line) for line in (tmp_path / "d1" / "drift.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["drift_source"] != r["stem"] and r["drift"]["gain"] for r in records)


def _fake_generated(root: Path, class_set, n: int) -> Path:
    """A `generate`-like folder of n pairs (A, B, label, label_A, label_B) of 16² tiles."""
    rng = np.random.default_rng(1)
    for d in ("A", "B", "label", "label_A", "label_B"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        m = rng.integers(0, class_set.num_classes, (4, 4)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
        m2 = m.copy()
        m2[:8, :8] = (m[0, 0] + 1) % class_set.num_classes
        img = np.clip(class_set.palette[m] + rng.integers(-30, 31, (16, 16, 3)), 0, 255).astype(np.uint8)
        for d in ("A", "B"):
            Image.fromarray(img).save(root / d / f"p{i:02d}.png")
        Image.fromarray(((m != m2) * 255).astype(np.uint8)).save(root / "label" / f"p{i:02d}.png")
        write_map(root / "label_A" / f"p{i:02d}.png", m, class_set)
        write_map(root / "label_B" / f"p{i:02d}.png", m2, class_set)
    return root


def test_derived_sets_are_stable_under_more_pairs(tmp_path, dubai, monkeypatch):
    """The first N drifted / naive pairs are the same when built from N pairs as from more: the pair-count
    curve's subsets may be trained on while generation goes on."""
    import changeanywhere.cd.data as cd_data
    import changeanywhere.derived.naive as naive
    from changeanywhere.derived.naive import build_naive_set

    monkeypatch.setattr(cd_data, "DONOR_POOL", 3)
    monkeypatch.setattr(naive, "DONOR_POOL", 3)
    small = _fake_generated(tmp_path / "small", dubai, 5)
    large = _fake_generated(tmp_path / "large", dubai, 9)  # the same first 5 pairs (same rng), then 4 more
    for build in (lambda g, o: build_drifted_set(g, o, seed=0, progress=False),
                  lambda g, o: build_naive_set(g, o, dubai, seed=0, progress=False)):
        build(small, tmp_path / "out-small")
        build(large, tmp_path / "out-large")
        for i in range(5):
            a = read_image(tmp_path / "out-small" / "B" / f"p{i:02d}.png")
            assert np.array_equal(a, read_image(tmp_path / "out-large" / "B" / f"p{i:02d}.png")), i
        b0 = read_image(tmp_path / "out-large" / "B" / "p00.png")
        assert not np.array_equal(b0, read_image(large / "B" / "p00.png"))  # B was rebuilt, not copied


@pytest.mark.slow
def test_experiment_trains_without_the_real_sets_then_evaluates(tmp_path, dubai, shared_data):
    zero_shot = load_experiment()
    pipe_dir = tmp_path / "pipe"
    make_tiny_pipe(dubai).save_pretrained(pipe_dir)
    data = fake_dubai(tmp_path / "dubai", dubai)
    work, results = tmp_path / "work", tmp_path / "results"
    common = ["--num", "6", "--val-num", "3", "--size", "32", "--gen-steps", "2", "--steps", "2", "--variant",
              "tiny", "--batch-size", "2", "--crop-size", "32", "--val-steps", "1", "--arms", "naive", "ours-drift",
              "paper-drift", "--curve", "3", "--curve-arms", "ours-drift", "--generator", str(pipe_dir), "--device",
              "cpu",
              "--dubai", str(data), "--work", str(work), "--results", str(results)]
    missing = tmp_path / "no-real-sets-here"
    # generation, the arms, training and checkpoint selection: the real sets are never needed
    assert zero_shot.main([*common, "--real", str(missing), "--stages", "generate", "derive", "train"]) == 0
    for name in ("cd-naive", "cd-ours-drift", "cd-ours-drift-3", "cd-paper-drift"):
        assert (work / name / "best" / "val_metrics.json").is_file(), name  # chosen on synthetic val
    assert len(list((work / "subsets" / "ours-drift-3" / "B").iterdir())) == 3
    assert len(list((work / "drift-val" / "B").iterdir())) == 3
    assert len(list((work / "paper-drift-val" / "B").iterdir())) == 3
    paper = json.loads((work / "paper-train" / "generation.json").read_text())["sampler"]
    assert paper["content_scale"] == [0.7, 1.0] and paper["blend"] == "latent"  # the paper's mixing
    # evaluation alone reads them, and says so when they are missing
    with pytest.raises(SystemExit, match="real CD set levir not found"):
        zero_shot.main([*common, "--real", str(missing), "--stages", "eval"])
    assert zero_shot.main([*common, "--real", str(shared_data / "cd-real"), "--stages", "eval", "report"]) == 0
    report = json.loads((results / "zero_shot.json").read_text())
    assert set(report["rows"]) == {"all-change floor", "CVA + Otsu", "tiny on naive pairs (copy-paste, no diffusion)",
                                   "tiny on ChangeAnywhere pairs, drift on",
                                   "tiny on ChangeAnywhere pairs, the paper's mixing, drift on"}
    assert set(report["curve"]["ours-drift"]) == {"3", "6"}
    assert {"levir_gate_0.05", "dsifn_at_least_naive"} <= set(report["checks"])
    assert "F1 vs number of training pairs" in (results / "zero_shot.md").read_text()

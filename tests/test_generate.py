"""`changeanywhere generate` on a tiny model and tiny data: layout, statistics, determinism, resume, 2 processes."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import saved_model_and_data
from PIL import Image

from changeanywhere.bank import ObjectBank
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.dataset import IMAGE_DIRS, make_plan
from changeanywhere.dataset.sources import SourceCache, find_sources, source_windows
from changeanywhere.events import change_type_legend
from changeanywhere.maps import read_map
from changeanywhere.pairs import PairSettings, build_pairs, simulate_events
from changeanywhere.seeds import derive_seed, sample_seed

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ClassSet.builtin("dubai-landcover")
NUM = 24  # 6 batches of 4
SMALL = ["--size", "32", "--num-inference-steps", "5", "--batch-size", "4", "--min-area", "16", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_pipe):
    return saved_model_and_data(tmp_path_factory, tiny_pipe, "generate", DUBAI)


def args_for(setup, out: Path, num: int = NUM, *extra: str, num_flag: str = "--num") -> list[str]:
    root, data = setup
    return [
        "generate", "--images", str(data / "images"), "--labels", str(data / "labels"),
        "--classes", "dubai-landcover", "--model", str(root / "model"), "--out", str(out),
        num_flag, str(num), *SMALL, "--splits", "0.8:0.1:0.1", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(setup) -> Path:
    """An uninterrupted single-process run."""
    out = setup[0] / "reference"
    assert main(args_for(setup, out)) == 0
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_tree(a: Path, b: Path) -> None:
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb)
    differ = [k for k in fa if fa[k] != fb[k]]
    assert not differ, f"files differ: {differ[:10]}"


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


# --------------------------------------------------------------------------------------------------- layout


def test_layout_manifest_and_card_match_the_files(reference):
    k = DUBAI.num_classes
    ids = [f"{i:06d}" for i in range(NUM)]
    for d in (*IMAGE_DIRS, "meta"):
        assert sorted(p.stem for p in (reference / d).iterdir()) == ids, d
    assert not [p for p in reference.rglob(".*") if p.is_file()], "temp files left behind"
    lines = (reference / "manifest.jsonl").read_text().splitlines()
    manifest = [json.loads(line) for line in lines]
    assert [m["id"] for m in manifest] == ids

    changed_total = no_change = 0
    transitions: dict[str, int] = {}
    class_a = np.zeros(256, np.int64)
    legend = change_type_legend(DUBAI)
    for m in manifest:
        sid = m["id"]
        a, b = png(reference / "A" / f"{sid}.png"), png(reference / "B" / f"{sid}.png")
        assert a.shape == b.shape == (32, 32, 3) and a.dtype == np.uint8
        label = png(reference / "label" / f"{sid}.png")
        assert Image.open(reference / "label" / f"{sid}.png").mode == "L" and set(np.unique(label)) <= {0, 255}
        before = read_map(reference / "label_A" / f"{sid}.png", DUBAI)
        after = read_map(reference / "label_B" / f"{sid}.png", DUBAI)
        np.testing.assert_array_equal(label == 255, (before != after) & (before != 255))
        codes = png(reference / "change_type" / f"{sid}.png")
        changed = label == 255
        np.testing.assert_array_equal(codes[changed], 1 + before[changed].astype(int) * k + after[changed])
        assert (codes[~changed] == 0).all()
        assert m["changed_pixels"] == changed.sum() and m["pixels"] == 32 * 32
        changed_total += int(changed.sum())
        no_change += int(not changed.any())
        for c, n in zip(*np.unique(codes[changed], return_counts=True), strict=True):
            transitions[legend[int(c)]] = transitions.get(legend[int(c)], 0) + int(n)
        class_a += np.bincount(before.ravel(), minlength=256)
        # everything needed to regenerate it
        assert m["seed"] == sample_seed(0, m["index"])
        assert {"image", "label", "x", "y", "size"} <= set(m["source"])
        assert m["generation"]["sampler"]["steps"] == 5 and m["events"] and "content_scale" in m
        assert m["split"] in ("train", "val", "test")

    card = (reference / "README.md").read_text()

    def row(name: str) -> int:
        return int(re.search(rf"^\| {re.escape(name)} \| ([\d,]+) \|", card, re.M).group(1).replace(",", ""))

    assert row("pairs") == NUM
    assert row("changed pixels") == changed_total
    assert row("pixels") == NUM * 32 * 32
    assert row("pairs without change") == no_change
    for key, n in transitions.items():
        a, b = key.split("->")
        assert re.search(rf"^\| {a} → {b} \| \d+ \| {n:,} \|", card, re.M), key
    assert len(re.findall(r"^\| \w+ → \w+ \| \d+ \|", card, re.M)) == len(transitions)
    for i, name in enumerate(DUBAI.names):
        assert re.search(rf"^\| {name} \| {class_a[i]:,} \|", card, re.M), name
    assert f"{100 * changed_total / (NUM * 1024):.2f} %" in card

    lists = {s: (reference / "list" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(sum(lists.values(), [])) == [f"{i}.png" for i in ids]
    for s, names in lists.items():
        assert row(s) == len(names)
    settings = json.loads((reference / "generation.json").read_text())
    assert settings["num"] == NUM and settings["sampler"]["steps"] == 5 and settings["batch_size"] == 4


def test_build_pairs_matches_a_generated_sample(setup, reference, tiny_pipe):
    """The builder the app uses gives the same pair (same seed, same batch size 1 -> within rounding), with the
    object bank `generate` cut from its own sources."""
    m = json.loads((reference / "meta" / "000003.json").read_text())
    a = png(reference / "A" / "000003.png")
    before = read_map(reference / "label_A" / "000003.png", DUBAI)
    settings = PairSettings(num_inference_steps=5, min_area=16)
    data = setup[1]
    sources = find_sources(data / "images", data / "labels")
    bank = ObjectBank.build(source_windows(sources, SourceCache(sources, DUBAI, 32)), DUBAI,
                            origin=f"images ({len(sources)} images)")
    assert m["content"]["source"] == "bank" and m["content"]["bank"] == bank.origin
    change, event_meta = simulate_events(before, DUBAI, m["seed"], settings, bank, a)
    ref = m["nonchange"]["style"]  # generate pulls the non-change style towards another source image's colours
    assert m["drift_source"]["image"] != m["source"]["image"]
    (pair,) = build_pairs(tiny_pipe, [a], [change], [m["seed"]], DUBAI, settings, meta=[event_meta],
                          drift_references=[{k: ref[k] for k in ("mean", "std", "classes")}], bank=bank)
    assert pair.meta["content"] == m["content"]
    assert pair.meta["nonchange"] == m["nonchange"] and pair.meta["drift"] is None
    assert pair.meta["events"] == m["events"] and pair.meta["events_seed"] == m["events_seed"]
    np.testing.assert_array_equal(pair.after_map, read_map(reference / "label_B" / "000003.png", DUBAI))
    assert pair.content_scale == m["content_scale"]
    b = png(reference / "B" / "000003.png").astype(int)
    assert np.abs(pair.after_image.astype(int) - b).max() <= 2  # a batch of 1 vs 4: float rounding only


def test_generated_folder_is_a_torch_dataset(reference):
    from torch.utils.data import DataLoader

    from changeanywhere.cd import ChangeFolderDataset, Normalize

    data = ChangeFolderDataset(reference, class_set=DUBAI, transforms=Normalize())
    assert len(data) == NUM
    item = data[3]  # torchgeo's sample dict; Normalize: values in [-1, 1]
    assert item["image"].shape == (2, 3, 32, 32) and item["image"].min() >= -1 and item["image"].max() <= 1
    np.testing.assert_array_equal(item["mask"][0].numpy(), png(reference / "label" / "000003.png") // 255)
    np.testing.assert_array_equal(item["maps"][1].numpy(), read_map(reference / "label_B" / "000003.png", DUBAI))
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert batch["image"].shape == (4, 2, 3, 32, 32) and batch["mask"].dtype == torch.int64
    assert batch["stem"] == ["000000", "000001", "000002", "000003"]


# --------------------------------------------------------------------------------------------------- determinism


def test_seeds_and_plan_are_independent_of_ranks_and_batches():
    assert sample_seed(0, 5) == sample_seed(0, 5) != sample_seed(1, 5) != sample_seed(0, 6)
    assert 0 <= derive_seed(2**40, 7) < 2**63
    done = [0, 1, 2, 3, 9, 17]
    for world in (1, 2, 3, 4):
        plan = make_plan(21, 4, done, world)
        made = [i for share in plan.shares for i in plan.to_make(share)]
        assert sorted(made) == sorted(set(range(21)) - set(done))  # no duplicates, no gaps
        assert plan.pending == [1, 2, 3, 4, 5] and sorted(sum(plan.shares, [])) == plan.pending


def test_growing_num_gives_the_same_dataset(setup, reference, tmp_path):
    out = tmp_path / "grown"
    assert main(args_for(setup, out, 10)) == 0
    assert main(args_for(setup, out, NUM)) == 0
    assert_same_tree(out, reference)


def test_kill_and_resume_is_byte_identical(setup, reference, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "changeanywhere.cli", *args_for(setup, out)]
    seen = []
    for at_least in (1, 9):  # kill twice, at different points of the run
        proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            meta = out / "meta"
            n = len(list(meta.glob("*.json"))) if meta.is_dir() else 0
            if n >= at_least:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        seen.append(len(list((out / "meta").glob("*.json"))))
    assert seen[0] < NUM, "the run finished before it could be killed"
    assert not (out / "manifest.jsonl").exists()
    # what a kill between two file writes leaves: a sample without its meta, a stray temp file
    (out / "meta" / "000005.json").unlink(missing_ok=True)
    (out / "B" / ".000005.png.abcd.tmp").write_bytes(b"partial")
    assert main(args_for(setup, out)) == 0
    assert_same_tree(out, reference)


@pytest.mark.slow
def test_two_processes_match_one(setup, reference, tmp_path):
    out = tmp_path / "two"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "changeanywhere.cli", *args_for(setup, out, num_flag="--num-pairs"),
    ]  # fmt: skip
    res = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "on 2 process(es)" in res.stdout
    assert_same_tree(out, reference)


# --------------------------------------------------------------------------------------------------- errors


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_dry_run_prints_the_plan_and_writes_nothing(setup, reference, tmp_path, capsys):
    out = tmp_path / "dry"
    code, text, _ = run_cli(args_for(setup, out, 10, "--dry-run"), capsys)
    assert code == 0 and not out.exists()
    assert "10 (ids 000000..000009)" in text and "3 of 4" in text and "0 finished, 10 to make" in text
    assert "rank 0: 3 batch(es), 10 sample(s)" in text
    code, text, _ = run_cli(args_for(setup, reference, NUM + 4, "--dry-run"), capsys)
    assert code == 0 and f"{NUM} finished, 4 to make in 1 batch(es)" in text
    assert json.loads((reference / "generation.json").read_text())["num"] == NUM


def test_different_settings_are_refused(setup, reference, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    before = files_of(out)
    args = args_for(setup, out)
    args[args.index("--num-inference-steps") + 1] = "6"
    args[args.index("--batch-size") + 1] = "8"
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "different settings" in err and "sampler.steps: 5 in the folder, 6 now" in err
    assert "batch_size" in err
    code, _, err = run_cli(args_for(setup, out, NUM - 1), capsys)
    assert code == 2 and "may grow but not shrink" in err
    assert files_of(out) == before


def test_input_errors(setup, tmp_path, capsys):
    root, data = setup
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "labels").mkdir()
    base = args_for(setup, tmp_path / "out", 4)

    def with_(**kw):
        a = list(base)
        for key, value in kw.items():
            a[a.index(f"--{key}") + 1] = str(value)
        return a

    code, _, err = run_cli(with_(images=empty / "images"), capsys)
    assert code == 2 and "no images in" in err
    code, _, err = run_cli(with_(labels=empty / "labels"), capsys)
    assert code == 2 and "no land-cover maps in" in err
    partial = tmp_path / "partial"
    shutil.copytree(data / "images", partial)
    (partial / "tile_001.png").unlink()
    (partial / "extra.png").write_bytes((data / "images" / "tile_000.png").read_bytes())
    code, _, err = run_cli(with_(images=partial), capsys)
    assert code == 2 and "labels without an image: tile_001.png" in err and "images without a label: extra.png" in err
    code, _, err = run_cli(with_(classes="no-such-set"), capsys)
    assert code == 2 and "no-such-set" in err and "built-in" in err
    code, _, err = run_cli([*with_(classes="loveda"), "--content", "diffusion"], capsys)
    assert code == 2 and "expects 5 classes" in err  # painting needs the model's classes; bank content does not
    code, _, err = run_cli(with_(size=30), capsys)
    assert code == 2 and "multiple of 8" in err
    # a map with a colour outside the class set: named, before anything is written
    odd = tmp_path / "odd"
    shutil.copytree(data / "labels", odd)
    m = np.asarray(Image.open(odd / "tile_002.png")).copy()
    m[0, 0] = (1, 2, 3)
    Image.fromarray(m).save(odd / "tile_002.png")
    code, _, err = run_cli(with_(labels=odd), capsys)
    assert code == 2 and "tile_002.png" in err and "#010203" in err
    assert not (tmp_path / "out").exists()
    # a folder that was not made by generate
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = run_cli(with_(out=tmp_path / "other"), capsys)
    assert code == 2 and "holds no generation.json" in err


def test_grid_tiling_cycles_the_tiles(setup, tmp_path):
    out = tmp_path / "grid"
    assert main([*args_for(setup, out, 8), "--tiling", "grid"]) == 0
    sources = [json.loads(line)["source"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    # 3 sources of 48×64 px: one row of two 32² tiles each (partial edges dropped) -> 6 tiles, then again
    tiles = [(s["image"], s["x"], s["y"]) for s in sources]
    assert tiles[:6] == [(f"tile_{k:03d}.png", x, 0) for k in range(3) for x in (0, 32)]
    assert tiles[6:] == tiles[:2]


def test_card_sampler_line_names_eta_and_guidance_interval_only_where_they_apply():
    """The card says what the sampler did: eta only for schedulers that take one, the guided steps when the
    model guides part of the run (the embedded default: the last 3 of 8)."""
    from changeanywhere.dataset.report import _eta, _interval

    sde = {"sampler": {"steps": 8, "eta": 1.0, "guidance_scale": 2.0},
           "info": {"scheduler_takes_eta": False, "guidance_interval": [0.625, 1.0]}}
    assert _eta(sde) == "" and _interval(sde) == " on steps 6–8 of 8 (guidance interval 0.625–1)"
    ddim = {"sampler": {"steps": 20, "eta": 0.5, "guidance_scale": 2.0},
            "info": {"scheduler_takes_eta": True, "guidance_interval": [0, 1]}}
    assert _eta(ddim) == " eta 0.5," and _interval(ddim) == ""
    assert _interval({"sampler": {"steps": 8, "guidance_scale": 1.0}, "info": sde["info"]}) == ""  # unguided
    assert _interval({"sampler": {"steps": 8, "guidance_scale": 2.0},
                      "info": {"guidance_interval": [0.0, 0.1]}}) == \
        " on no step of 8 (guidance interval 0–0.1)"

"""`changeanywhere generate` on a tiny model and tiny data: layout, statistics, determinism, resume, 2 processes,
a failing output disk, the change that counts."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from changeanywhere.bank import ObjectBank
from changeanywhere.change_classes import counted_target
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.dataset import IMAGE_DIRS
from changeanywhere.dataset.sources import SourceCache, find_sources, source_windows
from changeanywhere.events import change_type_legend
from changeanywhere.maps import read_map
from changeanywhere.pairs import PairSettings, build_pairs, simulate_events
from changeanywhere.seeds import sample_seed
from tests.helpers import ROOT, generate_change_classes, saved_model_and_data

DUBAI = ClassSet.builtin("dubai-landcover")
BUILDING = DUBAI.index_of("building")
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
        assert m["generation"]["sampler"]["num_inference_steps"] == 5 and m["events"] and "content_scale" in m
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
    assert settings["num"] == NUM and settings["sampler"]["num_inference_steps"] == 5 and settings["batch_size"] == 4


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
    assert code == 2 and "different settings" in err and "sampler.num_inference_steps: 5 in the folder, 6 now" in err
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


# ------------------------------------------------------------------------------------------- a failing disk
# When the output disk fails: full (a small tmpfs, or a writer that runs out of bytes) or read-only (a read-only
# tmpfs, or a temp-file call that says so). Each run must stop with a clear error, leave no partial sample, and a
# rerun after the fault is gone must complete to the same bytes as a clean run.
# The tmpfs variants need root and `mount` (as in CI); the patched variants run anywhere.


SAMPLE_FILES = (*IMAGE_DIRS, "meta")


@contextmanager
def tmpfs(path: Path, options: str):
    """`path` as a fresh tmpfs mounted with `options`; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def check_no_partial_sample(out: Path) -> int:
    """Every sample id has all its files or none, and no temp file is left; returns the finished count."""
    assert not [p for p in out.rglob("*.tmp")], "temp files left behind"
    ids: dict[str, set[str]] = {}
    for folder in SAMPLE_FILES:
        for p in (out / folder).glob("*") if (out / folder).is_dir() else ():
            ids.setdefault(p.stem, set()).add(folder)
    partial = {i: sorted(set(SAMPLE_FILES) - have) for i, have in ids.items() if have != set(SAMPLE_FILES)}
    assert not partial, f"partial samples (missing files): {partial}"
    return len(ids)


def run_and_fail(setup_, out: Path, capsys, what: str) -> None:
    code = main(args_for(setup_, out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"cannot write to the output folder {out}" in err and what in err, err
    assert "rerun the same command" in err and "Traceback" not in err


class ShortDisk:
    """A disk with `budget` bytes left: `os.fdopen` files (the atomic writer's) raise ENOSPC past it."""

    def __init__(self, budget: int):
        self.budget = budget
        self.real_fdopen = os.fdopen

    def fdopen(self, fd, *args, **kwargs):
        f = self.real_fdopen(fd, *args, **kwargs)
        disk, write = self, f.write

        def limited(data):
            disk.budget -= len(data)
            if disk.budget < 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write(data)

        f.write = limited
        return f


def test_disk_full_via_patched_writer(setup, reference, tmp_path, capsys, monkeypatch):
    """Feeds a disk that fills up after about a third of the samples (a patched writer); expects the ENOSPC
    error, whole samples only, and a rerun with space again that ends byte-identical to a clean run."""
    out = tmp_path / "full"
    disk = ShortDisk(sum(p.stat().st_size for p in reference.rglob("*") if p.is_file()) // 3)
    monkeypatch.setattr(os, "fdopen", disk.fdopen)
    run_and_fail(setup, out, capsys, "No space left on device")
    monkeypatch.undo()
    made = check_no_partial_sample(out)
    assert 0 < made < NUM and not (out / "manifest.jsonl").exists()
    assert main(args_for(setup, out)) == 0
    assert_same_tree(out, reference)


def test_disk_full_on_a_small_tmpfs(setup, reference, tmp_path, capsys):
    """Feeds a 192 KiB tmpfs as the output disk; expects ENOSPC, whole samples only; after remounting it at
    8 MiB, the rerun completes byte-identical to a clean run."""
    with tmpfs(tmp_path / "disk", "size=192k") as disk:
        out = disk / "out"
        run_and_fail(setup, out, capsys, "No space left on device")
        made = check_no_partial_sample(out)
        assert made < NUM
        remount(disk, "size=8m")
        assert main(args_for(setup, out)) == 0
        assert_same_tree(out, reference)


def test_read_only_output_folder_via_patched_temp_files(setup, reference, tmp_path, capsys, monkeypatch):
    """Feeds an output folder where creating any file fails with EROFS; expects the read-only error before any
    sample, nothing written; a rerun once it is writable completes byte-identical to a clean run."""
    out = tmp_path / "ro"
    out.mkdir()
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # noqa: A002 - mkstemp's own parameter name
        if dir is not None and Path(dir).is_relative_to(out):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    run_and_fail(setup, out, capsys, "Read-only file system")
    monkeypatch.undo()
    assert list(out.iterdir()) == []
    assert main(args_for(setup, out)) == 0
    assert_same_tree(out, reference)


def test_read_only_tmpfs(setup, reference, tmp_path, capsys):
    """Feeds a tmpfs mounted read-only; expects the read-only error (even as root); after remounting it
    read-write, the rerun completes byte-identical to a clean run."""
    with tmpfs(tmp_path / "disk", "ro,size=8m") as disk:
        run_and_fail(setup, disk, capsys, "Read-only file system")
        remount(disk, "rw")
        assert list(disk.iterdir()) == []
        assert main(args_for(setup, disk)) == 0
        assert_same_tree(disk, reference)


# ------------------------------------------------------------------------------------ the change that counts


def test_generate_change_classes_building(change_classes_setup, capsys):
    out = change_classes_setup[0] / "building"
    assert generate_change_classes(change_classes_setup, out, "--change-classes", "building") == 0
    settings = json.loads((out / "generation.json").read_text())
    assert settings["events"]["change_classes"] == ["building"]
    no_interest = 0
    for meta_file in sorted((out / "meta").glob("*.json")):
        meta = json.loads(meta_file.read_text())
        stem = meta_file.stem
        label = np.asarray(Image.open(out / "label" / f"{stem}.png"))
        assert set(np.unique(label)) <= {0, 255}  # on disk 0/255, as every label
        a_map, b_map = (read_map(out / d / f"{stem}.png", DUBAI) for d in ("label_A", "label_B"))
        np.testing.assert_array_equal(label == 255, counted_target(a_map, b_map, (BUILDING,)) == 1)
        assert meta["changed_pixels"] == int((label == 255).sum()) and meta["change_classes"] == ["building"]
        assert all("building" in t.split("->") for t in meta["transitions"])
        assert not any("building" in t.split("->") for t in meta["no_interest"]["transitions"])
        no_interest += meta["no_interest"]["changed_pixels"]
    assert no_interest > 0  # the test data has other changes, labelled no change
    # rerunning without the option is another dataset: refused, not silently mixed
    assert generate_change_classes(change_classes_setup, out) == 2
    assert "change_classes" in capsys.readouterr().err


def test_generate_unknown_change_class_is_refused(change_classes_setup, capsys):
    assert generate_change_classes(change_classes_setup, change_classes_setup[0] / "bad",
                                   "--change-classes", "building,castle") == 2
    err = capsys.readouterr().err
    assert "--change-classes" in err and "castle" in err
    assert not (change_classes_setup[0] / "bad" / "meta").exists()

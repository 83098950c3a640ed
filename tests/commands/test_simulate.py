"""`changeanywhere simulate` end to end: on a tiny map made here, and on a real Dubai label."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.maps import read_map, write_map

DUBAI = ClassSet.builtin("dubai-landcover")
OUTPUTS = ("label_after.png", "change_mask.png", "change_type.png", "events.json")


def tiny_label(path: Path) -> Path:
    idx = np.zeros((64, 64), dtype=np.uint8)  # land
    idx[8:24, 8:28] = 2  # building
    idx[40:56, 30:50] = 3  # vegetation
    idx[:, 60:] = ClassSet.IGNORE
    write_map(path, idx, DUBAI)
    return path


def simulate(label: Path, out: Path, *extra: str) -> int:
    return main(
        ["simulate", "--before-map", str(label), "--classes", "dubai-landcover", "--out", str(out), *extra]
    )


def check_outputs(label: Path, out: Path) -> dict:
    before = read_map(label, DUBAI)
    after = read_map(out / "label_after.png", DUBAI)
    mask = np.asarray(Image.open(out / "change_mask.png"))
    codes = np.asarray(Image.open(out / "change_type.png"))
    assert Image.open(out / "change_mask.png").mode == "L" and set(np.unique(mask)) <= {0, 127, 255}
    np.testing.assert_array_equal(mask == 127, before == ClassSet.IGNORE)  # ignore kept on disk (labels.py)
    np.testing.assert_array_equal(mask == 255, (before != after) & (before != ClassSet.IGNORE))
    np.testing.assert_array_equal(after[before == ClassSet.IGNORE], ClassSet.IGNORE)
    k = DUBAI.num_classes
    changed = mask == 255
    np.testing.assert_array_equal(codes[changed], 1 + before[changed].astype(int) * k + after[changed])
    assert (codes[~changed] == 0).all()
    report = json.loads((out / "events.json").read_text())
    assert report["changed_pixels"] == changed.sum()
    assert report["legend"][str(1 + 2 * k + 0)] == "building->land"
    return report


def test_simulate_tiny_map(tmp_path, capsys):
    label = tiny_label(tmp_path / "label.png")
    assert simulate(label, tmp_path / "out", "--num-events", "2", "--min-area", "32", "--seed", "4") == 0
    report = check_outputs(label, tmp_path / "out")
    assert report["seed"] == 4 and len(report["events"]) == 2
    assert "2 event(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUTS)  # no temp files left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "nope"], "neither a built-in set"),
        (["--num-events", "a:b"], "--num-events"),
        (["--event-types", "remove,explode"], "unknown event types"),
    ],
)
def test_user_errors_leave_no_output(tmp_path, capsys, args, message):
    label = tiny_label(tmp_path / "label.png")
    assert simulate(label, tmp_path / "out", *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_colours_need_snap(tmp_path, capsys):
    rgb = DUBAI.indices_to_colors(np.zeros((32, 32), dtype=np.uint8))
    rgb[:4, :4] = (0x3D, 0x11, 0x99)  # antialiased building
    Image.fromarray(rgb).save(tmp_path / "label.png")
    assert simulate(tmp_path / "label.png", tmp_path / "out") == 2
    assert "--snap-colors" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert simulate(tmp_path / "label.png", tmp_path / "out", "--snap-colors", "--num-events", "0") == 0
    assert (tmp_path / "out" / "events.json").exists()


def test_zero_based_index_map_warns_on_the_command_line(tmp_path, capsys):
    """Feeds a 0-based OpenEarthMap index map to `simulate --classes openearthmap`; expects one warning line that
    names the file and the offset, and a normal run."""
    raw = np.repeat(np.arange(8, dtype=np.uint8), 8)[None].repeat(64, 0)  # 0..7: 0-based, 0 = 12.5 %
    Image.fromarray(raw).save(tmp_path / "oem.png")
    args = ["simulate", "--before-map", str(tmp_path / "oem.png"), "--classes", "openearthmap", "--out",
            str(tmp_path / "out"), "--num-events", "0"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "changeanywhere simulate: warning: " in err and "oem.png: value 0 covers 12.5%" in err, err
    assert err.count("warning:") == 1


def test_missing_label_is_a_user_error(tmp_path, capsys):
    assert simulate(tmp_path / "missing.png", tmp_path / "out") == 2
    assert "missing.png" in capsys.readouterr().err


def test_simulate_real_dubai_label(tmp_path, shared_data):
    labels = shared_data / "dubai-landcover" / "labels"
    label = labels / "tile2_001.png"  # one of the smallest tiles, 509x544
    if not label.is_file():
        pytest.skip(f"../shared/data not found: {label}")
    assert simulate(label, tmp_path / "a", "--seed", "1") == 0
    assert simulate(label, tmp_path / "b", "--seed", "1") == 0
    assert simulate(label, tmp_path / "c", "--seed", "2") == 0
    report = check_outputs(label, tmp_path / "a")
    assert report["events"] and report["changed_pixels"] > 0
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "label_after.png").read_bytes() != (
        tmp_path / "c" / "label_after.png"
    ).read_bytes()

"""Drifted pairs (`derived.drifted`): B drifted only, seeded; derived sets (drifted and naive) stable under
more pairs."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from changeanywhere.cd.data import find_cd_pairs, read_image
from changeanywhere.derived.drifted import build_drifted_set
from changeanywhere.maps import write_map


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

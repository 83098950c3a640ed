"""Naive pairs (`derived.naive`): the after image from class textures, a naive set from a generated folder."""


import numpy as np
from PIL import Image

from changeanywhere.cd import find_cd_pairs
from changeanywhere.classes import ClassSet
from changeanywhere.derived.naive import build_naive_set, naive_after_image
from changeanywhere.maps import write_map

DUBAI = ClassSet.builtin("dubai-landcover")


def test_naive_after_image():
    rng = np.random.default_rng(0)
    before_map = np.zeros((64, 64), np.uint8)  # land
    before_map[:, 40:] = 2  # building strip on the right
    after_map = before_map.copy()
    after_map[10:30, 5:25] = 2  # a new building
    before = np.zeros((64, 64, 3), np.uint8)
    before[before_map == 0] = (120, 100, 80)
    before[before_map == 2] = (200, 200, 210)
    after = naive_after_image(before, before_map, after_map, rng, jitter=0.05)
    assert after.shape == before.shape and after.dtype == np.uint8
    changed = before_map != after_map
    # the new building got building texture; the rest stays close to the before image
    assert np.abs(after[changed].astype(int) - (200, 200, 210)).mean() < 20
    assert np.abs(after[~changed].astype(int) - before[~changed]).mean() < 15


def test_build_naive_set(tmp_path):
    gen = tmp_path / "gen"
    for d in ("A", "B", "label", "label_A", "label_B"):
        (gen / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        m = rng.integers(0, 5, (4, 4)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
        m2 = m.copy()
        m2[:8, :8] = (m[0, 0] + 1) % 5
        img = DUBAI.palette[m].astype(np.uint8)
        Image.fromarray(img).save(gen / "A" / f"t{i}.png")
        Image.fromarray(img).save(gen / "B" / f"t{i}.png")
        Image.fromarray(((m != m2) * 255).astype(np.uint8)).save(gen / "label" / f"t{i}.png")
        write_map(gen / "label_A" / f"t{i}.png", m, DUBAI)
        write_map(gen / "label_B" / f"t{i}.png", m2, DUBAI)
    assert build_naive_set(gen, tmp_path / "naive", DUBAI, progress=False) == 3
    items = find_cd_pairs(tmp_path / "naive")
    assert len(items) == 3
    b = np.asarray(Image.open(items[0].b))
    assert b.shape == (32, 32, 3)

"""STAR pairs (`changeanywhere.derived.star`): unrelated real crops, the label where their maps differ."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from changeanywhere.cd.data import find_cd_pairs, read_image, read_label
from changeanywhere.change_classes import counted_target
from changeanywhere.classes import ClassSet
from changeanywhere.derived.star import build_star_set, star_partner
from changeanywhere.maps import read_map, write_map

DUBAI = ClassSet.builtin("dubai-landcover")
BUILDING = DUBAI.index_of("building")


def fake_generated(root: Path, tiles: list[str]) -> Path:
    """A `generate`-like folder: A/, label_A/, manifest.jsonl (with each pair's source tile), generation.json."""
    rng = np.random.default_rng(0)
    for d in ("A", "label_A"):
        (root / d).mkdir(parents=True)
    records = []
    for i, tile in enumerate(tiles):
        m = rng.integers(0, DUBAI.num_classes, (4, 4)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "A" / f"{i:06d}.png")
        write_map(root / "label_A" / f"{i:06d}.png", m, DUBAI)
        records.append({"id": f"{i:06d}", "index": i, "source": {"image": tile},
                        "files": {"A": f"A/{i:06d}.png", "label_A": f"label_A/{i:06d}.png"}})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[::-1]))  # any order
    (root / "generation.json").write_text(json.dumps({"class_set": DUBAI.to_dict()}))
    return root


def test_star_pairs_come_from_different_tiles_and_label_the_map_difference(tmp_path):
    tiles = ["t1.jpg", "t1.jpg", "t2.jpg", "t1.jpg", "t3.jpg", "t2.jpg"]
    gen = fake_generated(tmp_path / "gen", tiles)
    assert build_star_set(gen, tmp_path / "star", seed=0, progress=False) == len(tiles)
    info = json.loads((tmp_path / "star" / "star.json").read_text())
    partner = {p["id"]: p["partner"] for p in info["partners"]}
    assert all(p["tile_A"] != p["tile_B"] for p in info["partners"])
    for item in find_cd_pairs(tmp_path / "star"):
        j = partner[item.a.stem]
        assert np.array_equal(read_image(item.a), read_image(gen / "A" / item.a.name))
        assert np.array_equal(read_image(item.b), read_image(gen / "A" / f"{j}.png"))  # another tile's image
        ma = read_map(gen / "label_A" / item.a.name, DUBAI)
        mb = read_map(gen / "label_A" / f"{j}.png", DUBAI)
        assert np.array_equal(read_label(item.label) == 1, ma != mb)
        # what `train-cd --change-classes building` derives from the copied maps: the XOR of the building masks
        star_a = read_map(tmp_path / "star" / "label_A" / item.a.name, DUBAI)
        star_b = read_map(tmp_path / "star" / "label_B" / item.a.name, DUBAI)
        assert np.array_equal(counted_target(star_a, star_b, (BUILDING,)) == 1,
                              (ma == BUILDING) ^ (mb == BUILDING))
    build_star_set(gen, tmp_path / "again", seed=0, progress=False)  # seeded
    assert json.loads((tmp_path / "again" / "star.json").read_text())["partners"] == info["partners"]


def test_a_pair_with_no_partner_from_another_tile_is_left_out():
    assert star_partner(0, ["t1", "t1", "t1"], np.random.default_rng(0)) is None
    assert star_partner(2, ["t1", "t2", "t1"], np.random.default_rng(0)) == 1

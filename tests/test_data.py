"""changeanywhere.data: pairing, splits, size checks, random crops, augmentation, ignore padding, tiles."""

import numpy as np
import pytest
import torch
from PIL import Image

from changeanywhere import ChangeAnywhereError, ClassSet, MapSizeError
from changeanywhere.data import (
    LandCoverCrops,
    center_crops,
    collate_tiles,
    dihedral,
    find_pairs,
    load_pairs,
    tiles,
)
from tests.helpers import make_folder


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "d", ["t1_001", "t1_002", "t1_008", "t2_009"])


def test_pairs_match_by_stem_and_split(folder, tmp_path):
    pairs = find_pairs(folder)
    assert [(i.stem, lab.stem) for i, lab in pairs] == [(s, s) for s in ["t1_001", "t1_002", "t1_008", "t2_009"]]
    assert [i.stem for i, _ in find_pairs(folder, "val")] == ["t1_008", "t2_009"]
    assert [i.stem for i, _ in find_pairs(folder, "train")] == ["t1_001", "t1_002"]
    assert [i.stem for i, _ in find_pairs(folder, "val", val_pattern="*_001.*")] == ["t1_001"]
    split = tmp_path / "val.txt"
    split.write_text("# validation\nt1_002.png\n\nt1_001\n")
    assert [i.stem for i, _ in find_pairs(folder, "val", split_file=split)] == ["t1_001", "t1_002"]
    assert [i.stem for i, _ in find_pairs(folder, "train", split_file=split)] == ["t1_008", "t2_009"]
    split.write_text("nope_001\n")
    with pytest.raises(ChangeAnywhereError, match="nope_001"):
        find_pairs(folder, "val", split_file=split)
    with pytest.raises(ChangeAnywhereError, match="split of .* is empty"):
        find_pairs(folder, "val", val_pattern="*_777.*")
    with pytest.raises(ChangeAnywhereError, match="split must be"):
        find_pairs(folder, "test")


def test_unpaired_files_and_missing_folders_are_named(folder, tmp_path):
    (folder / "labels" / "t1_002.png").rename(folder / "labels" / "t1_003.png")
    with pytest.raises(ChangeAnywhereError, match=r"images without a label: t1_002\.png.*labels without an image: "
                                                  r"t1_003\.png"):
        find_pairs(folder)
    (tmp_path / "e" / "images").mkdir(parents=True)
    with pytest.raises(ChangeAnywhereError, match="labels"):
        find_pairs(tmp_path / "e")
    with pytest.raises(ChangeAnywhereError, match="not found"):
        find_pairs(tmp_path / "missing")


def test_load_pairs_colour_and_index_maps_and_size_mismatch(folder, tmp_path):
    cs = ClassSet.builtin("dubai-landcover")
    loaded = load_pairs(find_pairs(folder), cs)
    img, lab = loaded[0]
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and lab.shape == (48, 64) and lab[0, 0] == 255
    assert lab[lab != 255].max() < cs.num_classes
    # index maps (LoveDA: raw 0 = no-data -> 255, 1..7 -> 0..6)
    lv = ClassSet.builtin("loveda")
    root = tmp_path / "lv"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    raw = np.arange(16 * 16).reshape(16, 16) % 8
    Image.fromarray(raw.astype(np.uint8)).save(root / "labels" / "a.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "images" / "a.jpg")
    (_, m), = load_pairs(find_pairs(root), lv)
    np.testing.assert_array_equal(m, np.where(raw == 0, 255, raw - 1))
    # size mismatch names the map
    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(root / "images" / "a.jpg")
    with pytest.raises(MapSizeError, match=r"a\.png is 16×16 px but its image .*a\.jpg is 16×20"):
        load_pairs(find_pairs(root), lv)


def test_random_crops_are_deterministic_augmented_and_in_range(folder):
    loaded = load_pairs(find_pairs(folder), ClassSet.builtin("dubai-landcover"))
    ds = LandCoverCrops(loaded, crop_size=32, length=6, seed=1)
    assert len(ds) == 6
    item = ds[2]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["label"].shape == (32, 32) and item["label"].dtype == torch.long
    assert -1.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    again = LandCoverCrops(loaded, crop_size=32, length=6, seed=1)[2]
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["label"], again["label"])
    other = LandCoverCrops(loaded, crop_size=32, length=6, seed=2)[2]
    assert not torch.equal(item["image"], other["image"])
    ds.set_epoch(1)
    assert not torch.equal(item["image"], ds[2]["image"])
    with pytest.raises(IndexError):
        ds[6]
    # every crop is a dihedral transform of a window of some pair: labels stay aligned with images
    plain = LandCoverCrops(loaded, crop_size=32, length=20, seed=3, augment=False)
    for i in range(5):
        img, lab = plain.crop(i)
        assert any(_find(img, lab, p) for p in loaded)
    augmented = LandCoverCrops(loaded, crop_size=32, length=20, seed=3, augment=True)
    for i in range(5):
        img, lab = augmented.crop(i)
        assert any(_find(dihedral_inverse(img, k), dihedral_inverse(lab, k), p) for p in loaded for k in range(8))


def dihedral_inverse(a, k):
    a = a[:, ::-1] if k >= 4 else a
    return np.rot90(a, -(k % 4), axes=(0, 1))


def _find(img, lab, pair):
    full_img, full_lab = pair
    s = lab.shape[0]
    for y in range(full_lab.shape[0] - s + 1):
        for x in range(full_lab.shape[1] - s + 1):
            window = (slice(y, y + s), slice(x, x + s))
            if np.array_equal(full_img[window], img) and np.array_equal(full_lab[window], lab):
                return True
    return False


def test_dihedral_gives_eight_distinct_transforms():
    a = np.arange(9).reshape(3, 3)
    assert len({dihedral(a, k).tobytes() for k in range(8)}) == 8


def test_small_images_are_padded_with_ignore(folder):
    loaded = load_pairs(find_pairs(folder), ClassSet.builtin("dubai-landcover"))
    ds = LandCoverCrops(loaded, crop_size=80, length=3, augment=False)
    img, lab = ds.crop(0)
    assert img.shape == (80, 80, 3) and lab.shape == (80, 80)
    assert (lab[48:] == 255).all() and (lab[:, 64:] == 255).all()
    assert any(np.array_equal(lab[:48, :64], p_lab) for _, p_lab in loaded)
    np.testing.assert_array_equal(img[48:50], img[46:44:-1])  # reflected rows
    huge = LandCoverCrops([(np.zeros((3, 2, 3), np.uint8), np.zeros((3, 2), np.uint8))], crop_size=16)
    item = huge[0]
    assert item["image"].shape == (3, 16, 16) and int((item["label"] != 255).sum()) == 6


def test_tiles_and_center_crops(folder):
    loaded = load_pairs(find_pairs(folder), ClassSet.builtin("dubai-landcover"))
    t = tiles(loaded, 16)
    assert len(t) == 4 * 3 * 4
    np.testing.assert_array_equal(t[1][0], loaded[0][0][0:16, 16:32])
    np.testing.assert_array_equal(t[1][1], loaded[0][1][0:16, 16:32])
    assert len(tiles(loaded, 64)) == 4 and (tiles(loaded, 64)[0][1][48:] == 255).all()
    c = center_crops(loaded, 32)
    np.testing.assert_array_equal(c[0][1], loaded[0][1][8:40, 16:48])
    batch = collate_tiles(t[:3])
    assert batch["image"].shape == (3, 3, 16, 16) and batch["label"].shape == (3, 16, 16)

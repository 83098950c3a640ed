"""Reading and writing land-cover maps (`changeanywhere.maps`): colour, index and palette PNGs, 16 bit, offsets, clear
errors."""

import warnings

import numpy as np
import pytest
from PIL import Image

from changeanywhere.classes import ClassSet
from changeanywhere.errors import ChangeAnywhereError, UnknownColorsError
from changeanywhere.maps import read_map, write_map
from tests.helpers import index_map


def test_read_rgb_and_rgba_png(tmp_path):
    cs = ClassSet.builtin("dubai-landcover")
    idx = index_map(5)
    rgb = cs.indices_to_colors(idx)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.dstack([rgb, np.full(idx.shape, 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    for name in ("rgb.png", "rgba.png"):
        np.testing.assert_array_equal(read_map(tmp_path / name, cs), idx)
    np.testing.assert_array_equal(read_map(Image.fromarray(rgb), cs), idx)
    np.testing.assert_array_equal(read_map(rgb, cs), idx)


def test_write_map_round_trips(tmp_path):
    cs = ClassSet.builtin("potsdam")
    idx = index_map(5)
    write_map(tmp_path / "map.png", idx, cs)
    assert Image.open(tmp_path / "map.png").mode == "RGB"
    np.testing.assert_array_equal(read_map(tmp_path / "map.png", cs), idx)
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]  # no temp file left behind


def test_read_loveda_style_index_png_with_offset(tmp_path):
    cs = ClassSet.builtin("loveda")
    raw = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint8)  # 0 = no-data, 1..7 = classes
    Image.fromarray(raw, "L").save(tmp_path / "l.png")
    assert read_map(tmp_path / "l.png", cs).tolist() == [[255, 0, 1, 2], [3, 4, 5, 6]]


def test_read_16_bit_index_png(tmp_path):
    cs = ClassSet.builtin("openearthmap")
    Image.fromarray(np.array([[0, 1, 8]], dtype=np.uint16)).save(tmp_path / "i16.png")
    assert read_map(tmp_path / "i16.png", cs).tolist() == [[255, 0, 7]]


def test_index_values_outside_the_set_are_named(tmp_path):
    cs = ClassSet.builtin("loveda")
    Image.fromarray(np.array([[1, 9, 12]], dtype=np.uint8), "L").save(tmp_path / "bad.png")
    with pytest.raises(ChangeAnywhereError, match=r"bad\.png.*values \[9, 12\]"):
        read_map(tmp_path / "bad.png", cs)


def test_palette_png_with_class_colours_reads_by_colour(tmp_path):
    cs = ClassSet.builtin("dubai-landcover")
    im = Image.fromarray(np.array([[0, 1], [2, 2]], dtype=np.uint8), "P")
    # palette order differs from class order: building, land, unlabeled
    im.putpalette([0x3C, 0x10, 0x98, 0x84, 0x29, 0xF6, 0x9B, 0x9B, 0x9B])
    im.save(tmp_path / "p.png")
    assert read_map(tmp_path / "p.png", cs).tolist() == [[2, 0], [255, 255]]


def test_palette_png_with_other_colours_reads_by_index(tmp_path):
    cs = ClassSet.builtin("loveda")
    im = Image.fromarray(np.array([[0, 1], [2, 7]], dtype=np.uint8), "P")
    im.putpalette([10 * i for i in range(8 * 3)])
    im.save(tmp_path / "p.png")
    assert read_map(tmp_path / "p.png", cs).tolist() == [[255, 0], [1, 6]]


def test_unknown_colours_in_a_file_keep_their_type_and_name_the_path(tmp_path):
    cs = ClassSet.builtin("dubai-landcover")
    Image.fromarray(np.full((4, 4, 3), 77, np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(UnknownColorsError, match=r"odd\.png.*#4D4D4D \(16 px"):
        read_map(tmp_path / "odd.png", cs)
    assert (read_map(tmp_path / "odd.png", cs, snap=True) != 255).all()  # grey 77 is nearest to building


def test_corrupt_and_missing_files(tmp_path):
    cs = ClassSet.builtin("dubai-landcover")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ChangeAnywhereError, match="corrupt.png"):
        read_map(tmp_path / "corrupt.png", cs)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(ChangeAnywhereError, match="truncated.png"):
        read_map(tmp_path / "truncated.png", cs)
    with pytest.raises(ChangeAnywhereError, match="missing.png"):
        read_map(tmp_path / "missing.png", cs)


def test_zero_based_index_map_of_a_one_based_set_warns(tmp_path):
    """Feeds a 0-based OpenEarthMap index map (0 = bareland covers 30 %); expects an IndexOffsetWarning naming the
    file, and no warning for a 1-based one."""
    from changeanywhere.errors import IndexOffsetWarning

    cs = ClassSet.builtin("openearthmap")
    zero_based = np.repeat(np.arange(8, dtype=np.uint8), 8)[None].repeat(10, 0)  # values 0..7, 0 = 1/8
    Image.fromarray(zero_based).save(tmp_path / "oem.png")
    with pytest.warns(IndexOffsetWarning, match=r"oem\.png: value 0 covers 12\.5% .*1-based.*0-based"):
        read_map(tmp_path / "oem.png", cs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_map(zero_based + 1, cs)  # 1-based: classes 1..8
    assert cs.index_offset_hint(zero_based + 1) is None
    assert ClassSet.builtin("dubai-landcover").index_offset_hint(zero_based) is None  # a 0-based set


def test_one_based_index_map_of_a_zero_based_set_says_so():
    cs = ClassSet.builtin("dubai-landcover")
    with pytest.raises(ChangeAnywhereError, match=r"values \[5\].*is the map 1-based"):
        read_map(np.array([[1, 2, 3, 4, 5]], np.uint8), cs)

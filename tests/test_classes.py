"""Class sets: built-ins, JSON round trip, colour <-> index, kinds."""

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from changeanywhere.classes import BUILTIN_CLASS_SETS, ClassSet, LandCoverClass
from changeanywhere.errors import ChangeAnywhereError, UnknownColorsError
from tests.helpers import index_map

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)


DUBAI_JSON = {
    "name": "dubai-landcover",
    "classes": [
        {"name": "land", "color": "#8429F6"},
        {"name": "water", "color": "#E2A929"},
        {"name": "building", "color": "#3C1098"},
        {"name": "vegetation", "color": "#FEDD3A"},
        {"name": "road", "color": "#6EC1E4"},
    ],
    "ignore": {"name": "unlabeled", "colors": ["#9B9B9B", "#000000"]},
    "split": {"val": "every *_008 and *_009 pair", "train": "all other pairs"},
}


@pytest.mark.parametrize(
    ("name", "k", "first", "offset"),
    [
        ("openearthmap", 8, ("bareland", (0x80, 0, 0)), 1),
        ("dubai-landcover", 5, ("land", (0x84, 0x29, 0xF6)), 0),
        ("loveda", 7, ("background", (255, 255, 255)), 1),
        ("potsdam", 5, ("impervious", (255, 255, 255)), 1),
    ],
)
def test_builtin_sets(name, k, first, offset):
    cs = ClassSet.builtin(name.upper())
    assert cs.name == name and cs.num_classes == k and cs.index_offset == offset
    assert (cs.classes[0].name, cs.classes[0].color) == first
    assert cs.palette.shape == (k, 3) and cs.palette.dtype == np.uint8
    assert ClassSet.load(name) is cs
    for src, targets in cs.transition_table.items():
        assert targets and src not in targets


def test_builtin_orders_match_the_docs():
    oem = ClassSet.builtin("openearthmap")
    assert oem.names[7] == "building" and oem.classes[7].color == (0xDE, 0x1F, 0x07)
    assert oem.ignore_indices == (0,)
    dubai = ClassSet.builtin("dubai-landcover")
    assert dubai.ignore_name == "unlabeled" and dubai.ignore_colors == ((0x9B, 0x9B, 0x9B), (0, 0, 0))
    assert dubai.transition_table[dubai.index_of("land")] == (2, 4, 3)
    assert dubai.index_of("water") not in dubai.transition_table  # open water and roads stay
    assert ClassSet.builtin("loveda").names == (
        "background", "building", "road", "water", "barren", "forest", "agricultural"
    )  # fmt: skip


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(ChangeAnywhereError, match="openearthmap, dubai-landcover"):
        ClassSet.builtin("nope")
    with pytest.raises(ChangeAnywhereError, match="neither a built-in set"):
        ClassSet.load("nope")


@pytest.mark.parametrize("name", list(BUILTIN_CLASS_SETS))
def test_json_round_trip(name, tmp_path):
    cs = ClassSet.builtin(name)
    assert ClassSet.from_dict(cs.to_dict()) == cs
    cs.to_json(tmp_path / "set.json")
    assert ClassSet.load(tmp_path / "set.json") == cs
    assert hash(ClassSet.from_dict(cs.to_dict())) == hash(cs)


def test_dataset_schema_with_unknown_keys(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(DUBAI_JSON))
    cs = ClassSet.load(str(path))
    builtin = ClassSet.builtin("dubai-landcover")
    assert cs.classes == builtin.classes and cs.ignore_colors == builtin.ignore_colors
    assert cs.ignore_name == "unlabeled" and cs.transitions == ()


def test_transitions_accept_a_mapping():
    cs = ClassSet(
        "t", (LandCoverClass("a", (1, 1, 1)), LandCoverClass("b", (2, 2, 2))), transitions={"a": ["b"]}
    )
    assert cs.transitions == (("a", ("b",)),) and cs.transition_table == {0: (1,)}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["classes"].append({"name": "land", "color": "#010101"}), "duplicate class name"),
        (lambda d: d["classes"].append({"name": "sand", "color": "#8429f6"}), "duplicate colour"),
        (lambda d: d["ignore"]["colors"].append("#E2A929"), "duplicate colour"),
        (lambda d: d["classes"][0].update(color="#12345"), "bad colour"),
        (lambda d: d["classes"][0].update(color="red"), "bad colour"),
        (lambda d: d.update(transitions={"land": ["lava"]}), "unknown classes"),
        (lambda d: d.update(transitions={"land": ["land"]}), "not a change"),
        (lambda d: d.update(index_offset=1, ignore={"indices": [3]}), "overlap"),
        (lambda d: d.pop("classes"), "bad class-set description"),
    ],
)
def test_invalid_descriptions(change, match):
    d = json.loads(json.dumps(DUBAI_JSON))
    change(d)
    with pytest.raises(ChangeAnywhereError, match=match):
        ClassSet.from_dict(d)


def test_bad_json_file_names_the_path(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ChangeAnywhereError, match="broken.json"):
        ClassSet.load(path)


@pytest.mark.parametrize("name", list(BUILTIN_CLASS_SETS))
def test_colour_index_round_trip(name):
    cs = ClassSet.builtin(name)
    idx = index_map(cs.num_classes)
    rgb = cs.indices_to_colors(idx)
    assert rgb.shape == (*idx.shape, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == cs.ignore_colors[0]
    np.testing.assert_array_equal(cs.colors_to_indices(rgb), idx)


def test_every_ignore_colour_reads_as_ignore():
    cs = ClassSet.builtin("dubai-landcover")
    rgb = np.array([[[0x9B, 0x9B, 0x9B], [0, 0, 0], [0x3C, 0x10, 0x98]]], dtype=np.uint8)
    assert cs.colors_to_indices(rgb).tolist() == [[255, 255, 2]]


def test_ignore_without_colour_writes_black():
    cs = ClassSet("t", (LandCoverClass("a", (9, 9, 9)),))
    assert cs.indices_to_colors(np.array([[0, 255]], dtype=np.uint8)).tolist() == [[[9, 9, 9], [0, 0, 0]]]
    with pytest.raises(ChangeAnywhereError, match=r"values \[3\]"):
        cs.indices_to_colors(np.array([[3]], dtype=np.uint8))


def test_unknown_colours_are_listed_with_count_and_nearest_class():
    cs = ClassSet.builtin("dubai-landcover")
    rgb = cs.indices_to_colors(np.full((10, 10), 0, dtype=np.uint8))
    rgb[0, :7] = (0x3D, 0x11, 0x99)  # almost building
    rgb[1, :3] = (250, 220, 60)  # almost vegetation
    with pytest.raises(UnknownColorsError) as err:
        cs.colors_to_indices(rgb)
    msg = str(err.value)
    assert "#3D1199 (7 px, 7.0%, nearest: building)" in msg
    assert "#FADC3C (3 px, 3.0%, nearest: vegetation)" in msg
    assert msg.index("#3D1199") < msg.index("#FADC3C")  # most frequent first
    assert "--snap-colors" in msg and "snap=True" in msg


def test_many_unknown_colours_are_capped_at_five_with_their_share():
    cs = ClassSet.builtin("dubai-landcover")
    rgb = np.zeros((1, 30, 3), dtype=np.uint8)
    rgb[0, :, 0] = np.arange(1, 31)
    with pytest.raises(UnknownColorsError, match="and 25 more") as err:
        cs.colors_to_indices(rgb)
    assert str(err.value).count(" px, 3.3%, nearest") == 5


def test_snap_maps_to_nearest_class_or_ignore_colour():
    cs = ClassSet.builtin("dubai-landcover")
    rgb = np.array([[[0x3D, 0x11, 0x99], [150, 150, 150], [5, 5, 5], [0x84, 0x29, 0xF6]]], dtype=np.uint8)
    assert cs.colors_to_indices(rgb, snap=True).tolist() == [[2, 255, 255, 0]]


def test_colour_lookup_is_fast_on_large_maps():
    cs = ClassSet.builtin("openearthmap")
    idx = np.random.default_rng(0).integers(0, 8, (2000, 2000), dtype=np.uint8)
    rgb = cs.indices_to_colors(idx)
    rgb[:50, :50] = (1, 2, 3)
    seconds = []
    for _ in range(2):  # the faster of two runs: a busy machine slows one, not both
        t0 = time.perf_counter()
        out = cs.colors_to_indices(rgb, snap=True)
        seconds.append(time.perf_counter() - t0)
    assert out[0, 0] == 255 and np.array_equal(out[50:], idx[50:])
    assert min(seconds) < 3.0, f"{min(seconds):.1f} s for 4 M pixels (~0.2 s vectorised; a per-pixel loop: minutes)"


def photo_like(shape=(64, 64), seed=0) -> np.ndarray:
    """Smooth random RGB noise: thousands of colours, most far from any class colour (like an aerial photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (shape[0] // 8, shape[1] // 8, 3)).astype(np.float32)
    big = np.asarray(Image.fromarray(small.astype(np.uint8)).resize(shape[::-1], Image.BILINEAR), np.int16)
    return np.clip(big + rng.integers(-6, 7, (*shape, 3)), 0, 255).astype(np.uint8)


def test_a_photo_is_refused_even_with_snap():
    """Feeds a photo-like RGB image as a map; expects "looks like a photo" with and without snap, not noise."""
    cs = ClassSet.builtin("dubai-landcover")
    for snap in (False, True):
        with pytest.raises(UnknownColorsError, match=r"looks like a photo, not a land-cover map: [\d,]+ distinct"):
            cs.colors_to_indices(photo_like(), snap=snap)


def test_a_lossy_map_is_not_a_photo():
    """Feeds a JPEG-saved map (thousands of colours, all near class colours); expects it to snap cleanly."""
    cs = ClassSet.builtin("dubai-landcover")
    idx = np.kron(np.random.default_rng(1).integers(0, 5, (8, 8)), np.ones((8, 8), int)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(cs.indices_to_colors(idx)).save(buf, "JPEG", quality=50)
    lossy = np.asarray(Image.open(buf).convert("RGB"))
    with pytest.raises(UnknownColorsError, match="not in class set") as err:
        cs.colors_to_indices(lossy)
    assert "photo" not in str(err.value)
    assert (cs.colors_to_indices(lossy, snap=True) == idx).mean() > 0.9


def test_kinds_live_in_the_class_set():
    assert DUBAI.object_classes == (BUILDING,) and DUBAI.kind_of(VEGETATION) == "vegetation"
    assert ClassSet.builtin("potsdam").object_classes == (1, 4)  # building, car
    d = DUBAI.to_dict()
    assert d["kinds"]["building"] == "object" and ClassSet.from_dict(d) == DUBAI
    with pytest.raises(ChangeAnywhereError, match="kinds"):
        ClassSet.from_dict({**d, "kinds": {"building": "thing"}})
    with pytest.raises(ChangeAnywhereError, match="kinds"):
        ClassSet.from_dict({**d, "kinds": {"castle": "object"}})

"""The object bank (`changeanywhere.bank`) and the real content it pastes (`changeanywhere.content`)."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from changeanywhere.bank import BankError, ObjectBank, resolve_bank
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.content import FILL_BLEND_PX, dilate, paste_changes, place_instance
from changeanywhere.errors import ChangeAnywhereError, ParameterError
from changeanywhere.events import UserEdit, simulate_changes
from changeanywhere.labels import change_mask
from changeanywhere.maps import write_map
from changeanywhere.pairs import PairSettings
from changeanywhere.runtime import DEFAULT_BANK

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)


def town(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A land tile with a few buildings (bright roofs, a dark shadow side), a road and a pond."""
    rng = np.random.default_rng(seed)
    m = np.full((size, size), LAND, np.uint8)
    m[:, 60:70] = ROAD
    cv2.circle(m, (100, 100), 14, WATER, -1)
    img = np.clip(rng.normal(180, 8, (size, size, 3)), 0, 255).astype(np.uint8)
    img[m == ROAD] = (70, 70, 75)
    img[m == WATER] = (30, 60, 90)
    for x, y in ((12, 12), (30, 40), (14, 80), (90, 20)):
        w, h = int(rng.integers(10, 16)), int(rng.integers(10, 16))
        m[y:y + h, x:x + w] = BUILDING
        img[y:y + h, x:x + w] = (230, 225, 220)
        img[y + h:y + h + 3, x + 2:x + w + 2] = (90, 90, 90)  # shadow, on land
    return img, m


def fake_folders(root, n: int = 2):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        img, m = town(i)
        Image.fromarray(img).save(root / "images" / f"tile{i}_001.png")
        write_map(root / "labels" / f"tile{i}_001.png", m, DUBAI)
    return root


@pytest.fixture
def bank() -> ObjectBank:
    return ObjectBank.build([(f"tile{i}.png", *town(i)) for i in range(3)], DUBAI, origin="three towns")


def test_instances_carry_their_pixels_ring_and_provenance(bank):
    summary = bank.summary()
    assert summary["building"]["instances"] == 12 and summary["land"]["textures"] > 0
    assert "building" not in {bank.class_set.names[t.cls] for t in bank.textures}  # objects are not textures
    for inst in bank.instances:
        img, m = town(int(inst.source[4]))
        h, w = inst.footprint.shape
        np.testing.assert_array_equal(inst.pixels, img[inst.y:inst.y + h, inst.x:inst.x + w])  # provenance
        np.testing.assert_array_equal(inst.footprint, m[inst.y:inst.y + h, inst.x:inst.x + w] == BUILDING)
        assert inst.ring.any() and not (inst.ring & inst.footprint).any() and inst.ring_class == LAND
        assert inst.area == inst.footprint.sum() and inst.brightness > 150
    for tex in bank.textures:
        img, m = town(int(tex.source[4]))
        s = tex.pixels.shape[0]
        np.testing.assert_array_equal(tex.pixels, img[tex.y:tex.y + s, tex.x:tex.x + s])


def test_a_bank_build_is_deterministic_and_round_trips(tmp_path):
    data = fake_folders(tmp_path / "data")
    a, b = ObjectBank.from_folders(data / "images", data / "labels", DUBAI), None
    a.save(tmp_path / "a")
    b = ObjectBank.from_folders(data / "images", data / "labels", DUBAI)
    b.save(tmp_path / "b")
    for name in ("bank.json", "instances.png", "textures.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    back = ObjectBank.load(tmp_path / "a")
    assert back.summary() == a.summary() and back.fingerprint() == a.fingerprint()
    for x, y in zip(a.instances, back.instances, strict=True):
        assert (x.pixels == y.pixels).all() and (x.footprint == y.footprint).all() and (x.ring == y.ring).all()
        assert (x.source, x.x, x.y) == (y.source, y.x, y.y)
    record = json.loads((tmp_path / "a" / "bank.json").read_text())
    assert record["instances"][0]["source"] == "tile0_001.png" and record["origin"] == "data/images"


def test_build_bank_command(tmp_path, capsys):
    data = fake_folders(tmp_path / "data", n=3)
    args = ["build-bank", "--images", str(data / "images"), "--labels", str(data / "labels"), "--classes",
            "dubai-landcover", "--out", str(tmp_path / "bank"), "--split", "train", "--val-pattern", "tile2_*"]
    assert main(args) == 0
    bank = ObjectBank.load(tmp_path / "bank")
    assert {i.source for i in bank.instances} == {"tile0_001.png", "tile1_001.png"}  # the val tile stays out
    assert "building" in capsys.readouterr().out
    assert main([*args[:-2], "--val-pattern", "*"]) == 2  # an empty split: a one-line error
    assert "empty" in capsys.readouterr().err


def test_the_embedded_bank_is_the_dubai_train_split():
    bank = ObjectBank.load(DEFAULT_BANK)
    assert bank.class_set.names == DUBAI.names and bank.origin == "dubai-landcover/images (train split)"
    assert len(bank.instance_ids(BUILDING)) >= 300 and all(bank.texture_ids(c) for c in (LAND, WATER, ROAD))
    assert not any(s.endswith(("_008.jpg", "_009.jpg")) for s in {i.source for i in bank.instances})
    assert sum(p.stat().st_size for p in DEFAULT_BANK.iterdir()) <= 10 * 2**20


def test_an_add_places_a_bank_instance_with_exactly_its_footprint(bank):
    img, m = town(7)
    for seed in range(4):
        change = simulate_changes(m, DUBAI, seed=seed, num_events=2, event_types=("add",), bank=bank, image=img)
        placed = [e for e in change.events if "instance" in e]
        assert placed, "an instance fits on this land"
        pasted, result = paste_changes(img, change, DUBAI, bank, np.random.default_rng(seed))
        for e in placed:
            inst = bank.instances[e["instance"]["bank_index"]]
            x, y = e["instance"]["at"]
            fp = inst.turned(e["instance"]["rot90"], e["instance"]["flip"])[1]
            window = pasted.after[y:y + fp.shape[0], x:x + fp.shape[1]]
            assert (window[fp] == BUILDING).all()
        # the label is the map difference after the paste
        np.testing.assert_array_equal(result.change_mask, change_mask(m, pasted.after))
        np.testing.assert_array_equal(result.after, pasted.after)
        assert {r["kind"] for r in pasted.records} == {"instance"} and all(r["source"] for r in pasted.records)


def test_a_paste_touches_nothing_outside_its_region_and_ring(bank):
    img, m = town(5)
    inst = bank.instances[0]
    out, fp = place_instance(img, inst, 1, True, 40, 90)
    h, w = inst.footprint.shape
    allowed = np.zeros(m.shape, bool)
    allowed[90:90 + w, 40:40 + h] = np.rot90(inst.footprint | inst.ring, 1)[:, ::-1]  # turned: h and w swap
    moved = (out != img).any(axis=2)
    assert moved.any() and not (moved & ~allowed).any()
    assert fp.sum() == inst.footprint.sum()
    # a removal: texture inside the object and its blend band only
    change = simulate_changes(m, DUBAI, seed=0, num_events=1, event_types=("remove",))
    pasted, result = paste_changes(img, change, DUBAI, bank, np.random.default_rng(0))
    moved = (pasted.image != img).any(axis=2)
    assert moved.any() and not (moved & ~dilate(change.change_mask, FILL_BLEND_PX)).any()
    np.testing.assert_array_equal(result.change_mask, change.change_mask)


def test_painted_object_regions_get_instances_and_the_map_follows(bank):
    img, m = town(3)
    region = np.zeros(m.shape, bool)
    region[70:120, 5:55] = True
    edit = UserEdit(region & (m == LAND), BUILDING)
    change = simulate_changes(m, DUBAI, num_events=0, edits=[edit])
    pasted, result = paste_changes(img, change, DUBAI, bank, np.random.default_rng(1), strict=True)
    assert pasted.records and all(r["kind"] == "instance" for r in pasted.records)
    new = result.change_mask
    assert new.any() and not (new & ~region).any()  # inside the painted region only
    assert (pasted.after[new] == BUILDING).all()  # what was pasted is what the map says
    np.testing.assert_array_equal(new, change_mask(m, pasted.after))


def test_a_class_the_bank_lacks_is_a_clear_error(bank):
    img, m = town(3)
    empty = ObjectBank(DUBAI, [], [], origin="an empty folder")
    with pytest.raises(BankError, match=r"no instances of class 'building' \(built from an empty folder"):
        empty.require(BUILDING, "instances")
    with pytest.raises(BankError, match="class index 9"):
        bank.require(9, "instances")
    edit = UserEdit(np.pad(np.ones((20, 20), bool), ((40, 68), (20, 88))), BUILDING)
    change = simulate_changes(m, DUBAI, num_events=0, edits=[edit])
    with pytest.raises(BankError, match="'building'.*an empty folder"):
        paste_changes(img, change, DUBAI, empty, np.random.default_rng(0), strict=True)
    loveda = ClassSet.builtin("loveda")
    with pytest.raises(BankError, match="build-bank --classes loveda"):
        resolve_bank(bank, loveda)


def test_a_class_set_without_object_classes_works():
    stuff = ClassSet.from_dict({**DUBAI.to_dict(), "name": "all-stuff", "kinds": {}})
    assert stuff.object_classes == () and stuff.kind_of(BUILDING) == "other"
    img, m = town(2)
    bank = ObjectBank.build([("t.png", img, m)], stuff)
    assert not bank.instances and bank.textures
    change = simulate_changes(m, stuff, seed=3, num_events=3, bank=bank, image=img)
    pasted, result = paste_changes(img, change, stuff, bank, np.random.default_rng(0))
    np.testing.assert_array_equal(result.change_mask, change_mask(m, pasted.after))


def test_kinds_live_in_the_class_set():
    assert DUBAI.object_classes == (BUILDING,) and DUBAI.kind_of(VEGETATION) == "vegetation"
    assert ClassSet.builtin("potsdam").object_classes == (1, 4)  # building, car
    d = DUBAI.to_dict()
    assert d["kinds"]["building"] == "object" and ClassSet.from_dict(d) == DUBAI
    with pytest.raises(ChangeAnywhereError, match="kinds"):
        ClassSet.from_dict({**d, "kinds": {"building": "thing"}})
    with pytest.raises(ChangeAnywhereError, match="kinds"):
        ClassSet.from_dict({**d, "kinds": {"castle": "object"}})


def test_a_bad_content_setting_is_refused_by_name():
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ParameterError, match="content_strength") as err:
            PairSettings(content_strength=bad).check()
        assert "content_strength" in err.value.parameters
    with pytest.raises(ParameterError, match="content"):
        PairSettings(content="magic").check()

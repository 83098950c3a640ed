"""The object bank (`changeanywhere.bank`): instances and textures cut from real tiles, deterministic builds, the
embedded bank, clear errors."""

import json

import numpy as np
import pytest

from changeanywhere.bank import BankError, ObjectBank, resolve_bank
from changeanywhere.classes import ClassSet
from changeanywhere.content import paste_changes
from changeanywhere.events import UserEdit, simulate_changes
from changeanywhere.labels import change_mask
from changeanywhere.runtime import DEFAULT_BANK
from tests.helpers import town, town_folders

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)


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
    data = town_folders(tmp_path / "data")
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


def test_the_embedded_bank_is_the_dubai_train_split():
    bank = ObjectBank.load(DEFAULT_BANK)
    assert bank.class_set.names == DUBAI.names and bank.origin == "dubai-landcover/images (train split)"
    assert len(bank.instance_ids(BUILDING)) >= 300 and all(bank.texture_ids(c) for c in (LAND, WATER, ROAD))
    assert not any(s.endswith(("_008.jpg", "_009.jpg")) for s in {i.source for i in bank.instances})
    assert sum(p.stat().st_size for p in DEFAULT_BANK.iterdir()) <= 10 * 2**20


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

"""The real content the bank pastes (`changeanywhere.content`): instances placed with exactly their footprint, nothing
touched outside a region and its ring, the map following the paste."""


import numpy as np

from changeanywhere.classes import ClassSet
from changeanywhere.content import FILL_BLEND_PX, dilate, paste_changes, place_instance
from changeanywhere.events import UserEdit, simulate_changes
from changeanywhere.labels import change_mask
from tests.helpers import town

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)


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

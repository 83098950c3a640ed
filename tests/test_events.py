"""Change-event simulation on tiny maps built in code."""

import json

import numpy as np
import pytest

from changeanywhere.classes import ClassSet, LandCoverClass
from changeanywhere.errors import ChangeAnywhereError, MapSizeError
from changeanywhere.events import UserEdit, change_type_legend, simulate_changes

DUBAI = ClassSet.builtin("dubai-landcover")
LAND, WATER, BUILDING, VEGETATION, ROAD = range(5)
IGNORE = ClassSet.IGNORE


def scene() -> np.ndarray:
    """96x96 land with two buildings, a vegetation disc, a road, a water pond and an ignore strip."""
    m = np.full((96, 96), LAND, dtype=np.uint8)
    m[10:26, 10:30] = BUILDING
    m[60:80, 12:28] = BUILDING
    yy, xx = np.mgrid[:96, :96]
    m[(yy - 30) ** 2 + (xx - 70) ** 2 <= 10**2] = VEGETATION
    m[:, 44:48] = ROAD
    m[84:94, 60:90] = WATER
    m[:, 93:] = IGNORE
    return m


def check_invariants(result, before):
    np.testing.assert_array_equal(result.before, before)
    assert result.after.shape == before.shape and result.after.dtype == np.uint8
    assert result.change_mask.dtype == bool and result.change_type.dtype == np.uint8
    np.testing.assert_array_equal(result.change_mask, (before != result.after) & (before != IGNORE))
    np.testing.assert_array_equal(result.after[before == IGNORE], IGNORE)
    assert not (result.after[before != IGNORE] == IGNORE).any()
    k = DUBAI.num_classes
    changed = result.change_mask
    expected = 1 + before[changed].astype(int) * k + result.after[changed]
    np.testing.assert_array_equal(result.change_type[changed], expected)
    assert (result.change_type[~changed] == 0).all()
    json.dumps(result.events)
    assert sum(e["area"] for e in result.events) == changed.sum()  # events never overlap (no edits here)


@pytest.mark.parametrize("seed", range(6))
def test_invariants_hold_for_many_seeds(seed):
    before = scene()
    result = simulate_changes(before, DUBAI, seed=seed, min_area=32)
    check_invariants(result, before)
    assert 1 <= len(result.events) <= 6 and result.change_mask.any()


def test_remove_fills_an_object_with_its_surroundings():
    before = scene()
    result = simulate_changes(before, DUBAI, seed=0, num_events=1, event_types=["remove"], min_area=32)
    check_invariants(result, before)
    (event,) = result.events
    assert event["type"] == "remove" and event["to"] == "land"  # every object here sits in land
    x, y, w, h = event["bbox"]
    src = DUBAI.index_of(event["from"])
    assert (before[y : y + h, x : x + w][result.change_mask[y : y + h, x : x + w]] == src).all()
    assert (result.after[result.change_mask] == LAND).all()
    assert event["area"] == result.change_mask.sum()


def test_remove_uses_the_dominant_neighbour_class():
    before = np.full((60, 60), LAND, dtype=np.uint8)
    before[:, 30:] = VEGETATION
    before[20:40, 34:46] = BUILDING  # inside vegetation, 4 px from the land edge
    result = simulate_changes(before, DUBAI, seed=0, num_events=1, event_types=["remove"], min_area=100)
    assert result.events[0]["to"] == "vegetation"
    np.testing.assert_array_equal(result.change_mask, before == BUILDING)


def test_remove_ignores_ignore_pixels_in_the_neighbourhood():
    before = np.full((40, 40), IGNORE, dtype=np.uint8)
    before[10:30, 10:30] = VEGETATION
    before[15:25, 15:25] = BUILDING
    result = simulate_changes(before, DUBAI, seed=0, num_events=1, event_types=["remove"], min_area=50)
    assert [e["to"] for e in result.events] == ["vegetation"]


def test_add_copies_a_footprint_onto_a_compatible_class():
    before = np.full((80, 80), LAND, dtype=np.uint8)
    before[5:20, 5:17] = BUILDING  # 15x12 object, the only one > 8x8 besides the land
    before[40:80, 40:80] = WATER  # buildings may not be placed on water (no water->building transition)
    result = simulate_changes(before, DUBAI, seed=3, num_events=1, event_types=["add"], min_area=16)
    check_invariants(result, before)
    (event,) = result.events
    assert event["type"] == "add" and event["to"] == "building" and event["from"] == "land"
    assert event["source_bbox"] == [5, 5, 12, 15] and event["area"] == 180
    dx, dy = event["offset"]
    x, y, w, h = event["bbox"]
    assert (x, y, w, h) == (5 + dx, 5 + dy, 12, 15)
    assert (result.after[y : y + h, x : x + w] == BUILDING).all()
    assert (before[result.change_mask] == LAND).all()


def test_add_needs_objects_larger_than_8x8():
    before = np.full((40, 40), LAND, dtype=np.uint8)
    before[5:13, 5:13] = BUILDING  # exactly 8x8
    result = simulate_changes(before, DUBAI, seed=0, num_events=3, event_types=["add"], min_area=16)
    assert result.events == [] and not result.change_mask.any()


def test_transition_follows_the_table():
    before = np.full((50, 50), LAND, dtype=np.uint8)
    before[10:30, 10:30] = BUILDING  # a building may only become land
    result = simulate_changes(
        before, DUBAI, seed=1, num_events=1, event_types=["transition"], min_area=50, max_area_fraction=0.2
    )
    check_invariants(result, before)
    assert [(e["type"], e["from"], e["to"], e["area"]) for e in result.events] == [
        ("transition", "building", "land", 400)
    ]


def test_classes_the_table_keeps_are_never_removed_or_transitioned():
    before = np.full((50, 50), LAND, dtype=np.uint8)
    before[5:20, 5:20] = WATER  # Dubai: open water and roads stay
    before[30:36, :] = ROAD
    before[38:50, 5:25] = WATER  # a land patch in water is never filled with water
    before[41:47, 10:20] = LAND
    for seed in range(10):
        result = simulate_changes(before, DUBAI, seed=seed, num_events=3, event_types=["remove", "transition", "add"],
                                  min_area=50, max_area_fraction=0.5)
        changed = result.change_mask
        assert not np.isin(before[changed], [WATER, ROAD]).any() and not (result.after[changed] == WATER).any()
        assert all(e["from"] not in ("water", "road") and e["to"] != "water" for e in result.events)
    for seed in range(10):  # nor is a water body copied elsewhere
        result = simulate_changes(before, DUBAI, seed=seed, num_events=1, event_types=["add"], min_area=50)
        assert not (result.after[result.change_mask] == WATER).any()


def test_objects_over_the_area_cap_are_not_picked():
    before = np.full((50, 50), LAND, dtype=np.uint8)
    before[10:30, 10:30] = BUILDING  # 16 % of the map
    result = simulate_changes(
        before, DUBAI, seed=1, num_events=2, event_types=["transition"], min_area=50, max_area_fraction=0.1
    )
    assert result.events == []


def test_same_seed_same_result_other_seed_differs():
    before = scene()
    kw = dict(num_events=(2, 4), min_area=32)
    a = simulate_changes(before, DUBAI, seed=7, **kw)
    b = simulate_changes(before, DUBAI, seed=7, **kw)
    np.testing.assert_array_equal(a.after, b.after)
    assert a.events == b.events
    others = [simulate_changes(before, DUBAI, seed=s, **kw).after for s in range(8, 12)]
    assert any(not np.array_equal(a.after, o) for o in others)


def test_num_events_exact_and_zero():
    before = scene()
    assert len(simulate_changes(before, DUBAI, seed=0, num_events=3, min_area=32).events) == 3
    none = simulate_changes(before, DUBAI, seed=0, num_events=0)
    assert none.events == [] and not none.change_mask.any() and (none.change_type == 0).all()


def test_no_applicable_event_returns_an_unchanged_result():
    before = np.full((30, 30), LAND, dtype=np.uint8)
    before[:, :4] = IGNORE
    result = simulate_changes(before, DUBAI, seed=0, num_events=5)
    assert result.events == [] and np.array_equal(result.after, before)


def test_user_edit_paints_target_but_not_ignore():
    before = scene()
    mask = np.zeros(before.shape, dtype=bool)
    mask[0:40, 80:96] = True  # overlaps the ignore strip at x >= 93
    result = simulate_changes(before, DUBAI, num_events=0, edits=[UserEdit(mask, WATER)])
    check_invariants(result, before)
    painted = mask & (before != IGNORE)
    assert (result.after[painted] == WATER).all()
    np.testing.assert_array_equal(result.after[before == IGNORE], IGNORE)
    (event,) = result.events
    assert event["type"] == "edit" and event["to"] == "water" and event["area"] == painted.sum()


def test_user_edit_on_ignore_only_changes_nothing():
    before = scene()
    mask = before == IGNORE
    result = simulate_changes(before, DUBAI, num_events=0, edits=[UserEdit(mask, ROAD)])
    assert not result.change_mask.any()
    assert [(e["type"], e["area"]) for e in result.events] == [("edit", 0)]


def test_user_edit_applies_after_random_events():
    before = scene()
    mask = np.zeros(before.shape, dtype=bool)
    mask[10:26, 10:30] = True  # the first building
    result = simulate_changes(before, DUBAI, seed=0, num_events=3, min_area=32, edits=[UserEdit(mask, ROAD)])
    assert result.events[-1]["type"] == "edit"
    assert (result.after[mask] == ROAD).all()
    np.testing.assert_array_equal(result.change_mask, before != result.after)


def test_edit_errors():
    before = scene()
    with pytest.raises(ChangeAnywhereError, match="edit mask is empty"):
        simulate_changes(before, DUBAI, edits=[UserEdit(np.zeros(before.shape, bool), LAND)])
    with pytest.raises(MapSizeError):
        simulate_changes(before, DUBAI, edits=[UserEdit(np.ones((10, 10), bool), LAND)])
    for target in (5, -1):
        with pytest.raises(ChangeAnywhereError, match="edit target"):
            simulate_changes(before, DUBAI, edits=[UserEdit(np.ones(before.shape, bool), target)])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(event_types=["explode"]), "unknown event types"),
        (dict(num_events=(3, 1)), "num_events"),
        (dict(num_events=-1), "num_events"),
        (dict(min_area=0), "min_area"),
    ],
)
def test_argument_errors(kwargs, match):
    with pytest.raises(ChangeAnywhereError, match=match):
        simulate_changes(scene(), DUBAI, **kwargs)


def test_map_errors():
    with pytest.raises(ChangeAnywhereError, match=r"values \[7\]"):
        simulate_changes(np.full((8, 8), 7, np.uint8), DUBAI)
    with pytest.raises(ChangeAnywhereError, match="HxW index map"):
        simulate_changes(np.zeros((8, 8, 3), np.uint8), DUBAI)
    big = ClassSet("big", tuple(LandCoverClass(f"c{i}", (i, i, i)) for i in range(16)))
    with pytest.raises(ChangeAnywhereError, match="at most 15 classes"):
        simulate_changes(np.zeros((8, 8), np.uint8), big)


def test_change_type_legend():
    legend = change_type_legend(DUBAI)
    assert len(legend) == 5 * 4
    assert legend[1 + BUILDING * 5 + LAND] == "building->land"
    assert max(legend) <= 254

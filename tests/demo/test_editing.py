"""`demo.editing`: painted strokes to edits, change events to words, the after map."""


import numpy as np
import pytest

from changeanywhere import demo
from changeanywhere.errors import ChangeAnywhereError, MapSizeError
from changeanywhere.events import UserEdit
from tests.helpers import stroke_layer


def test_painted_strokes_become_snapped_edits(dubai, before_map):
    water = dubai.palette[dubai.index_of("water")]
    road = dubai.palette[dubai.index_of("road")]
    layers = [stroke_layer(before_map.shape, (10, 20, 10, 30), water),
              stroke_layer(before_map.shape, (15, 25, 25, 40), road)]
    edits = demo.painted_edits({"background": None, "layers": layers, "composite": None}, dubai, before_map.shape)
    by_target = {e.target: e.mask for e in edits}
    assert set(by_target) == {dubai.index_of("water"), dubai.index_of("road")}
    assert by_target[dubai.index_of("water")].sum() == 10 * 20 - 5 * 5  # the later layer paints over
    assert by_target[dubai.index_of("road")].sum() == 10 * 15  # faint rim (alpha 60) not counted
    assert demo.painted_edits({"background": None, "layers": [], "composite": None}, dubai, (8, 8)) == []
    assert demo.painted_edits(None, dubai, (8, 8)) == []


def test_change_events_read_as_words(dubai, before_map):
    events = {"transition": "land turned into road", "add": "new building on land",
              "remove": "land removed, filled with the water around it", "edit": "painted building over land"}
    for kind, words in events.items():
        to = {"transition": "road", "remove": "water"}.get(kind, "building")
        event = {"type": kind, "from": "land", "to": to, "area": 1234}
        assert demo.describe_event(event) == f"{words} (1,234 px)"


def test_bad_layers_are_refused(dubai):
    with pytest.raises(MapSizeError, match="painted layer 1 is 32×16 px but the map is 64×64"):
        demo.painted_edits({"layers": [np.zeros((16, 32, 4), np.uint8)]}, dubai, (64, 64))
    with pytest.raises(ChangeAnywhereError, match="RGBA"):
        demo.painted_edits({"layers": [np.zeros((64, 64, 3), np.uint8)]}, dubai, (64, 64))


def test_after_map_from_events_and_edits(dubai, before_map):
    mask = np.zeros(before_map.shape, bool)
    mask[:8, :8] = True
    edit = UserEdit(mask, dubai.index_of("water"))
    result = demo.make_after_map(before_map, dubai, [edit], num_events=2, seed=1)
    assert (result.after[:8, :8] == dubai.index_of("water")).all()
    assert any(e["type"] != "edit" for e in result.events)
    assert "of the map changes" in demo.describe_change(result)
    nothing = demo.make_after_map(before_map, dubai)
    assert "No change yet" in demo.describe_change(nothing)
    with pytest.raises(ChangeAnywhereError, match="the edit changes nothing"):
        demo.require_change(nothing)
    with pytest.raises(ChangeAnywhereError, match="at least one event type"):
        demo.make_after_map(before_map, dubai, num_events=2, event_types=[])

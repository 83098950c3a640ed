"""Property-based tests (hypothesis) of map reading and change-event simulation, on small generated maps.

Derandomized (the same examples on every run) so the suite stays deterministic."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from changeanywhere import ClassSet
from changeanywhere.events import EVENT_TYPES, UserEdit, simulate_changes
from changeanywhere.labels import IGNORE_INDEX
from changeanywhere.maps import read_map

SETS = {name: ClassSet.builtin(name) for name in ("dubai-landcover", "openearthmap")}
FAST = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def index_maps(draw, k: int, block: int = 1, max_side: int = 24, ignore: bool = True):
    """HxW uint8 index maps of `k` classes (and, if `ignore`, 255), made of block×block squares."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    values = list(range(k)) + ([IGNORE_INDEX] if ignore else [])
    seed = draw(st.integers(0, 2**32 - 1))
    small = np.random.default_rng(seed).choice(values, (h, w)).astype(np.uint8)
    return np.kron(small, np.ones((block, block), np.uint8))


def png_bytes(array: np.ndarray) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return Image.open(io.BytesIO(buf.getvalue()))


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(SETS)))
def test_colour_png_round_trip(data, name):
    """Any index map written as a colour PNG reads back as itself."""
    cs = SETS[name]
    m = data.draw(index_maps(cs.num_classes))
    np.testing.assert_array_equal(read_map(png_bytes(cs.indices_to_colors(m)), cs), m)


@pytest.mark.filterwarnings("ignore::changeanywhere.errors.IndexOffsetWarning")  # a random 1-based map may look 0-based
@FAST
@given(data=st.data(), name=st.sampled_from(sorted(SETS)))
def test_index_png_round_trip_with_the_offset(data, name):
    """Any index map written as raw values (class + index_offset, ignore as the set writes it) reads back."""
    cs = SETS[name]
    m = data.draw(index_maps(cs.num_classes))
    raw = (m.astype(np.int32) + cs.index_offset).astype(np.uint8)
    raw[m == IGNORE_INDEX] = cs.ignore_indices[0] if cs.ignore_indices else IGNORE_INDEX
    np.testing.assert_array_equal(read_map(png_bytes(raw), cs), m)


@FAST
@given(data=st.data(), noise=st.integers(0, 12))
def test_snapping_keeps_exact_colours_and_yields_only_labels(data, noise):
    """Snapping a lightly noised colour map gives only class or ignore values, and every pixel whose colour was
    exact keeps its class."""
    cs = SETS["dubai-landcover"]
    m = data.draw(index_maps(cs.num_classes, block=2))
    rgb = cs.indices_to_colors(m).astype(np.int16)
    seed = data.draw(st.integers(0, 2**32 - 1))
    jitter = np.random.default_rng(seed).integers(-noise, noise + 1, rgb.shape)
    jitter[::2] = 0  # even rows exact
    out = cs.colors_to_indices(np.clip(rgb + jitter, 0, 255).astype(np.uint8), snap=True)
    assert set(np.unique(out)) <= {*range(cs.num_classes), IGNORE_INDEX}
    np.testing.assert_array_equal(out[::2], m[::2])


@FAST
@given(
    data=st.data(),
    seed=st.integers(0, 2**31 - 1),
    num_events=st.integers(0, 6),
    types=st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=3, unique=True),
)
def test_events_never_touch_ignore_and_the_label_is_the_map_difference(data, seed, num_events, types):
    """For any map, seed, number and kinds of events (plus one painted edit): ignore pixels never change, the
    label is exactly map A ≠ map B, change codes are nonzero exactly there, and the result is reproducible."""
    cs = SETS["dubai-landcover"]
    before = data.draw(index_maps(cs.num_classes, block=8, max_side=6))
    h, w = before.shape
    y0, x0 = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    mask = np.zeros(before.shape, bool)
    mask[y0 : y0 + data.draw(st.integers(1, h)), x0 : x0 + data.draw(st.integers(1, w))] = True
    edit = UserEdit(mask, data.draw(st.integers(0, cs.num_classes - 1)))
    run = lambda: simulate_changes(before, cs, seed=seed, num_events=num_events, event_types=types,  # noqa: E731
                                   min_area=16, edits=[edit])
    result = run()
    ignore = before == IGNORE_INDEX
    np.testing.assert_array_equal(result.after[ignore], IGNORE_INDEX)
    assert set(np.unique(result.after[~ignore])) <= set(range(cs.num_classes))
    np.testing.assert_array_equal(result.change_mask, before != result.after)
    np.testing.assert_array_equal(result.change_type != 0, result.change_mask)
    painted = mask & ~ignore
    np.testing.assert_array_equal(result.after[painted], edit.target)  # the edit is applied last
    assert sum(e["area"] for e in result.events) >= int(result.change_mask.sum())
    again = run()
    np.testing.assert_array_equal(again.after, result.after)
    assert again.events == result.events

"""Change events: turn a "before" land-cover map into a plausible "after" map (docs/method.md §2).

Objects are connected regions (8-connectivity) of one class in the before map. Three object-level events
(ChangeAnywhere's `remove`, plus Changen2's `add` and `transition`) are applied one after another to an
evolving after map, then user-painted edits. Ignore pixels (255) never change. Each event only touches
pixels no earlier event changed, so its recorded area and classes describe exactly what it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .classes import ClassSet
from .config_fields import arg
from .errors import ChangeAnywhereError, MapSizeError
from .labels import IGNORE_INDEX, change_mask

if TYPE_CHECKING:
    from .bank import ObjectBank

EVENT_TYPES = ("remove", "add", "transition")
MAX_CLASSES = 15  # change codes 1 + from*K + to must fit in uint8 below 255
BANK_ADD_SHARE = 0.7  # with a bank: share of `add` events that place a bank instance (if one fits)
CANDIDATES = 8  # bank instances tried per `add`; the one closest to the scene's colours is placed
NEAR_PX = 24  # a new object goes, where it can, within this distance of an object of its class
BLOCK_SHARE = 0.5  # with a bank: share of `add` events that extend a built-up block of the tile onto free land
BLOCK_SIDE = (48, 96)  # side of a block window, px
BLOCK_BUILT = 0.25  # least share of a block window that is of object or paved kinds


@dataclass(frozen=True, eq=False)
class UserEdit:
    """Paint `mask` (HxW bool) with class index `target`. Compared by identity (it holds an array)."""

    mask: np.ndarray
    target: int


@dataclass
class ChangeResult:
    before: np.ndarray  # HxW uint8 index map
    after: np.ndarray  # HxW uint8 index map
    change_mask: np.ndarray  # HxW bool: `labels.change_mask(before, after)`
    change_type: np.ndarray  # HxW uint8: 0 unchanged or ignore, else 1 + from * K + to
    events: list[dict[str, Any]]  # JSON-serialisable, in the order applied


@dataclass(frozen=True)
class _Object:
    label: int  # id in the global label image
    cls: int
    x: int
    y: int
    w: int
    h: int
    area: int


def change_type_legend(class_set: ClassSet) -> dict[int, str]:
    """Change code -> "from->to" class names, for every pair of distinct classes."""
    k = class_set.num_classes
    names = class_set.names
    return {1 + a * k + b: f"{names[a]}->{names[b]}" for a in range(k) for b in range(k) if a != b}


@dataclass(frozen=True)
class EventSettings:
    """How many change events a map gets, of which types, and the smallest object they pick: one home for
    `generate` (`pairs.PairSettings`), `simulate` and `simulate_changes`' defaults."""

    num_events: tuple[int, int] = arg((1, 6), "N or LO:HI change events, drawn per map (default 1:6)")
    event_types: tuple[str, ...] = arg(EVENT_TYPES, f"comma-separated event types (default {','.join(EVENT_TYPES)})")
    min_area: int = arg(64, "smallest object an event may pick, px (default 64)")


def simulate_changes(
    before: np.ndarray,
    class_set: ClassSet,
    *,
    seed: int | None = 0,
    num_events: int | tuple[int, int] = EventSettings.num_events,
    event_types: Sequence[str] = EventSettings.event_types,
    min_area: int = EventSettings.min_area,
    max_area_fraction: float = 0.25,
    neighbourhood: int = 15,
    max_tries: int = 50,
    edits: Sequence[UserEdit] = (),
    bank: ObjectBank | None = None,
    image: np.ndarray | None = None,
) -> ChangeResult:
    """Simulate change events on an index map (0..K-1 classes, 255 ignore); deterministic for a given seed.

    num_events: exact count, or an inclusive (lo, hi) range to draw from. Objects smaller than `min_area`
    pixels or larger than `max_area_fraction` of the labelled pixels are never picked (a whole background
    class turning into another is not a plausible change). `neighbourhood`: width in pixels of the band
    around an object whose dominant class fills it on `remove`. `max_tries`: objects tried per event, and
    placements tried per object on `add`. An event slot where no event type applies ends the random events.
    `bank` (`bank.ObjectBank`): `add` places one of its instances (turned and flipped at random) where its
    footprint and ring lie on classes that may turn into its class (the after map gets exactly its footprint),
    for `BANK_ADD_SHARE` of the `add` events (the others copy a map object's footprint); with the before `image`
    (HxWx3 uint8) the instance is chosen to match the scene's colours.
    """
    before = _check_map(before, class_set)
    k = class_set.num_classes
    lo, hi = _event_range(num_events)
    types = tuple(event_types)
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown or not types:
        raise ChangeAnywhereError(f"unknown event types {unknown}; choose from {', '.join(EVENT_TYPES)}")
    for name, value in (("min_area", min_area), ("neighbourhood", neighbourhood), ("max_tries", max_tries)):
        if int(value) < 1:
            raise ChangeAnywhereError(f"{name} must be at least 1, got {value}")
    if not 0 < max_area_fraction <= 1:
        raise ChangeAnywhereError(f"max_area_fraction must be in (0, 1], got {max_area_fraction}")
    edits = [_check_edit(e, before.shape, class_set) for e in edits]

    rng = np.random.default_rng(seed)
    if image is not None and np.asarray(image).shape[:2] != before.shape:
        raise MapSizeError(f"the before image is {np.asarray(image).shape[1::-1]} (W, H) but its map is "
                           f"{before.shape[::-1]}")
    sim = _Simulator(before, class_set, rng, min_area, max_area_fraction, neighbourhood, max_tries, bank,
                     None if image is None else np.asarray(image))
    for _ in range(int(rng.integers(lo, hi + 1))):
        for kind in rng.permutation(types):
            if getattr(sim, f"_{kind}")():
                break
        else:
            break
    for mask, target in edits:
        sim.edit(mask, target)

    return change_result(before, sim.after, sim.events, k)


def change_result(before: np.ndarray, after: np.ndarray, events: list[dict[str, Any]], k: int) -> ChangeResult:
    """The change between two index maps of `k` classes, with the events that made it."""
    changed = change_mask(before, after)
    change_type = np.zeros_like(before)
    change_type[changed] = (1 + before[changed].astype(np.int32) * k + after[changed]).astype(np.uint8)
    return ChangeResult(before, after, changed, change_type, events)


class _Simulator:
    """State shared by the events of one simulation: the evolving after map and the before map's objects."""

    def __init__(self, before, class_set, rng, min_area, max_area_fraction, neighbourhood, max_tries, bank=None,
                 image=None):
        self.before = before
        self.after = before.copy()
        self.cs = class_set
        self.k = class_set.num_classes
        self.rng = rng
        self.neighbourhood = int(neighbourhood)
        self.max_tries = int(max_tries)
        self.unchanged = before != IGNORE_INDEX  # pixels events may still change
        self.events: list[dict[str, Any]] = []
        self.labels, self.objects = _find_objects(
            before, self.k, int(min_area), max_area_fraction * int(self.unchanged.sum())
        )
        self.used: set[int] = set()
        table = class_set.transition_table
        self.targets = {c: table.get(c, ()) for c in range(self.k)}
        self.table_given = bool(table)
        self.reachable = {c for targets in table.values() for c in targets}
        self.bank = bank
        self.image = image  # the before image (optional): bank instances are chosen to match its colours
        self.near: dict[int, np.ndarray] = {}  # per object class: pixels within NEAR_PX of that class

    # ---- helpers -----------------------------------------------------------------------------------------

    def _candidates(self, keep) -> list[_Object]:
        objs = [o for o in self.objects if o.label not in self.used and keep(o)]
        order = self.rng.permutation(len(objs))[: self.max_tries]
        return [objs[i] for i in order]

    def _footprint(self, o: _Object) -> np.ndarray:
        """Object mask within its bbox (from the before map)."""
        return self.labels[o.y : o.y + o.h, o.x : o.x + o.w] == o.label

    def _live(self, o: _Object) -> tuple[np.ndarray, slice, slice]:
        """Pixels of the object that no earlier event changed, within its bbox."""
        ys, xs = slice(o.y, o.y + o.h), slice(o.x, o.x + o.w)
        return self._footprint(o) & self.unchanged[ys, xs], ys, xs

    def _apply(self, kind: str, pix: np.ndarray, ys: slice, xs: slice, to: int, **extra) -> bool:
        """Set `pix` (a mask over the window ys, xs) to class `to` and record the event."""
        window = self.after[ys, xs]
        pix = pix & (window != to)
        area = int(pix.sum())
        if area == 0:
            return False
        replaced = np.bincount(window[pix], minlength=256)[: self.k]
        window[pix] = to
        self.unchanged[ys, xs] &= ~pix
        rows, cols = np.nonzero(pix)
        names = self.cs.names
        self.events.append(
            {
                "type": kind,
                "from": names[int(replaced.argmax())],
                "to": names[to],
                "bbox": [
                    xs.start + int(cols.min()),
                    ys.start + int(rows.min()),
                    int(np.ptp(cols)) + 1,
                    int(np.ptp(rows)) + 1,
                ],
                "area": area,
                "replaced": {names[c]: int(n) for c, n in enumerate(replaced) if n},
                **extra,
            }
        )
        return True

    # ---- events ------------------------------------------------------------------------------------------

    def _remove(self) -> bool:
        """Fill an object with the dominant class of the band around it. With a transition table, only objects of
        classes it lets change are removed, and only into classes it lets something become (in Dubai, open water
        and roads stay, and no new water appears)."""
        r = self.neighbourhood
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        height, width = self.after.shape
        for o in self._candidates(lambda o: not self.table_given or bool(self.targets[o.cls])):
            self.used.add(o.label)
            pix, ys, xs = self._live(o)
            if not pix.any():
                continue
            y0, y1 = max(o.y - r, 0), min(o.y + o.h + r, height)
            x0, x1 = max(o.x - r, 0), min(o.x + o.w + r, width)
            obj = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            obj[o.y - y0 : o.y - y0 + o.h, o.x - x0 : o.x - x0 + o.w] = self._footprint(o)
            band = cv2.dilate(obj, kernel).astype(bool) & ~obj.astype(bool)
            around = self.after[y0:y1, x0:x1][band]
            hist = np.bincount(around[around != IGNORE_INDEX], minlength=self.k)[: self.k]
            hist[o.cls] = 0
            if self.table_given:  # never into a class the table lets nothing become (Dubai: no new water)
                hist[[c for c in range(self.k) if c not in self.reachable]] = 0
            if hist.sum() == 0:
                continue
            if self._apply("remove", pix, ys, xs, int(hist.argmax()), object_area=o.area):
                return True
        return False

    def _transition(self) -> bool:
        """Switch an object's class to one its class may turn into."""
        for o in self._candidates(lambda o: bool(self.targets[o.cls])):
            self.used.add(o.label)
            pix, ys, xs = self._live(o)
            to = int(self.rng.choice(self.targets[o.cls]))
            if self._apply("transition", pix, ys, xs, to, object_area=o.area):
                return True
        return False

    def _sources(self, cls: int) -> np.ndarray:
        """A lookup of the classes that may turn into `cls` (all others when the table names none)."""
        sources = [a for a in range(self.k) if cls in self.targets[a]] or [a for a in range(self.k) if a != cls]
        compatible = np.zeros(256, dtype=bool)
        compatible[sources] = True
        return compatible

    def _add(self) -> bool:
        """Place a bank instance (with a bank that has instances) or copy an object's footprint to a random place
        where every pixel may turn into its class."""
        if self.bank is not None and self.rng.random() < BLOCK_SHARE and self._add_block():
            return True
        if self.bank is not None and self.rng.random() < BANK_ADD_SHARE and self._add_instance():
            return True
        height, width = self.after.shape
        for o in self._candidates(lambda o: o.w > 8 and o.h > 8 and o.w < width and o.h < height
                                  and (not self.table_given or o.cls in self.reachable)):
            self.used.add(o.label)
            compatible = self._sources(o.cls)
            fp = self._footprint(o)
            for _ in range(self.max_tries):
                y = int(self.rng.integers(0, height - o.h + 1))
                x = int(self.rng.integers(0, width - o.w + 1))
                ys, xs = slice(y, y + o.h), slice(x, x + o.w)
                if compatible[self.after[ys, xs][fp]].all() and self.unchanged[ys, xs][fp].all():
                    extra = {"source_bbox": [o.x, o.y, o.w, o.h], "offset": [x - o.x, y - o.y]}
                    if self._apply("add", fp, ys, xs, o.cls, **extra):
                        return True
        return False

    def _add_block(self) -> bool:
        """Copy a built-up block of the map (a window around an object, at least `BLOCK_BUILT` of object or paved
        kinds) onto free land elsewhere in the tile, as a town grows: its object and paved pixels go where every one
        may turn into its class and is unchanged. One `add` event per copied class, each with the window
        (`source_bbox`), its `offset` and `block`."""
        built_classes = self.cs.classes_of_kind("object", "paved")
        objs = [o for o in self.objects if self.cs.kind_of(o.cls) == "object"]
        if not objs or not built_classes:
            return False
        height, width = self.after.shape
        allowed = np.zeros((256, 256), bool)  # allowed[c, d]: a pixel of class d may become class c
        for c in built_classes:
            allowed[c] = self._sources(c)
        for o in self._candidates(lambda o: self.cs.kind_of(o.cls) == "object")[:8]:
            side = int(self.rng.integers(BLOCK_SIDE[0], BLOCK_SIDE[1] + 1))
            if side > min(height, width) // 2:
                continue
            cy, cx = o.y + o.h // 2, o.x + o.w // 2
            y0, x0 = int(np.clip(cy - side // 2, 0, height - side)), int(np.clip(cx - side // 2, 0, width - side))
            src = self.before[y0:y0 + side, x0:x0 + side]
            built = np.isin(src, built_classes)
            if built.mean() < BLOCK_BUILT:
                continue
            for _ in range(self.max_tries):
                y, x = int(self.rng.integers(0, height - side + 1)), int(self.rng.integers(0, width - side + 1))
                if abs(y - y0) < side and abs(x - x0) < side:
                    continue  # the copy must not overlap its source
                ys, xs = slice(y, y + side), slice(x, x + side)
                fits = built & allowed[src, self.after[ys, xs]] & self.unchanged[ys, xs]
                if fits.sum() < 0.9 * built.sum():
                    continue
                extra = {"source_bbox": [x0, y0, side, side], "offset": [x - x0, y - y0], "block": True}
                done = [self._apply("add", fits & (src == c), ys, xs, c, **extra) for c in built_classes]
                if any(done):
                    return True
        return False

    def _add_instance(self) -> bool:
        """Place a bank instance whose footprint fits on compatible, unchanged pixels near objects of its class (when
        the map has any: new buildings go up where others stand) and whose ring lies on what it stood on. Of
        `CANDIDATES` instances, each at its first fitting place, the one whose ring colour is closest to the scene's
        there (with a before image) is placed."""
        ids = [i for c in self.cs.object_classes for i in self.bank.instance_ids(c)]
        if not ids:
            return False
        best: tuple[float, int, int, bool, int, int] | None = None
        for _ in range(CANDIDATES):
            i = ids[int(self.rng.integers(len(ids)))]
            k, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
            spot = self._instance_spot(i, k, flip)
            if spot is None:
                continue
            y, x = spot
            score = self._ring_distance(i, k, flip, x, y)
            if best is None or score < best[0]:
                best = (score, i, k, flip, x, y)
            if self.image is None:
                break
        if best is None:
            return False
        _, i, k, flip, x, y = best
        inst = self.bank.instances[i]
        fp = inst.turned(k, flip)[1]
        ys, xs = slice(y, y + fp.shape[0]), slice(x, x + fp.shape[1])
        extra = {"instance": {"bank_index": i, "rot90": k, "flip": flip, "at": [x, y]}, "source": inst.source,
                 "source_xy": [inst.x, inst.y]}
        return self._apply("add", fp, ys, xs, inst.cls, **extra)

    def _instance_spot(self, i: int, k: int, flip: bool) -> tuple[int, int] | None:
        """(y, x) of a window where instance `i` (turned, flipped) fits near its class (anywhere when the map has
        none of it), or None."""
        inst = self.bank.instances[i]
        _, fp, ring = inst.turned(k, flip)
        h, w = fp.shape
        height, width = self.after.shape
        compatible = self._sources(inst.cls)
        if h > height or w > width or not compatible[inst.ring_class]:
            return None
        near = self.near.get(inst.cls)
        if near is None:
            same = (self.before == inst.cls).astype(np.uint8)
            near = cv2.dilate(same, np.ones((2 * NEAR_PX + 1, 2 * NEAR_PX + 1), np.uint8)).astype(bool)
            self.near[inst.cls] = near
        for _ in range(self.max_tries):
            y, x = int(self.rng.integers(0, height - h + 1)), int(self.rng.integers(0, width - w + 1))
            ys, xs = slice(y, y + h), slice(x, x + w)
            win = self.after[ys, xs]
            if (compatible[win[fp]].all() and (win[ring] == inst.ring_class).all()
                    and self.unchanged[ys, xs][fp | ring].all() and (near[ys, xs][fp].any() or not near.any())):
                return y, x
        return None

    def _ring_distance(self, i: int, k: int, flip: bool, x: int, y: int) -> float:
        """Distance between the mean colours of the instance's ring and of the scene under it (0 without an image)."""
        if self.image is None:
            return 0.0
        pix, _, ring = self.bank.instances[i].turned(k, flip)
        h, w = ring.shape
        there = self.image[y:y + h, x:x + w][ring].astype(np.float64).mean(axis=0)
        return float(np.abs(pix[ring].astype(np.float64).mean(axis=0) - there).sum())

    def edit(self, mask: np.ndarray, target: int) -> None:
        """Paint a user edit (over earlier events too, but never on ignore pixels)."""
        pix = mask & (self.before != IGNORE_INDEX)
        full = slice(0, self.after.shape[0]), slice(0, self.after.shape[1])
        if not self._apply("edit", pix, *full, target):
            name = self.cs.names[target]
            self.events.append(
                {"type": "edit", "from": None, "to": name, "bbox": None, "area": 0, "replaced": {}}
            )


def _find_objects(
    before: np.ndarray, k: int, min_area: int, max_area: float
) -> tuple[np.ndarray, list[_Object]]:
    """One int32 label image for all classes' components (ids are globally unique) and the usable objects."""
    labels = np.zeros(before.shape, dtype=np.int32)
    objects: list[_Object] = []
    offset = 0
    for c in range(k):
        mask = (before == c).astype(np.uint8)
        if not mask.any():
            continue
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
        inside = lab > 0
        labels[inside] = lab[inside] + offset
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if min_area <= area <= max_area:
                objects.append(_Object(offset + i, c, x, y, w, h, area))
        offset += n - 1
    return labels, objects


def _check_map(before: np.ndarray, class_set: ClassSet) -> np.ndarray:
    before = np.asarray(before)
    if before.ndim != 2 or not np.issubdtype(before.dtype, np.integer):
        raise ChangeAnywhereError(
            f"the before map must be an HxW index map, got {before.dtype} array {before.shape}"
        )
    k = class_set.num_classes
    if k > MAX_CLASSES:
        raise ChangeAnywhereError(
            f"change simulation supports at most {MAX_CLASSES} classes, {class_set.name!r} has {k}"
        )
    bad = (before != IGNORE_INDEX) & ((before < 0) | (before >= k))
    if bad.any():
        vals = np.unique(before[bad])[:10].tolist()
        raise ChangeAnywhereError(
            f"the before map holds values {vals} outside 0..{k - 1} and {IGNORE_INDEX} (ignore)"
        )
    return before.astype(np.uint8)


def _event_range(num_events: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(num_events, int | np.integer):
        lo = hi = int(num_events)
    else:
        try:
            lo, hi = (int(v) for v in num_events)
        except (TypeError, ValueError):
            raise ChangeAnywhereError(f"num_events must be N or (lo, hi), got {num_events!r}") from None
    if not 0 <= lo <= hi:
        raise ChangeAnywhereError(f"num_events must satisfy 0 <= lo <= hi, got {num_events!r}")
    return lo, hi


def _check_edit(edit: UserEdit, shape: tuple[int, int], class_set: ClassSet) -> tuple[np.ndarray, int]:
    mask = np.asarray(edit.mask)
    if mask.shape != shape:
        raise MapSizeError(f"edit mask is {mask.shape[::-1]} (W, H) but the land-cover map is {shape[::-1]}")
    mask = mask.astype(bool)
    if not mask.any():
        raise ChangeAnywhereError("edit mask is empty: paint the region to change, or drop the edit")
    target = edit.target
    if (
        isinstance(target, bool)
        or not isinstance(target, int | np.integer)
        or not 0 <= target < class_set.num_classes
    ):
        raise ChangeAnywhereError(
            f"edit target {target!r} is not a class index of {class_set.name!r} "
            f"(0..{class_set.num_classes - 1})"
        )
    return mask, int(target)

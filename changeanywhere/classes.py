"""Land-cover class sets: class names, colours, ignore labels, and the pure conversions between colours, raw
values and class indices (reading, writing and checking map files: `maps.py`).

Inside the project a land-cover map is an HxW uint8 *index map*: 0..K-1 are classes, 255 (`IGNORE_INDEX` of
`labels.py`) is "ignore" (unlabeled / no data). On disk, maps are colour PNGs (one exact colour per class), or
index PNGs whose raw values may be shifted (`index_offset`) and may hold dataset-specific ignore values
(`ignore_indices`).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .class_sets import BUILTIN_SPECS
from .errors import ChangeAnywhereError, IndexOffsetWarning, UnknownColorsError
from .io import atomic_write_text
from .labels import IGNORE_INDEX

RGB = tuple[int, int, int]
# what a class is, for content and non-change: "object" (instances with a footprint: buildings, cars), or a kind
# of stuff (texture): vegetation, water, bare (soil, sand), paved (roads, impervious), other
KINDS = ("object", "vegetation", "water", "bare", "paved", "other")
_HEX = re.compile(r"#([0-9a-fA-F]{6})")
_MAX_LISTED = 10
MAX_COLOURS_LISTED = 5  # unknown colours named in an error (the most frequent first, with their share)
# A colour map is refused as a photo (even with snapping) when more than PHOTO_FAR_SHARE of its pixels lie farther
# than PHOTO_COLOUR_DISTANCE (RGB distance) from every class and ignore colour and it has more than
# PHOTO_MIN_COLOURS distinct colours. Measured on 256² Dubai crops: JPEG-saved maps (quality 50) have at most 6 %
# such pixels, bilinear-resized maps 2 %; the aerial photos 43-95 %.
PHOTO_COLOUR_DISTANCE = 48
PHOTO_FAR_SHARE = 0.25
PHOTO_MIN_COLOURS = 64
# An index map of a 1-based set whose value 0 (ignore) covers more than this share looks 0-based.
OFFSET_HINT_SHARE = 0.01


def hex_to_rgb(text: str) -> RGB:
    """'#RRGGBB' -> (r, g, b)."""
    m = _HEX.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ChangeAnywhereError(f"bad colour {text!r}: expected '#RRGGBB'")
    v = int(m.group(1), 16)
    return (v >> 16, (v >> 8) & 255, v & 255)


def rgb_to_hex(rgb: RGB) -> str:
    """(r, g, b) -> '#RRGGBB'."""
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """...x3 uint8 colours -> ... uint32 (0xRRGGBB), so colours compare and sort as single numbers."""
    rgb = rgb.astype(np.uint32, copy=False)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


@dataclass(frozen=True)
class LandCoverClass:
    name: str
    color: RGB


@dataclass(frozen=True)
class ClassSet:
    """An ordered set of land-cover classes; class index = position in `classes`.

    `transitions` maps a class name to the class names it may turn into (used by 'transition' change events,
    and, read backwards, by 'add' events to decide where an object may be placed). A mapping passed in is
    stored as a tuple of (from, (to, ...)) pairs so the set stays hashable.
    """

    name: str
    classes: tuple[LandCoverClass, ...]
    ignore_colors: tuple[RGB, ...] = ()
    ignore_name: str = "ignore"
    ignore_indices: tuple[int, ...] = ()
    index_offset: int = 0
    transitions: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    # class name -> its kind (`KINDS`): "object" classes are cut as instances (buildings, cars), the others are
    # "stuff" filled with texture; vegetation, water and bare kinds get their own non-change appearance.
    # Classes not named: "other" (stuff without a kind-specific appearance)
    kinds: tuple[tuple[str, str], ...] = field(default=())

    IGNORE: ClassVar[int] = IGNORE_INDEX  # as a class attribute, for `ClassSet.IGNORE`

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "classes", tuple(LandCoverClass(str(c.name), _rgb(c.color)) for c in self.classes))
        set_(self, "ignore_colors", tuple(_rgb(c) for c in self.ignore_colors))
        set_(self, "ignore_indices", tuple(int(i) for i in self.ignore_indices))
        set_(self, "index_offset", int(self.index_offset))
        pairs = self.transitions.items() if isinstance(self.transitions, Mapping) else self.transitions
        set_(self, "transitions", tuple(sorted((str(a), tuple(str(b) for b in bs)) for a, bs in pairs)))
        kinds = self.kinds.items() if isinstance(self.kinds, Mapping) else self.kinds
        set_(self, "kinds", tuple(sorted((str(a), str(b)) for a, b in kinds)))
        self._validate()

    def _validate(self) -> None:
        where = f"class set {self.name!r}"
        k = len(self.classes)
        if not 1 <= k < self.IGNORE:
            raise ChangeAnywhereError(f"{where}: needs 1 to {self.IGNORE - 1} classes, got {k}")
        _no_duplicates(where, "class name", [c.name for c in self.classes])
        colours = [*(c.color for c in self.classes), *self.ignore_colors]
        _no_duplicates(where, "colour", [rgb_to_hex(c) for c in colours])
        if self.index_offset < 0 or self.index_offset + k > 256:
            raise ChangeAnywhereError(f"{where}: index_offset {self.index_offset} puts classes outside 0..255")
        clash = [i for i in self.ignore_indices if self.index_offset <= i < self.index_offset + k]
        if clash or any(not 0 <= i <= 65535 for i in self.ignore_indices):
            raise ChangeAnywhereError(
                f"{where}: ignore indices {clash or list(self.ignore_indices)} overlap the class indices "
                f"{self.index_offset}..{self.index_offset + k - 1} or are out of range"
            )
        names = set(self.names)
        _no_duplicates(where, "transition source", [a for a, _ in self.transitions])
        for a, bs in self.transitions:
            unknown = sorted({a, *bs} - names)
            if unknown:
                raise ChangeAnywhereError(f"{where}: transition table names unknown classes {unknown}")
            if a in bs:
                raise ChangeAnywhereError(f"{where}: transition {a!r} -> {a!r} is not a change")
        unknown = sorted({a for a, _ in self.kinds} - names)
        bad = sorted({b for _, b in self.kinds} - set(KINDS))
        if unknown or bad:
            raise ChangeAnywhereError(f"{where}: `kinds` names unknown classes {unknown} or kinds {bad} "
                                      f"(kinds: {', '.join(KINDS)})")

    # ---- properties --------------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def palette(self) -> np.ndarray:
        """K x 3 uint8 class colours."""
        return np.array([c.color for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    def kind_of(self, index: int) -> str:
        """The kind of class `index` (`KINDS`; "other" where the set names none)."""
        return dict(self.kinds).get(self.names[index], "other")

    def classes_of_kind(self, *kinds: str) -> tuple[int, ...]:
        """Indices of the classes of these kinds."""
        return tuple(i for i in range(self.num_classes) if self.kind_of(i) in kinds)

    @property
    def object_classes(self) -> tuple[int, ...]:
        """Indices of the classes cut as instances (kind "object")."""
        return self.classes_of_kind("object")

    @property
    def transition_table(self) -> dict[int, tuple[int, ...]]:
        """Class index -> class indices it may turn into (classes the table does not mention: absent)."""
        index = {n: i for i, n in enumerate(self.names)}
        return {index[a]: tuple(index[b] for b in bs) for a, bs in self.transitions if bs}

    def index_of(self, name: str) -> int:
        """Class index of a class name (case-insensitive)."""
        for i, n in enumerate(self.names):
            if n.lower() == name.strip().lower():
                return i
        raise ChangeAnywhereError(
            f"class {name!r} is not in class set {self.name!r} (classes: {', '.join(self.names)})"
        )

    # ---- construction and serialisation ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassSet:
        """Build from the JSON schema: {name, classes: [{name, color}], ignore: {name, colors, indices},
        index_offset, transitions: {from: [to, ...]}}. Unknown keys (e.g. "split") are ignored."""
        try:
            classes = tuple(LandCoverClass(str(c["name"]), hex_to_rgb(c["color"])) for c in d["classes"])
            ignore = d.get("ignore") or {}
            return cls(
                name=str(d.get("name", "custom")),
                classes=classes,
                ignore_colors=tuple(hex_to_rgb(c) for c in ignore.get("colors", ())),
                ignore_name=str(ignore.get("name", "ignore")),
                ignore_indices=tuple(int(i) for i in ignore.get("indices", ())),
                index_offset=int(d.get("index_offset", 0)),
                transitions={str(a): tuple(bs) for a, bs in (d.get("transitions") or {}).items()},
                kinds=_kinds_of(d),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            if isinstance(err, ChangeAnywhereError):
                raise
            raise ChangeAnywhereError(
                f"bad class-set description ({type(err).__name__}: {err}); expected "
                '{"name": ..., "classes": [{"name": ..., "color": "#RRGGBB"}, ...], '
                '"ignore": {"name": ..., "colors": [...], "indices": [...]}}'
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classes": [{"name": c.name, "color": rgb_to_hex(c.color)} for c in self.classes],
            "ignore": {
                "name": self.ignore_name,
                "colors": [rgb_to_hex(c) for c in self.ignore_colors],
                "indices": list(self.ignore_indices),
            },
            "index_offset": self.index_offset,
            "transitions": {a: list(bs) for a, bs in self.transitions},
            "kinds": dict(self.kinds),
        }

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ClassSet:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ChangeAnywhereError(f"cannot read class-set file {path}: {err}") from None
        if not isinstance(d, dict):
            raise ChangeAnywhereError(f"class-set file {path} must hold a JSON object")
        try:
            return cls.from_dict(d)
        except ChangeAnywhereError as err:
            raise ChangeAnywhereError(f"{path}: {err}") from None

    def to_json(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def builtin(cls, name: str) -> ClassSet:
        key = name.strip().lower().replace("_", "-")
        if key not in BUILTIN_CLASS_SETS:
            raise ChangeAnywhereError(f"unknown class set {name!r}; built-in sets: {', '.join(BUILTIN_CLASS_SETS)}")
        return BUILTIN_CLASS_SETS[key]

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> ClassSet:
        """A built-in set by name, or a JSON file by path."""
        text = str(name_or_path)
        if text.strip().lower().replace("_", "-") in BUILTIN_CLASS_SETS:
            return cls.builtin(text)
        if Path(text).is_file() or text.lower().endswith(".json"):
            return cls.from_json(text)
        raise ChangeAnywhereError(
            f"class set {text!r} is neither a built-in set ({', '.join(BUILTIN_CLASS_SETS)}) "
            "nor an existing JSON file"
        )

    # ---- colour <-> index ---------------------------------------------------------------------------------

    @cached_property
    def _color_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted packed colours of classes and ignore colours, and the index each maps to (ignore: 255)."""
        colors = np.array([*(c.color for c in self.classes), *self.ignore_colors], dtype=np.uint8)
        values = np.array(
            [*range(self.num_classes)] + [self.IGNORE] * len(self.ignore_colors), dtype=np.uint8
        )
        packed = pack_rgb(colors)
        order = np.argsort(packed)
        return packed[order], values[order]

    def _nearest(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index (class or 255) of the nearest known colour, and the RGB distance to it, per packed colour."""
        known, values = self._color_lookup
        unpack = lambda p: np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], -1).astype(np.int32)  # noqa: E731
        d = ((unpack(packed)[:, None, :] - unpack(known)[None, :, :]) ** 2).sum(-1)
        return values[d.argmin(1)], np.sqrt(d.min(1))

    def _label(self, index: int) -> str:
        return f"{self.ignore_name} (ignore)" if index == self.IGNORE else self.classes[index].name

    def colors_to_indices(self, rgb: np.ndarray, snap: bool = False) -> np.ndarray:
        """HxWx3 (or x4, alpha dropped) uint8 colour map -> HxW uint8 index map (ignore colours -> 255).

        Colours not in the set raise `UnknownColorsError`, unless `snap`: then every pixel takes the nearest
        class or ignore colour. A photo is refused even with `snap` (see `PHOTO_FAR_SHARE`): snapping it would
        give a speckled noise map.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.dtype != np.uint8:
            raise ChangeAnywhereError(
                f"expected an HxWx3 uint8 colour map, got {rgb.dtype} array {rgb.shape}"
            )
        packed = pack_rgb(rgb[..., :3])
        known, values = self._color_lookup
        pos = np.minimum(np.searchsorted(known, packed), len(known) - 1)
        out = values[pos]
        unknown = known[pos] != packed
        if unknown.any():
            colors, inverse, counts = np.unique(packed[unknown], return_inverse=True, return_counts=True)
            nearest, distance = self._nearest(colors)
            far = int(counts[distance > PHOTO_COLOUR_DISTANCE].sum())
            distinct = len(colors) + len(np.intersect1d(known, packed))
            if far > PHOTO_FAR_SHARE * unknown.size and distinct > PHOTO_MIN_COLOURS:
                summary = (
                    f"this looks like a photo, not a land-cover map: {distinct:,} distinct colours, and "
                    f"{far / unknown.size:.0%} of the pixels are far from every colour of class set {self.name!r} "
                    "(a map has one exact colour per class)"
                )
                raise UnknownColorsError(f"{summary}. Use the colour-coded map ({_colour_names(self)}).", summary)
            if not snap:
                summary = self._unknown_message(colors, counts, nearest, unknown.size)
                raise UnknownColorsError(
                    f"{summary}. Use the matching class set, fix the map, or snap each colour to its nearest class "
                    "colour with snap=True (CLI: --snap-colors).", summary
                )
            out[unknown] = nearest[inverse.ravel()]
        return out

    def _unknown_message(self, colors: np.ndarray, counts: np.ndarray, nearest: np.ndarray, total: int) -> str:
        order = np.argsort(-counts, kind="stable")[:MAX_COLOURS_LISTED]
        listed = [
            f"{rgb_to_hex(((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255))} "
            f"({int(n):,} px, {n / total:.1%}, nearest: {self._label(int(i))})"
            for c, n, i in zip(colors[order], counts[order], nearest[order], strict=True)
        ]
        more = f"; and {len(colors) - MAX_COLOURS_LISTED:,} more" if len(colors) > MAX_COLOURS_LISTED else ""
        return (
            f"{len(colors):,} colour(s) in {int(counts.sum()):,} of {total:,} pixels "
            f"({counts.sum() / total:.1%}) are not in class set {self.name!r}: {'; '.join(listed)}{more}"
        )

    def indices_to_colors(self, idx: np.ndarray) -> np.ndarray:
        """HxW index map -> HxWx3 uint8 colours (255 -> first ignore colour, black if the set has none)."""
        idx = np.asarray(idx)
        self._check_indices(idx)
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: self.num_classes] = self.palette
        if self.ignore_colors:
            lut[self.IGNORE] = self.ignore_colors[0]
        return lut[idx.astype(np.uint8, copy=False)]

    def _check_indices(self, idx: np.ndarray) -> None:
        if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
            raise ChangeAnywhereError(f"expected an HxW integer index map, got {idx.dtype} array {idx.shape}")
        bad = (idx >= self.num_classes) & (idx != self.IGNORE) | (idx < 0)
        if bad.any():
            vals = np.unique(idx[bad])[:_MAX_LISTED].tolist()
            raise ChangeAnywhereError(
                f"index map holds values {vals} outside 0..{self.num_classes - 1} and {self.IGNORE} (ignore)"
            )

    def raw_to_indices(self, raw: np.ndarray, *, source: str | None = None, warn: bool = True) -> np.ndarray:
        """Raw index-PNG values -> index map: `ignore_indices` and 255 -> 255, others minus `index_offset`.

        Warns (`IndexOffsetWarning`, naming `source`) when the values suggest the other offset (see
        `index_offset_hint`), unless not `warn`."""
        raw = np.asarray(raw).astype(np.int64, copy=False)
        ignore = np.isin(raw, (*self.ignore_indices, self.IGNORE))
        cls = raw - self.index_offset
        bad = ~ignore & ((cls < 0) | (cls >= self.num_classes))
        if bad.any():
            vals = np.unique(raw[bad])
            listed = vals[:_MAX_LISTED].tolist()
            ignore_values = sorted({*self.ignore_indices, self.IGNORE})
            shifted = (
                " (values one above the last class: is the map 1-based? use a class set with \"index_offset\": 1)"
                if self.index_offset == 0 and (vals == self.num_classes).all() and not (raw == 0).any()
                else ""
            )
            raise ChangeAnywhereError(
                f"index map holds values {listed}{' ...' if len(vals) > _MAX_LISTED else ''} that are not "
                f"classes of {self.name!r} (classes are {self.index_offset}.."
                f"{self.index_offset + self.num_classes - 1}, ignore {ignore_values}){shifted}; "
                "is it the right class set?"
            )
        hint = self.index_offset_hint(raw) if warn else None
        if hint:
            warnings.warn(f"{source}: {hint}" if source else hint, IndexOffsetWarning, stacklevel=2)
        out = cls.astype(np.uint8)
        out[ignore] = self.IGNORE
        return out

    def index_offset_hint(self, raw: np.ndarray) -> str | None:
        """A sentence when an index map's raw values suggest it was written 0-based for this 1-based set, else None:
        value 0 (read as ignore) covers more than `OFFSET_HINT_SHARE` of the pixels and the last class's value
        never occurs (a 0-based map stops one below it)."""
        if self.index_offset < 1 or 0 not in self.ignore_indices:
            return None
        raw = np.asarray(raw)
        share = float((raw == 0).mean()) if raw.size else 0.0
        return self.offset_hint(share, bool((raw == self.index_offset + self.num_classes - 1).any()))

    def offset_hint(self, zero_share: float, last_present: bool) -> str | None:
        """`index_offset_hint` from a map's statistics: the share of value 0, and whether the last class's value
        occurs (for maps read strip by strip)."""
        if self.index_offset < 1 or 0 not in self.ignore_indices:
            return None
        if zero_share <= OFFSET_HINT_SHARE or last_present:
            return None
        return (
            f"value 0 covers {zero_share:.1%} of the pixels, but {self.name!r} index maps are "
            f"{self.index_offset}-based "
            f"(0 = {self.ignore_name}, read as ignore; classes {self.index_offset}.."
            f"{self.index_offset + self.num_classes - 1}). If this map is 0-based (as some tools write them), "
            f"every class is read shifted by one: add {self.index_offset} to its values, or use a class-set JSON "
            'with "index_offset": 0.'
        )

    @property
    def raw_ignore(self) -> int:
        """The value written for ignore in this set's index files: its first ignore index when ≤ 255, else 255."""
        return next((i for i in self.ignore_indices if i <= 255), self.IGNORE)

    def indices_to_raw(self, idx: np.ndarray) -> np.ndarray:
        """HxW index map -> uint8 values in the set's own index convention (classes + `index_offset`, ignore ->
        `raw_ignore`): what `raw_to_indices` reads back."""
        idx = np.asarray(idx)
        self._check_indices(idx)
        lut = np.full(256, self.raw_ignore, dtype=np.uint8)
        lut[: self.num_classes] = np.arange(self.num_classes) + self.index_offset
        return lut[idx.astype(np.uint8, copy=False)]

    def palette_to_indices(self, raw: np.ndarray, palette: np.ndarray, *, source: str | None = None) -> np.ndarray:
        """A palette image's values and its Kx3 palette -> index map: by colour when the used entries are all class or
        ignore colours, else the values are raw indices."""
        used = np.unique(raw)
        if used.max() < len(palette):
            known, _ = self._color_lookup
            if np.isin(pack_rgb(palette[used]), known).all():
                return self.colors_to_indices(palette[raw])
        return self.raw_to_indices(raw, source=source)

    def raw_colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Index value -> RGBA class colour (ignore: its first ignore colour, else black), for a colour table."""
        table = {i + self.index_offset: (*c.color, 255) for i, c in enumerate(self.classes)}
        table[self.raw_ignore] = (*(self.ignore_colors[0] if self.ignore_colors else (0, 0, 0)), 255)
        return table

def _rgb(color: Any) -> RGB:
    if isinstance(color, str):
        return hex_to_rgb(color)
    try:
        r, g, b = (int(v) for v in color)
    except (TypeError, ValueError):
        raise ChangeAnywhereError(f"bad colour {color!r}: expected (r, g, b) or '#RRGGBB'") from None
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise ChangeAnywhereError(f"bad colour {color!r}: components must be 0..255")
    return (r, g, b)


def _colour_names(cs: ClassSet) -> str:
    return ", ".join(f"{c.name} {rgb_to_hex(c.color)}" for c in cs.classes)


def _kinds_of(d: Mapping[str, Any]) -> dict[str, str]:
    """The `kinds` of a class-set description; one without a `kinds` field that has a built-in set's name and
    classes takes that set's kinds, any other none."""
    if "kinds" in d:
        return {str(a): str(b) for a, b in (d.get("kinds") or {}).items()}
    spec = BUILTIN_SPECS.get(str(d.get("name", "")).strip().lower().replace("_", "-"))
    names = [str(c["name"]) for c in d["classes"]]
    return dict(spec.get("kinds", {})) if spec and list(spec["classes"]) == names else {}


def _no_duplicates(where: str, what: str, items: list[str]) -> None:
    dups = sorted({x for x in items if items.count(x) > 1})
    if dups:
        raise ChangeAnywhereError(f"{where}: duplicate {what}(s) {dups}")


def _make(
    name: str, classes: dict[str, str], *, transitions: dict[str, tuple[str, ...]], **kw: Any
) -> ClassSet:
    return ClassSet(
        name=name,
        classes=tuple(LandCoverClass(n, hex_to_rgb(c)) for n, c in classes.items()),
        transitions=transitions,
        **kw,
    )


BUILTIN_CLASS_SETS: dict[str, ClassSet] = {name: _make(name, **spec) for name, spec in BUILTIN_SPECS.items()}

"""The object bank: real content cut from land-cover-labelled imagery, which change events paste (`content.py`).

- **instances**, per object class (kind "object" in the class set): connected components in a size range whose
  ring of context is mostly another class, each with its pixels, footprint, ring, provenance and statistics;
- **textures**, per stuff class: square windows wholly of one class, to fill removed objects and painted regions.

Stored as two PNG atlases (`instances.png`, `textures.png`) and `bank.json` (class set, build settings,
provenance); the same data
and settings give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .classes import ClassSet
from .data import load_pairs, pair_folders, spread
from .errors import ChangeAnywhereError
from .io import atomic_write_bytes, atomic_write_text
from .labels import IGNORE_INDEX

BANK_FORMAT = 1
TEXTURE_SIZES = (64, 32, 16)  # a stuff class gets windows of the largest size it has


def transform(array: np.ndarray, rot90: int, flip: bool) -> np.ndarray:
    """rot90 (counter-clockwise quarter turns) then a left-right flip."""
    out = np.rot90(array, rot90)
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


class BankError(ChangeAnywhereError):
    """The bank lacks what a change needs (a class without instances or textures), or cannot be read."""


@dataclass(frozen=True)
class BankSettings:
    """What goes into a bank: the instance size range and ring, and the texture windows."""

    ring: int = 6  # px of context cut around each instance (its shadow comes along)
    min_area: int = 60
    max_area: int = 5000
    max_side: int = 90  # largest bounding-box side of an instance, px
    max_ring_same: float = 0.05  # share of the ring that may be the instance's own class (touching objects: out)
    max_ring_ignore: float = 0.2
    max_instances: int = 600  # per class, evenly spread over the sources
    max_textures: int = 48  # per class
    texture_stride: int = 16  # px between candidate texture windows (in units of the window size / 4 at most)
    texture_purity: float = 0.98  # share of a texture window that must be its class

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Instance:
    """A real object with its ring of context: `pixels` (h, w, 3) uint8 covers its bounding box plus the ring."""

    cls: int
    pixels: np.ndarray
    footprint: np.ndarray  # (h, w) bool
    ring: np.ndarray  # (h, w) bool: the context around the footprint
    ring_class: int  # the most common class of the ring (what the object stood on)
    source: str  # file name of the source image
    x: int  # window position in the source image
    y: int
    area: int
    mean: tuple[float, float, float]
    brightness: float

    def turned(self, rot90: int, flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pixels, footprint, ring) turned by `rot90` quarter turns, then flipped left-right."""
        return transform(self.pixels, rot90, flip), transform(self.footprint, rot90, flip), \
            transform(self.ring, rot90, flip)


@dataclass(frozen=True)
class Texture:
    """A square window of one stuff class."""

    cls: int
    pixels: np.ndarray  # (s, s, 3) uint8
    source: str
    x: int
    y: int


class ObjectBank:
    """Instances and textures per class of one class set, with where they were cut from (`origin`).

    Made by `build` (from labelled tiles), `from_folders` (from image and map folders) or `load` (a saved bank);
    `content.paste_changes` and the `add` events paste from it.

    Args:
        class_set (`ClassSet`):
            The class set the instances' and textures' class indices refer to.
        instances (`Sequence[Instance]`):
            The real objects with their ring of context, in the order given (`instance_ids` indexes them).
        textures (`Sequence[Texture]`):
            The square windows of one stuff class each, in the order given (`texture_ids` indexes them).
        settings (`BankSettings`, *optional*, defaults to `BankSettings()`):
            The settings the bank was built with (recorded in `bank.json`).
        origin (`str`, *optional*, defaults to `""`):
            Where the content was cut from, for error messages and a dataset's record; "" when unknown.
    """

    def __init__(self, class_set: ClassSet, instances: Sequence[Instance], textures: Sequence[Texture],
                 settings: BankSettings = BankSettings(), origin: str = ""):
        self.class_set = class_set
        self.instances = list(instances)
        self.textures = list(textures)
        self.settings = settings
        self.origin = origin
        self._by_class: dict[int, list[int]] = {}
        for i, inst in enumerate(self.instances):
            self._by_class.setdefault(inst.cls, []).append(i)
        self._tex_by_class: dict[int, list[int]] = {}
        for i, tex in enumerate(self.textures):
            self._tex_by_class.setdefault(tex.cls, []).append(i)

    def __repr__(self) -> str:
        return f"ObjectBank({self.class_set.name!r}, {self.summary()})"

    def instance_ids(self, cls: int) -> list[int]:
        """Indices (into `instances`) of the instances of class index `cls`; [] when it has none."""
        return self._by_class.get(cls, [])

    def texture_ids(self, cls: int) -> list[int]:
        """Indices (into `textures`) of the textures of class index `cls`; [] when it has none."""
        return self._tex_by_class.get(cls, [])

    def require(self, cls: int, what: str) -> list[int]:
        """The instance or texture ids of a class, or a `BankError` naming the class and the data the bank was
        built from.

        Args:
            cls (`int`):
                A class index of the bank's class set (outside it: `BankError`).
            what (`str`):
                "instances" for `instance_ids`; any other value (by convention "textures") for `texture_ids`.

        Returns:
            `list[int]`: the ids, never empty (a class without any raises `BankError`).
        """
        if not 0 <= cls < self.class_set.num_classes:
            raise BankError(f"class index {cls} is not in class set {self.class_set.name!r}")
        ids = self.instance_ids(cls) if what == "instances" else self.texture_ids(cls)
        if not ids:
            name = self.class_set.names[cls]
            raise BankError(f"the bank has no {what} of class {name!r} (built from {self.origin or 'unknown data'}: "
                            f"{self.summary()}); build one from imagery that shows {name}")
        return ids

    def summary(self) -> dict[str, dict[str, int]]:
        """Per class name, for the classes that have any: {"instances": count, "textures": count}."""
        names = self.class_set.names
        return {names[c]: {"instances": len(self.instance_ids(c)), "textures": len(self.texture_ids(c))}
                for c in range(self.class_set.num_classes)
                if self.instance_ids(c) or self.texture_ids(c)}

    def fingerprint(self) -> dict[str, Any]:
        """What the bank is, for a dataset's record: {"origin", "instances" (count), "textures" (count),
        "sha256" (of every instance's and texture's class, source, position and pixels, in order)}."""
        h = hashlib.sha256()
        for i in self.instances:
            h.update(f"{i.cls}|{i.source}|{i.x}|{i.y}|{i.area}\n".encode())
            h.update(i.pixels.tobytes())
        for t in self.textures:
            h.update(f"{t.cls}|{t.source}|{t.x}|{t.y}\n".encode())
            h.update(t.pixels.tobytes())
        return {"origin": self.origin, "instances": len(self.instances), "textures": len(self.textures),
                "sha256": h.hexdigest()}

    # ---- building ----------------------------------------------------------------------------------------

    @classmethod
    def build(cls, tiles: Iterable[tuple[str, np.ndarray, np.ndarray]], class_set: ClassSet,
              settings: BankSettings = BankSettings(), origin: str = "") -> ObjectBank:
        """A bank cut from labelled tiles, in the order given.

        Instances are the connected components of each object class (kind "object" in the class set) within the
        size range of `settings` whose ring is mostly other classes; textures are the windows of the largest
        `TEXTURE_SIZES` size a stuff class has, each at least `texture_purity` of its class. Per class, at most
        `max_instances` / `max_textures` are kept, spread evenly over the tiles.

        Args:
            tiles (`Iterable[tuple]`):
                (source name, HxWx3 uint8 image, HxW uint8 index map) tuples, optionally with a fourth item, the
                (x, y) of the tile in its source image (positions are recorded in source coordinates).
            class_set (`ClassSet`):
                The classes of the maps; its kinds decide which classes give instances and which textures.
            settings (`BankSettings`, *optional*, defaults to `BankSettings()`):
                The instance size range and ring, and the texture windows.
            origin (`str`, *optional*, defaults to `""`):
                Where the tiles come from (the bank's `origin`).

        Returns:
            `ObjectBank`: the bank (the same tiles and settings give the same bank).
        """
        objects = set(class_set.object_classes)
        found: dict[int, list[Instance]] = {}
        windows: dict[int, list[Texture]] = {}
        for name, image, label, *where in tiles:
            dx, dy = where[0] if where else (0, 0)
            for inst in _instances(name, image, label, class_set.num_classes, objects, settings):
                found.setdefault(inst.cls, []).append(replace(inst, x=inst.x + dx, y=inst.y + dy))
            for tex in _textures(name, image, label, class_set.num_classes, objects, settings):
                windows.setdefault(tex.cls, []).append(replace(tex, x=tex.x + dx, y=tex.y + dy))
        instances = [i for c in sorted(found) for i in spread(found[c], settings.max_instances)]
        textures = []
        for c in sorted(windows):
            best = max(t.pixels.shape[0] for t in windows[c])  # the largest window size the class has
            textures += spread([t for t in windows[c] if t.pixels.shape[0] == best], settings.max_textures)
        return cls(class_set, instances, textures, settings, origin)

    @classmethod
    def from_folders(cls, images: str | os.PathLike, labels: str | os.PathLike, class_set: ClassSet,
                     split: str | None = None, settings: BankSettings = BankSettings(),
                     **split_kw: Any) -> ObjectBank:
        """A bank from the image and map folders `generate` takes, paired by file stem (`data.pair_folders`).

        Args:
            images (`str` or `os.PathLike`):
                The folder of source images.
            labels (`str` or `os.PathLike`):
                The folder of land-cover maps (same file stems), read with `class_set`.
            class_set (`ClassSet`):
                The classes of the maps.
            split (`str`, *optional*):
                "train" or "val": only that split's pairs (`data.pair_folders`). None: all pairs.
            settings (`BankSettings`, *optional*, defaults to `BankSettings()`):
                What goes into the bank (see `build`).
            **split_kw:
                `val_pattern` and `split_file` of `data.pair_folders` (which pairs are the validation split).

        Returns:
            `ObjectBank`: the bank, its `origin` "<parent>/<images folder>" (plus " (<split> split)").
        """
        pairs = pair_folders(images, labels, split, **split_kw)
        loaded = load_pairs(pairs, class_set)
        origin = f"{Path(images).resolve().parent.name}/{Path(images).name}" + (f" ({split} split)" if split else "")
        return cls.build(((p[0].name, im, m) for p, (im, m) in zip(pairs, loaded, strict=True)), class_set,
                         settings, origin)

    # ---- storage -----------------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        """Write `instances.png` (RGBA: each instance's window stacked downwards, alpha 255 footprint, 128 ring),
        `textures.png` (the windows stacked downwards) and `bank.json` into `folder`, each atomically.

        Args:
            folder (`str` or `os.PathLike`):
                The bank folder; created (with its parents) if missing, its three files replaced.

        Returns:
            `Path`: `folder`.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "format": BANK_FORMAT,
            "origin": self.origin,
            "class_set": self.class_set.to_dict(),
            "settings": self.settings.to_dict(),
            "summary": self.summary(),
            "instances": [{"class": self.class_set.names[i.cls], "source": i.source, "x": i.x, "y": i.y,
                           "h": int(i.pixels.shape[0]), "w": int(i.pixels.shape[1]), "area": i.area,
                           "ring_class": self.class_set.names[i.ring_class], "mean": list(i.mean),
                           "brightness": i.brightness} for i in self.instances],
            "textures": [{"class": self.class_set.names[t.cls], "source": t.source, "x": t.x, "y": t.y,
                          "size": int(t.pixels.shape[0])} for t in self.textures],
        }
        rgba = [np.dstack([i.pixels, np.where(i.footprint, 255, np.where(i.ring, 128, 0)).astype(np.uint8)])
                for i in self.instances]
        atomic_write_bytes(folder / "instances.png", _png(_stack(rgba, 4)))
        atomic_write_bytes(folder / "textures.png", _png(_stack([t.pixels for t in self.textures], 3)))
        atomic_write_text(folder / "bank.json", json.dumps(record, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ObjectBank:
        """Read a bank written by `save` (PNG and JSON only).

        Args:
            folder (`str` or `os.PathLike`):
                A folder holding `bank.json`, `instances.png` and `textures.png` of this bank format
                (`BANK_FORMAT`).

        Returns:
            `ObjectBank`: the bank; a missing, damaged or other-format folder raises `BankError`.
        """
        folder = Path(folder)
        try:
            record = json.loads((folder / "bank.json").read_text(encoding="utf-8"))
            atlas = _read_png(folder / "instances.png", cv2.IMREAD_UNCHANGED)
            tex_atlas = _read_png(folder / "textures.png", cv2.IMREAD_COLOR)
            if record.get("format") != BANK_FORMAT:
                raise ValueError(f"bank.json has format {record.get('format')!r}; this version reads {BANK_FORMAT}")
            class_set = ClassSet.from_dict(record["class_set"])
            index = {n: i for i, n in enumerate(class_set.names)}
            known = {f.name for f in fields(BankSettings)}
            settings = BankSettings(**{k: v for k, v in record["settings"].items() if k in known})
            instances, at = [], 0
            for r in record["instances"]:
                h, w = r["h"], r["w"]
                win = atlas[at:at + h, :w]
                instances.append(Instance(index[r["class"]], np.ascontiguousarray(win[..., :3]), win[..., 3] == 255,
                                          win[..., 3] == 128, index[r["ring_class"]], r["source"], r["x"], r["y"],
                                          r["area"], tuple(r["mean"]), r["brightness"]))
                at += h
            textures, at = [], 0
            for r in record["textures"]:
                size = r["size"]
                textures.append(Texture(index[r["class"]], np.ascontiguousarray(tex_atlas[at:at + size, :size]),
                                        r["source"], r["x"], r["y"]))
                at += size
        except (OSError, ValueError, KeyError, TypeError, IndexError, ChangeAnywhereError) as err:
            raise BankError(f"cannot read the object bank in {folder}: {err} (write one with "
                            "`changeanywhere build-bank`)") from None
        return cls(class_set, instances, textures, settings, record.get("origin", str(folder)))


def _stack(parts: list[np.ndarray], channels: int) -> np.ndarray:
    """Windows stacked downwards, padded on the right to the widest."""
    if not parts:
        return np.zeros((1, 1, channels), np.uint8)
    width = max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in parts])


def _png(array: np.ndarray) -> bytes:
    """PNG bytes of an RGB(A) array (deterministic)."""
    order = [2, 1, 0, 3][: array.shape[2]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array[..., order]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise BankError("PNG encoding of the bank failed")
    return buf.tobytes()


def _read_png(path: Path, flags: int) -> np.ndarray:
    data = np.frombuffer(path.read_bytes(), np.uint8)
    img = cv2.imdecode(data, flags)
    if img is None:
        raise ValueError(f"{path.name} is not a PNG")
    order = [2, 1, 0, 3][: img.shape[2]]
    return img[..., order]


def _instances(name: str, image: np.ndarray, label: np.ndarray, k: int, objects: set[int],
               s: BankSettings) -> list[Instance]:
    """The instances of one labelled image: components of an object class in the size range, away from the image
    border by the ring, whose ring is mostly other classes."""
    out = []
    height, width = label.shape
    r = s.ring
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    for c in sorted(objects):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((label == c).astype(np.uint8), connectivity=8)
        for j in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[j])
            if not s.min_area <= area <= s.max_area or max(w, h) > s.max_side:
                continue
            x0, y0, x1, y1 = x - r, y - r, x + w + r, y + h + r
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                continue
            fp = comp[y0:y1, x0:x1] == j
            ring = cv2.dilate(fp.astype(np.uint8), kernel).astype(bool) & ~fp
            around = label[y0:y1, x0:x1][ring]
            if (around == c).mean() > s.max_ring_same or (around == IGNORE_INDEX).mean() > s.max_ring_ignore:
                continue
            pix = image[y0:y1, x0:x1].copy()
            counts = np.bincount(around[around != IGNORE_INDEX], minlength=k)[:k]
            counts[c] = 0
            mean = pix[fp].mean(axis=0)
            out.append(Instance(c, pix, fp, ring, int(counts.argmax()), name, x0, y0, area,
                                tuple(round(float(v), 2) for v in mean), round(float(mean.mean()), 2)))
    return out


def _textures(name: str, image: np.ndarray, label: np.ndarray, k: int, objects: set[int],
              s: BankSettings) -> list[Texture]:
    """Square windows of one stuff class each, on a grid, at the largest `TEXTURE_SIZES` size a class has here."""
    out = []
    height, width = label.shape
    for c in range(k):
        if c in objects:
            continue
        inside = cv2.integral((label == c).astype(np.uint8))
        for size in TEXTURE_SIZES:
            if size > min(height, width):
                continue
            step = max(min(s.texture_stride, size // 2), 4)
            ys = np.arange(0, height - size + 1, step)
            xs = np.arange(0, width - size + 1, step)
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            share = (inside[yy + size, xx + size] - inside[yy, xx + size] - inside[yy + size, xx]
                     + inside[yy, xx]) / float(size * size)
            good = np.argwhere(share >= s.texture_purity)
            if len(good):
                out += [Texture(c, image[int(ys[a]):int(ys[a]) + size, int(xs[b]):int(xs[b]) + size].copy(), name,
                                int(xs[b]), int(ys[a])) for a, b in good]
                break
    return out


def file_stamps(paths: Sequence[Path]) -> list[str]:
    """What identifies source files for a cache: resolved path, size and modification time, sorted."""
    return [f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in sorted(paths)]


def bank_cache_key(sources: Any, class_set: ClassSet, settings: BankSettings) -> str:
    """The one key of a bank built on the fly: 16 hex digits of a hash of its sources, the class set, the
    settings and `BANK_FORMAT`.

    Args:
        sources (JSON-serialisable):
            What identifies the sources: `file_stamps` of the files, or `generate`'s sources fingerprint and how
            it reads them.
        class_set (`ClassSet`):
            The classes the bank is built with.
        settings (`BankSettings`):
            The settings it is built with.

    Returns:
        `str`: the key (other sources, classes or settings give another).
    """
    record = [sources, class_set.to_dict(), settings.to_dict(), BANK_FORMAT]
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(key: str, build: Callable[[], ObjectBank], cache_dir: str | os.PathLike | None = None) -> ObjectBank:
    """The bank stored under `key` in the cache, else `build()`, then stored there.

    Args:
        key (`str`):
            The cache entry, e.g. `bank_cache_key(...)`; the bank lives in `<cache>/banks/<key>/`.
        build (`Callable[[], ObjectBank]`):
            Makes the bank when the entry is missing or cannot be read (a damaged entry is rebuilt).
        cache_dir (`str` or `os.PathLike`, *optional*):
            The cache root. None: `runtime.cache_dir()` ($CHANGEANYWHERE_CACHE, else ~/.cache/changeanywhere).

    Returns:
        `ObjectBank`: the cached or built bank (an unwritable cache is not an error: the bank is then not stored).
    """
    from .runtime import cache_dir as default_cache

    folder = Path(cache_dir or default_cache()) / "banks" / key
    if (folder / "bank.json").is_file():
        try:
            return ObjectBank.load(folder)
        except BankError:
            pass  # a damaged cache entry is rebuilt
    bank = build()
    try:
        bank.save(folder)
    except OSError:
        pass  # an unwritable cache only costs a rebuild next time
    return bank


def cached_bank(images: str | os.PathLike, labels: str | os.PathLike, class_set: ClassSet, split: str | None = None,
                settings: BankSettings = BankSettings(), cache_dir: str | os.PathLike | None = None,
                **split_kw: Any) -> ObjectBank:
    """The bank of these folders, built once (`ObjectBank.from_folders`) and cached under a key of their files,
    the class set and the settings (`bank_cache_key`, `cached`).

    Args:
        images (`str` or `os.PathLike`):
            The folder of source images.
        labels (`str` or `os.PathLike`):
            The folder of land-cover maps (same file stems).
        class_set (`ClassSet`):
            The classes of the maps.
        split (`str`, *optional*):
            "train" or "val": only that split's pairs. None: all pairs.
        settings (`BankSettings`, *optional*, defaults to `BankSettings()`):
            What goes into the bank.
        cache_dir (`str` or `os.PathLike`, *optional*):
            The cache root. None: `runtime.cache_dir()`.
        **split_kw:
            `val_pattern` and `split_file` of `data.pair_folders`.

    Returns:
        `ObjectBank`: the bank (rebuilt when a file's size or modification time changes).
    """
    pairs = pair_folders(images, labels, split, **split_kw)
    key = bank_cache_key(file_stamps([p for pair in pairs for p in pair]), class_set, settings)
    return cached(key, lambda: ObjectBank.from_folders(images, labels, class_set, split, settings, **split_kw),
                  cache_dir)


def resolve_bank(bank: str | os.PathLike | ObjectBank | None, class_set: ClassSet,
                 build: Callable[[], ObjectBank] | None = None) -> ObjectBank:
    """The bank to paste from: a bank or a bank folder as given; else `build()` (e.g. a `cached` bank of the
    user's own imagery); else the embedded bank. A bank of other classes than `class_set`'s is refused.

    Args:
        bank (`ObjectBank`, `str` or `os.PathLike`, *optional*):
            A bank, or a bank folder (`ObjectBank.load`). None: `build()`, else the embedded bank
            (`runtime.DEFAULT_BANK`).
        class_set (`ClassSet`):
            The classes the bank must hold: the same class names in the same order (case-insensitive).
        build (`Callable[[], ObjectBank]`, *optional*):
            Makes the bank when `bank` is None. None: the embedded bank is used.

    Returns:
        `ObjectBank`: the bank; one of other classes raises a `BankError` that says how to build one.
    """
    from .runtime import DEFAULT_BANK

    if isinstance(bank, ObjectBank):
        out = bank
    elif bank is not None:
        out = ObjectBank.load(bank)
    elif build is not None:
        out = build()
    else:
        out = ObjectBank.load(DEFAULT_BANK)
    if [n.lower() for n in out.class_set.names] != [n.lower() for n in class_set.names]:
        raise BankError(f"the object bank ({out.origin}) holds classes {list(out.class_set.names)} but the class set "
                        f"{class_set.name!r} has {list(class_set.names)}: build one with `changeanywhere build-bank "
                        f"--classes {class_set.name}`")
    return out

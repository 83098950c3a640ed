"""Where the before tiles come from: image / land-cover map pairs of two folders, and the tile of each sample (a
seeded random crop, or the grid of non-overlapping tiles). Pairs with a TIFF are read by rasterio windows, tile by
tile (a scene larger than memory is never loaded whole; nodata pixels of the image become ignore in the map); the
others are decoded once and cached."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import geo
from ..classes import ClassSet
from ..data import DEFAULT_VAL_PATTERN, listing, pad_to, pair_folders
from ..errors import GenerationError, MapSizeError, ParameterError
from ..image_utils import load_rgb
from ..labels import IGNORE_INDEX
from ..maps import check_map, read_map
from ..seeds import TILE, derive_seed


@dataclass(frozen=True)
class Source:
    """One image / land-cover map pair of the source folders, its size in pixels, and for a pair read by rasterio
    windows (`windowed`) the map's pixel grid (`grid`: its tiles' georeference)."""

    stem: str
    image: Path
    label: Path
    width: int
    height: int
    grid: geo.Grid | None = None
    windowed: bool = False

    def key(self) -> list[Any]:
        """What identifies the source in generation.json's fingerprint (names, pixel and byte sizes, grid)."""
        key = [
            self.stem,
            self.image.name,
            self.label.name,
            self.width,
            self.height,
            self.image.stat().st_size,
            self.label.stat().st_size,
        ]
        return [*key, self.grid.to_meta()] if self.grid is not None and self.grid.georeferenced else key

    def tile_grid(self, x: int, y: int, size: int) -> geo.Grid | None:
        """The georeference of the tile at (x, y), or None when the source has none."""
        return self.grid.window(x, y, size, size) if self.grid is not None and self.grid.georeferenced else None


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            geo.check_pillow_tiff(im, path)
            return im.size
    except (OSError, UnidentifiedImageError) as err:
        raise GenerationError(f"cannot read {path}: {err}") from None
    except Image.DecompressionBombError:
        hint = f"rasterio reads large TIFFs by windows: {geo.GEO_EXTRA}" if geo.is_tiff(path) else "tile it first"
        raise GenerationError(f"{path} has too many pixels to decode whole; {hint}") from None


def find_sources(
    images_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    split: str | None = None,
    val_pattern: Sequence[str] = DEFAULT_VAL_PATTERN,
    resample: str | None = None,
) -> list[Source]:
    """Image/label pairs of two folders, matched by file stem and sorted; sizes read from the file headers.

    `split`: None (all), "train" or "val" (val = image names matching a `val_pattern` glob). A pair with a TIFF
    (rasterio installed) must be on one pixel grid, unless `resample` (nearest, bilinear) resamples its image
    onto its map's grid.
    """
    for name, folder in (("images", images_dir), ("labels", labels_dir)):
        if not Path(folder).is_dir():
            raise ParameterError(f"`{name}` folder {folder} not found", name)
    pairs = pair_folders(images_dir, labels_dir, split, val_pattern)
    sources, bad = [], []
    for image, label in pairs:
        if geo.reads_with_rasterio(image) or geo.reads_with_rasterio(label):
            grid = geo.pair_grid(geo.read_grid(label), geo.read_grid(image), label, image, resample)
            sources.append(Source(image.stem, image, label, grid.width, grid.height, grid, windowed=True))
            continue
        iw, ih = _image_size(image)
        lw, lh = _image_size(label)
        if (iw, ih) != (lw, lh):
            bad.append(f"{image.name} {iw}×{ih} vs {label.name} {lw}×{lh}")
        sources.append(Source(image.stem, image, label, iw, ih))
    if bad:
        raise MapSizeError(f"images and their maps differ in size: {listing(bad)}")
    if resample is not None and not any(s.windowed for s in sources):
        raise ParameterError("`resample` applies to georeferenced (GeoTIFF) sources; these have none", "resample")
    return sources


class SourceCache:
    """The tiles of the sources: windows read from disk for windowed sources, slices of decoded pairs (padded to at
    least `size`, kept up to a memory budget, LRU) for the others. `bands` and `resample`: how images are read."""

    def __init__(
        self, sources: Sequence[Source], class_set: ClassSet, size: int, snap: bool = False, budget: int = 2 << 30,
        bands: Sequence[int] | None = None, resample: str | None = None,
    ):
        self.sources = list(sources)
        self.class_set = class_set
        self.size = int(size)
        self.snap = snap
        self.budget = int(budget)
        self.bands = tuple(bands) if bands else None
        self.resample = resample
        self._items: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0

    def get(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Source k decoded whole (image, index map), padded to at least `size` (sources not read by windows)."""
        if k in self._items:
            self._items.move_to_end(k)
            return self._items[k]
        src = self.sources[k]
        image = load_rgb(src.image, self.bands)
        label = read_map(src.label, self.class_set, snap=self.snap)
        if image.shape[:2] != label.shape:
            raise MapSizeError(f"{src.label} and {src.image} differ in size")
        item = pad_to(image, label, self.size)
        nbytes = item[0].nbytes + item[1].nbytes
        while self._items and self._bytes + nbytes > self.budget:
            _, old = self._items.popitem(last=False)
            self._bytes -= old[0].nbytes + old[1].nbytes
        self._items[k] = item
        self._bytes += nbytes
        return item

    def tile(self, k: int, x: int, y: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The `size`² tile of source k at (x, y): image and index map (padded where it runs past the source)."""
        src = self.sources[k]
        if not src.windowed:
            image, label = self.get(k)
            return np.ascontiguousarray(image[y : y + size, x : x + size]), np.ascontiguousarray(
                label[y : y + size, x : x + size])
        window = (x, y, size, size)
        onto = src.grid.window(x, y, min(size, src.width - x), min(size, src.height - y)) if self.resample else None
        image, valid = geo.read_image(src.image, self.bands, None if onto else window, onto, self.resample)
        label = read_map(src.label, self.class_set, self.snap, window, warn=False)
        label[~valid] = IGNORE_INDEX  # no imagery there: nothing to learn from
        return pad_to(image, label, size)

    def check(self, k: int) -> None:
        """Read source k once so that bad maps or images fail now, naming the file: a windowed source strip by strip
        (its map) and by one tile (its image); the others whole, kept while the budget allows."""
        src = self.sources[k]
        if not src.windowed:
            self.get(k)
            return
        check_map(src.label, self.class_set, self.snap)
        self.tile(k, 0, 0, min(self.size, src.width, src.height))


class TilePicker:
    """Where sample i's before tile comes from: a random `size`² crop (source drawn by area), or the i-th tile
    of the grid of non-overlapping tiles (cycled)."""

    def __init__(self, sources: Sequence[Source], size: int, tiling: str = "random"):
        self.size = int(size)
        self.tiling = tiling
        self.dims = [(max(s.height, size), max(s.width, size)) for s in sources]
        area = np.array([h * w for h, w in self.dims], dtype=np.float64)
        self.weights = area / area.sum()
        self.grid = [
            (k, x, y)
            for k, (h, w) in enumerate(self.dims)
            for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)
        ]

    def pick(self, index: int, seed: int) -> tuple[int, int, int]:
        """(source index, x, y) of the sample's tile."""
        if self.tiling == "grid":
            return self.grid[index % len(self.grid)]
        rng = np.random.default_rng(derive_seed(seed, TILE))
        k = int(rng.choice(len(self.dims), p=self.weights))
        h, w = self.dims[k]
        y = int(rng.integers(0, h - self.size + 1))
        x = int(rng.integers(0, w - self.size + 1))
        return k, x, y



def validate_sources(
    sources: Sequence[Source], class_set: ClassSet, snap: bool = False, cache: SourceCache | None = None
) -> None:
    """Read every map (and, through a cache, every image) once: unknown colours or values fail now, with the
    file named, not mid-run. A cache given keeps what it can hold for the run."""
    for k, s in enumerate(sources):
        if cache is not None:
            cache.check(k)
        elif s.windowed:
            check_map(s.label, class_set, snap)
        else:
            read_map(s.label, class_set, snap=snap)


def source_windows(sources: Sequence[Source], cache: SourceCache, size: int = 1024,
                   ) -> Iterator[tuple[str, np.ndarray, np.ndarray, tuple[int, int]]]:
    """Every source read as `generate` reads it, in windows of at most `size`² (name, image, map, (x, y)): what
    an object bank of the sources is cut from (`bank.ObjectBank.build`)."""
    for k, src in enumerate(sources):
        step = min(size, max(src.width, src.height))
        for y in range(0, src.height, step):
            for x in range(0, src.width, step):
                image, label = cache.tile(k, x, y, step)
                yield src.image.name, image, label, (x, y)

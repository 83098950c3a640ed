"""Land-cover maps on disk, in one place: read (PNG, JPEG, TIFF/GeoTIFF; class colours or index values; nodata ->
ignore), write (a colour PNG, or a one-band GeoTIFF of index values with the class colours as its colour table)
and check (a large raster map strip by strip, never whole).

The class set's vocabulary and its pure conversions (colours <-> indices, raw values <-> indices) are
`ClassSet`'s; pixel grids, windows and raster bytes are `geo`'s.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from . import geo
from .classes import ClassSet
from .errors import ChangeAnywhereError, IndexOffsetWarning
from .labels import IGNORE_INDEX

MapSource = str | os.PathLike | Image.Image | np.ndarray


def read_map(src: MapSource, class_set: ClassSet, snap: bool = False, window: geo.Window | None = None, *,
             warn: bool = True) -> np.ndarray:
    """Read a land-cover map into an HxW uint8 index map.

    Accepts a path, a PIL image or an array. Colour images (RGB, RGBA: alpha dropped) are matched to class
    colours; single-channel images ('L', 'I;16', 'I', or a 2-D array) hold raw index values; palette ('P')
    images are read by colour when their palette uses only class or ignore colours, else by index. TIFFs
    (GeoTIFFs too) are read with rasterio when installed, and any file when a `window` is given (nodata ->
    ignore). `warn`: say when the values suggest the other index offset (off for tiles of a map checked whole by
    `check_map`).
    """
    if isinstance(src, np.ndarray):
        return class_set.raw_to_indices(src) if src.ndim == 2 else class_set.colors_to_indices(src, snap=snap)
    if window is not None or geo.reads_with_rasterio(src):  # a window is read with rasterio, whatever the format
        return _read_raster(Path(src), class_set, snap, window, warn)
    if isinstance(src, Image.Image):
        return _read_pillow(src, class_set, snap)
    where = str(src)
    try:
        with Image.open(src) as im:
            geo.check_pillow_tiff(im, where)
            im.load()
            return _read_pillow(im, class_set, snap, where)
    except FileNotFoundError:
        raise ChangeAnywhereError(f"land-cover map {where} not found") from None
    except ChangeAnywhereError as err:
        raise type(err)(f"{where}: {err}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ChangeAnywhereError(f"cannot read land-cover map {where}: {err}") from None


def write_map(path: str | os.PathLike, idx: np.ndarray, class_set: ClassSet, grid: geo.Grid | None = None
              ) -> list[Path]:
    """Write an index map atomically: a PNG of class colours, or a one-band GeoTIFF of the class set's index
    values (what `read_map` reads back) with the class colours as its colour table and ignore as nodata.
    A georeferenced `grid` travels with it; returns the files written."""
    if geo.is_tiff(path):
        return geo.write_raster(path, class_set.indices_to_raw(idx), grid, colormap=class_set.raw_colormap(),
                                nodata=class_set.raw_ignore)
    return geo.write_raster(path, class_set.indices_to_colors(idx), grid)


def check_map(path: str | os.PathLike, class_set: ClassSet, snap: bool = False) -> None:
    """Read a raster map strip by strip (never whole): values or colours outside the class set raise now, naming
    the file; a warning when its values suggest the other index offset."""
    name = Path(path).name
    counts: dict[int, int] = {}
    with geo.open_raster(path, "land-cover map") as src:
        rows = max(1, geo.STRIP_PIXELS // max(src.width, 1))
        colour = src.count >= 3
        for y in range(0, src.height, rows):
            win = geo.rasterio_window(src, (0, y, src.width, rows))
            valid = src.dataset_mask(window=win) > 0
            data = src.read([1, 2, 3] if colour else [1], window=win)
            if colour or not np.issubdtype(data.dtype, np.integer):
                _map_values(data, valid, class_set, snap, name, warn=False)
                continue
            values = data[0][valid]
            if values.dtype.itemsize <= 2 and values.dtype.kind == "u":
                found = np.bincount(values.ravel(), minlength=1)
                pairs = zip(np.flatnonzero(found).tolist(), found[found > 0].tolist(), strict=True)
            else:
                pairs = zip(*(a.tolist() for a in np.unique(values, return_counts=True)), strict=True)
            for v, n in pairs:
                counts[v] = counts.get(v, 0) + n
    if not colour and counts:
        values = np.array(sorted(counts), dtype=np.int64)
        _map_values(values[None, None, :], np.ones((1, len(values)), bool), class_set, snap, name, warn=False)
        total = sum(counts.values())
        last = class_set.index_offset + class_set.num_classes - 1
        hint = class_set.offset_hint(counts.get(0, 0) / total, last in counts)
        if hint:
            warnings.warn(f"{name}: {hint}", IndexOffsetWarning, stacklevel=2)


def _read_pillow(im: Image.Image, class_set: ClassSet, snap: bool, where: str | None = None) -> np.ndarray:
    if im.mode in ("RGB", "RGBA", "RGBX"):
        return class_set.colors_to_indices(np.asarray(im)[..., :3], snap=snap)
    if im.mode == "P":
        palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
        return class_set.palette_to_indices(np.asarray(im), palette, source=where)
    if im.mode in ("L", "1", "I", "I;16", "I;16L", "I;16B", "LA"):
        return class_set.raw_to_indices(np.asarray(im.getchannel(0) if im.mode == "LA" else im), source=where)
    raise ChangeAnywhereError(f"unsupported image mode {im.mode!r} for a land-cover map (use RGB or L PNGs)")


def _read_raster(path: Path, class_set: ClassSet, snap: bool, window: geo.Window | None, warn: bool) -> np.ndarray:
    """HxW uint8 index map of a raster land-cover map (or of a window of it); nodata -> ignore."""
    with geo.open_raster(path, "land-cover map") as src:
        win = geo.rasterio_window(src, window)
        valid = src.dataset_mask(window=win) > 0
        data = src.read([1, 2, 3] if src.count >= 3 else [1], window=win)
    return _map_values(data, valid, class_set, snap, path.name, warn)


def _map_values(data: np.ndarray, valid: np.ndarray, class_set: ClassSet, snap: bool, name: str,
                warn: bool) -> np.ndarray:
    """Bands of a map (1: raw indices, 3: colours) -> index map, invalid pixels ignore; errors name the file."""
    try:
        if data.shape[0] == 3:
            if data.dtype != np.uint8:
                raise ChangeAnywhereError(f"a colour map must have 8-bit bands, not {data.dtype}")
            rgb = np.ascontiguousarray(data.transpose(1, 2, 0))
            rgb[~valid] = class_set.classes[0].color  # any known colour: these pixels become ignore below
            out = class_set.colors_to_indices(rgb, snap=snap)
        else:
            if not np.issubdtype(data.dtype, np.integer):
                raise ChangeAnywhereError(f"an index map must have integer values, not {data.dtype}")
            raw = data[0].astype(np.int64)
            raw[~valid] = IGNORE_INDEX
            out = class_set.raw_to_indices(raw, source=name, warn=warn)
    except ChangeAnywhereError as err:
        raise type(err)(f"{name}: {err}") from None
    out[~valid] = IGNORE_INDEX
    return out

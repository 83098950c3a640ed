"""GeoTIFF in and out, through rasterio (the optional `geo` extra: pip install 'changeanywhere[geo]').

Grids, windows and raster bytes. A `Grid` is a raster's pixel grid: size, affine transform and CRS. TIFF images are
read with rasterio, whole or by windows (a large scene is never loaded whole), as HxWx3 uint8 from a band choice
(default bands 1, 2, 3; one band is repeated as grey); nodata and masked pixels are reported. Without rasterio,
plain TIFFs are read with Pillow and georeferenced ones raise `MissingExtraError`. Outputs keep the georeference:
a GeoTIFF with the tile's own transform, or a PNG with a world file (.pgw) and its CRS in `.png.aux.xml` (what
GDAL and QGIS read). Land-cover maps (class colours or index values, nodata -> ignore) are `maps.py`'s.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from .errors import ChangeAnywhereError, GridMismatchError, MissingExtraError, ParameterError
from .io import atomic_write_bytes, atomic_write_png, atomic_write_text

GEO_EXTRA = "pip install 'changeanywhere[geo]'"
TIFF_SUFFIXES = (".tif", ".tiff")
FORMATS = ("png", "tif")
RESAMPLING = ("nearest", "bilinear")
GDAL_CACHE_BYTES = 64 << 20  # GDAL's block cache, per process: what bounds the memory of windowed reads
STRIP_PIXELS = 1 << 22  # pixels per strip when a whole map is checked strip by strip
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# TIFF tags that make a TIFF a GeoTIFF: ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory
GEOTIFF_TAGS = (33550, 33922, 34264, 34735)

Window = tuple[int, int, int, int]  # x, y, width, height in pixels


# ------------------------------------------------------------------------------------------ the optional library


def has_rasterio() -> bool:
    """Whether rasterio can be imported."""
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


def rasterio_module(what: str) -> Any:
    """rasterio, or a `MissingExtraError` saying that `what` needs it and how to install it."""
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
    except ImportError:
        raise MissingExtraError(f"{what} needs rasterio, which is not installed: {GEO_EXTRA}") from None
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)  # plain TIFFs and PNGs are fine here
    return rasterio


def is_tiff(path: Any) -> bool:
    """A path whose suffix is .tif or .tiff."""
    return isinstance(path, str | Path) and Path(path).suffix.lower() in TIFF_SUFFIXES


def reads_with_rasterio(path: Any) -> bool:
    """TIFFs are read with rasterio when it is installed; otherwise with Pillow (see `check_pillow_tiff`)."""
    return is_tiff(path) and has_rasterio()


def check_pillow_tiff(im: Image.Image, where: Any) -> None:
    """Refuse a GeoTIFF opened with Pillow (rasterio is missing): its georeference would be silently lost."""
    tags = getattr(im, "tag_v2", None)
    if tags is not None and any(t in tags for t in GEOTIFF_TAGS):
        raise MissingExtraError(f"{Path(str(where)).name} is a GeoTIFF: reading it needs rasterio, which is not "
                                f"installed: {GEO_EXTRA}")


# ------------------------------------------------------------------------------------------------------ grids


@dataclass(frozen=True)
class Grid:
    """A raster's pixel grid: size, affine transform (a, b, c, d, e, f in rasterio's order: x = a·col + b·row + c,
    y = d·col + e·row + f) and CRS (an EPSG code such as 'EPSG:32640', or WKT; None when the file has none)."""

    width: int
    height: int
    transform: tuple[float, ...] = IDENTITY
    crs: str | None = None

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None or tuple(self.transform) != IDENTITY

    def window(self, x: int, y: int, width: int, height: int) -> Grid:
        """The grid of the `width`×`height` window whose top-left pixel is (x, y)."""
        a, b, c, d, e, f = self.transform
        return Grid(width, height, (a, b, c + a * x + b * y, d, e, f + d * x + e * y), self.crs)

    def to_meta(self) -> dict[str, Any]:
        """CRS and transform, for a sample's JSON record."""
        return {"crs": self.crs, "transform": [float(v) for v in self.transform]}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], width: int, height: int) -> Grid:
        return cls(int(width), int(height), tuple(float(v) for v in meta["transform"]), meta.get("crs"))

    def matches(self, other: Grid) -> bool:
        """Same size, CRS and transform (to a millionth of a pixel)."""
        if (self.width, self.height) != (other.width, other.height) or not same_crs(self.crs, other.crs):
            return False
        tol = 1e-6 * max(abs(self.transform[0]), abs(self.transform[4]), 1e-12)
        return all(abs(p - q) <= tol for p, q in zip(self.transform, other.transform, strict=True))

    def describe(self) -> str:
        a, _, c, _, e, f = self.transform
        text = f"{self.width}×{self.height} px"
        if self.georeferenced:
            text += f", pixel {abs(a):g}×{abs(e):g}, origin ({c:g}, {f:g})"
        return text + (f", {self.crs}" if self.crs else ", no CRS")


def same_crs(a: str | None, b: str | None) -> bool:
    """Whether two CRS strings name one CRS (compared by rasterio when they are spelled differently)."""
    if a == b or a is None or b is None:
        return a == b
    from rasterio.crs import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)


def _grid_of(src: Any) -> Grid:
    crs = src.crs.to_string() if src.crs else None
    return Grid(int(src.width), int(src.height), tuple(float(v) for v in tuple(src.transform)[:6]), crs)


def read_header(path: str | Path) -> tuple[Grid, int]:
    """The pixel grid and band count of a raster file, from its header."""
    with open_raster(path, "raster") as src:
        return _grid_of(src), int(src.count)


def read_grid(path: str | Path) -> Grid:
    """The pixel grid of a raster file, from its header."""
    return read_header(path)[0]


def pair_grid(map_grid: Grid, image_grid: Grid, map_path: Path, image_path: Path,
              resampling: str | None = None) -> Grid:
    """The grid the tiles of a map / image pair are cut from (the map's, or the image's when only it is
    georeferenced). Both must be on one pixel grid (when one has no georeference: of one size), unless the image
    is resampled onto the map's grid (`resampling`: both must then be georeferenced and overlap)."""
    if resampling is None:
        both = map_grid.georeferenced and image_grid.georeferenced
        same = map_grid.matches(image_grid) if both else (map_grid.width, map_grid.height) == (
            image_grid.width, image_grid.height)
        if not same:
            raise GridMismatchError(
                f"{map_path.name} and {image_path.name} are not on one pixel grid: the map is "
                f"{map_grid.describe()}, the image {image_grid.describe()}. Give a map and an image on the same grid "
                "(e.g. gdalwarp the map onto the image), or resample the image onto the map's grid with "
                "`resample` nearest or bilinear", "resample")
        return map_grid if map_grid.georeferenced or not image_grid.georeferenced else image_grid
    if resampling not in RESAMPLING:
        raise ParameterError(f"`resample` must be one of {', '.join(RESAMPLING)}, got {resampling!r}", "resample")
    if not (map_grid.crs and image_grid.crs):
        raise GridMismatchError(
            f"`resample` needs a georeferenced map and image (a CRS and a transform each): {map_path.name} is "
            f"{map_grid.describe()}, {image_path.name} is {image_grid.describe()}", "resample")
    if not _overlap(map_grid, image_grid):
        raise GridMismatchError(f"{map_path.name} ({map_grid.describe()}) and {image_path.name} "
                                f"({image_grid.describe()}) do not overlap: are they of one scene?", "resample")
    return map_grid


def _bounds(grid: Grid, crs: str | None) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a grid, in `crs`."""
    from rasterio.transform import Affine, array_bounds
    from rasterio.warp import transform_bounds

    box = array_bounds(grid.height, grid.width, Affine(*grid.transform))
    return transform_bounds(grid.crs, crs, *box) if crs and not same_crs(grid.crs, crs) else box


def _overlap(a: Grid, b: Grid) -> bool:
    l1, b1, r1, t1 = _bounds(a, a.crs)
    l2, b2, r2, t2 = _bounds(b, a.crs)
    return min(r1, r2) > max(l1, l2) and min(t1, t2) > max(b1, b2)


# ---------------------------------------------------------------------------------------------------- reading


@contextmanager
def open_raster(path: str | Path, what: str = "raster") -> Iterator[Any]:
    """An open rasterio dataset (GDAL's block cache bounded); GDAL errors become errors naming the file."""
    rasterio = rasterio_module(f"reading the TIFF {Path(path).name}")
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    if not Path(path).is_file():
        raise ChangeAnywhereError(f"{what} {path} not found")
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(path) as src:
            yield src
    except (RasterioError, CPLE_BaseError) as err:
        raise ChangeAnywhereError(f"cannot read {what} {Path(path).name}: the file is not a readable raster or is "
                                  f"truncated or corrupt ({err})") from None


@contextmanager
def _image_source(path: str | Path, onto: Grid | None, resampling: str | None) -> Iterator[Any]:
    """The image's dataset, or a view of it resampled onto the grid `onto`."""
    with open_raster(path, "image") as src:
        if onto is None:
            yield src
            return
        from rasterio.enums import Resampling
        from rasterio.transform import Affine
        from rasterio.vrt import WarpedVRT

        with WarpedVRT(src, crs=onto.crs, transform=Affine(*onto.transform), width=onto.width, height=onto.height,
                       resampling=Resampling[resampling or "nearest"]) as vrt:
            yield vrt


def rasterio_window(src: Any, window: Window | None) -> Any:
    """A rasterio window clipped to the raster (None: the whole raster)."""
    if window is None:
        return None
    from rasterio.windows import Window as RioWindow

    x, y, w, h = window
    x1, y1 = min(x + w, src.width), min(y + h, src.height)
    return RioWindow(x, y, max(x1 - x, 0), max(y1 - y, 0))


def band_indexes(count: int, bands: Sequence[int] | None, where: str) -> list[int]:
    """The three 1-based bands read as R, G, B: `bands` (one band: repeated as grey), else 1, 2, 3 (band 1 as grey
    for one- or two-band images)."""
    if bands is None:
        return [1, 2, 3] if count >= 3 else [1, 1, 1]
    chosen = [int(b) for b in bands]
    if len(chosen) not in (1, 3):
        raise ParameterError(f"`bands` takes 1 or 3 band numbers (R G B, counted from 1), got {chosen}", "bands")
    bad = [b for b in chosen if not 1 <= b <= count]
    if bad:
        raise ParameterError(f"{where} has {count} band(s) (1..{count}) but `bands` asks for {bad}", "bands")
    return chosen * 3 if len(chosen) == 1 else chosen


def to_uint8(data: np.ndarray, where: str) -> np.ndarray:
    """8-bit bands as they are, 16-bit bands scaled (0..65535 -> 0..255); other types are refused."""
    if data.dtype == np.uint8:
        return data
    if data.dtype == np.uint16:
        return ((data.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise ChangeAnywhereError(
        f"{where}: {data.dtype} bands are not supported (8- or 16-bit unsigned only); convert the image to 8 bits "
        "first, e.g. gdal_translate -ot Byte -scale MIN MAX 0 255 in.tif out.tif")


def read_image(path: str | Path, bands: Sequence[int] | None = None, window: Window | None = None,
               onto: Grid | None = None, resampling: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 uint8 pixels of a raster image (or of a window of it, clipped to the raster) and the HxW bool mask of
    its valid pixels (False: nodata or masked, set to 0). `onto`: read it resampled onto that grid."""
    name = Path(path).name
    with _image_source(path, onto, resampling) as src:
        indexes = band_indexes(src.count, bands, name)
        win = rasterio_window(src, window)
        data = to_uint8(src.read(indexes, window=win), name)
        valid = src.dataset_mask(window=win) > 0
    rgb = np.ascontiguousarray(data.transpose(1, 2, 0))
    rgb[~valid] = 0
    return rgb, valid


# ---------------------------------------------------------------------------------------------------- writing


def geotiff_bytes(array: np.ndarray, grid: Grid | None = None, colormap: dict[int, tuple[int, ...]] | None = None,
                  nodata: int | None = None) -> bytes:
    """An HxW or HxWx3 uint8 array as (Geo)TIFF bytes: deflate-compressed, with `grid`'s CRS and transform."""
    rasterio = rasterio_module("writing GeoTIFF outputs")
    from rasterio.io import MemoryFile
    from rasterio.transform import Affine

    bands = array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))
    profile: dict[str, Any] = {"driver": "GTiff", "width": bands.shape[2], "height": bands.shape[1],
                               "count": bands.shape[0], "dtype": "uint8", "compress": "deflate"}
    if grid is not None and grid.georeferenced:
        profile.update(crs=grid.crs, transform=Affine(*grid.transform))
    if bands.shape[0] == 3:
        profile["photometric"] = "RGB"
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(bands)
            if colormap:
                dst.write_colormap(1, colormap)
        return mem.read()


def write_raster(path: str | Path, array: np.ndarray, grid: Grid | None = None, *,
                 colormap: dict[int, tuple[int, ...]] | None = None, nodata: int | None = None) -> list[Path]:
    """Write an HxW or HxWx3 uint8 array atomically: `.tif` as a GeoTIFF (georeferenced when `grid` is), `.png` as
    PNG plus, for a georeferenced grid, a world file and its CRS. Returns the files written (none left on error)."""
    path = Path(path)
    if is_tiff(path):
        return [atomic_write_bytes(path, geotiff_bytes(array, grid, colormap, nodata))]
    written = [atomic_write_png(path, array)]
    try:
        if grid is not None and grid.georeferenced:
            written += write_world_file(path, grid)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return written


def world_file_path(path: Path) -> Path:
    """`x.png` -> `x.pgw` (the world-file convention: first and last letter of the suffix, then 'w')."""
    s = path.suffix
    return path.with_suffix(f".{s[1]}{s[-1]}w" if len(s) >= 3 else ".wld")


def write_world_file(path: Path, grid: Grid) -> list[Path]:
    """The world file of an image (its transform, referred to pixel centres) and `<name>.aux.xml` with its CRS."""
    a, b, c, d, e, f = grid.transform
    lines = [a, d, b, e, c + a / 2 + b / 2, f + d / 2 + e / 2]
    written = [atomic_write_text(world_file_path(path), "".join(f"{v!r}\n" for v in lines))]
    if grid.crs:
        from rasterio.crs import CRS

        wkt = escape(CRS.from_user_input(grid.crs).to_wkt())
        pam = f"<PAMDataset>\n  <SRS>{wkt}</SRS>\n</PAMDataset>\n"
        written.append(atomic_write_text(path.with_name(path.name + ".aux.xml"), pam))
    return written

"""What the app reads in: examples (real Dubai crops with their image, and procedural maps), uploaded maps (class
set detected from their colours) and real before images, fitted to the generator's size rules; the editor's
starting value and the brush legend.

Sizes: an upload claiming more than `MAX_PIXELS` pixels is refused from its header, before decoding (a
decompression bomb); a map larger than `MAX_SIDE` on its longer side is downscaled (nearest for the map, area
averaging for the image); every map is then centre-cropped to a multiple of the model's `size_multiple`. A map
smaller than one multiple is refused (there is nothing sensible to pad it with).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .. import geo
from ..classes import BUILTIN_CLASS_SETS, ClassSet, LandCoverClass, hex_to_rgb, pack_rgb, rgb_to_hex
from ..errors import ChangeAnywhereError, MapSizeError, UnknownColorsError
from ..examples import RealExample, make_example_map, real_examples
from ..maps import read_map
from ..runtime import MODEL_ENV

MAX_SIDE = 512  # longer side of an uploaded map above which it is downscaled
MAX_PIXELS = 40_000_000  # an upload whose header claims more pixels is refused before decoding
AUTO = "auto-detect"
EXAMPLE_SEEDS = (0, 1, 2, 3)
# colours the app shows instead of the dataset's where two classes look alike (display only: maps read, written
# and zipped keep the dataset's colours); Dubai's land #8429F6 and building #3C1098 are both purple
DISPLAY_COLOURS = {"dubai-landcover": {"building": "#D7263D"}}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+|!~])")


def md_escape(text: str) -> str:
    """`text` as literal Markdown (file names and messages may hold `*`, `_`, `<`, ...)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def _real_examples(class_set: ClassSet | None) -> dict[str, RealExample]:
    return {e.name: e for e in real_examples() if class_set is None or e.class_set == class_set.name}


def example_names(class_set: ClassSet | None = None) -> list[str]:
    """The real examples of `class_set` (all, when None) first, then the procedural ones (any class set)."""
    return [*_real_examples(class_set), *(f"Town (seed {s})" for s in EXAMPLE_SEEDS)]


def load_example(name: str, class_set: ClassSet, size: int) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """The example called `name` (see `example_names`): (map, its real image or None, notices). A procedural
    map is `size`² px; a real example keeps its own size and says where its image comes from."""
    real = _real_examples(class_set)
    if name in real:
        ex = real[name]
        before_map = read_map(_open_image(ex.map, "example map"), class_set)
        image = read_before_image(ex.image)
        return before_map, image, [f"Image and map: {ex.attribution}."]
    names = example_names(class_set)
    if name not in names:
        raise ChangeAnywhereError(f"unknown example {name!r}; choose one of: {', '.join(names)}")
    seed = EXAMPLE_SEEDS[names.index(name) - len(real)]
    return make_example_map(class_set, size=size, seed=seed), None, []


def _open_image(path: str | os.PathLike, what: str) -> Image.Image:
    """Open and decode an image file; any failure is a `ChangeAnywhereError` naming the file. The pixel count
    is checked from the header, before decoding."""
    name = Path(path).name
    try:
        im = Image.open(path)
    except FileNotFoundError:
        raise ChangeAnywhereError(f"the {what} {name} was not found (upload it again)") from None
    except Image.DecompressionBombError:
        raise ChangeAnywhereError(f"the {what} {name} has too many pixels to open safely: downscale it first") from None
    except Exception as err:  # noqa: BLE001 - a hostile file can make a decoder raise anything
        raise ChangeAnywhereError(
            f"cannot read the {what} {name}: not a readable image file ({type(err).__name__}): upload a PNG, "
            "JPEG or TIFF"
        ) from None
    geo.check_pillow_tiff(im, path)
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise ChangeAnywhereError(
            f"the {what} {name} claims {w:,}×{h:,} px, more than the {MAX_PIXELS / 1e6:.0f} million pixels this app "
            "opens: downscale it first"
        )
    try:
        im.load()
    except Exception as err:  # noqa: BLE001 - truncated or corrupt data: OSError, SyntaxError, struct.error ...
        im.close()
        raise ChangeAnywhereError(
            f"cannot read the {what} {name}: the file is truncated or corrupt ({type(err).__name__}); upload it "
            "again or save it as PNG"
        ) from None
    return im


def _raster_header(path: str | os.PathLike, what: str) -> tuple[geo.Grid, int]:
    """A TIFF's grid and band count, read with rasterio; more pixels than `MAX_PIXELS` are refused from its header."""
    grid, count = geo.read_header(path)
    if grid.width * grid.height > MAX_PIXELS:
        raise ChangeAnywhereError(
            f"the {what} {Path(path).name} claims {grid.width:,}×{grid.height:,} px, more than the "
            f"{MAX_PIXELS / 1e6:.0f} million pixels this app opens: downscale it first (e.g. gdal_translate -outsize)"
        )
    return grid, count


def _is_colour_map(im: Image.Image) -> bool:
    """RGB(A) maps, and palette maps whose used palette entries are the colours of some built-in class set."""
    if im.mode in ("RGB", "RGBA", "RGBX"):
        return True
    if im.mode != "P":
        return False
    raw = np.asarray(im)
    palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    used = np.unique(raw)
    if used.max() >= len(palette):
        return False
    colours = set(pack_rgb(palette[used]).tolist())
    return any(colours <= _known_colours(cs) for cs in BUILTIN_CLASS_SETS.values())


def _known_colours(cs: ClassSet) -> set[int]:
    return set(pack_rgb(np.array([*(c.color for c in cs.classes), *cs.ignore_colors], np.uint8)).tolist())


def detect_class_set(rgb: np.ndarray, candidates: Sequence[ClassSet]) -> ClassSet | None:
    """The first class set whose class and ignore colours cover every colour of an HxWx3 map, or None."""
    colours = set(np.unique(pack_rgb(rgb[..., :3])).tolist())
    return next((cs for cs in candidates if colours <= _known_colours(cs)), None)


def read_uploaded_map(
    path: str | os.PathLike, class_set: ClassSet, choice: str = AUTO, snap: bool = False
) -> tuple[np.ndarray, list[str]]:
    """An uploaded land-cover map file -> HxW index map in `class_set` (the generator's), and notices.

    Colour maps: the class set is detected from the colours (or `choice` names it); a map of another class set
    than the generator's is refused with the reason. Index maps (greyscale PNG) are read with the generator's
    class set. Unknown colours are an error unless `snap` maps each to its nearest class colour. TIFFs (GeoTIFFs
    too) are read with rasterio when installed: one band holds class indices, three or more class colours.
    """
    if choice not in (AUTO, *BUILTIN_CLASS_SETS):
        raise ChangeAnywhereError(
            f"unknown class set {choice!r}; choose {AUTO} or one of {', '.join(BUILTIN_CLASS_SETS)}"
        )
    if choice != AUTO and choice != class_set.name:
        raise ChangeAnywhereError(_wrong_class_set(BUILTIN_CLASS_SETS[choice], class_set))
    name = Path(path).name
    if geo.reads_with_rasterio(path):
        if _raster_header(path, "land-cover map")[1] < 3:
            return read_map(path, class_set), [f"{name}: read as an index map of {class_set.name!r} (GeoTIFF)."]
        rgb = geo.read_image(path)[0]
        return _colour_map(rgb, name, class_set, choice, snap)
    im = _open_image(path, "land-cover map")
    if not _is_colour_map(im):
        try:
            before_map = read_map(im, class_set)
        except ChangeAnywhereError as err:
            raise type(err)(f"{name}: {err}") from None
        hint = class_set.index_offset_hint(np.asarray(im))
        return before_map, [f"{name}: read as an index map of {class_set.name!r}.", *([f"⚠️ {hint}"] if hint else [])]
    return _colour_map(np.asarray(im.convert("RGB")), name, class_set, choice, snap)


def _colour_map(rgb: np.ndarray, name: str, class_set: ClassSet, choice: str, snap: bool
                ) -> tuple[np.ndarray, list[str]]:
    """An uploaded colour map's pixels -> index map of `class_set` (its class set detected, or as chosen)."""
    candidates = [class_set] if choice != AUTO else [class_set, *BUILTIN_CLASS_SETS.values()]
    found = detect_class_set(rgb, candidates)
    if found is not None and found.name != class_set.name:
        raise ChangeAnywhereError(f"{name}: " + _wrong_class_set(found, class_set))
    try:
        before_map = class_set.colors_to_indices(rgb, snap=snap)
    except UnknownColorsError as err:
        advice = (
            "" if "photo" in err.summary else f" Upload a lossless (PNG) map of {class_set.name!r}, or tick 'snap "
            "unknown colours' to map each to its nearest class."
        )
        raise UnknownColorsError(f"{name}: {err.summary}.{advice}", err.summary) from None
    notices = [f"{name}: unknown colours snapped to the nearest class colour."] if found is None else []
    return before_map, notices


def _wrong_class_set(found: ClassSet, model_set: ClassSet) -> str:
    return (
        f"this map uses the class set {found.name!r} ({', '.join(found.names)}), but the loaded generator "
        f"draws {model_set.name!r} ({', '.join(model_set.names)}). Upload a {model_set.name!r} map, or start "
        f"the app with a generator trained on {found.name!r} (--model / {MODEL_ENV})."
    )


def read_before_image(path: str | os.PathLike) -> np.ndarray:
    """An uploaded real before image -> HxWx3 uint8 (16-bit and 32-bit greyscale scaled down, not clipped; alpha
    and palettes dropped)."""
    if geo.reads_with_rasterio(path):
        _raster_header(path, "before image")
        return geo.read_image(path)[0]
    im = _open_image(path, "before image")
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        im = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(im.convert("RGB"))


def fit_to_model(
    before_map: np.ndarray, image: np.ndarray | None, multiple: int, max_side: int = MAX_SIDE
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Downscale a map (and its image) to at most `max_side`, then centre-crop both to a multiple of `multiple`."""
    h, w = before_map.shape
    if image is not None and image.shape[:2] != (h, w):
        raise MapSizeError(
            f"the before image is {image.shape[1]}×{image.shape[0]} px but the map is {w}×{h} px: "
            "upload the image that the map labels, at the same size"
        )
    notices = []
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        before_map = cv2.resize(before_map, size, interpolation=cv2.INTER_NEAREST)
        if image is not None:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        notices.append(f"The map was {w}×{h} px: downscaled to {size[0]}×{size[1]} px (limit {max_side} px).")
        h, w = before_map.shape
    h2, w2 = h // multiple * multiple, w // multiple * multiple
    if h2 == 0 or w2 == 0:
        raise MapSizeError(
            f"the map is {w}×{h} px; the generator needs at least {multiple}×{multiple} px (sides are multiples "
            f"of {multiple})"
        )
    if (h2, w2) != (h, w):
        y, x = (h - h2) // 2, (w - w2) // 2
        before_map = before_map[y : y + h2, x : x + w2]
        image = image[y : y + h2, x : x + w2] if image is not None else None
        notices.append(f"Centre-cropped from {w}×{h} to {w2}×{h2} px (sides must be multiples of {multiple}).")
    return np.ascontiguousarray(before_map), None if image is None else np.ascontiguousarray(image), notices


def display_class_set(class_set: ClassSet) -> ClassSet:
    """`class_set` with the colours the app shows (`DISPLAY_COLOURS`): the same classes, indices and names."""
    colours = DISPLAY_COLOURS.get(class_set.name, {})
    if not colours:
        return class_set
    classes = tuple(LandCoverClass(c.name, hex_to_rgb(colours[c.name]) if c.name in colours else c.color)
                    for c in class_set.classes)
    return dataclasses.replace(class_set, classes=classes)


def default_brush(class_set: ClassSet) -> int:
    """The class the brush starts on: one that paints a change on the commonest class, not that class itself
    (the first class a class set's first class may turn into, e.g. Dubai's land -> building), else class 1."""
    targets = class_set.transition_table.get(0, ())
    return int(targets[0]) if targets else min(1, class_set.num_classes - 1)


def editor_value(before_map: np.ndarray, class_set: ClassSet) -> dict[str, Any]:
    """The image editor's value for a map: its colours as an opaque RGBA background and one empty stroke layer.

    (Sending the empty layer also makes the editor report the user's first stroke: Gradio's editor ignores
    the first change after it is mounted, and adding a layer from the server counts as that one.)
    """
    rgb = class_set.indices_to_colors(before_map)
    rgba = np.dstack([rgb, np.full(before_map.shape, 255, np.uint8)])
    return {"background": rgba, "layers": [np.zeros_like(rgba)], "composite": rgba}


def legend_html(class_set: ClassSet) -> str:
    """A colour swatch and name per class (the brush colours of the editor)."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:14px;white-space:nowrap">'
        f'<span style="width:16px;height:16px;border:1px solid #888;margin-right:5px;background:{rgb_to_hex(c.color)}">'
        f"</span>{c.name}</span>"
        for c in class_set.classes
    )
    return f'<div style="line-height:2">{items}</div>'


def swatch_names_css(class_set: ClassSet, editor: str = "#editor") -> str:
    """CSS that writes each class's name under its swatch in the image editor's colour picker (Gradio shows bare
    swatches); swatches are matched by their colour."""
    rules = [f"{editor} menu.swatch {{ flex-wrap: wrap; row-gap: 18px; column-gap: 26px; padding-bottom: 16px; }}",
             f"{editor} menu.swatch button.color {{ position: relative; overflow: visible; }}",
             f"{editor} menu.swatch button.color::after {{ position: absolute; top: calc(100% + 2px); left: 50%; "
             "transform: translateX(-50%); font-size: 11px; line-height: 1; white-space: nowrap; "
             "color: var(--body-text-color); pointer-events: none; }"]
    for c in class_set.classes:
        name = c.name.replace("\\", "\\\\").replace('"', '\\"')
        rgb = ", ".join(str(v) for v in c.color)
        rules.append(f'{editor} menu.swatch button.color[style*="rgb({rgb})"]::after {{ content: "{name}"; }}')
    return "\n".join(rules) + "\n"

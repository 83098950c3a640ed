"""The generated folder on disk: its sub-folders, sample ids, and the one writer of a pair.

    A/<id>.png  B/<id>.png         real "before" tile, generated "after" tile
    label/<id>.png                 change label (`labels.LABEL_CONVENTION`: 0 / 255, 127 = ignore)
    label_A/<id>.png label_B/<id>.png   land-cover maps of both dates (class-set colours)
    change_type/<id>.png           0 = no change, else 1 + from * K + to (see README.md for the legend)
    meta/<id>.json                 the sample's record, written last: a sample is finished when it exists
    manifest.jsonl metadata.jsonl README.md generation.json [list/train.txt list/val.txt list/test.txt]

With `file_format` "tif" every tile is a GeoTIFF (maps: one band of class indices with the class colours as its
colour table); tiles of a georeferenced source carry the tile's own transform and the source's CRS (PNG tiles:
a world file `<id>.pgw` and `<id>.png.aux.xml` beside them).
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import geo
from ..classes import ClassSet
from ..io import atomic_write_text
from ..labels import change_label_image
from ..maps import write_map
from ..pairs import ChangePair

IMAGE_DIRS = ("A", "B", "label", "label_A", "label_B", "change_type")
MAP_DIRS = ("label_A", "label_B")
META_DIR = "meta"
LIST_DIR = "list"
SPLIT_NAMES = ("train", "val", "test")


def sample_id(index: int) -> str:
    return f"{index:06d}"


def write_pair(out: Path, index: int, pair: ChangePair, class_set: ClassSet, file_format: str = "png") -> None:
    """Write one pair's files atomically; its meta JSON goes last (it marks the sample finished). When a write
    fails (a full disk), the files of the pair already written are removed: no partial sample is left. A pair
    whose meta holds `geo` (its tile's CRS and transform) is written georeferenced."""
    sid = sample_id(index)
    name = f"{sid}.{file_format}"
    size = pair.before_map.shape
    grid = geo.Grid.from_meta(pair.meta["geo"], size[1], size[0]) if "geo" in pair.meta else None
    images = {
        "A": pair.before_image,
        "B": pair.after_image,
        "label": change_label_image(pair.before_map, pair.after_map, pair.label),
        "label_A": pair.before_map,
        "label_B": pair.after_map,
        "change_type": pair.change_type,
    }
    meta = {"id": sid, "index": index, **pair.meta, "files": {d: f"{d}/{name}" for d in IMAGE_DIRS}}
    written: list[Path] = []
    try:
        for folder in IMAGE_DIRS:
            path = out / folder / name
            if folder in MAP_DIRS:
                written += write_map(path, images[folder], class_set, grid)
            else:
                written += geo.write_raster(path, images[folder], grid)
        atomic_write_text(out / META_DIR / f"{sid}.json", json.dumps(meta, sort_keys=True) + "\n")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def make_folders(out: Path) -> None:
    for d in (*IMAGE_DIRS, META_DIR):
        (out / d).mkdir(parents=True, exist_ok=True)


def scan_done(out: Path) -> list[int]:
    """Indices of finished samples (their meta/<id>.json exists)."""
    meta = out / META_DIR
    if not meta.is_dir():
        return []
    return sorted(int(p.stem) for p in meta.iterdir() if p.suffix == ".json" and p.stem.isdigit())


def remove_temp_files(out: Path) -> int:
    """Delete temp files a killed run left behind (`.name.XXXX.tmp`, see io.py)."""
    n = 0
    for folder in (out, *(out / d for d in (*IMAGE_DIRS, META_DIR, LIST_DIR))):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
                    p.unlink(missing_ok=True)
                    n += 1
    return n

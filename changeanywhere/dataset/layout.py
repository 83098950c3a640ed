"""The generated folder on disk: its sub-folders, sample ids, and the one writer of a pair.

    A/<id>.png  B/<id>.png         real "before" tile, generated "after" tile
    label/<id>.png                 binary change label (0 / 255)
    label_A/<id>.png label_B/<id>.png   land-cover maps of both dates (class-set colours)
    change_type/<id>.png           0 = no change, else 1 + from * K + to (see README.md for the legend)
    meta/<id>.json                 the sample's record, written last: a sample is finished when it exists
    manifest.jsonl README.md generation.json [list/train.txt list/val.txt list/test.txt]
"""

from __future__ import annotations

import json
from pathlib import Path

from ..classes import ClassSet
from ..io import atomic_write_png, atomic_write_text
from ..labels import mask_image
from ..pairs import ChangePair

IMAGE_DIRS = ("A", "B", "label", "label_A", "label_B", "change_type")
META_DIR = "meta"
LIST_DIR = "list"
SPLIT_NAMES = ("train", "val", "test")


def sample_id(index: int) -> str:
    return f"{index:06d}"


def write_pair(out: Path, index: int, pair: ChangePair, class_set: ClassSet) -> None:
    """Write one pair's files atomically; its meta JSON goes last (it marks the sample finished). When a write
    fails (a full disk), the files of the pair already written are removed: no partial sample is left."""
    sid = sample_id(index)
    name = f"{sid}.png"
    images = {
        "A": pair.before_image,
        "B": pair.after_image,
        "label": mask_image(pair.change_mask),
        "label_A": class_set.indices_to_colors(pair.before_map),
        "label_B": class_set.indices_to_colors(pair.after_map),
        "change_type": pair.change_type,
    }
    meta = {"id": sid, "index": index, **pair.meta, "files": {d: f"{d}/{name}" for d in IMAGE_DIRS}}
    written: list[Path] = []
    try:
        for folder in IMAGE_DIRS:
            written.append(atomic_write_png(out / folder / name, images[folder]))
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

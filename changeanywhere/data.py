"""Training and evaluation data: image / land-cover map pairs from a folder, random crops, eval tiles.

A data folder holds `images/` and `labels/`; an image and its map pair up by file stem
(`images/tile1_001.jpg` ↔ `labels/tile1_001.png`). Maps are colour or index PNGs read with a `ClassSet`
into HxW uint8 index maps (255 = ignore). The Dubai split convention: every `*_008` and `*_009` pair is
validation, the rest is training.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .classes import ClassSet
from .errors import ChangeAnywhereError, MapSizeError
from .image_utils import load_rgb, uint8_to_tensor
from .labels import IGNORE_INDEX
from .maps import read_map

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".gif")
DEFAULT_VAL_PATTERN = ("*_008.*", "*_009.*")
_MAX_LISTED = 10

Pair = tuple[Path, Path]
LoadedPair = tuple[np.ndarray, np.ndarray]


def files_by_stem(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """Files of `folder` with one of `suffixes`, keyed by stem (several files per stem is an error)."""
    if not folder.is_dir():
        raise ChangeAnywhereError(f"folder {folder} not found (a data folder needs images/ and labels/)")
    out: dict[str, Path] = {}
    dups: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in suffixes:
            continue
        if p.stem in out:
            dups.append(f"{out[p.stem].name} / {p.name}")
        out[p.stem] = p
    if dups:
        raise ChangeAnywhereError(f"{folder}: several files share a stem: {', '.join(dups[:_MAX_LISTED])}")
    return out


def listing(names: Sequence[str]) -> str:
    """At most ten names, comma-separated, with how many more were left out."""
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def read_split_file(path: str | os.PathLike) -> set[str]:
    """Stems listed in a text file, one per line (extensions dropped; blanks and `#` comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ChangeAnywhereError(f"cannot read split file {path}: {err}") from None
    stems = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            known = Path(line).suffix.lower() in IMAGE_SUFFIXES + LABEL_SUFFIXES
            stems.add(Path(line).stem if known else line)
    return stems


def find_pairs(
    root: str | os.PathLike,
    split: str | None = None,
    val_pattern: str | Sequence[str] = DEFAULT_VAL_PATTERN,
    split_file: str | os.PathLike | None = None,
) -> list[Pair]:
    """(image, label) path pairs of `root/images` and `root/labels`; see `pair_folders`."""
    root = Path(root)
    if not root.is_dir():
        raise ChangeAnywhereError(f"data folder {root} not found")
    return pair_folders(root / "images", root / "labels", split, val_pattern, split_file)


def pair_folders(
    images_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    split: str | None = None,
    val_pattern: str | Sequence[str] = DEFAULT_VAL_PATTERN,
    split_file: str | os.PathLike | None = None,
) -> list[Pair]:
    """(image, label) path pairs of two folders, matched by file stem, sorted by stem.

    `split`: None (all pairs), "train" or "val". Validation pairs are those whose image file name matches
    one of the `val_pattern` globs, or, when `split_file` is given, whose stem it lists (the file replaces
    the pattern); training pairs are all the others. Empty folders and unpaired files raise
    `ChangeAnywhereError` naming the files.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    if split not in (None, "train", "val"):
        raise ChangeAnywhereError(f"split must be 'train', 'val' or None, got {split!r}")
    images = files_by_stem(images_dir, IMAGE_SUFFIXES)
    labels = files_by_stem(labels_dir, LABEL_SUFFIXES)
    if not images:
        raise ChangeAnywhereError(f"no images in {images_dir} (looked for {', '.join(IMAGE_SUFFIXES)})")
    if not labels:
        raise ChangeAnywhereError(f"no land-cover maps in {labels_dir} (looked for {', '.join(LABEL_SUFFIXES)})")
    no_label = sorted(set(images) - set(labels))
    no_image = sorted(set(labels) - set(images))
    if no_label or no_image:
        parts = []
        if no_label:
            parts.append(f"images without a label: {listing([images[s].name for s in no_label])}")
        if no_image:
            parts.append(f"labels without an image: {listing([labels[s].name for s in no_image])}")
        raise ChangeAnywhereError(
            f"{images_dir} and {labels_dir} do not pair up ({'; '.join(parts)}); images and maps pair by file stem"
        )
    stems = sorted(images)
    if split is not None:
        if split_file is not None:
            listed = read_split_file(split_file)
            unknown = sorted(listed - set(stems))
            if unknown:
                raise ChangeAnywhereError(
                    f"split file {split_file} lists stems not in {images_dir}: {listing(unknown)}"
                )
            is_val = {s: s in listed for s in stems}
        else:
            patterns = (val_pattern,) if isinstance(val_pattern, str) else tuple(val_pattern)
            is_val = {s: any(fnmatch.fnmatch(images[s].name, p) for p in patterns) for s in stems}
        stems = [s for s in stems if is_val[s] == (split == "val")]
        if not stems:
            raise ChangeAnywhereError(f"the {split!r} split of {images_dir} is empty (val pattern {val_pattern})")
    return [(images[s], labels[s]) for s in stems]


def load_pairs(pairs: Sequence[Pair], class_set: ClassSet, snap: bool = False) -> list[LoadedPair]:
    """Read each pair into (HxWx3 uint8 image, HxW uint8 index map); size mismatches raise `MapSizeError`."""
    out = []
    for image_path, label_path in pairs:
        image = load_rgb(image_path)
        label = read_map(label_path, class_set, snap=snap)
        if image.shape[:2] != label.shape:
            raise MapSizeError(
                f"{label_path} is {label.shape[1]}×{label.shape[0]} px but its image {image_path} is "
                f"{image.shape[1]}×{image.shape[0]} px"
            )
        out.append((image, label))
    return out


def pad_to(image: np.ndarray, label: np.ndarray, size: int) -> LoadedPair:
    """Pad bottom/right up to `size`: image by reflection, label with the ignore index."""
    h, w = label.shape
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return image, label
    img = image
    while img.shape[0] < size or img.shape[1] < size:  # reflect pads at most size-1 per pass
        ah = min(size - img.shape[0], img.shape[0] - 1) if img.shape[0] > 1 else size - img.shape[0]
        aw = min(size - img.shape[1], img.shape[1] - 1) if img.shape[1] > 1 else size - img.shape[1]
        mode = "reflect" if img.shape[0] > 1 and img.shape[1] > 1 else "edge"
        img = np.pad(img, ((0, max(ah, 0)), (0, max(aw, 0)), (0, 0)), mode=mode)
    lab = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
    return img, lab


def to_tensors(image: np.ndarray, label: np.ndarray) -> dict[str, torch.Tensor]:
    """HxWx3 uint8 + HxW uint8 -> {"image": 3xHxW float in [-1, 1], "label": HxW long}."""
    return {"image": uint8_to_tensor(image), "label": torch.from_numpy(np.ascontiguousarray(label)).long()}


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/90° rotations (k in 0..7) of an HxW(xC) array."""
    out = np.rot90(array, k % 4, axes=(0, 1))
    return out[:, ::-1] if k >= 4 else out


class LandCoverCrops(Dataset):
    """Random `crop_size`² crops of loaded pairs, with random flips and 90° rotations.

    Item `i` of epoch `e` is drawn from a generator seeded by (seed, e, i): runs are reproducible and
    a different `seed` (e.g. seed + rank) gives different crops. Pairs are drawn in proportion to their
    area. Images smaller than the crop are reflect-padded; their labels are padded with 255 (ignore).
    """

    def __init__(
        self,
        pairs_loaded: Sequence[LoadedPair],
        crop_size: int = 256,
        length: int | None = None,
        augment: bool = True,
        seed: int = 0,
    ):
        if not pairs_loaded:
            raise ChangeAnywhereError("no image/label pairs to crop from")
        self.pairs = [pad_to(img, lab, crop_size) for img, lab in pairs_loaded]
        self.crop_size = int(crop_size)
        self.length = int(length) if length is not None else len(self.pairs)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        area = np.array([lab.size for _, lab in self.pairs], dtype=np.float64)
        self._weights = area / area.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def crop(self, index: int) -> LoadedPair:
        """The (image, label) uint8 crop of item `index` in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        image, label = self.pairs[int(rng.choice(len(self.pairs), p=self._weights))]
        s = self.crop_size
        y = int(rng.integers(0, label.shape[0] - s + 1))
        x = int(rng.integers(0, label.shape[1] - s + 1))
        image, label = image[y : y + s, x : x + s], label[y : y + s, x : x + s]
        if self.augment:
            k = int(rng.integers(0, 8))
            image, label = dihedral(image, k), dihedral(label, k)
        return image, label

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return to_tensors(*self.crop(index))


def tiles(pairs_loaded: Sequence[LoadedPair], size: int) -> list[LoadedPair]:
    """Deterministic non-overlapping `size`² tiles of every pair (row-major, partial edges dropped);
    a pair smaller than `size` gives one padded tile."""
    out = []
    for image, label in pairs_loaded:
        image, label = pad_to(image, label, size)
        h, w = label.shape
        for y in range(0, h - size + 1, size):
            for x in range(0, w - size + 1, size):
                out.append((image[y : y + size, x : x + size], label[y : y + size, x : x + size]))
    return out


def center_crops(pairs_loaded: Sequence[LoadedPair], size: int) -> list[LoadedPair]:
    """One centred `size`² crop per pair (padded when smaller)."""
    out = []
    for image, label in pairs_loaded:
        image, label = pad_to(image, label, size)
        h, w = label.shape
        y, x = (h - size) // 2, (w - size) // 2
        out.append((image[y : y + size, x : x + size], label[y : y + size, x : x + size]))
    return out


def spread(items: Sequence, n: int) -> list:
    """`n` items spread evenly over the list, first and last included (all of them when there are ≤ n)."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def collate_tiles(items: Sequence[LoadedPair]) -> dict[str, torch.Tensor]:
    """A list of (image, label) uint8 arrays -> a batch dict like the dataset's."""
    ts = [to_tensors(i, lab) for i, lab in items]
    return {"image": torch.stack([t["image"] for t in ts]), "label": torch.stack([t["label"] for t in ts])}

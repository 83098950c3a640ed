"""Dataset generation at scale: the plan, the per-sample job, atomic writing, statistics and the dataset card.

A generated folder `OUT` is laid out the way change-detection toolboxes read it:

    A/<id>.png  B/<id>.png         real "before" tile, generated "after" tile
    label/<id>.png                 binary change label (0 / 255)
    label_A/<id>.png label_B/<id>.png   land-cover maps of both dates (class-set colours)
    change_type/<id>.png           0 = no change, else 1 + from * K + to (see README.md for the legend)
    meta/<id>.json                 the sample's record, written last: a sample is finished when it exists
    manifest.jsonl README.md generation.json [list/train.txt list/val.txt list/test.txt]

Determinism. Sample i's seed is `derive_seed(global_seed, i)`; its source tile, its change events and its
diffusion noise all derive from that seed, never from a process rank or a batch position. Batch k is always
the samples [kB, (k+1)B) and is computed in full (a partly finished batch, or the last batch past `num`, is
recomputed as the same full batch and only its missing samples are written), so a sample's bytes do not
depend on how a run was interrupted, resumed, grown or split across processes. Whole batches are dealt to
ranks round-robin from the list of unfinished batches, which the main process computes and broadcasts.
Every file goes through a temp file + rename; `manifest.jsonl`, `README.md` and the split lists are rebuilt
by the main process at the end from the per-sample records, sorted, without timestamps.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .classes import ClassSet
from .data import DEFAULT_VAL_PATTERN, listing, pad_to, pair_folders
from .errors import ChangeAnywhereError, MapSizeError
from .events import EVENT_TYPES, ChangeResult, change_type_legend, simulate_changes
from .image_utils import load_rgb, tensor_to_uint8
from .io import atomic_write_png, atomic_write_text

FORMAT = "changeanywhere-generate/1"
IMAGE_DIRS = ("A", "B", "label", "label_A", "label_B", "change_type")
META_DIR = "meta"
LIST_DIR = "list"
SPLIT_NAMES = ("train", "val", "test")
# keys of generation.json a rerun may change: `num` may grow, `splits` may be (re)set; `info` is descriptive
MUTABLE_KEYS = ("num", "splits")
INFO_KEY = "info"
_TILE, _EVENTS, _DIFFUSION, _SPLIT = 0, 1, 2, 3
_RATIO_BINS = (0.0, 0.01, 0.05, 0.10, 0.25, 1.0)


class GenerationError(ChangeAnywhereError):
    """Bad input or output folder for `generate`."""


class SettingsMismatchError(GenerationError):
    """The output folder was made with different settings."""


# --------------------------------------------------------------------------------------------------- seeds


def derive_seed(*entropy: int) -> int:
    """A 63-bit seed from non-negative integers (a `SeedSequence` hash: independent streams per key)."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def sample_seed(global_seed: int, index: int) -> int:
    """Seed of sample `index`: depends only on (global seed, index), never on ranks or batches."""
    return derive_seed(global_seed, index)


def sample_id(index: int) -> str:
    return f"{index:06d}"


# --------------------------------------------------------------------------------------------------- one pair


@dataclass(frozen=True)
class PairSettings:
    """How one pair is made from a before tile: change events, then the latent-mixing sampler."""

    steps: int = 50
    eta: float = 1.0
    content_scale: tuple[float, float] = (1.0, 1.0)  # the paper's: (0.7, 1.0) with blend "latent"
    blend: str = "pixel"
    feather: int = 6
    drift: float = 1.0  # strength of the radiometric drift of B (0: off)
    guidance_scale: float | None = None  # None: the model's default
    num_events: tuple[int, int] = (1, 6)
    event_types: tuple[str, ...] = EVENT_TYPES
    min_area: int = 64
    max_event_tries: int = 10  # re-draw the events (next derived seed) while they change nothing

    def resolved(self, pipe: Any) -> PairSettings:
        """The same settings with the guidance scale resolved to a number."""
        if self.guidance_scale is not None:
            return self
        return PairSettings(**{**asdict(self), "guidance_scale": float(pipe.config.default_guidance_scale)})

    def check(self) -> None:
        if self.steps < 1:
            raise GenerationError(f"steps must be at least 1, got {self.steps}")
        if self.eta < 0:
            raise GenerationError(f"eta must be ≥ 0, got {self.eta}")
        lo, hi = self.content_scale
        if not 0.0 <= lo <= hi <= 1.0:
            raise GenerationError(f"content scale must satisfy 0 ≤ low ≤ high ≤ 1, got {lo}:{hi}")
        if self.blend not in ("pixel", "latent") or self.feather < 0 or not 0.0 <= self.drift <= 3.0:
            raise GenerationError(f"blend must be pixel|latent, feather ≥ 0 and drift in [0, 3]; got "
                                  f"{self.blend}, {self.feather}, {self.drift}")
        elo, ehi = self.num_events
        if not 0 <= elo <= ehi:
            raise GenerationError(f"events per sample must satisfy 0 ≤ low ≤ high, got {elo}:{ehi}")
        unknown = sorted(set(self.event_types) - set(EVENT_TYPES))
        if unknown or not self.event_types:
            raise GenerationError(f"unknown event types {unknown}; choose from {', '.join(EVENT_TYPES)}")
        if self.min_area < 1 or self.max_event_tries < 1:
            raise GenerationError("min_area and max_event_tries must be at least 1")


def simulate_events(
    before_map: np.ndarray, class_set: ClassSet, seed: int, settings: PairSettings
) -> tuple[ChangeResult, int, int]:
    """Change events for a pair seed: (result, events seed used, attempts). Re-draws while nothing changed."""
    attempts = 1 if settings.num_events[1] == 0 else settings.max_event_tries
    for attempt in range(attempts):
        events_seed = derive_seed(seed, _EVENTS, attempt)
        result = simulate_changes(
            before_map,
            class_set,
            seed=events_seed,
            num_events=settings.num_events,
            event_types=settings.event_types,
            min_area=settings.min_area,
        )
        if result.change_mask.any():
            break
    return result, events_seed, attempt + 1


def pair_stats(result: ChangeResult, class_set: ClassSet) -> dict[str, Any]:
    """Pixel statistics of one pair: changed pixels, from->to transitions, class pixels of both maps."""
    k = class_set.num_classes
    legend = change_type_legend(class_set)
    changed = int(result.change_mask.sum())
    codes = np.bincount(result.change_type[result.change_mask], minlength=1 + k * k)
    names = [*class_set.names, class_set.ignore_name]

    def class_pixels(m: np.ndarray) -> dict[str, int]:
        counts = np.bincount(m.ravel(), minlength=256)
        return {n: int(c) for n, c in zip(names, [*counts[:k], counts[ClassSet.IGNORE]], strict=True)}

    return {
        "changed_pixels": changed,
        "pixels": int(result.change_mask.size),
        "change_ratio": round(changed / max(result.change_mask.size, 1), 6),
        "transitions": {legend[c]: int(codes[c]) for c in sorted(legend) if codes[c]},
        "class_pixels_A": class_pixels(result.before),
        "class_pixels_B": class_pixels(result.after),
    }


def render_pairs(
    pipe: Any,
    images: Sequence[np.ndarray],
    results: Sequence[ChangeResult],
    seeds: Sequence[int],
    class_set: ClassSet,
    settings: PairSettings,
    callback_on_step_end: Callable | None = None,
) -> list[dict[str, Any]]:
    """Generate the after images of a batch of simulated changes; one record (arrays + `meta`) per pair.

    A record holds `A` (HxWx3 uint8 before image), `B` (generated after image), `label` (0/255 change mask),
    `label_A` / `label_B` (index maps), `change_type` (codes) and `meta` (seeds, events, content scale,
    pixel statistics: JSON-serialisable).
    """
    s = settings.resolved(pipe)
    out = pipe.change(
        [np.asarray(im) for im in images],
        [r.before for r in results],
        [r.after for r in results],
        content_scale=s.content_scale,
        blend=s.blend,
        feather=s.feather,
        drift=s.drift,
        num_inference_steps=s.steps,
        eta=s.eta,
        guidance_scale=s.guidance_scale,
        seed=[derive_seed(sd, _DIFFUSION) for sd in seeds],
        output_type="pt",
        callback_on_step_end=callback_on_step_end,
    )
    after = tensor_to_uint8(out.images)
    records = []
    for i, r in enumerate(results):
        meta = {
            "seed": int(seeds[i]),
            "diffusion_seed": int(out.seeds[i]),
            "content_scale": float(out.content_scales[i]),
            "mix_steps": int(out.mix_steps[i]),
            "drift": out.drifts[i],
            "events": r.events,
            **pair_stats(r, class_set),
        }
        records.append(
            {
                "A": np.ascontiguousarray(np.asarray(images[i], dtype=np.uint8)),
                "B": after[i],
                "label": r.change_mask.astype(np.uint8) * 255,
                "label_A": r.before,
                "label_B": r.after,
                "change_type": r.change_type,
                "meta": meta,
            }
        )
    return records


def make_pairs(
    pipe: Any,
    images: Sequence[Any],
    before_maps: Sequence[np.ndarray],
    class_set: ClassSet,
    seeds: Sequence[int],
    settings: PairSettings = PairSettings(),
) -> list[dict[str, Any]]:
    """Simulate change events on each before map and generate the after images (see `render_pairs`).

    A pair's result depends only on its seed (events seed and diffusion seed both derive from it), up to the
    float rounding of the batch it is computed in.
    """
    settings.check()
    results, extra = [], []
    for m, sd in zip(before_maps, seeds, strict=True):
        result, events_seed, attempts = simulate_events(np.asarray(m), class_set, int(sd), settings)
        results.append(result)
        extra.append({"events_seed": events_seed, "event_attempts": attempts})
    records = render_pairs(pipe, [load_rgb(im) for im in images], results, seeds, class_set, settings)
    for rec, e in zip(records, extra, strict=True):
        rec["meta"].update(e)
    return records


def make_pair(
    pipe: Any,
    image: Any,
    before_map: np.ndarray,
    class_set: ClassSet,
    seed: int,
    settings: PairSettings = PairSettings(),
) -> dict[str, Any]:
    """One change pair from a before image and its land-cover map: a dict of arrays plus `meta`."""
    return make_pairs(pipe, [image], [before_map], class_set, [seed], settings)[0]


# --------------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    stem: str
    image: Path
    label: Path
    width: int
    height: int

    def key(self) -> list[Any]:
        """What identifies the source in generation.json's fingerprint (names, pixel and byte sizes)."""
        return [
            self.stem,
            self.image.name,
            self.label.name,
            self.width,
            self.height,
            self.image.stat().st_size,
            self.label.stat().st_size,
        ]


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as err:
        raise GenerationError(f"cannot read {path}: {err}") from None


def find_sources(
    images_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    split: str | None = None,
    val_pattern: Sequence[str] = DEFAULT_VAL_PATTERN,
) -> list[Source]:
    """Image/label pairs of two folders, matched by file stem and sorted; sizes read from the file headers.

    `split`: None (all), "train" or "val" (val = image names matching a `val_pattern` glob).
    """
    for what, folder in (("--images", images_dir), ("--labels", labels_dir)):
        if not Path(folder).is_dir():
            raise GenerationError(f"{what} folder {folder} not found")
    pairs = pair_folders(images_dir, labels_dir, split, val_pattern)
    sources, bad = [], []
    for image, label in pairs:
        iw, ih = _image_size(image)
        lw, lh = _image_size(label)
        if (iw, ih) != (lw, lh):
            bad.append(f"{image.name} {iw}×{ih} vs {label.name} {lw}×{lh}")
        sources.append(Source(image.stem, image, label, iw, ih))
    if bad:
        raise MapSizeError(f"images and their maps differ in size: {listing(bad)}")
    return sources


def sources_fingerprint(sources: Sequence[Source]) -> str:
    return _sha256_json([s.key() for s in sources])


class SourceCache:
    """Decoded (image, index map) pairs, padded to at least `size`, kept up to a memory budget (LRU)."""

    def __init__(
        self, sources: Sequence[Source], class_set: ClassSet, size: int, snap: bool = False, budget: int = 2 << 30
    ):
        self.sources = list(sources)
        self.class_set = class_set
        self.size = int(size)
        self.snap = snap
        self.budget = int(budget)
        self._items: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0

    def get(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k in self._items:
            self._items.move_to_end(k)
            return self._items[k]
        src = self.sources[k]
        image = load_rgb(src.image)
        label = self.class_set.read_map(src.label, snap=self.snap)
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


class TilePicker:
    """Where sample i's before tile comes from: a random `size`² crop (source drawn by area), or the i-th tile
    of the grid of non-overlapping tiles (cycled)."""

    def __init__(self, sources: Sequence[Source], size: int, tiling: str = "random"):
        if tiling not in ("random", "grid"):
            raise GenerationError(f"tiling must be 'random' or 'grid', got {tiling!r}")
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
        rng = np.random.default_rng(derive_seed(seed, _TILE))
        k = int(rng.choice(len(self.dims), p=self.weights))
        h, w = self.dims[k]
        y = int(rng.integers(0, h - self.size + 1))
        x = int(rng.integers(0, w - self.size + 1))
        return k, x, y


# --------------------------------------------------------------------------------------------------- settings


@dataclass
class GenerateConfig:
    """Everything `generate` needs (the CLI's arguments)."""

    images: Path
    labels: Path
    classes: str | ClassSet
    out: Path
    num: int
    model: str | None = None
    size: int = 256
    pair: PairSettings = field(default_factory=PairSettings)
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    tiling: str = "random"
    split: str | None = None
    val_pattern: tuple[str, ...] = DEFAULT_VAL_PATTERN
    snap_colors: bool = False
    splits: tuple[float, ...] | None = None  # train:val[:test] ratios; None keeps the folder's
    dry_run: bool = False
    progress: bool = True

    def check(self) -> None:
        for name in ("num", "size", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise GenerationError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise GenerationError(f"seed must be ≥ 0, got {self.seed}")
        if self.tiling not in ("random", "grid"):
            raise GenerationError(f"tiling must be 'random' or 'grid', got {self.tiling!r}")
        if self.splits is not None:
            if not 2 <= len(self.splits) <= 3 or min(self.splits) < 0 or sum(self.splits) <= 0:
                raise GenerationError(
                    f"splits must be 2 or 3 non-negative ratios (train:val[:test]), got {self.splits}"
                )
        self.pair.check()


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def model_fingerprint(pipe: Any) -> dict[str, str]:
    """sha256 of the components' configs and of their weights (as loaded, in their dtype)."""
    configs = {"pipeline": {k: v for k, v in dict(pipe.config).items() if not k.startswith("_")}}
    weights = hashlib.sha256()
    for name in ("vae", "semantic_encoder", "unet", "scheduler"):
        comp = getattr(pipe, name)
        configs[name] = {k: v for k, v in dict(comp.config).items() if not k.startswith("_")}
        if isinstance(comp, torch.nn.Module):
            for key, t in sorted(comp.state_dict().items()):
                weights.update(f"{name}.{key}:{t.dtype}:{tuple(t.shape)}".encode())
                weights.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    configs["pipeline"].pop("vae", None)
    return {"config_sha256": _sha256_json(configs), "weights_sha256": weights.hexdigest()}


def dataset_settings(
    cfg: GenerateConfig, pipe: Any, class_set: ClassSet, sources: Sequence[Source], dtype: torch.dtype
) -> dict[str, Any]:
    """The contents of generation.json: the settings that define the dataset (plus `num`, `splits`, `info`)."""
    p = cfg.pair.resolved(pipe)
    return {
        "format": FORMAT,
        "model": model_fingerprint(pipe),
        "dtype": str(dtype).removeprefix("torch."),
        "class_set": class_set.to_dict(),
        "sources": {
            "count": len(sources),
            "fingerprint": sources_fingerprint(sources),
            "split": cfg.split or "all",
            "val_pattern": list(cfg.val_pattern) if cfg.split else None,
            "snap_colors": bool(cfg.snap_colors),
        },
        "size": int(cfg.size),
        "tiling": cfg.tiling,
        "seed": int(cfg.seed),
        "batch_size": int(cfg.batch_size),
        "sampler": {
            "steps": p.steps,
            "eta": float(p.eta),
            "content_scale": [float(v) for v in p.content_scale],
            "blend": p.blend,
            "feather": int(p.feather),
            "drift": float(p.drift),
            "guidance_scale": float(p.guidance_scale),
        },
        "events": {
            "num_events": [int(v) for v in p.num_events],
            "event_types": list(p.event_types),
            "min_area": int(p.min_area),
            "max_event_tries": int(p.max_event_tries),
        },
        "num": int(cfg.num),
        "splits": _normalise_splits(cfg.splits),
        INFO_KEY: {
            "model": str(cfg.model) if cfg.model else "embedded default (checkpoints/changeanywhere-dubai-256)",
            "images": str(cfg.images),
            "labels": str(cfg.labels),
        },
    }


def _normalise_splits(splits: Sequence[float] | None) -> dict[str, float] | None:
    if splits is None:
        return None
    total = float(sum(splits))
    return {name: round(float(v) / total, 6) for name, v in zip(SPLIT_NAMES, splits, strict=False)}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "class_set":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def merge_settings(old: dict[str, Any] | None, new: dict[str, Any], where: Path) -> dict[str, Any]:
    """Check a rerun's settings against the folder's; return what generation.json should now hold."""
    if old is None:
        return new
    a = _flatten({k: v for k, v in old.items() if k not in (*MUTABLE_KEYS, INFO_KEY)})
    b = _flatten({k: v for k, v in new.items() if k not in (*MUTABLE_KEYS, INFO_KEY)})
    diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diff:
        shown = "; ".join(f"{k}: {_short(a.get(k))} in the folder, {_short(b.get(k))} now" for k in diff[:8])
        more = f" (and {len(diff) - 8} more)" if len(diff) > 8 else ""
        hint = ""
        if "batch_size" in diff:
            hint = " (the batch size fixes which samples are computed together, hence their exact bytes)"
        raise SettingsMismatchError(
            f"{where} was generated with different settings: {shown}{more}{hint}. Rerun with the folder's "
            f"settings (see {where / 'generation.json'}) to resume or extend it, or choose a new --out"
        )
    if new["num"] < old["num"]:
        raise SettingsMismatchError(
            f"{where} was planned for {old['num']} samples; --num may grow but not shrink (pass --num "
            f"{old['num']} or more, or choose a new --out)"
        )
    merged = dict(old)
    merged["num"] = new["num"]
    if new["splits"] is not None:
        merged["splits"] = new["splits"]
    return merged


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """Which batches each rank makes. Batch k = samples [k·B, (k+1)·B), computed in full."""

    num: int
    batch_size: int
    world: int
    done: list[int]  # finished samples below num
    pending: list[int]  # batches with an unfinished sample
    shares: list[list[int]]  # batches of each rank

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num / self.batch_size)

    def to_make(self, batches: Sequence[int]) -> list[int]:
        done = set(self.done)
        b = self.batch_size
        return [i for k in batches for i in range(k * b, min((k + 1) * b, self.num)) if i not in done]


def make_plan(num: int, batch_size: int, done: Sequence[int], world: int = 1) -> Plan:
    """Unfinished batches, dealt round-robin to `world` ranks (no duplicates, no gaps)."""
    done = sorted(i for i in set(done) if i < num)
    finished = set(done)
    b = batch_size
    pending = [
        k for k in range(math.ceil(num / b)) if any(i not in finished for i in range(k * b, min((k + 1) * b, num)))
    ]
    return Plan(num, b, world, done, pending, [pending[r::world] for r in range(world)])


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


# --------------------------------------------------------------------------------------------------- writing


def write_sample(out: Path, index: int, record: dict[str, Any], class_set: ClassSet) -> None:
    """Write one sample's files atomically; its meta JSON goes last (it marks the sample finished)."""
    sid = sample_id(index)
    name = f"{sid}.png"
    atomic_write_png(out / "A" / name, record["A"])
    atomic_write_png(out / "B" / name, record["B"])
    atomic_write_png(out / "label" / name, record["label"])
    class_set.write_map(record["label_A"], out / "label_A" / name)
    class_set.write_map(record["label_B"], out / "label_B" / name)
    atomic_write_png(out / "change_type" / name, record["change_type"])
    meta = {"id": sid, "index": index, **record["meta"], "files": {d: f"{d}/{name}" for d in IMAGE_DIRS}}
    atomic_write_text(out / META_DIR / f"{sid}.json", json.dumps(meta, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------------- running


@dataclass
class GenerateResult:
    """What a call of `generate` did (the main process's view; other ranks get `is_main=False`)."""

    is_main: bool
    out: Path
    plan: Plan
    settings: dict[str, Any]
    sources: list[Source]
    device: str
    made: int = 0
    seconds: float = 0.0
    stats: dict[str, Any] | None = None
    dry_run: bool = False


def generate(cfg: GenerateConfig, pipe: Any = None) -> GenerateResult:
    """Generate (or resume, or extend) the dataset at `cfg.out`; under torchrun / accelerate launch, each
    process makes its share of the batches and the main process writes the manifest and card at the end."""
    from accelerate import PartialState

    from .hub import load_pipeline, resolve_device

    cfg.check()
    class_set = cfg.classes if isinstance(cfg.classes, ClassSet) else ClassSet.load(cfg.classes)
    sources = find_sources(cfg.images, cfg.labels, cfg.split, cfg.val_pattern)
    out = Path(cfg.out)
    _check_out_folder(out)

    device = resolve_device(cfg.device)
    state = PartialState(cpu=device == "cpu")
    if state.num_processes > 1 and device != "cpu":
        device = str(state.device)
    if pipe is None:
        pipe = load_pipeline(cfg.model, device=device, dtype=cfg.dtype)
    dtype = pipe.unet.dtype  # as loaded (a pipeline passed in keeps its own)
    _check_model(pipe, class_set, cfg.size)
    settings = dataset_settings(cfg, pipe, class_set, sources, dtype)
    cache = SourceCache(sources, class_set, cfg.size, cfg.snap_colors)

    def prepare() -> tuple[dict[str, Any], list[int]]:
        old = _read_settings(out)
        merged = merge_settings(old, settings, out)
        validate_sources(sources, class_set, cfg.snap_colors, cache)
        if cfg.dry_run:
            return merged, scan_done(out) if out.is_dir() else []
        for d in (*IMAGE_DIRS, META_DIR):
            (out / d).mkdir(parents=True, exist_ok=True)
        remove_temp_files(out)
        if merged != old:
            atomic_write_text(out / "generation.json", json.dumps(merged, indent=2, sort_keys=True) + "\n")
        return merged, scan_done(out)

    merged, done = _on_main(state, prepare)
    plan = make_plan(cfg.num, cfg.batch_size, done, state.num_processes)
    result = GenerateResult(state.is_main_process, out, plan, merged, sources, device, dry_run=cfg.dry_run)
    if cfg.dry_run:
        return result

    start = time.perf_counter()
    share = plan.shares[state.process_index]
    show = state.is_main_process and cfg.progress
    run_batches(pipe, cfg, class_set, sources, plan, share, out, show_progress=show, cache=cache)
    state.wait_for_everyone()
    if state.is_main_process:
        result.stats = finalize(out, merged, class_set)
        result.made = len(plan.to_make(plan.pending))
        result.seconds = time.perf_counter() - start
    return result


def _on_main(state: Any, fn: Callable[[], Any]) -> Any:
    """Run `fn` on the main process and hand its result (or its error) to every process."""
    if state.num_processes == 1:
        return fn()
    from accelerate.utils import broadcast_object_list

    box: list[Any] = [None]
    if state.is_main_process:
        try:
            box[0] = ("ok", fn())
        except Exception as err:  # every rank raises it, none waits forever
            box[0] = ("error", err)
    broadcast_object_list(box, from_process=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


def _check_out_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise GenerationError(f"--out {out} exists and is not a folder")
    if out.is_dir() and not (out / "generation.json").is_file():
        visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if visible:
            raise GenerationError(
                f"--out {out} is not empty ({listing(sorted(visible))}) and holds no generation.json: "
                "it was not made by `changeanywhere generate`; choose a new or empty folder"
            )


def _read_settings(out: Path) -> dict[str, Any] | None:
    path = out / "generation.json"
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GenerationError(f"cannot read {path}: {err}; restore it or choose a new --out") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise GenerationError(f"{path} is not a generation record of this version ({FORMAT})")
    return d


def _check_model(pipe: Any, class_set: ClassSet, size: int) -> None:
    if pipe.num_classes != class_set.num_classes:
        raise GenerationError(
            f"the model expects {pipe.num_classes} classes but class set {class_set.name!r} has "
            f"{class_set.num_classes}: use the class set the model was trained with"
        )
    own = pipe.class_set
    if own is not None and [n.lower() for n in own.names] != [n.lower() for n in class_set.names]:
        raise GenerationError(
            f"the model was trained on classes {list(own.names)} ({own.name!r}) but --classes gives "
            f"{list(class_set.names)} ({class_set.name!r}): the class order must match"
        )
    if size % pipe.size_multiple:
        m = pipe.size_multiple
        raise GenerationError(f"--size {size} must be a multiple of {m} for this model (e.g. {max(size // m, 1) * m})")


def validate_sources(
    sources: Sequence[Source], class_set: ClassSet, snap: bool = False, cache: SourceCache | None = None
) -> None:
    """Read every map (and, through a cache, every image) once: unknown colours or values fail now, with the
    file named, not mid-run. A cache given keeps what it can hold for the run."""
    for k, s in enumerate(sources):
        if cache is not None:
            cache.get(k)
        else:
            class_set.read_map(s.label, snap=snap)


def run_batches(
    pipe: Any,
    cfg: GenerateConfig,
    class_set: ClassSet,
    sources: Sequence[Source],
    plan: Plan,
    batches: Sequence[int],
    out: Path,
    *,
    show_progress: bool = False,
    cache: SourceCache | None = None,
    timings: dict[str, float] | None = None,
) -> None:
    """Make the given batches (one rank's share): the inputs of batch j+1 (tiles, events) are prepared in a
    thread while batch j denoises, and batch j's files are written by worker threads while batch j+1 runs.
    `timings` (optional) accumulates the seconds spent in the sampler (`render_s`) and waiting for inputs."""
    from tqdm.auto import tqdm

    if not batches:
        return
    cache = cache or SourceCache(sources, class_set, cfg.size, cfg.snap_colors)
    timings = timings if timings is not None else {}
    picker = TilePicker(sources, cfg.size, cfg.tiling)
    done = set(plan.done)
    b = cfg.batch_size
    settings = cfg.pair.resolved(pipe)

    def prepare(k: int) -> list[dict[str, Any]]:
        items = []
        for i in range(k * b, (k + 1) * b):
            seed = sample_seed(cfg.seed, i)
            src, x, y = picker.pick(i, seed)
            image, label = cache.get(src)
            s = cfg.size
            before = np.ascontiguousarray(label[y : y + s, x : x + s])
            result, events_seed, attempts = simulate_events(before, class_set, seed, settings)
            s_ = sources[src]
            items.append(
                {
                    "index": i,
                    "seed": seed,
                    "image": np.ascontiguousarray(image[y : y + s, x : x + s]),
                    "result": result,
                    "meta": {
                        "events_seed": events_seed,
                        "event_attempts": attempts,
                        "source": {
                            "image": s_.image.name,
                            "label": s_.label.name,
                            "x": x,
                            "y": y,
                            "size": s,
                            "padded": x + s > s_.width or y + s > s_.height,
                        },
                    },
                }
            )
        return items

    total = len(plan.to_make(batches))
    bar = tqdm(
        total=total,
        unit="pair",
        desc="generate" if plan.world == 1 else f"generate (main's share, {plan.world} processes)",
        disable=not show_progress,
        dynamic_ncols=True,
    )
    writes: list[Future] = []
    # PNG encoding and fsync release the GIL: about 0.1 s of one core per pair, so use the cores there are
    writers = max(2, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))
    with ThreadPoolExecutor(1) as prep_pool, ThreadPoolExecutor(writers) as write_pool:
        upcoming = prep_pool.submit(prepare, batches[0])
        for j in range(len(batches)):
            t0 = time.perf_counter()
            items = upcoming.result()
            if j + 1 < len(batches):
                upcoming = prep_pool.submit(prepare, batches[j + 1])
            t1 = time.perf_counter()
            records = render_pairs(
                pipe,
                [it["image"] for it in items],
                [it["result"] for it in items],
                [it["seed"] for it in items],
                class_set,
                settings,
            )
            t2 = time.perf_counter()
            for f in writes:  # at most one batch of writes in flight
                f.result()
            t3 = time.perf_counter()
            for key, dt in (("wait_inputs_s", t1 - t0), ("render_s", t2 - t1), ("wait_writes_s", t3 - t2)):
                timings[key] = timings.get(key, 0.0) + dt
            bar.update(len(writes))
            writes = []
            for it, rec in zip(items, records, strict=True):
                i = it["index"]
                if i >= plan.num or i in done:
                    continue
                rec["meta"].update(it["meta"])
                writes.append(write_pool.submit(write_sample, out, i, rec, class_set))
        for f in writes:
            f.result()
        bar.update(len(writes))
    bar.close()


# --------------------------------------------------------------------------------------------------- finalize


def finalize(out: Path, settings: dict[str, Any], class_set: ClassSet) -> dict[str, Any]:
    """Rebuild manifest.jsonl, the split lists and README.md from the per-sample records; return the stats."""
    num = int(settings["num"])
    splits = settings.get("splits")
    regen = {
        "model": settings["model"],
        "dtype": settings["dtype"],
        "size": settings["size"],
        "batch_size": settings["batch_size"],
        "global_seed": settings["seed"],
        "sampler": settings["sampler"],
        "events": settings["events"],
    }
    lines, metas, missing = [], [], []
    lists: dict[str, list[str]] = {name: [] for name in (splits or {})}
    for i in range(num):
        path = out / META_DIR / f"{sample_id(i)}.json"
        if not path.is_file():
            missing.append(sample_id(i))
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        if splits:
            meta["split"] = assign_split(meta["seed"], splits)
            lists[meta["split"]].append(f"{meta['id']}.png")
        metas.append(meta)
        lines.append(json.dumps({**meta, "generation": regen}, sort_keys=True))
    if missing:
        raise GenerationError(f"{len(missing)} sample(s) are not finished ({listing(missing)}); rerun to complete")
    atomic_write_text(out / "manifest.jsonl", "".join(line + "\n" for line in lines))
    if splits:
        (out / LIST_DIR).mkdir(exist_ok=True)
        for name, ids in lists.items():
            atomic_write_text(out / LIST_DIR / f"{name}.txt", "".join(f"{s}\n" for s in ids))
        for name in set(SPLIT_NAMES) - set(lists):  # a split an earlier --splits had and this one drops
            (out / LIST_DIR / f"{name}.txt").unlink(missing_ok=True)
    stats = dataset_stats(metas, class_set)
    atomic_write_text(out / "README.md", dataset_card(settings, stats, class_set))
    return stats


def assign_split(seed: int, splits: dict[str, float]) -> str:
    """A sample's split, from its seed alone (stable when the dataset grows)."""
    u = np.random.default_rng(derive_seed(seed, _SPLIT)).random()
    acc = 0.0
    names = list(splits)
    for name in names:
        acc += splits[name]
        if u < acc:
            return name
    return names[-1]


def dataset_stats(metas: Sequence[dict[str, Any]], class_set: ClassSet) -> dict[str, Any]:
    """Counts, change ratios, events and class transitions over the records."""
    names = [*class_set.names, class_set.ignore_name]
    ratios = np.array([m["changed_pixels"] / m["pixels"] for m in metas], dtype=np.float64)
    transitions: dict[str, int] = {}
    events: dict[str, int] = {}
    class_a = dict.fromkeys(names, 0)
    class_b = dict.fromkeys(names, 0)
    splits: dict[str, int] = {}
    for m in metas:
        for key, n in m["transitions"].items():
            transitions[key] = transitions.get(key, 0) + n
        for e in m["events"]:
            events[e["type"]] = events.get(e["type"], 0) + 1
        for key, n in m["class_pixels_A"].items():
            class_a[key] += n
        for key, n in m["class_pixels_B"].items():
            class_b[key] += n
        if "split" in m:
            splits[m["split"]] = splits.get(m["split"], 0) + 1
    hist = np.histogram(ratios, bins=_RATIO_BINS)[0] if len(ratios) else np.zeros(len(_RATIO_BINS) - 1, int)
    return {
        "pairs": len(metas),
        "pixels": int(sum(m["pixels"] for m in metas)),
        "changed_pixels": int(sum(m["changed_pixels"] for m in metas)),
        "no_change_pairs": int((ratios == 0).sum()),
        "ratio_mean": float(ratios.mean()) if len(ratios) else 0.0,
        "ratio_median": float(np.median(ratios)) if len(ratios) else 0.0,
        "ratio_min": float(ratios.min()) if len(ratios) else 0.0,
        "ratio_max": float(ratios.max()) if len(ratios) else 0.0,
        "ratio_histogram": [int(v) for v in hist],
        "events": dict(sorted(events.items())),
        "transitions": dict(sorted(transitions.items(), key=lambda kv: (-kv[1], kv[0]))),
        "class_pixels_A": class_a,
        "class_pixels_B": class_b,
        "splits": dict(sorted(splits.items())),
        "content_scale_mean": float(np.mean([m["content_scale"] for m in metas])) if metas else 0.0,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def dataset_card(settings: dict[str, Any], stats: dict[str, Any], class_set: ClassSet) -> str:
    """The dataset card (README.md): how it was made, the class set, counts and statistics."""
    n, px, ch = stats["pairs"], stats["pixels"], stats["changed_pixels"]
    size = settings["size"]
    smp, ev = settings["sampler"], settings["events"]
    size_cat = "n<1K" if n < 1e3 else "1K<n<10K" if n < 1e4 else "10K<n<100K" if n < 1e5 else "100K<n<1M"
    out = [
        "---",
        "tags:",
        "- change-detection",
        "- semantic-change-detection",
        "- remote-sensing",
        "- synthetic",
        "size_categories:",
        f"- {size_cat}",
        "---",
        "",
        f"# Synthetic change-detection pairs ({class_set.name})",
        "",
        f"{n:,} bi-temporal pairs of {size}×{size} px made with ChangeAnywhere (`changeanywhere generate`): "
        "A is a real tile of the source imagery, its land-cover map is edited by simulated change events "
        "(label_B), and B is generated by the semantic latent diffusion model under the edited map, anchored "
        "to A where nothing changed. The change label is where the two maps differ.",
        "",
        "## Layout",
        "",
        "| path | content |",
        "|---|---|",
        "| `A/<id>.png` | before image (real tile, RGB) |",
        "| `B/<id>.png` | after image (generated, RGB) |",
        "| `label/<id>.png` | binary change label: 0 unchanged, 255 changed |",
        "| `label_A/<id>.png`, `label_B/<id>.png` | land-cover maps of both dates, class colours below |",
        f"| `change_type/<id>.png` | 0 = no change, else 1 + from × {class_set.num_classes} + to (legend below) |",
        "| `meta/<id>.json` | the sample's record |",
        "| `manifest.jsonl` | one line per sample: source tile, seeds, events, sampler settings, statistics |",
        "| `generation.json` | the settings that define this dataset |",
    ]
    if settings.get("splits"):
        out.append("| `list/<split>.txt` | file names of each split (ChangeFormer-style lists) |")
    out += [
        "",
        "## Class set",
        "",
        "| index | class | colour |",
        "|---|---|---|",
    ]
    for i, c in enumerate(class_set.classes):
        out.append(f"| {i} | {c.name} | `#{c.color[0]:02X}{c.color[1]:02X}{c.color[2]:02X}` |")
    ign = ", ".join(f"`#{r:02X}{g:02X}{b:02X}`" for r, g, b in class_set.ignore_colors[:1]) or "black"
    out += [f"| 255 (ignore) | {class_set.ignore_name} | {ign} |", ""]
    out += [
        "## How it was made",
        "",
        "| setting | value |",
        "|---|---|",
        f"| model | {settings[INFO_KEY]['model']} (weights sha256 `{settings['model']['weights_sha256'][:16]}`) |",
        f"| dtype | {settings['dtype']} |",
        f"| sources | {settings['sources']['count']} image/label pairs ({settings['sources']['split']}), "
        f"{settings['tiling']} {size}² tiles |",
        f"| sampler | DDIM, {smp['steps']} steps, eta {smp['eta']:g}, guidance {smp['guidance_scale']:g}, "
        f"content scale {smp['content_scale'][0]:g}–{smp['content_scale'][1]:g} |",
        f"| change events | {ev['num_events'][0]}–{ev['num_events'][1]} per pair "
        f"({', '.join(ev['event_types'])}), objects ≥ {ev['min_area']} px |",
        f"| seed | {settings['seed']} (batch size {settings['batch_size']}) |",
        "",
        "## Statistics",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| pairs | {n:,} |",
        f"| pixels | {px:,} |",
        f"| changed pixels | {ch:,} |",
        f"| change ratio (pixels) | {_pct(ch / px if px else 0.0)} |",
        f"| change ratio per pair: mean | {_pct(stats['ratio_mean'])} |",
        f"| change ratio per pair: median | {_pct(stats['ratio_median'])} |",
        f"| change ratio per pair: min / max | {_pct(stats['ratio_min'])} / {_pct(stats['ratio_max'])} |",
        f"| pairs without change | {stats['no_change_pairs']:,} |",
        f"| mean content scale | {stats['content_scale_mean']:.3f} |",
        "",
    ]
    if stats["splits"]:
        out += ["| split | pairs |", "|---|---|"]
        out += [f"| {k} | {v:,} |" for k, v in stats["splits"].items()] + [""]
    edges = _RATIO_BINS
    out += ["Pairs by change ratio:", "", "| change ratio | pairs |", "|---|---|"]
    out.append(f"| 0 (no change) | {stats['no_change_pairs']:,} |")
    hist = list(stats["ratio_histogram"])
    hist[0] -= stats["no_change_pairs"]  # the first bin [0, 1 %) without the exact zeros
    for lo, hi, v in zip(edges[:-1], edges[1:], hist, strict=True):
        out.append(f"| {100 * lo:g}–{100 * hi:g} % | {v:,} |")
    out += ["", "Events:", "", "| event | count |", "|---|---|"]
    out += [f"| {k} | {v:,} |" for k, v in stats["events"].items()] + [""]
    out += ["Class transitions (changed pixels, from → to):", ""]
    out += ["| from → to | code | pixels | share |", "|---|---|---|---|"]
    codes = {v: c for c, v in change_type_legend(class_set).items()}
    for key, v in stats["transitions"].items():
        a, b = key.split("->")
        out.append(f"| {a} → {b} | {codes[key]} | {v:,} | {_pct(v / ch if ch else 0.0)} |")
    out += ["", "Land cover (pixels):", "", "| class | A | B |", "|---|---|---|"]
    for key in stats["class_pixels_A"]:
        out.append(f"| {key} | {stats['class_pixels_A'][key]:,} | {stats['class_pixels_B'][key]:,} |")
    out += [
        "",
        "## Notes",
        "",
        "- Every sample can be regenerated from its manifest line (source tile, seed, events, sampler settings) "
        "and the model whose weights hash is recorded in `generation.json`.",
        "- B is synthetic: use the pairs to pretrain change detectors and evaluate on real pairs.",
        "- The terms of the source imagery and land-cover maps apply to A and the maps.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------- reports


def format_plan(result: GenerateResult) -> str:
    """The --dry-run plan."""
    p, s = result.plan, result.settings
    smp, ev = s["sampler"], s["events"]
    done = len(p.done)
    extra = p.num_batches * p.batch_size - p.num
    lines = [
        f"plan for {result.out}" + (" (exists)" if (result.out / "generation.json").is_file() else " (new)"),
        f"  model      {s[INFO_KEY]['model']} ({s['dtype']} on {result.device}, "
        f"weights {s['model']['weights_sha256'][:12]})",
        f"  sources    {len(result.sources)} image/label pairs ({s['sources']['split']}), "
        f"{s['tiling']} {s['size']}² tiles",
        f"  samples    {p.num:,} (ids {sample_id(0)}..{sample_id(p.num - 1)}), global seed {s['seed']}",
        f"  batches    {p.num_batches:,} of {p.batch_size}"
        + (f" (the last one computed in full: {extra} extra sample(s) not written)" if extra else ""),
        f"  sampler    {smp['steps']} DDIM steps, eta {smp['eta']:g}, guidance {smp['guidance_scale']:g}, "
        f"content scale {smp['content_scale'][0]:g}:{smp['content_scale'][1]:g}",
        f"  events     {ev['num_events'][0]}:{ev['num_events'][1]} per pair ({','.join(ev['event_types'])}), "
        f"min area {ev['min_area']} px",
        f"  on disk    {done:,} finished, {p.num - done:,} to make in {len(p.pending):,} batch(es)",
        f"  processes  {p.world}",
    ]
    for r, share in enumerate(p.shares):
        lines.append(f"    rank {r}: {len(share):,} batch(es), {len(p.to_make(share)):,} sample(s) to write")
    return "\n".join(lines)


def format_summary(result: GenerateResult) -> str:
    """The closing summary."""
    st = result.stats or {}
    rate = result.made / result.seconds if result.seconds > 0 else 0.0
    skipped = len(result.plan.done)
    ch = st.get("changed_pixels", 0) / max(st.get("pixels", 0), 1)
    return "\n".join(
        [
            f"{st.get('pairs', 0):,} pairs in {result.out}: made {result.made:,}, skipped {skipped:,} already on disk,"
            f" in {result.seconds:.1f} s ({rate:.2f} pairs/s on {result.plan.world} process(es), {result.device})",
            f"changed pixels: {100 * ch:.2f} % overall, {100 * st.get('ratio_mean', 0.0):.2f} % per pair on "
            f"average; {st.get('no_change_pairs', 0):,} pair(s) without change",
            f"wrote {result.out / 'manifest.jsonl'} and the dataset card {result.out / 'README.md'}",
        ]
    )

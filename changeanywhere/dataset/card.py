"""The end of a run: manifest.jsonl, the split lists and the dataset card (README.md), rebuilt by the main
process from the per-sample records, sorted and without timestamps. The console reports are in `report`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import ClassSet
from ..data import listing
from ..errors import GenerationError
from ..events import change_type_legend
from ..io import atomic_write_text
from ..labels import LABEL_CONVENTION
from ..seeds import SPLIT, derive_seed
from .config import INFO_KEY
from .hf import METADATA_FILE, card_configs, write_metadata
from .layout import LIST_DIR, META_DIR, SPLIT_NAMES, sample_id
from .report import describe_nonchange, describe_sampler

_RATIO_BINS = (0.0, 0.01, 0.05, 0.10, 0.25, 1.0)


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
            lists[meta["split"]].append(Path(meta["files"]["A"]).name)
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
    write_metadata(out, metas)
    stats = dataset_stats(metas, class_set)
    atomic_write_text(out / "README.md", dataset_card(settings, stats, class_set))
    return stats


def assign_split(seed: int, splits: dict[str, float]) -> str:
    """A sample's split, from its seed alone (stable when the dataset grows)."""
    u = np.random.default_rng(derive_seed(seed, SPLIT)).random()
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
    sections = (
        _card_intro(settings, stats, class_set), _card_classes(class_set), _card_settings(settings),
        _card_statistics(stats), _card_breakdown(stats, class_set), _CARD_NOTES,
    )
    return "\n".join(line for section in sections for line in section)


def _card_intro(settings: dict[str, Any], stats: dict[str, Any], class_set: ClassSet) -> list[str]:
    n, size = stats["pairs"], settings["size"]
    ext = settings["file_format"]
    tiles = "GeoTIFF, each with its own transform and the source CRS" if ext == "tif" else "PNG"
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
        *card_configs(ext),
        "---",
        "",
        f"# Synthetic change-detection pairs ({class_set.name})",
        "",
        f"{n:,} bi-temporal pairs of {size}×{size} px made with ChangeAnywhere (`changeanywhere generate`): "
        "A is a real tile of the source imagery, its land-cover map is edited by simulated change events "
        f"(label_B), and B is {_how_b(settings)}. The change label is where the two maps differ.",
        "",
        "## Layout",
        "",
        f"Tiles are {tiles}.",
        "",
        "| path | content |",
        "|---|---|",
        f"| `A/<id>.{ext}` | before image (real tile, RGB) |",
        f"| `B/<id>.{ext}` | after image (generated, RGB) |",
        f"| `label/<id>.{ext}` | change label: {LABEL_CONVENTION} |",
        f"| `label_A/<id>.{ext}`, `label_B/<id>.{ext}` | land-cover maps of both dates, "
        + ("class indices with the class colours as colour table |" if ext == "tif" else "class colours below |"),
        f"| `change_type/<id>.{ext}` | 0 = no change, else 1 + from × {class_set.num_classes} + to (legend below) |",
        "| `meta/<id>.json` | the sample's record |",
        "| `manifest.jsonl` | one line per sample: source tile, seeds, events, sampler settings, statistics |",
        f"| `{METADATA_FILE}` | one typed row per sample for `datasets.load_dataset` (image columns A, B, label, "
        "label_A, label_B, change_type) |",
        "| `generation.json` | the settings that define this dataset |",
    ]
    if settings.get("splits"):
        out.append("| `list/<split>.txt` | file names of each split (ChangeFormer-style lists) |")
    return out


def _how_b(settings: dict[str, Any]) -> str:
    """How the after image B was made, from the dataset's content and sampler records."""
    content = ("real objects and textures of the source imagery pasted into the change and fitted into the scene "
               "(ring colour matching, Poisson blending)" if settings["content"]["source"] == "bank" else
               "the change painted by the semantic latent diffusion model under the edited map")
    rest = ("unchanged areas differ as another date would (realistic non-change)" if settings["sampler"]["nonchange"]
            else "unchanged pixels copy A")
    return f"A with {content}; {rest}"


def _card_classes(class_set: ClassSet) -> list[str]:
    out = ["", "## Class set", "", "| index | class | colour |", "|---|---|---|"]
    for i, c in enumerate(class_set.classes):
        out.append(f"| {i} | {c.name} | `#{c.color[0]:02X}{c.color[1]:02X}{c.color[2]:02X}` |")
    ign = ", ".join(f"`#{r:02X}{g:02X}{b:02X}`" for r, g, b in class_set.ignore_colors[:1]) or "black"
    return [*out, f"| 255 (ignore) | {class_set.ignore_name} | {ign} |", ""]


def _card_settings(settings: dict[str, Any]) -> list[str]:
    smp, ev = settings["sampler"], settings["events"]
    return [
        "## How it was made",
        "",
        "| setting | value |",
        "|---|---|",
        f"| model | {settings[INFO_KEY]['model']} (weights sha256 `{settings['model']['weights_sha256'][:16]}`) |",
        f"| dtype | {settings['dtype']} |",
        f"| sources | {settings['sources']['count']} image/label pairs ({settings['sources']['split']}), "
        f"{settings['tiling']} {settings['size']}² tiles |",
        f"| sampler | {describe_sampler(settings)} |",
        f"| change sampler | {smp['sampler']} |",
        f"| realistic non-change | {describe_nonchange(smp)} |",
        f"| change events | {ev['num_events'][0]}–{ev['num_events'][1]} per pair "
        f"({', '.join(ev['event_types'])}), objects ≥ {ev['min_area']} px |",
        f"| seed | {settings['seed']} (batch size {settings['batch_size']}) |",
        "",
    ]


def _card_statistics(stats: dict[str, Any]) -> list[str]:
    n, px, ch = stats["pairs"], stats["pixels"], stats["changed_pixels"]
    out = [
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
    return out


def _card_breakdown(stats: dict[str, Any], class_set: ClassSet) -> list[str]:
    ch = stats["changed_pixels"]
    out = ["", "Events:", "", "| event | count |", "|---|---|"]
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
    return out


_CARD_NOTES = (
    "",
    "## Notes",
    "",
    "- Every sample can be regenerated from its manifest line (source tile, seed, events, sampler settings) "
    "and the model whose weights hash is recorded in `generation.json`.",
    "- B is synthetic: use the pairs to pretrain change detectors and evaluate on real pairs.",
    "- The terms of the source imagery and land-cover maps apply to A and the maps.",
    "",
)

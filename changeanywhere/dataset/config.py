"""What defines a generated dataset: `GenerateConfig` (the command's parameters) and `generation.json`, the
record of the settings, model and sources a folder was made with; a rerun must match it to resume or grow."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from .. import geo
from ..classes import ClassSet
from ..config_fields import arg
from ..data import DEFAULT_VAL_PATTERN, listing
from ..errors import GenerationError, ParameterError, SettingsMismatchError
from ..pairs import PairSettings
from ..runtime import DEVICE_DEFAULT
from .layout import SPLIT_NAMES

if TYPE_CHECKING:
    from ..bank import ObjectBank
    from ..generator.pipeline import ChangeAnywherePipeline
    from .sources import Source

FORMAT = "changeanywhere-generate/1"
# keys of generation.json a rerun may change: `num` may grow, `splits` may be (re)set; `info` is descriptive
MUTABLE_KEYS = ("num", "splits")
INFO_KEY = "info"
# generation.json's sampler block: these fields of the one record (`SamplerSettings.record`), in this order; the
# guidance interval and the scheduler go under INFO_KEY (not compared on resume)
SAMPLER_KEYS = ("num_inference_steps", "eta", "content_scale", "blend", "feather", "drift", "nonchange", "sampler",
                "guidance_scale")


@dataclass
class GenerateConfig:
    """Everything `generate` needs: the sources, the output folder, the model, and how pairs are made (the
    command's flags, one for each field; `pair` gathers the per-pair settings)."""

    images: Path = arg(help="folder of source images (RGB; PNG, JPEG or (Geo)TIFF of any size: TIFFs are read by "
                       "windows)")
    labels: Path = arg(help="folder of land-cover maps (same file stems; colour or index PNG, or a GeoTIFF: one band "
                       "of class indices, nodata = ignore)")
    classes: str | ClassSet = arg(help="class set: a built-in name or a JSON file")
    out: Path = arg(help="output folder (created; rerun to resume)")
    num: int = arg(help="number of pairs (under torchrun on Python < 3.12 spell it --num-pairs: torchrun's own "
                   "parser rejects --num as an ambiguous abbreviation of --numa-binding)", aliases=("--num-pairs",))
    model: str | None = arg(None, "pipeline folder or Hub repo id (default: the embedded model)")
    bank: Path | None = arg(None, "object bank folder for --content bank (changeanywhere build-bank; default: one "
                            "built from --images and --labels on the first run, and cached)")
    scheduler: str | None = None  # a name from generator.schedulers; None keeps the model's own
    backend: str | None = None  # torch, onnx or auto (None: $CHANGEANYWHERE_BACKEND, else auto)
    size: int = arg(256, "tile side in pixels (default 256)")
    pair: PairSettings = field(default_factory=PairSettings)
    batch_size: int = arg(8, "pairs per batch and process (default 8)")
    seed: int = arg(0, "global seed; pair i's seed derives from (seed, i)")
    device: str = arg(DEVICE_DEFAULT, "auto, cpu, cuda (under a launcher: each process's GPU)")
    dtype: str = arg("auto", "auto (fp16 on CUDA, else fp32), fp32, fp16, bf16")
    tiling: Literal["random", "grid"] = arg("random", "random crops (source drawn by area; default) or the grid of "
                                            "non-overlapping tiles, cycled")
    split: Literal["train", "val"] | None = None  # which source pairs (None: all; the flag says "all")
    val_pattern: tuple[str, ...] = arg(DEFAULT_VAL_PATTERN, "file-name globs of validation sources (default: the "
                                       "Dubai convention *_008.*, *_009.*)")
    snap_colors: bool = arg(False, "map colours not in the class set to the nearest")
    splits: tuple[float, ...] | None = arg(None, "also write list/train.txt, val.txt[, test.txt] with these ratios "
                                           "(e.g. 0.8:0.1:0.1)", metavar="TRAIN:VAL[:TEST]")
    bands: tuple[int, ...] | None = None  # bands of TIFF images read as R, G, B (None: 1, 2, 3)
    resample: str | None = None  # resample TIFF images onto their map's grid: nearest or bilinear (None: refuse)
    file_format: str | None = None  # png or tif; None: tif when the sources are georeferenced, else png
    dry_run: bool = arg(False, "print the plan (and check inputs); write nothing")
    progress: bool = arg(True, "a progress bar (default; --no-progress: none)", negatable=True)

    def check(self) -> None:
        """Validate every parameter once, before anything is read or written."""
        for name in ("num", "size", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"`{name}` must be at least 1, got {getattr(self, name)}", name)
        if self.seed < 0:
            raise ParameterError(f"`seed` must be ≥ 0, got {self.seed}", "seed")
        if self.tiling not in ("random", "grid"):
            raise ParameterError(f"`tiling` must be 'random' or 'grid', got {self.tiling!r}", "tiling")
        if self.splits is not None:
            if not 2 <= len(self.splits) <= 3 or min(self.splits) < 0 or sum(self.splits) <= 0:
                raise ParameterError(
                    f"`splits` must be 2 or 3 non-negative ratios (train:val[:test]), got {self.splits}", "splits"
                )
        if self.bands is not None and (len(self.bands) not in (1, 3) or min(self.bands) < 1):
            raise ParameterError(f"`bands` takes 1 or 3 band numbers (R G B, counted from 1), got {self.bands}",
                                 "bands")
        if self.resample not in (None, *geo.RESAMPLING):
            raise ParameterError(f"`resample` must be one of {', '.join(geo.RESAMPLING)}, got {self.resample!r}",
                                 "resample")
        if self.file_format not in (None, *geo.FORMATS):
            raise ParameterError(f"`file_format` must be one of {', '.join(geo.FORMATS)}, got {self.file_format!r}",
                                 "file_format")
        self.pair.check()

    def output_format(self, sources: Sequence[Source]) -> str:
        """The file format of the tiles: as asked, else GeoTIFF when a source is georeferenced, else PNG."""
        fmt = self.file_format or ("tif" if any(s.grid is not None and s.grid.georeferenced for s in sources)
                                   else "png")
        if fmt == "tif":
            geo.rasterio_module("writing GeoTIFF tiles (`file_format` tif)")
        return fmt


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def sources_fingerprint(sources: Sequence[Source]) -> str:
    return _sha256_json([s.key() for s in sources])


def model_fingerprint(pipe: ChangeAnywherePipeline) -> dict[str, str]:
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
    cfg: GenerateConfig, pipe: ChangeAnywherePipeline, class_set: ClassSet, sources: Sequence[Source],
    dtype: torch.dtype, file_format: str = "png", bank: ObjectBank | None = None,
) -> dict[str, Any]:
    """The contents of generation.json: the settings that define the dataset (plus `num`, `splits`, `info`)."""
    p, record = pipe.resolve(cfg.pair)
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
            "bands": list(cfg.bands) if cfg.bands else None,
            "resample": cfg.resample,
        },
        "file_format": file_format,
        "size": int(cfg.size),
        "tiling": cfg.tiling,
        "seed": int(cfg.seed),
        "batch_size": int(cfg.batch_size),
        "sampler": {k: record[k] for k in SAMPLER_KEYS},  # of the one record: what defines the dataset
        "content": {"source": p.content, **({"strength": float(p.content_strength), "bank": bank.fingerprint()}
                                            if p.content == "bank" and bank is not None else {})},
        "events": {
            "num_events": [int(v) for v in p.num_events],
            "event_types": list(p.event_types),
            "min_area": int(p.min_area),
            "max_event_tries": int(p.max_event_tries),
            "change_classes": ([class_set.names[i] for i in p.change_class_ids(class_set)] if p.change_classes
                               else None),
        },
        "num": int(cfg.num),
        "splits": normalise_splits(cfg.splits),
        INFO_KEY: {
            "model": str(cfg.model) if cfg.model else "embedded default (checkpoints/changeanywhere-dubai-256)",
            "images": str(cfg.images),
            "labels": str(cfg.labels),
            "scheduler": scheduler_name(pipe.scheduler),  # its config is in the model fingerprint above
            "scheduler_takes_eta": record["scheduler_takes_eta"],
            # the model's default (in the fingerprint too): the steps that get classifier-free guidance
            "guidance_interval": record["guidance_interval"],
            "backend": pipe.backend,
        },
    }


def scheduler_name(scheduler: Any) -> str:
    """'DDIMScheduler', or 'DPMSolverMultistepScheduler (sde-dpmsolver++)' where the algorithm matters."""
    algo = scheduler.config.get("algorithm_type")
    return type(scheduler).__name__ + (f" ({algo})" if algo else "")


def normalise_splits(splits: Sequence[float] | None) -> dict[str, float] | None:
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
            f"settings (see {where / 'generation.json'}) to resume or extend it, or choose a new `out`", "out"
        )
    if new["num"] < old["num"]:
        raise SettingsMismatchError(
            f"{where} was planned for {old['num']} samples; `num` may grow but not shrink (give at least "
            f"{old['num']}, or choose a new `out`)", "num", "out"
        )
    merged = dict(old)
    merged["num"] = new["num"]
    if new["splits"] is not None:
        merged["splits"] = new["splits"]
    return merged


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:57] + "..."


def check_out_folder(out: Path) -> None:
    """A new folder, an empty one, or one made by `generate` (it holds generation.json)."""
    if out.exists() and not out.is_dir():
        raise GenerationError(f"`out` {out} exists and is not a folder", "out")
    if out.is_dir() and not (out / "generation.json").is_file():
        visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if visible:
            raise GenerationError(
                f"`out` {out} is not empty ({listing(sorted(visible))}) and holds no generation.json: "
                "it was not made by changeanywhere generate; choose a new or empty folder", "out"
            )


def read_settings(out: Path) -> dict[str, Any] | None:
    """The folder's generation.json (None when there is none yet)."""
    path = out / "generation.json"
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GenerationError(f"cannot read {path}: {err}; restore it or choose a new `out`", "out") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise GenerationError(f"{path} is not a generation record of this version ({FORMAT})")
    return d


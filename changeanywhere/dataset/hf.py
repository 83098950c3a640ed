"""The generated folder as a Hugging Face dataset: `metadata.jsonl` (one typed row per pair; its six tiles become
image columns through the imagefolder loader's `<column>_file_name` convention), the dataset card's `configs`
entry that points `datasets.load_dataset` at it, and the upload to the Hub. The `datasets` library itself is
not needed to write or upload, only to load."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..hub import push_folder
from ..io import atomic_write_text
from .layout import IMAGE_DIRS

METADATA_FILE = "metadata.jsonl"


def metadata_row(meta: dict[str, Any], with_geo: bool) -> dict[str, Any]:
    """One pair's row: its tiles (`A_file_name`, ... -> image columns `A`, `B`, `label`, `label_A`, `label_B`,
    `change_type`), then flat, typed metadata (nested records as JSON strings, so every row has one schema)."""
    src = meta.get("source", {})
    row: dict[str, Any] = {f"{d}_file_name": meta["files"][d] for d in IMAGE_DIRS}
    row.update(
        id=meta["id"], index=int(meta["index"]), seed=int(meta["seed"]),
        changed_pixels=int(meta["changed_pixels"]), pixels=int(meta["pixels"]),
        change_ratio=float(meta["change_ratio"]), content_scale=float(meta["content_scale"]),
        num_events=len(meta["events"]), events=json.dumps(meta["events"], sort_keys=True),
        transitions=json.dumps(meta["transitions"], sort_keys=True),
        source_image=str(src.get("image", "")), source_label=str(src.get("label", "")),
        x=int(src.get("x", 0)), y=int(src.get("y", 0)),
    )
    if "split" in meta:
        row["split"] = meta["split"]
    if with_geo:
        row["crs"] = meta["geo"]["crs"] or ""
        row["transform"] = [float(v) for v in meta["geo"]["transform"]]
    return row


def write_metadata(out: Path, metas: Sequence[dict[str, Any]]) -> Path:
    """metadata.jsonl of the finished pairs (CRS and transform columns when every pair is georeferenced)."""
    with_geo = bool(metas) and all("geo" in m for m in metas)
    lines = [json.dumps(metadata_row(m, with_geo), sort_keys=True) for m in metas]
    return atomic_write_text(out / METADATA_FILE, "".join(line + "\n" for line in lines))


def card_configs(file_format: str) -> list[str]:
    """The card's YAML `configs`: one split of every pair, read through metadata.jsonl (with `--splits`, the
    `split` column says which split a pair belongs to)."""
    return [
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path:",
        f"    - {METADATA_FILE}",
        *(f"    - {d}/*.{file_format}" for d in IMAGE_DIRS),
    ]


def push_dataset(out: Path, repo_id: str, private: bool = False) -> str:
    """Upload a finished folder to a Hub dataset repo (created if needed); returns the commit URL."""
    return push_folder(Path(out), repo_id, repo_type="dataset", private=private, what="dataset",
                       message="Synthetic change-detection pairs made with changeanywhere generate")

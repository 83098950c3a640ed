"""The download: a generation zipped in the layout of `changeanywhere generate`, written by its writer."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

from ..classes import ClassSet
from ..dataset.layout import make_folders, sample_id, write_pair
from .generation import Generation

ZIP_MAX_AGE_S = 3600  # packaged samples older than this are deleted when a new one is written


def write_sample_zip(gen: Generation, class_set: ClassSet, out_dir: str | os.PathLike, source: str = "",
                     max_age_s: float = ZIP_MAX_AGE_S) -> Path:
    """Zip the pairs in the layout of `changeanywhere generate` (`A/`, `B/`, `label/` 0/255 with 127 = ignore,
    `label_A/`, `label_B/` colour maps, `change_type/`, `meta/`; one `<id>.png` per variant) plus `metadata.json` (the
    app's settings, the source map, and the zero-shot prediction's scores). Zips older than `max_age_s` in
    `out_dir` are deleted first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _prune(out_dir, max_age_s)
    path = out_dir / f"changeanywhere-{uuid.uuid4().hex[:8]}.zip"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        folder = Path(tmp)
        make_folders(folder)
        for i, s in enumerate(gen.samples):
            write_pair(folder, i, s.pair, class_set)
        meta = {
            **gen.settings,
            "source": source,
            "samples": [{"id": sample_id(i), "seed": s.pair.seed, "content_scale": s.pair.content_scale,
                         "prediction_metrics": s.metrics} for i, s in enumerate(gen.samples)],
            "class_set_description": class_set.to_dict(),
        }
        (folder / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(folder).as_posix())
    return path


def _prune(folder: Path, max_age_s: float) -> None:
    now = time.time()
    for p in folder.glob("changeanywhere-*.zip"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
        except OSError:
            pass

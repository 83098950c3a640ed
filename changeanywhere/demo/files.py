"""The app's output files: each image a handler returns is written once, under a name of its own, and handed to
Gradio as a path.

Why: Gradio saves an image given as an array to a cache file named by its content, writing it in place. Two
requests that return the same image (users loading the same example, or generating the same pair) then rewrite
the file another response is still sending, which arrives truncated (the server logs `Too little data for
declared Content-Length`). A file path is cached by Gradio with a copy and an atomic rename instead, so a
file once served never changes. These files are only needed until Gradio has copied them; older ones are
deleted as new ones are written, and so are Gradio's copies of them (`served`: Gradio's cache folder; its own
`delete_cache` was seen to stop deleting under constant load, the cache then growing without bound).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

OUTPUT_FILE_MAX_AGE_S = 600  # a default age: the files are needed only until Gradio has copied them
PRUNE_EVERY_S = 30.0
SERVED_NAMES = ("out-*.png", "changeanywhere-*.zip")  # the app's files (and Gradio's copies, which keep the name)


class OutputFiles:
    """Writes arrays as PNG files with unique names in `folder`, each atomically (temporary name, rename);
    files older than `max_age_s` are deleted (checked at most every `PRUNE_EVERY_S` seconds), and so are the
    app's files (`SERVED_NAMES`) older than `served_max_age_s` in the folders of `served` (Gradio's cache)."""

    def __init__(self, folder: str | os.PathLike, max_age_s: float = OUTPUT_FILE_MAX_AGE_S,
                 served: str | os.PathLike | None = None, served_max_age_s: float = 3600.0):
        self.folder, self.max_age_s = Path(folder), float(max_age_s)
        self.served, self.served_max_age_s = (Path(served) if served else None), float(served_max_age_s)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock, self._pruned = threading.Lock(), 0.0

    def png(self, array: np.ndarray) -> str:
        """`array` (H×W, H×W×3 or H×W×4 uint8) as a new PNG file; returns its path."""
        self.prune()
        path = self.folder / f"out-{uuid.uuid4().hex}.png"
        fd, staging = tempfile.mkstemp(dir=self.folder, prefix=".out-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as f:
                Image.fromarray(np.ascontiguousarray(array)).save(f, format="PNG")
            os.replace(staging, path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        return str(path)

    def convert(self, value: Any) -> Any:
        """`value` with every numpy array in it (also inside dicts, lists and tuples) replaced by a PNG file's
        path; anything else (states, updates, text) as it is."""
        if isinstance(value, np.ndarray):
            return self.png(value)
        if isinstance(value, dict):
            return {k: self.convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.convert(v) for v in value)
        return value

    def prune(self, force: bool = False) -> None:
        now = time.time()
        with self._lock:
            if not force and now - self._pruned < PRUNE_EVERY_S:
                return
            self._pruned = now
        old = [(p, self.max_age_s) for p in self.folder.glob("*.png")]
        if self.served is not None:
            old += [(p, self.served_max_age_s) for name in SERVED_NAMES for p in self.served.glob(f"*/{name}")]
        for p, age in old:
            try:
                if now - p.stat().st_mtime > age:
                    p.unlink()
                    if p.parent != self.folder:
                        p.parent.rmdir()  # Gradio's per-content folder, when now empty
            except OSError:
                pass

"""Atomic file writes: a temp file in the target's folder, then `os.replace`: no half-written files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

# mkstemp creates files 0600; give written files the usual mode (0666 minus the process umask) instead.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through `write(file)` to a temp file beside `path`, then move it into place.

    The folder must exist; on any error the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_png(path: str | os.PathLike, image: np.ndarray | Image.Image) -> Path:
    """Save a PIL image, or a uint8 array (HxW -> 'L', HxWx3 -> 'RGB', HxWx4 -> 'RGBA'), as PNG."""
    if isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (3, 4))
        ):
            raise TypeError(f"expected a uint8 HxW, HxWx3 or HxWx4 array, got {image.dtype} {image.shape}")
        image = Image.fromarray(np.ascontiguousarray(image))
    return _atomic_write(path, lambda f: image.save(f, format="PNG"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path`."""
    return _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path`."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the file `src` to `dst`; a reader of `dst` sees the old file or the whole new one, never a part."""
    with open(src, "rb") as f:
        return _atomic_write(dst, lambda out: shutil.copyfileobj(f, out))

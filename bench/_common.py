"""What the quality benches share: this checkout on `sys.path`, `--model`/`--data`/`--tiles`, the data check and
the pipeline (CPU, fp32, no progress bar)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "data" / "dubai-landcover"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one


def add_data_args(p: argparse.ArgumentParser, tiles: int) -> None:
    """--model (default: the embedded model), --data (default: the shared Dubai data) and --tiles."""
    p.add_argument("--model", default=None, help="pipeline folder or Hub repo id (default: the embedded model)")
    p.add_argument("--data", type=Path, default=DUBAI)
    p.add_argument("--tiles", type=int, default=tiles)


def data_missing(data: Path) -> bool:
    """True (and says so on stderr) when the data folder is absent."""
    if data.is_dir():
        return False
    print(f"data not found at {data}: the shared data lives beside the repository", file=sys.stderr)
    return True


def load_cpu_pipeline(model: str | None) -> Any:
    """The pipeline of `model` (the embedded default when None) on the CPU in fp32, progress bar off."""
    from changeanywhere.hub import load_pipeline

    pipe = load_pipeline(model, device="cpu", dtype="fp32")
    pipe.set_progress_bar_config(disable=True)
    return pipe

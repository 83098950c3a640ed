"""What a call of `generate` did: read by the console reports (`report.format_plan`, `report.format_summary`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plan import Plan
from .sources import Source


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

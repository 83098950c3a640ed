"""What `zero_shot.py` and its report share: the arms, the real sets and what each counts, the run folders, and
the runner of `changeanywhere` sub-commands."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
STAGES = ("generate", "derive", "train", "eval", "fewshot", "report")
# the real sets and the change each one counts (its published label definition)
REAL_SETS = {"levir-test10": "building", "dsifn-test10": "any", "levir-samples": "building", "dsifn-samples": "any"}
GATE_SETS = {"building": "levir-test10", "any": "dsifn-test10"}
FEWSHOT_SET, FEWSHOT_TRAIN, FEWSHOT_TEST = "levir-test10", (1, 2, 3), (4, 5, 6, 7, 8, 9, 10)
# the generator before issue 21, at its own defaults (anchored sampler, pixel copies, older drift on)
TODAY_SETTINGS = ["--sampler", "anchored", "--nonchange", "0", "--drift", "1"]


@dataclass(frozen=True)
class Arm:
    pairs: str  # folder prefix under WORK: gen | diff | naive | star | today
    counts: str  # the change the labels count: any | building
    pretrained: bool  # ImageNet initial weights (else random)
    what: str


ARMS = {
    "ours-building": Arm("gen", "building", True, "ChangeAnywhere pairs, building change"),
    "ours-any": Arm("gen", "any", True, "ChangeAnywhere pairs, any change"),
    "naive-building": Arm("naive", "building", True, "naive copy-paste pairs, building change"),
    "naive-any": Arm("naive", "any", True, "naive copy-paste pairs, any change"),
    "ours-building-random": Arm("gen", "building", False, "ChangeAnywhere pairs, building change, random weights"),
    "diffusion-building": Arm("diff", "building", True, "ChangeAnywhere pairs with --content diffusion, building "
                              "change"),
    "star-building": Arm("star", "building", True, "STAR: two unrelated real crops, label = XOR of building masks"),
    "star-any": Arm("star", "any", True, "STAR: two unrelated real crops, label = where their maps differ"),
    "today-building": Arm("today", "building", True, "pairs of the generator before issue 21, building change"),
    "today-any": Arm("today", "any", True, "pairs of the generator before issue 21, any change"),
}
# exported models: fixed in advance, never chosen by a real-set score; the first seed's run
EXPORTS = {"ours-building": "cd-changeanywhere-dubai-building", "ours-any": "cd-changeanywhere-dubai"}


def cli(*argv: str, log: Path, env: dict[str, str] | None = None) -> None:
    """Run one `changeanywhere` sub-command in a fresh process, its output appended to `log`; stop on failure."""
    cmd = [sys.executable, "-m", "changeanywhere.cli", *argv]
    print("$ " + " ".join(cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        code = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    if code.returncode:
        raise SystemExit(f"command failed (exit {code.returncode}): {' '.join(cmd)}; log in {log}")


def run_dir(args: argparse.Namespace, arm: str, seed: int) -> Path:
    return args.work / f"cd-{arm}-s{seed}"


def model_dir(out: Path) -> Path:
    """The model a run is evaluated from: OUT/best (chosen on synthetic val), else OUT/final."""
    return out / "best" if (out / "best").is_dir() else out / "final"

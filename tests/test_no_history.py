"""The code of `changeanywhere/` says what it does now: no module mentions an older version of itself (history
belongs in git), except a deprecation that names its removal version."""

from __future__ import annotations

import re
from pathlib import Path

import changeanywhere

PACKAGE = Path(changeanywhere.__file__).resolve().parent
HISTORY = re.compile(
    r"(?<![\w.])v\d+\b(?!\.\d)"  # "(v2) model", "generator v3"
    r"|\b0\.x\b"  # "0.x spellings"
    r"|\bolder (?:drift|models?|folders?|runs?|generators?|versions?|spellings?)\b"
    r"|\bbefore (?:issue|the first release|this option)"
    r"|\bissue \d+"
    r"|\b(?:formerly|legacy|used to)\b",
    re.IGNORECASE,
)


def history_lines(root: Path) -> list[str]:
    """`file:line: text` of every line of `root`'s modules that narrates history (a `deprecate(` line is allowed)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HISTORY.search(line) and "deprecate(" not in line:
                found.append(f"{path.relative_to(root.parent)}:{no}: {line.strip()}")
    return found


def test_no_module_narrates_its_history():
    assert not history_lines(PACKAGE), "\n".join(history_lines(PACKAGE))


def test_the_scan_finds_history_but_not_names_like_cv2(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text('import cv2\ntags = im.tag_v2\nx = 1  # from the (v2) model\n'
                              '"""keeps the 0.x spellings"""\nwarn = deprecate("old", "1.0.0")  # used to\n')
    assert [line.split(":")[1] for line in history_lines(pkg)] == ["3", "4"]

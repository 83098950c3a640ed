"""`scripts/import_cycles.py`: no import cycle among the modules of `changeanywhere/`, `experiments/`, `bench/` and
`scripts/`, and the script sees one in a package and in a folder of scripts."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "import_cycles.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_no_import_cycle_in_the_package_or_the_script_folders():
    res = run()
    assert res.returncode == 0, res.stdout
    for folder in ("changeanywhere", "experiments", "bench", "scripts"):
        assert f"{folder}/: " in res.stdout
    assert res.stdout.strip().endswith("0 import cycle(s) in 4 folder(s)")


def test_a_cycle_between_scripts_is_found(tmp_path):
    (tmp_path / "run.py").write_text("def main():\n    import report\n")
    (tmp_path / "report.py").write_text("from run import ARMS\n")
    (tmp_path / "other.py").write_text("import run\n")
    res = run(str(tmp_path))
    assert res.returncode == 1
    assert "cycle of 2 modules: report, run" in res.stdout and "other" not in res.stdout.split("cycle")[1]


def test_a_cycle_is_found_even_through_deferred_and_type_only_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n")
    (pkg / "d.py").write_text("from . import a\n")  # imports into the cycle, not part of it
    res = run(str(pkg))
    assert res.returncode == 1
    assert "cycle of 3 modules: pkg.a, pkg.c, pkg.sub.b" in res.stdout and "pkg.d" not in res.stdout

"""The wheel carries the embedded default weights and the app's examples as package data
(`changeanywhere/embedded/`), so a plain `pip install .` finds them (`changeanywhere.runtime.embedded_path`).
Everything else is configured in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
EMBEDDED = (
    "checkpoints/changeanywhere-dubai-256",
    "checkpoints/cd-changeanywhere-dubai",
    "checkpoints/cd-changeanywhere-dubai-building",
    "checkpoints/segmenter-dubai",
    "checkpoints/bank-dubai",
    "assets/examples",
)


class BuildWithEmbedded(build_py):
    """build_py, then copy the embedded folders into the built package (an editable install reads the checkout)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for relative in EMBEDDED:
            source = ROOT / relative
            if source.is_dir():
                target = Path(self.build_lib) / "changeanywhere" / "embedded" / relative
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "*.tmp"))


setup(cmdclass={"build_py": BuildWithEmbedded})

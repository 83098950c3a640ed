"""`demo.files`: the images the app serves, one file per call, pruned with Gradio's copies."""

import os
import time
from pathlib import Path

import numpy as np

from changeanywhere import demo
from tests.helpers import read_png


def test_output_files_are_unique_and_pruned_with_gradios_copies(tmp_path):
    served = tmp_path / "gradio"
    files = demo.OutputFiles(tmp_path / "out", max_age_s=60, served=served, served_max_age_s=60)
    image = np.zeros((4, 4, 3), np.uint8)
    first, second = files.png(image), files.png(image)
    assert first != second and read_png(first).shape == (4, 4, 3)  # one file per call, even for equal images
    assert files.convert({"a": [image], "b": "text"})["b"] == "text"
    for name in ("h1/out-old.png", "h2/other.png"):
        (served / name).parent.mkdir(parents=True)
        (served / name).write_bytes(b"x")
        os.utime(served / name, (time.time() - 120,) * 2)
    os.utime(first, (time.time() - 120,) * 2)
    files.prune(force=True)
    assert not Path(first).exists() and Path(second).exists()
    assert not (served / "h1").exists() and (served / "h2/other.png").exists()  # only the app's own files

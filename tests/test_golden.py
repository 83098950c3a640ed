"""Byte-identical `generate` output: the files of two tiny runs against their recorded md5s.

When the generator changes on purpose, regenerate the values: `python tests/golden_generate.py`.
"""

import json

import pytest

from tests.golden_generate import GOLDEN, environment, run_golden


def test_generate_output_is_byte_identical_to_the_golden_run():
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    if golden["environment"] != environment():
        pytest.skip(f"golden values recorded under {golden['environment']}, this is {environment()}; "
                    "regenerate them here with `python tests/golden_generate.py` to compare")
    runs = run_golden()
    for name, files in golden["runs"].items():
        assert sorted(runs[name]) == sorted(files), f"{name}: other files"
        differ = [f for f in files if runs[name][f] != files[f]]
        assert not differ, (f"{name}: {len(differ)} file(s) differ from the golden run, e.g. {differ[:6]}; if the "
                            "generator changed on purpose, regenerate: python tests/golden_generate.py")

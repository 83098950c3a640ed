"""The tests mirror the package (as torchgeo's do): every `tests/**/test_X.py` tests `changeanywhere/**/X.py` in the
same subfolder, or is one of the few cross-cutting files named below, each with why.

Where a test goes: with the module whose behaviour it checks, not with the entry point it happens to call. A test
that runs a command (`cli.main(["generate", ...])`) and checks what the command does goes to
`tests/commands/test_<command>.py`; one that checks a library function through a command goes with that function.
Shared plain helpers live in `tests/helpers.py`, shared fixtures in `tests/conftest.py`."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "changeanywhere"

CROSS_CUTTING = {
    "test_app.py": "app.py, the Gradio UI, lives at the repository root, outside the package",
    "test_app_load.py": "bench/app_load.py, the load bench, against app.py in its own process",
    "test_browser.py": "app.py in a real browser, along the path a user takes",
    "test_config_defaults.py": "every typed config, every check and every flag: one default and one home each",
    "test_ecosystem.py": "a generated folder read by third-party tools (datasets, torchgeo, open-cd)",
    "test_golden.py": "generate's output bytes against tests/golden (tests/golden_generate.py), end to end",
    "test_hostile_input.py": "hostile uploads through both readers, the app's and the library's",
    "test_import_cycles.py": "scripts/import_cycles.py over the whole package",
    "test_layout.py": "this rule, over tests/ itself",
    "test_no_history.py": "the text of every module: what the code does now, no history",
    "test_properties.py": "hypothesis properties of map reading and event simulation together",
    "test_skip_summary.py": "tests/conftest.py's end-of-run line of skipped tests",
    "test_zero_shot.py": "experiments/zero_shot.py, outside the package",
}


def unmatched(tests: Path, package: Path, allowed: dict[str, str]) -> list[str]:
    """The test files under `tests` that are neither a module's (same subfolder of `package`) nor `allowed`."""
    found = []
    for path in sorted(tests.rglob("test_*.py")):
        rel = path.relative_to(tests)
        module = package / rel.parent / rel.name.removeprefix("test_")
        if rel.as_posix() not in allowed and not module.is_file():
            found.append(f"{rel.as_posix()} (no {module.relative_to(package.parent).as_posix()})")
    return found


def test_every_test_file_mirrors_a_module_or_is_cross_cutting():
    bad = unmatched(TESTS, PACKAGE, CROSS_CUTTING)
    assert not bad, (f"test files without a module: {bad}; name a test file after the module it tests, in the "
                     "same subfolder (tests/generator/test_nonchange.py for changeanywhere/generator/nonchange.py), "
                     f"or add a cross-cutting file to CROSS_CUTTING in {Path(__file__).name} with why")
    stale = [name for name in CROSS_CUTTING if not (TESTS / name).is_file()]
    assert not stale, f"CROSS_CUTTING names files that are gone: {stale}"


def test_every_test_folder_is_a_package():
    """Same-named test files in two folders (tests/test_data.py, tests/cd/test_data.py) import apart only as
    modules of packages: every folder holding tests has an `__init__.py`."""
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    missing = sorted(f.relative_to(TESTS.parent).as_posix() for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"test folders without __init__.py: {missing}"


def test_a_test_file_without_a_module_is_found(tmp_path):
    package, tests = tmp_path / "changeanywhere", tmp_path / "tests"
    for path in ("generator/nonchange.py", "pairs.py"):
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text("")
    for path in ("generator/test_nonchange.py", "test_pairs.py", "test_change_v2.py", "test_nonchange.py",
                 "cd/test_pairs.py", "test_app.py"):
        (tests / path).parent.mkdir(parents=True, exist_ok=True)
        (tests / path).write_text("")
    assert unmatched(tests, package, {"test_app.py": "the UI"}) == [
        "cd/test_pairs.py (no changeanywhere/cd/pairs.py)",  # the module, but in another subfolder
        "test_change_v2.py (no changeanywhere/change_v2.py)",  # named by version, not by module
        "test_nonchange.py (no changeanywhere/nonchange.py)",  # the module's name without its subfolder
    ]

"""`changeanywhere generate` when the output disk fails: full (a small tmpfs, or a writer that runs out of bytes)
or read-only (a read-only tmpfs, or a temp-file call that says so). Each run must stop with a clear error,
leave no partial sample, and a rerun after the fault is gone must complete to the same bytes as a clean run.

The tmpfs variants need root and `mount` (as in CI); the patched variants run anywhere."""

import errno
import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_generate import NUM, args_for, assert_same_tree, reference, setup  # noqa: F401 - fixtures

from changeanywhere.cli import main
from changeanywhere.dataset import IMAGE_DIRS

SAMPLE_FILES = (*IMAGE_DIRS, "meta")
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread, as test_generate


@contextmanager
def tmpfs(path: Path, options: str):
    """`path` as a fresh tmpfs mounted with `options`; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def check_no_partial_sample(out: Path) -> int:
    """Every sample id has all its files or none, and no temp file is left; returns the finished count."""
    assert not [p for p in out.rglob("*.tmp")], "temp files left behind"
    ids: dict[str, set[str]] = {}
    for folder in SAMPLE_FILES:
        for p in (out / folder).glob("*") if (out / folder).is_dir() else ():
            ids.setdefault(p.stem, set()).add(folder)
    partial = {i: sorted(set(SAMPLE_FILES) - have) for i, have in ids.items() if have != set(SAMPLE_FILES)}
    assert not partial, f"partial samples (missing files): {partial}"
    return len(ids)


def run_and_fail(setup_, out: Path, capsys, what: str) -> None:  # noqa: F811 - `setup` is a fixture name here
    code = main(args_for(setup_, out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"cannot write to the output folder {out}" in err and what in err, err
    assert "rerun the same command" in err and "Traceback" not in err


class ShortDisk:
    """A disk with `budget` bytes left: `os.fdopen` files (the atomic writer's) raise ENOSPC past it."""

    def __init__(self, budget: int):
        self.budget = budget
        self.real_fdopen = os.fdopen

    def fdopen(self, fd, *args, **kwargs):
        f = self.real_fdopen(fd, *args, **kwargs)
        disk, write = self, f.write

        def limited(data):
            disk.budget -= len(data)
            if disk.budget < 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write(data)

        f.write = limited
        return f


def test_disk_full_via_patched_writer(setup, reference, tmp_path, capsys, monkeypatch):  # noqa: F811
    """Feeds a disk that fills up after about a third of the samples (a patched writer); expects the ENOSPC
    error, whole samples only, and a rerun with space again that ends byte-identical to a clean run."""
    out = tmp_path / "full"
    disk = ShortDisk(sum(p.stat().st_size for p in reference.rglob("*") if p.is_file()) // 3)
    monkeypatch.setattr(os, "fdopen", disk.fdopen)
    run_and_fail(setup, out, capsys, "No space left on device")
    monkeypatch.undo()
    made = check_no_partial_sample(out)
    assert 0 < made < NUM and not (out / "manifest.jsonl").exists()
    assert main(args_for(setup, out)) == 0
    assert_same_tree(out, reference)


def test_disk_full_on_a_small_tmpfs(setup, reference, tmp_path, capsys):  # noqa: F811
    """Feeds a 192 KiB tmpfs as the output disk; expects ENOSPC, whole samples only; after remounting it at
    8 MiB, the rerun completes byte-identical to a clean run."""
    with tmpfs(tmp_path / "disk", "size=192k") as disk:
        out = disk / "out"
        run_and_fail(setup, out, capsys, "No space left on device")
        made = check_no_partial_sample(out)
        assert made < NUM
        remount(disk, "size=8m")
        assert main(args_for(setup, out)) == 0
        assert_same_tree(out, reference)


def test_read_only_output_folder_via_patched_temp_files(setup, reference, tmp_path, capsys, monkeypatch):  # noqa: F811
    """Feeds an output folder where creating any file fails with EROFS; expects the read-only error before any
    sample, nothing written; a rerun once it is writable completes byte-identical to a clean run."""
    out = tmp_path / "ro"
    out.mkdir()
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # noqa: A002 - mkstemp's own parameter name
        if dir is not None and Path(dir).is_relative_to(out):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    run_and_fail(setup, out, capsys, "Read-only file system")
    monkeypatch.undo()
    assert list(out.iterdir()) == []
    assert main(args_for(setup, out)) == 0
    assert_same_tree(out, reference)


def test_read_only_tmpfs(setup, reference, tmp_path, capsys):  # noqa: F811
    """Feeds a tmpfs mounted read-only; expects the read-only error (even as root); after remounting it
    read-write, the rerun completes byte-identical to a clean run."""
    with tmpfs(tmp_path / "disk", "ro,size=8m") as disk:
        run_and_fail(setup, disk, capsys, "Read-only file system")
        remount(disk, "rw")
        assert list(disk.iterdir()) == []
        assert main(args_for(setup, disk)) == 0
        assert_same_tree(disk, reference)

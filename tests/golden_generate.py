"""Golden output of two tiny `changeanywhere generate` runs: the md5 of every file they write.

`tests/test_golden.py` reruns them and fails when any byte differs, so a refactor can show it changed
nothing. A deliberate change of the generator (sampler, events, drift, file format) changes the bytes:
regenerate the values then, and commit them with the change:

    python tests/golden_generate.py        # rewrites tests/golden/generate.json

The bytes depend on the torch, diffusers and Pillow versions and on the CPU's vector unit, which are recorded
with the values; the test skips (saying so) where they differ.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from hashlib import md5
from pathlib import Path

os.environ["CHANGEANYWHERE_BACKEND"] = "torch"  # as the tests run (generation.json records the backend)

GOLDEN = Path(__file__).resolve().parent / "golden" / "generate.json"
SMALL = ["--num", "8", "--size", "32", "--num-inference-steps", "5", "--batch-size", "4", "--min-area", "16",
         "--no-progress"]
RUNS = {
    "default": ["--splits", "0.8:0.1:0.1"],
    "paper": ["--content", "diffusion", "--content-scale", "0.7:1", "--blend", "latent", "--drift", "0",
              "--nonchange", "0", "--guidance-scale", "2",
              "--eta", "0.5", "--num-events", "2:3", "--seed", "7"],
}
TEXT = (".json", ".jsonl", ".md", ".txt")


def environment() -> dict[str, str]:
    """What the bytes depend on besides the code."""
    import diffusers
    import PIL
    import torch

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "pillow": PIL.__version__,
        "cpu": torch.backends.cpu.get_cpu_capability(),
    }


def run_golden() -> dict[str, dict[str, str]]:
    """Run the tiny generate commands (one thread, in this process); md5 of each file, temp paths replaced."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `tests` is a package
    from changeanywhere.classes import ClassSet
    from changeanywhere.cli import main
    from tests.conftest import make_fake_dataset, make_tiny_pipe  # the tests' set-up too (offline Hub, temp cache)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            dubai = ClassSet.builtin("dubai-landcover")
            make_tiny_pipe(dubai).save_pretrained(root / "model")
            data = make_fake_dataset(root / "data", dubai)
            result = {}
            for name, extra in RUNS.items():
                out = root / name
                args = ["generate", "--images", str(data / "images"), "--labels", str(data / "labels"),
                        "--classes", "dubai-landcover", "--model", str(root / "model"), "--out", str(out),
                        *SMALL, *extra]
                if main(args) != 0:
                    raise RuntimeError(f"generate failed: {args}")
                result[name] = {
                    p.relative_to(out).as_posix(): _md5(p, root) for p in sorted(out.rglob("*")) if p.is_file()
                }
            return result
    finally:
        torch.set_num_threads(threads)


def _md5(path: Path, root: Path) -> str:
    data = path.read_bytes()
    if path.suffix in TEXT:
        data = data.replace(str(root).encode(), b"ROOT")
    return md5(data).hexdigest()


def main() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    record = {"environment": environment(), "runs": run_golden()}
    GOLDEN.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}: {sum(len(v) for v in record['runs'].values())} files")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
    main()

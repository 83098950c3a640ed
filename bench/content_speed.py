"""`changeanywhere generate` pairs/s with bank content beside diffusion content, in one run, on one machine.

Each arm runs the whole generate loop (tiles, events, pasting, sampler, writes) of the embedded model on the Dubai
train tiles at 256² into a temporary folder; the arms alternate for `--rounds` rounds (so both see the same load)
after one warm-up run each (the bank of the sources is built then, and cached). Prints pairs/s per arm and the
ratio bank ÷ diffusion (the target of issue 27: ≥ 2).

Usage:
    python bench/content_speed.py                  # 24 pairs per run, 2 rounds
    python bench/content_speed.py --num 48 --rounds 3 --content-strength 0 0.3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "data" / "dubai-landcover"
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DUBAI)
    ap.add_argument("--num", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--content-strength", type=float, nargs="+", default=None,
                    help="bank arms at these strengths (default: the default strength)")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}: pass --data")
        return 1

    from changeanywhere.dataset import GenerateConfig, generate
    from changeanywhere.hub import load_pipeline
    from changeanywhere.pairs import PairSettings

    pipe = load_pipeline(None, device="cpu", dtype="fp32")
    pipe.set_backend("auto")
    strengths = args.content_strength or [PairSettings.content_strength]
    arms = {"diffusion": PairSettings(content="diffusion")}
    arms.update({f"bank (strength {s:g})": PairSettings(content="bank", content_strength=s) for s in strengths})
    base = GenerateConfig(images=args.data / "images", labels=args.data / "labels", classes="dubai-landcover",
                          out=Path("unused"), num=args.num, batch_size=args.batch_size, split="train",
                          progress=False)
    rates: dict[str, list[float]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):  # round 0: warm-up (ONNX export, bank build), not counted
            for name, pair in arms.items():
                cfg = replace(base, out=Path(tmp) / f"{r}-{len(rates[name])}-{name.split()[0]}", pair=pair)
                t0 = time.perf_counter()
                generate(cfg, pipe)
                dt = time.perf_counter() - t0
                if r:
                    rates[name].append(args.num / dt)
                print(f"round {r}{' (warm-up)' if not r else ''}: {name}: {args.num / dt:.2f} pairs/s", flush=True)
    diffusion = statistics.median(rates["diffusion"])
    print(f"\npairs/s at 256², batch {args.batch_size}, {args.num} pairs per run, median of {args.rounds} rounds:")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"  {name:<24} {med:6.2f} pairs/s   ratio to diffusion {med / diffusion:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""UNet forward on the CPU: eager PyTorch vs `torch.compile` vs ONNX Runtime, as ratios measured in one run.

The embedded default's UNet (or `--model`'s) at 64×64 latents (a 256² image), batch 1 and 8, fp32, plus bf16
where the CPU has native bf16 (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`: AVX-512 BF16 or AMX; emulated
bf16 is slower, so it is skipped elsewhere unless `--bf16`). Every backend gets the same random input and
timestep; the table gives the median ms per forward, the speed-up over eager fp32 at that batch, and the max
abs difference of the output from eager fp32 (pass: ≤ `--tolerance`, or `--bf16-tolerance` for bf16).

Threads are set once, before anything runs, to `--threads` (default: torch's own choice, the physical cores):
`torch.set_num_threads(n)` for eager and compiled PyTorch, `intra_op_num_threads=n` (inter-op 1, sequential)
for ONNX Runtime. Timed calls are interleaved (each repeat runs every backend once, in turn), so load from other
processes on the machine falls on all of them alike: the ratios hold on a busy machine, the absolute times less.

    python bench/cpu_backends.py                          # ONNX Runtime comes with the package
    python bench/cpu_backends.py --batch 1 8 --threads 2 --repeats 20
    python bench/cpu_backends.py --model DIR --size 8     # a tiny pipeline (smoke test)

ONNX export uses `torch.onnx.export` (the dynamo exporter, else the TorchScript one), batch as a dynamic axis.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Forward = Callable[[object, object], object]  # (x, t) -> output, numpy or tensor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="pipeline folder or Hub repo id (default: the embedded model)")
    p.add_argument("--size", type=int, default=64, help="latent side (64: a 256² image)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, default=None, help="threads for every backend (default: torch's)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per backend and batch (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--backends", nargs="+", default=["eager", "eager-cl", "compile", "onnx"],
                   choices=["eager", "eager-cl", "compile", "onnx"],
                   help="eager-cl: eager with channels_last weights and input")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 rows: auto = only with native CPU support")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max abs difference from eager fp32 (fp32 rows)")
    p.add_argument("--bf16-tolerance", type=float, default=5e-2, help="the same for bf16 rows")
    return p.parse_args(argv)


def onnx_session(unet, x, t, threads: int, folder: Path):
    """Export the UNet (batch dynamic) and open an ONNX Runtime session with `threads` intra-op threads."""
    import onnxruntime as ort
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, x, t):
            return self.unet(x, t).sample

    path = folder / "unet.onnx"
    wrapped = Wrapped(unet).eval()
    how = "dynamo"
    try:
        batch = torch.export.Dim("batch", min=1, max=1024)
        torch.onnx.export(wrapped, (x, t), path, dynamo=True, input_names=["x", "t"], output_names=["eps"],
                          dynamic_shapes={"x": {0: batch}, "t": {}})
    except Exception as err:  # noqa: BLE001 - any exporter failure falls back to the legacy exporter
        how = f"TorchScript (dynamo failed: {type(err).__name__})"
        torch.onnx.export(wrapped, (x, t), path, dynamo=False, input_names=["x", "t"], output_names=["eps"],
                          dynamic_axes={"x": {0: "batch"}, "eps": {0: "batch"}}, opset_version=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session, how


def build_backends(unet, names: list[str], dtypes: list[str], x, t, threads: int, work: Path):
    """{(backend, dtype): forward(x, t)}; backends that fail to build are reported and left out."""
    import copy

    import torch

    forwards: dict[tuple[str, str], Forward] = {}
    notes: list[str] = []
    for dtype in dtypes:
        tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        model = copy.deepcopy(unet).to(tdtype).eval()
        for name in names:
            t0 = time.perf_counter()
            try:
                if name == "eager":
                    forwards[name, dtype] = lambda x, t, m=model, d=tdtype: m(x.to(d), t).sample
                elif name == "eager-cl":
                    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
                    forwards[name, dtype] = lambda x, t, m=cl, d=tdtype: m(
                        x.to(d).contiguous(memory_format=torch.channels_last), t).sample
                elif name == "compile":
                    compiled = torch.compile(model)
                    for b in (1, 2):  # compile outside the timing; batch 2 settles a dynamic batch dim
                        compiled(x[:1].repeat(b, 1, 1, 1).to(tdtype), t)
                    forwards[name, dtype] = lambda x, t, m=compiled, d=tdtype: m(x.to(d), t).sample
                elif name == "onnx":
                    if dtype != "fp32":
                        notes.append(f"onnx {dtype}: not measured (exported fp32 only)")
                        continue
                    # a batch of 2 as the example: export specialises a dynamic dimension seen at size 1
                    session, how = onnx_session(model, x[:1].repeat(2, 1, 1, 1), t, threads, work)
                    notes.append(f"onnx export: {how}")
                    forwards[name, dtype] = lambda x, t, s=session: s.run(
                        None, {"x": x.numpy(), "t": t.numpy()})[0]
            except Exception as err:  # noqa: BLE001 - report and go on with the others
                notes.append(f"{name} {dtype}: failed ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
                continue
            notes.append(f"{name} {dtype}: ready in {time.perf_counter() - t0:.1f} s")
    return forwards, notes


def as_numpy(out):
    import numpy as np
    import torch

    return out.float().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    from changeanywhere.hub import load_pipeline

    bf16_native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    dtypes = ["fp32"] + (["bf16"] if args.bf16 == "on" or (args.bf16 == "auto" and bf16_native) else [])
    unet = load_pipeline(args.model, device="cpu", dtype="fp32").unet.eval()
    gen = torch.Generator().manual_seed(0)
    x_max = torch.randn(max(args.batch), unet.config.in_channels, args.size, args.size, generator=gen)
    t = torch.tensor(500, dtype=torch.int64)

    rows = []
    with torch.inference_mode(), tempfile.TemporaryDirectory(prefix="ca-backends-") as tmp:
        forwards, notes = build_backends(unet, args.backends, dtypes, x_max[:1], t, threads, Path(tmp))
        for batch in args.batch:
            x = x_max[:batch].contiguous()
            reference = as_numpy(unet(x, t).sample)
            times: dict[tuple[str, str], list[float]] = {k: [] for k in forwards}
            diffs = {k: float(np.abs(as_numpy(f(x, t)) - reference).max()) for k, f in forwards.items()}
            for _ in range(args.warmup):
                for f in forwards.values():
                    f(x, t)
            for r in range(args.repeats):
                keys = list(forwards)
                for k in keys[r % len(keys):] + keys[:r % len(keys)]:  # rotate the order every repeat
                    t0 = time.perf_counter()
                    forwards[k](x, t)
                    times[k].append(time.perf_counter() - t0)
            eager = statistics.median(times["eager", "fp32"]) if ("eager", "fp32") in times else None
            for (name, dtype), ts in times.items():
                ms = statistics.median(ts) * 1e3
                tol = args.tolerance if dtype == "fp32" else args.bf16_tolerance
                rows.append((name, dtype, batch, ms, eager * 1e3 / ms if eager else float("nan"), diffs[name, dtype],
                             diffs[name, dtype] <= tol))

    print()
    print(f"UNet of {args.model or 'the embedded default'} ({sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M "
          f"parameters), {args.size}×{args.size} latents, {threads} thread(s) for every backend, median of "
          f"{args.repeats} interleaved calls; torch {torch.__version__}, CPU "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if bf16_native else 'no'}")
    for n in notes:
        print(f"  {n}")
    print("| backend | dtype | batch | ms / forward | speed-up vs eager fp32 | max abs diff | within tolerance |")
    print("|---|---|---|---|---|---|---|")
    for name, dtype, batch, ms, ratio, diff, ok in rows:
        print(f"| {name} | {dtype} | {batch} | {ms:.1f} | {ratio:.2f}× | {diff:.1e} | {'yes' if ok else 'NO'} |")
    fast = [r for r in rows if r[4] >= 1.5 and r[6]]
    print("\n≥ 1.5× faster than eager and within tolerance: "
          + (", ".join(f"{r[0]} {r[1]} at batch {r[2]} ({r[4]:.2f}×)" for r in fast) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

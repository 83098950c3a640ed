"""Training-step and inference speed of the CD models (random data, no files needed).

    OMP_NUM_THREADS=1 python bench/cd_speed.py --steps 20 --batch-size 8 --size 256
    python bench/cd_speed.py --archs effnet-lite0 --steps 0 --infer-size 512   # the app's CD panel, target <= 1 s
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from changeanywhere.cd.models import CDModel
from changeanywhere.cd.train import ohem_cross_entropy


def bench(arch: str, steps: int, batch: int, size: int, device: str, infer_size: int | None = None) -> dict:
    torch.manual_seed(0)
    model = CDModel(arch=arch).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    a = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    b = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    label = (torch.rand(batch, size, size, device=device) < 0.2).long()
    times = []
    for _ in range(steps + 2 if steps else 0):  # two warm-up steps
        t0 = time.perf_counter()
        loss = ohem_cross_entropy(model(a, b), label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.eval()
    infer_size = infer_size or size
    a1 = torch.rand(1, 3, infer_size, infer_size, device=device) * 2 - 1
    b1 = torch.rand(1, 3, infer_size, infer_size, device=device) * 2 - 1
    with torch.no_grad():
        model(a1, b1)  # warm-up
        t0 = time.perf_counter()
        for _ in range(5):
            model(a1, b1)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        infer = (time.perf_counter() - t0) / 5
    train = sorted(times[2:])[len(times[2:]) // 2] if steps else None
    return {"arch": arch, "params_M": round(model.num_parameters / 1e6, 3), "batch": batch, "size": size,
            "train_s_per_step_median": None if train is None else round(train, 3), "infer_size": infer_size,
            "infer_s_per_pair": round(infer, 4),
            "threads": torch.get_num_threads(), "device": device}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--archs", nargs="+", default=["changerex-r18", "tiny"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--infer-size", type=int, default=None, help="side of the inference pair (default --size)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    for arch in args.archs:
        print(json.dumps(bench(arch, args.steps, args.batch_size, args.size, args.device, args.infer_size)),
              flush=True)


if __name__ == "__main__":
    main()

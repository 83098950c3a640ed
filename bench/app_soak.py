"""Soak test of the app: `python app.py` in its own process kept busy for `--minutes` with app_load's mixed load
(examples, uploads, painted strokes; Generate; the zip), watching its memory, open files and temp folders.

    python bench/app_soak.py [--minutes 10] [--clients 4] [--cache-max-age 120] [--sample-s 10]
                             [--max-rss-slope 10] [--max-fd-growth 20] [--max-temp-mb 400]

The server gets a temp folder of its own (TMPDIR and GRADIO_TEMP_DIR: Gradio's cache, the app's output files
and zips), and `--cache-max-age` so that its clean-up (Gradio's `delete_cache` and the app's own pruning) runs
within the soak. Figures: the server's RSS slope (least squares over the samples after the first third, MB per
minute), its open file descriptors and the temp folder's size at start and end (and the largest seen). Each is
bounded; the exit status is 1 when one is out of bounds or a call failed or differed from the same request
alone. The last line is `calls=N failed=M rss_slope_mb_per_min=… fds=A->B temp_mb=C->D (max E)`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import app_load  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def folder_mb(folder: Path) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # deleted while walking
    return total / 2**20


def slope_per_minute(times: list[float], values: list[float]) -> float:
    """Least-squares slope of values over times (seconds), per minute."""
    if len(times) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(times) / 60, np.asarray(values), 1)[0])


def soak(args: argparse.Namespace) -> int:
    temp = Path(tempfile.mkdtemp(prefix="app-soak-"))
    server_tmp = temp / "server"
    server_tmp.mkdir()
    requests = app_load.make_requests(args.clients, temp)
    log = tempfile.TemporaryFile()
    port = app_load.free_port()
    env = {"TMPDIR": str(server_tmp), "GRADIO_TEMP_DIR": str(server_tmp / "gradio")}
    server = app_load.start_server(args, port, log, env=env, extra=["--cache-max-age", str(args.cache_max_age)])
    url = f"http://127.0.0.1:{port}/"
    outcome = app_load.Outcome()
    samples: list[tuple[float, float, int, float]] = []  # (seconds, rss MB, fds, temp MB)
    stop = threading.Event()
    calls = 0
    try:
        alone = app_load.new_client(url)
        app_load.app_defaults(alone, args)
        reference = {r.seed: app_load.call(alone, r, args.steps, args.guidance, args.call_timeout) for r in requests}
        t0 = time.monotonic()
        end = t0 + 60 * args.minutes

        def sample() -> None:
            samples.append((time.monotonic() - t0, rss_mb(server.pid), open_fds(server.pid), folder_mb(server_tmp)))

        def client(req: app_load.Request) -> None:
            nonlocal calls
            c = app_load.new_client(url)
            while time.monotonic() < end and not stop.is_set():
                try:
                    result = app_load.call(c, req, args.steps, args.guidance, args.call_timeout)
                    same = all(np.array_equal(a, b) for a, b in zip(result, reference[req.seed], strict=True))
                    with outcome.lock:
                        calls += 1
                        if not same:
                            outcome.mismatches.append(f"client {req.seed - 1000} ({req.kind})")
                except Exception as err:  # noqa: BLE001 - counted, reported
                    outcome.fail(f"client {req.seed - 1000} ({req.kind}): {type(err).__name__}: {err}")
                    if isinstance(err, TimeoutError):
                        return

        sample()
        threads = [threading.Thread(target=client, args=(r,), daemon=True) for r in requests]
        for t in threads:
            t.start()
        while time.monotonic() < end:
            time.sleep(min(args.sample_s, max(end - time.monotonic(), 0)))
            sample()
            print(f"t={samples[-1][0]:.0f}s rss_mb={samples[-1][1]:.0f} fds={samples[-1][2]} "
                  f"temp_mb={samples[-1][3]:.1f} calls={calls}", flush=True)
        stop.set()
        for t in threads:
            t.join(timeout=args.call_timeout)
        if any(t.is_alive() for t in threads):
            outcome.fail("a client still running after the soak", sum(t.is_alive() for t in threads))
        sample()
    finally:
        app_load.stop_server(server)
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(app_load.DOWNLOADS, ignore_errors=True)

    times, rss, fds, sizes = (list(v) for v in zip(*samples, strict=True))
    settled = [i for i, t in enumerate(times) if t >= times[-1] / 3]
    slope = slope_per_minute([times[i] for i in settled], [rss[i] for i in settled])
    checks = {
        f"rss slope {slope:.2f} MB/min <= {args.max_rss_slope}": slope <= args.max_rss_slope,
        f"fd growth {fds[-1] - fds[0]} <= {args.max_fd_growth}": fds[-1] - fds[0] <= args.max_fd_growth,
        f"temp folder max {max(sizes):.1f} MB <= {args.max_temp_mb}": max(sizes) <= args.max_temp_mb,
        "no failed or differing call": not outcome.failures and not outcome.mismatches and calls > 0,
    }
    print(f"minutes={args.minutes} clients={args.clients} steps={args.steps} cache_max_age_s={args.cache_max_age} "
          f"rss_mb={rss[0]:.0f}->{rss[-1]:.0f}")
    for f in outcome.failures[:8] + outcome.mismatches[:8]:
        print(f"failure: {f}")
    for text, ok in checks.items():
        print(f"{'ok ' if ok else 'OUT'} {text}")
    if not all(checks.values()):
        errors = app_load.error_lines(log)
        print(f"server log, error lines ({len(errors)}):" + "".join(f"\n  {line}" for line in errors))
    print(f"calls={calls} failed={len(outcome.failures) + len(outcome.mismatches)} rss_slope_mb_per_min={slope:.2f} "
          f"fds={fds[0]}->{fds[-1]} temp_mb={sizes[0]:.1f}->{sizes[-1]:.1f} (max {max(sizes):.1f})")
    return 0 if all(checks.values()) else 1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--clients", type=int, default=4, help="concurrent clients, each calling without pause")
    app_load.add_server_args(p)
    p.add_argument("--cache-max-age", type=int, default=120,
                   help="the app's --cache-max-age: served files older than this are deleted")
    p.add_argument("--sample-s", type=float, default=10, help="seconds between samples")
    p.add_argument("--max-rss-slope", type=float, default=10, help="bound on the RSS slope, MB per minute")
    p.add_argument("--max-fd-growth", type=int, default=20, help="bound on the growth of open file descriptors")
    p.add_argument("--max-temp-mb", type=float, default=400, help="bound on the server's temp folder, MB")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(soak(parse_args()))

"""Load test of the app on loopback: N concurrent `gradio_client` clients, each loading a real example and calling
Generate M times, against a server started as `python app.py` in its own process.

    python bench/app_load.py [--clients 8] [--calls 2] [--steps 20] [--model DIR] [--cd-model DIR]
                             [--max-rss-mb 2000]

Checks (exit status 1 when one fails): every call completes; each result (after image and change label) equals
the same request run alone before the load (no state shared between users); a further client, arriving while the
others' calls are queued, sees its queue position; the server's peak resident memory (VmHWM) stays under
`--max-rss-mb`. The last line is `completed=N failed=M p50_s=… p95_s=… peak_rss_mb=…` (latency: submit to
result, per call, under load). Without --model the embedded weights are used (real examples are 256²).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeanywhere.examples import real_examples  # noqa: E402

EVENT_TYPES = ["remove", "add", "transition"]
AFTER, LABEL = 3, 4  # positions of the after image and the change label in /generate's outputs


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    queue_ranks: list[int] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log, chars: int = 3000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-chars:]


def start_server(args: argparse.Namespace, port: int, log) -> subprocess.Popen:
    """`python app.py` on `port`, its output to the file `log`; returns once it answers."""
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--device", args.device]
    for flag, value in (("--model", args.model), ("--cd-model", args.cd_model)):
        if value:
            cmd += [flag, str(value)]
    if args.model:
        cmd.append("--no-fallback")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the app exited at start-up: {log_tail(log)}") from None
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the app did not answer within {args.start_timeout} s")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (Linux VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(i: int, names: list[str]) -> dict:
    """Client i's request: its example, events and seed (distinct per client)."""
    return {"example": names[i % len(names)], "ev_seed": i, "seed": 1000 + i}


def generate(client, req: dict, steps: int, guidance: float, submit_only: bool = False):
    args = ({"background": None, "layers": [], "composite": None}, 3, EVENT_TYPES, req["ev_seed"], req["seed"], False,
            steps, 1.0, 1.0, 1, guidance)
    job = client.submit(*args, api_name="/generate")
    if submit_only:
        return job
    out = job.result()
    if str(out[-1]).startswith("⚠️"):  # the page's notice: the call failed and left the outputs as they were
        raise RuntimeError(out[-1])
    return out


def result_arrays(out) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.asarray(Image.open(out[k]).convert("RGB")) for k in (AFTER, LABEL))


def run_client(url: str, req: dict, calls: int, steps: int, guidance: float, reference, outcome: Outcome, lock,
               start) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
        client.predict(req["example"], api_name="/load_example")
    except Exception as err:  # noqa: BLE001 - counted, reported
        with lock:
            outcome.failures += [f"client {req['seed']}: {type(err).__name__}: {err}"] * calls
        return
    start.wait()
    for call in range(calls):
        t0 = time.perf_counter()
        try:
            out = generate(client, req, steps, guidance)
            dt = time.perf_counter() - t0
            same = all(np.array_equal(a, b) for a, b in zip(result_arrays(out), reference, strict=True))
            with lock:
                outcome.latencies.append(dt)
                if not same:
                    outcome.mismatches.append(f"seed {req['seed']} call {call + 1}")
        except Exception as err:  # noqa: BLE001
            with lock:
                outcome.failures.append(f"seed {req['seed']} call {call + 1}: {type(err).__name__}: {err}")


def watch_queue(url: str, req: dict, steps: int, guidance: float, outcome: Outcome, start, delay: float) -> None:
    """A late client: submits one call while the others queue and records the queue positions it is shown."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict(req["example"], api_name="/load_example")
    start.wait()
    time.sleep(delay)
    job = generate(client, req, steps, guidance, submit_only=True)
    while not job.done():
        status = job.status()
        if status.code.name == "IN_QUEUE" and status.rank is not None:
            outcome.queue_ranks.append(int(status.rank) + 1)  # 1-based, as the page shows it ("queue: 3/9")
        time.sleep(0.02)
    job.result()


def run(args: argparse.Namespace) -> int:
    from gradio_client import Client

    names = [e.name for e in real_examples()]
    if not names:
        raise SystemExit("no real examples under assets/examples")
    port = free_port()
    log = tempfile.TemporaryFile()
    server = start_server(args, port, log)
    url = f"http://127.0.0.1:{port}/"
    try:
        # each distinct request alone, first: what every loaded call must reproduce
        alone = Client(url, verbose=False)
        if args.guidance is None:
            api = alone.view_api(return_format="dict", print_info=False)["named_endpoints"]["/generate"]
            args.guidance = next(p["parameter_default"] for p in api["parameters"] if p["parameter_name"] == "guidance")
        reference = {}
        for i in range(args.clients):
            req = request(i, names)
            alone.predict(req["example"], api_name="/load_example")
            reference[i] = result_arrays(generate(alone, req, args.steps, args.guidance))
        outcome, lock = Outcome(), threading.Lock()
        start = threading.Barrier(args.clients + 1)
        threads = [threading.Thread(target=run_client, args=(url, request(i, names), args.calls, args.steps,
                                                             args.guidance, reference[i], outcome, lock, start))
                   for i in range(args.clients)]
        threads.append(threading.Thread(target=watch_queue, args=(url, request(0, names), args.steps, args.guidance,
                                                                  outcome, start, args.late_client_delay)))
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss = peak_rss_mb(server.pid)
    except Exception:
        print(f"server log (tail):\n{log_tail(log)}", file=sys.stderr)
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    lat = sorted(outcome.latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
    print(f"clients={args.clients} calls_each={args.calls} steps={args.steps} guidance={args.guidance} "
          f"wall_s={wall:.1f}")
    print(f"identical_to_alone={len(lat) - len(outcome.mismatches)}/{len(lat)}"
          + (f" mismatches: {', '.join(outcome.mismatches)}" if outcome.mismatches else ""))
    print(f"late_client_queue_positions={sorted(set(outcome.queue_ranks), reverse=True)[:5]}")
    for f in outcome.failures[:5]:
        print(f"failure: {f}")
    if outcome.failures:
        print(f"server log (tail):\n{log_tail(log)}")
    print(f"completed={len(lat)} failed={len(outcome.failures)} p50_s={p50:.2f} p95_s={p95:.2f} "
          f"peak_rss_mb={rss:.0f}")
    ok = (not outcome.failures and not outcome.mismatches and len(lat) == args.clients * args.calls
          and outcome.queue_ranks and rss <= args.max_rss_mb)
    return 0 if ok else 1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--calls", type=int, default=2, help="Generate calls per client, one after another")
    p.add_argument("--steps", type=int, default=20, help="denoising steps per call (the app's default)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the loaded model's, as the page offers)")
    p.add_argument("--model", help="generator folder or repo id (default: the embedded weights)")
    p.add_argument("--cd-model", help="CD model folder or repo id (default: the embedded one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-rss-mb", type=float, default=2000,
                   help="bound on the server's peak RSS (measured: about 810 MB with the CPU default generator)")
    p.add_argument("--late-client-delay", type=float, default=0.2,
                   help="seconds after the others start that the late client submits its call")
    p.add_argument("--start-timeout", type=float, default=180)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

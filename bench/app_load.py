"""Load test of the app on loopback: N concurrent `gradio_client` clients, each making M calls of a mixed load
(a real example loaded, a map and its image uploaded, or a stroke painted on an example; then Generate and the
zip download), against a server started as `python app.py` in its own process.

    python bench/app_load.py [--clients 16] [--calls 3] [--steps N] [--model DIR] [--cd-model DIR]
                             [--max-rss-mb 2000] [--call-timeout 300] [--timeout 1800]
                             [--fault error|hang] [--fault-call K]

Checks (exit status 1 when one fails, with the server log's error lines): every call completes; each result
(after image, change label, and the zip's after image and label) equals the same request run alone before the
load (no state shared between users); a further client, arriving while the others' calls are queued, sees its
queue position; the server's peak resident memory (VmHWM) stays under `--max-rss-mb`. Every wait is bounded: a
call past `--call-timeout`, a client that fails anywhere (also before the start) or is still running at
`--timeout` is counted as failed, never waited for. The last line is `completed=N failed=M p50_s=… p95_s=…
peak_rss_mb=…` (latency: one call's load, Generate and download, under load). Steps and guidance default to the
app's. `--fault error|hang` makes the server's K-th Generate (default: the first under load) raise or hang: the
bench must then fail, within its bounds. Without --model the embedded weights are used (real examples are 256²).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeanywhere.classes import ClassSet  # noqa: E402
from changeanywhere.demo import AUTO, display_class_set  # noqa: E402
from changeanywhere.examples import RealExample, real_examples  # noqa: E402

EVENT_TYPES = ["remove", "add", "transition"]
KINDS = ("example", "upload", "painted")  # client i makes calls of kind i % 3
AFTER, LABEL, ZIP = 3, 4, -2  # positions of the after image, the change label and the zip in /generate's outputs
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|Traceback|\w+Error|\w+Exception)\b")
# the server with a fault injected: its K-th Generate raises or hangs (a test of the bench, not of the app)
FAULT_WRAPPER = """
import itertools, runpy, sys, threading, time
import changeanywhere.demo as demo
kind, at, app = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.argv = [app, *sys.argv[4:]]
real, count, lock = demo.generate_variants, itertools.count(1), threading.Lock()
def generate(*args, **kwargs):
    with lock:
        n = next(count)
    if n == at:
        if kind == "hang":
            time.sleep(10**6)
        raise RuntimeError(f"fault injected by the load bench into Generate call {n}")
    return real(*args, **kwargs)
demo.generate_variants = generate
runpy.run_path(app, run_name="__main__")
"""


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    queue_ranks: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    generating: threading.Event = field(default_factory=threading.Event)  # enough loaded Generates sent
    sent: int = 0  # loaded Generates sent so far
    queued_after: int = 1  # `generating` is set once this many are sent (the late client then queues behind)

    def generate_sent(self) -> None:
        with self.lock:
            self.sent += 1
            if self.sent >= self.queued_after:
                self.generating.set()

    def fail(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.failures += [what] * n


@dataclass
class Request:
    """Client i's call: its kind, example, events and seed (distinct per client)."""

    kind: str
    example: RealExample
    ev_seed: int
    seed: int
    layer: Path | None = None  # the painted stroke (kind "painted")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_text(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


def log_tail(log, chars: int = 3000) -> str:
    return log_text(log)[-chars:]


def error_lines(log, limit: int = 40) -> list[str]:
    """The server log's lines that name an error (ERROR records, tracebacks, exceptions)."""
    return [line for line in log_text(log).splitlines() if ERROR_LINE.search(line)][:limit]


def start_server(args: argparse.Namespace, port: int, log, env: dict[str, str] | None = None,
                 extra: list[str] = ()) -> subprocess.Popen:
    """`python app.py` on `port` (with `--fault`: wrapped to inject it), its output to the file `log`; returns
    once it answers."""
    app_args = ["--port", str(port), "--device", args.device, *extra]
    for flag, value in (("--model", args.model), ("--cd-model", args.cd_model)):
        if value:
            app_args += [flag, str(value)]
    if args.model:
        app_args.append("--no-fallback")
    fault = getattr(args, "fault", None)
    if fault:
        cmd = [sys.executable, "-c", FAULT_WRAPPER, fault, str(args.fault_call), str(ROOT / "app.py"), *app_args]
    else:
        cmd = [sys.executable, str(ROOT / "app.py"), *app_args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
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


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=20)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (Linux VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_requests(n: int, folder: Path) -> list[Request]:
    """The n clients' requests, round-robin over the kinds and the real examples; painted strokes are written
    to `folder` (a block of the display's building colour, or the second class's)."""
    examples = real_examples()
    if not examples:
        raise SystemExit("no real examples under assets/examples")
    out = []
    for i in range(n):
        req = Request(KINDS[i % len(KINDS)], examples[i % len(examples)], ev_seed=i, seed=1000 + i)
        if req.kind == "painted":
            cs = display_class_set(ClassSet.builtin(req.example.class_set))
            colour = cs.palette[cs.index_of("building") if "building" in cs.names else 1]
            with Image.open(req.example.map) as im:
                w, h = im.size
            layer = np.zeros((h, w, 4), np.uint8)
            y, x = (h // 4 + 8 * i) % (h // 2), (w // 4 + 5 * i) % (w // 2)
            layer[y : y + h // 4, x : x + w // 3] = [*colour, 255]
            req.layer = folder / f"stroke-{i}.png"
            Image.fromarray(layer).save(req.layer)
        out.append(req)
    return out


def submit(client, *args, api_name: str, timeout: float):
    """One call, waited for at most `timeout` seconds (a TimeoutError otherwise, the job cancelled)."""
    import concurrent.futures

    job = client.submit(*args, api_name=api_name)
    try:
        return job.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        job.cancel()
        raise TimeoutError(f"{api_name} gave no result within {timeout:.0f} s") from None


def call(client, req: Request, steps: int, guidance: float, timeout: float,
         on_generate=None) -> tuple[np.ndarray, ...]:
    """One call of `req`'s kind: load (example, upload) → Generate → the zip (downloaded by the client). Returns
    the after image, the label, and the zip's after image and label; raises on a notice of failure."""
    from gradio_client import handle_file

    t_end = time.monotonic() + timeout
    if req.kind == "upload":
        out = submit(client, handle_file(str(req.example.map)), AUTO, False, handle_file(str(req.example.image)),
                     api_name="/load_map", timeout=timeout)
    else:
        out = submit(client, req.example.name, api_name="/load_example", timeout=timeout)
    if str(out[2]).startswith("⚠️"):  # the load notice
        raise RuntimeError(f"load: {out[2]}")
    layers = [handle_file(str(req.layer))] if req.layer else []
    events = 0 if req.kind == "painted" else 3
    if on_generate is not None:
        on_generate()
    out = submit(client, {"background": None, "layers": layers, "composite": None}, events, EVENT_TYPES,
                 req.ev_seed, req.seed, False, steps, 1.0, 1.0, 1, guidance, api_name="/generate",
                 timeout=max(t_end - time.monotonic(), 1))
    if str(out[-1]).startswith("⚠️"):  # the page's notice: the call failed and left the outputs as they were
        raise RuntimeError(out[-1])
    with zipfile.ZipFile(out[ZIP]) as zf:
        in_zip = [np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB")) for n in ("B/000000.png",
                                                                                            "label/000000.png")]
    return (*(np.asarray(Image.open(out[k]).convert("RGB")) for k in (AFTER, LABEL)), *in_zip)


DOWNLOADS = Path(tempfile.mkdtemp(prefix="app-bench-downloads-"))  # the clients' files: one folder per bench run


def new_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, httpx_kwargs={"timeout": 60},
                  download_files=str(DOWNLOADS))


def run_client(url: str, req: Request, args: argparse.Namespace, reference, outcome: Outcome, ready, go) -> None:
    """One client: connect, wait for the start (bounded), then `args.calls` calls; every failure counted. After
    a timed-out call the client stops (its remaining calls are counted as failed)."""
    name = f"client {req.seed - 1000} ({req.kind})"
    try:
        client = new_client(url)
    except Exception as err:  # noqa: BLE001 - counted, reported
        outcome.fail(f"{name}: could not connect: {type(err).__name__}: {err}", args.calls)
        return
    finally:
        ready.release()
    if not go.wait(timeout=args.start_timeout):
        outcome.fail(f"{name}: the load never started", args.calls)
        return
    for k in range(args.calls):
        t0 = time.perf_counter()
        try:
            result = call(client, req, args.steps, args.guidance, args.call_timeout, outcome.generate_sent)
        except Exception as err:  # noqa: BLE001
            outcome.fail(f"{name} call {k + 1}: {type(err).__name__}: {err}")
            if isinstance(err, TimeoutError):
                outcome.fail(f"{name}: calls after a timeout not made", args.calls - k - 1)
                return
            continue
        dt = time.perf_counter() - t0
        same = all(np.array_equal(a, b) for a, b in zip(result, reference, strict=True))
        with outcome.lock:
            outcome.latencies.append(dt)
            if not same:
                outcome.mismatches.append(f"{name} call {k + 1}")


def watch_queue(url: str, req: Request, args: argparse.Namespace, outcome: Outcome, go) -> None:
    """A late client: submits one Generate while the others queue and records the queue positions it is shown."""
    try:
        client = new_client(url)
        submit(client, req.example.name, api_name="/load_example", timeout=args.call_timeout)
        if not go.wait(timeout=args.start_timeout) or not outcome.generating.wait(timeout=args.call_timeout):
            outcome.fail("late client: the others sent no Generate")
            return
        time.sleep(args.late_client_delay)
        job = client.submit({"background": None, "layers": [], "composite": None}, 3, EVENT_TYPES, req.ev_seed,
                            req.seed, False, args.steps, 1.0, 1.0, 1, args.guidance, api_name="/generate")
        deadline = time.monotonic() + args.call_timeout
        while not job.done() and time.monotonic() < deadline:
            status = job.status()
            if status.code.name == "IN_QUEUE" and status.rank is not None:
                with outcome.lock:
                    outcome.queue_ranks.append(int(status.rank) + 1)  # 1-based, as the page shows ("queue: 3/9")
            time.sleep(0.02)
        if not job.done():
            job.cancel()
            outcome.fail(f"late client: no result within {args.call_timeout:.0f} s")
        elif str(job.result()[-1]).startswith("⚠️"):
            outcome.fail(f"late client: {job.result()[-1]}")
    except Exception as err:  # noqa: BLE001
        outcome.fail(f"late client: {type(err).__name__}: {err}")


def app_defaults(client, args: argparse.Namespace) -> None:
    """Steps and guidance not given: the app's defaults, as the page offers them."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/generate"]
    defaults = {p["parameter_name"]: p["parameter_default"] for p in api["parameters"]}
    args.steps = int(defaults["steps"]) if args.steps is None else args.steps
    args.guidance = float(defaults["guidance"]) if args.guidance is None else args.guidance


def run(args: argparse.Namespace) -> int:
    port = free_port()
    log = tempfile.TemporaryFile()
    folder = Path(tempfile.mkdtemp(prefix="app-load-"))
    requests = make_requests(args.clients, folder)
    outcome = Outcome(queued_after=min(4, args.clients))  # one runs, the rest queue: the late client is behind
    server = start_server(args, port, log)
    url = f"http://127.0.0.1:{port}/"
    wall, rss = float("nan"), float("nan")
    try:
        # each distinct request alone, first: what every loaded call must reproduce
        alone = new_client(url)
        app_defaults(alone, args)
        reference = {}
        for req in requests:
            try:
                reference[req.seed] = call(alone, req, args.steps, args.guidance, args.call_timeout)
            except Exception as err:  # noqa: BLE001
                outcome.fail(f"client {req.seed - 1000} ({req.kind}) alone: {type(err).__name__}: {err}", args.calls)
        ready, go = threading.Semaphore(0), threading.Event()
        threads = [threading.Thread(target=run_client, args=(url, req, args, reference[req.seed], outcome, ready, go),
                                    daemon=True)
                   for req in requests if req.seed in reference]
        threads.append(threading.Thread(target=watch_queue, args=(url, requests[0], args, outcome, go), daemon=True))
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for _ in threads[:-1]:  # every client connected (or failed to): start together
            ready.acquire(timeout=args.start_timeout)
        go.set()
        deadline = time.monotonic() + args.timeout
        for t in threads:
            t.join(timeout=max(deadline - time.monotonic(), 0))
        hung = [t for t in threads[:-1] if t.is_alive()]
        if hung:
            outcome.fail(f"a client still running after --timeout {args.timeout:.0f} s", len(hung))
        wall = time.perf_counter() - t0
        rss = peak_rss_mb(server.pid)
    except BaseException:
        print(f"server log (tail):\n{log_tail(log)}", file=sys.stderr)
        raise
    finally:
        stop_server(server)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(DOWNLOADS, ignore_errors=True)

    lat = sorted(outcome.latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
    counts = {k: sum(r.kind == k for r in requests) for k in KINDS}
    print(f"clients={args.clients} calls_each={args.calls} kinds={counts} steps={args.steps} "
          f"guidance={args.guidance} wall_s={wall:.1f}")
    print(f"identical_to_alone={len(lat) - len(outcome.mismatches)}/{len(lat)}"
          + (f" mismatches: {', '.join(outcome.mismatches)}" if outcome.mismatches else ""))
    print(f"late_client_queue_positions={sorted(set(outcome.queue_ranks), reverse=True)[:5]}")
    for f in outcome.failures[:8]:
        print(f"failure: {f}")
    expected = args.clients * args.calls
    ok = (not outcome.failures and not outcome.mismatches and len(lat) == expected and outcome.queue_ranks
          and rss <= args.max_rss_mb)
    if not ok:
        errors = error_lines(log)
        print(f"server log, error lines ({len(errors)}):" + "".join(f"\n  {line}" for line in errors))
    failed = max(len(outcome.failures), expected - len(lat))
    print(f"completed={len(lat)} failed={failed} p50_s={p50:.2f} p95_s={p95:.2f} peak_rss_mb={rss:.0f}")
    return 0 if ok else 1


def add_server_args(p: argparse.ArgumentParser) -> None:
    """The flags app_load and app_soak share: the server, the calls, the bounds."""
    p.add_argument("--steps", type=int, help="denoising steps per call (default: the app's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the app's)")
    p.add_argument("--model", help="generator folder or repo id (default: the embedded weights)")
    p.add_argument("--cd-model", help="CD model folder or repo id (default: the embedded one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--call-timeout", type=float, default=300,
                   help="seconds one call (load, Generate, download) may take, queueing included")
    p.add_argument("--start-timeout", type=float, default=180)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--calls", type=int, default=3, help="calls per client, one after another")
    add_server_args(p)
    p.add_argument("--max-rss-mb", type=float, default=2000,
                   help="bound on the server's peak RSS (measured: about 810 MB with the CPU default generator)")
    p.add_argument("--late-client-delay", type=float, default=0.2,
                   help="seconds after the first four loaded Generates are sent that the late client sends its own")
    p.add_argument("--timeout", type=float, default=1800, help="seconds the loaded phase may take in all")
    p.add_argument("--fault", choices=["error", "hang"], help="make one Generate of the server raise or hang")
    p.add_argument("--fault-call", type=int, help="which Generate (default: the first under load)")
    args = p.parse_args(argv)
    if args.fault and args.fault_call is None:
        args.fault_call = args.clients + 1  # the reference calls come first
    return args


def main(argv=None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

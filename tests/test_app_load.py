"""The load bench (`bench/app_load.py`) in small, on the tiny models against `app.py` started in its own process:
3 clients × 1 call (an example, an upload, a painted stroke; each with Generate and the zip) all complete and
equal the same request run alone, the late client sees its queue position, the server's peak memory stays under
a bound; and a server that fails one Generate makes the bench fail, with the server's error lines, in bounded
time."""

import importlib.util
import sys
import time

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # app.py started as a server
MAX_RSS_MB = 1500  # the tiny models' server: 537 MB measured (torch + gradio dominate)


def load_bench():
    spec = importlib.util.spec_from_file_location("app_load", ROOT / "bench" / "app_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def bench_args(gen, cd, *extra):
    return ["--clients", "3", "--calls", "1", "--steps", "2", "--guidance", "1", "--model", str(gen),
            "--cd-model", str(cd), "--max-rss-mb", str(MAX_RSS_MB), "--late-client-delay", "0.05", *extra]


def test_three_clients_in_parallel(tiny_model_dirs, capsys):
    code = load_bench().main(bench_args(*tiny_model_dirs))
    lines = capsys.readouterr().out.strip().splitlines()
    print("\n".join(lines))
    figures = dict(kv.split("=") for kv in lines[-1].split())
    assert figures["completed"] == "3" and figures["failed"] == "0", lines
    assert "identical_to_alone=3/3" in lines, lines
    assert "'example': 1, 'upload': 1, 'painted': 1" in lines[0], lines
    assert not lines[2].endswith("[]"), f"the late client saw no queue position: {lines}"
    assert float(figures["peak_rss_mb"]) < MAX_RSS_MB
    assert code == 0, lines


def test_a_failing_server_fails_the_bench_in_bounded_time(tiny_model_dirs, capsys):
    t0 = time.monotonic()
    code = load_bench().main(bench_args(*tiny_model_dirs, "--fault", "hang", "--call-timeout", "30"))
    lines = capsys.readouterr().out.strip().splitlines()
    print("\n".join(lines))
    assert code == 1 and time.monotonic() - t0 < 120, lines
    assert lines[-1].startswith("completed=") and "failed=0" not in lines[-1], lines
    code = load_bench().main(bench_args(*tiny_model_dirs, "--fault", "error"))
    lines = capsys.readouterr().out.strip().splitlines()
    print("\n".join(lines))
    assert code == 1 and "failed=1" in lines[-1], lines
    assert any("fault injected by the load bench" in line for line in lines), lines  # the server's error lines

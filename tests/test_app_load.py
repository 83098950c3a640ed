"""The load bench (`bench/app_load.py`) in small: 2 clients × 1 Generate on the tiny models, against `app.py`
started in its own process; every call completes and equals the same request run alone, the late client sees
its queue position, and the server's peak memory stays under a bound."""

import importlib.util
import sys

import test_app

models, tiny_model_dirs = test_app.models, test_app.tiny_model_dirs
MAX_RSS_MB = 1500  # the tiny models' server: 537 MB measured (torch + gradio dominate)


def load_bench():
    spec = importlib.util.spec_from_file_location("app_load", test_app.ROOT / "bench" / "app_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_two_clients_in_parallel(tiny_model_dirs, capsys):
    gen, cd = tiny_model_dirs
    bench = load_bench()
    code = bench.main(["--clients", "2", "--calls", "1", "--steps", "2", "--guidance", "1", "--model", str(gen),
                       "--cd-model", str(cd), "--max-rss-mb", str(MAX_RSS_MB), "--late-client-delay", "0.05"])
    lines = capsys.readouterr().out.strip().splitlines()
    print("\n".join(lines))
    figures = dict(kv.split("=") for kv in lines[-1].split())
    assert figures["completed"] == "2" and figures["failed"] == "0", lines
    assert "identical_to_alone=2/2" in lines, lines
    assert not lines[2].endswith("[]"), f"the late client saw no queue position: {lines}"
    assert float(figures["peak_rss_mb"]) < MAX_RSS_MB
    assert code == 0, lines

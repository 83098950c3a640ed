"""No telemetry by default: importing the package before ONNX Runtime keeps ONNX Runtime from storing telemetry
events (it stores them under ~/.cache/Microsoft/DeveloperTools at import and per session otherwise)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION = """
import sys
if sys.argv[1] == "package-first":
    import changeanywhere  # noqa: F401
import numpy as np
import onnxruntime
from onnx import TensorProto, helper

graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
assert session.run(None, {"x": np.array([-1, 2], np.float32)})[0].tolist() == [0, 2]
"""


def stored_files(order: str, home: Path, **env: str) -> list[str]:
    """Run one ONNX Runtime session in a fresh process with HOME (and XDG_CACHE_HOME) in `home`; the files it
    left there."""
    pytest.importorskip("onnxruntime")
    clean = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env = {**clean, "HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    subprocess.run([sys.executable, "-c", SESSION, order], env=env, check=True, timeout=300)
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_onnx_runtime_stores_no_telemetry_event(tmp_path):
    assert stored_files("package-first", tmp_path / "home") == []


def test_the_check_sees_events_when_telemetry_is_on(tmp_path):
    """The control: the same session with the switch turned back on stores ONNX Runtime's event database
    (measured with onnxruntime 1.32; a later release that stores nothing makes this control moot)."""
    files = stored_files("package-first", tmp_path / "home", ORT_DISABLE_TELEMETRY="0")
    if not files:
        # Seen on the CI machine: ONNX Runtime there stores nothing even with telemetry on, so the control (and
        # with it the check above) cannot be shown in that environment; say so rather than fail or pass.
        pytest.skip("ONNX Runtime stored no telemetry event here even with ORT_DISABLE_TELEMETRY=0; "
                    "the no-telemetry check is moot in this environment")
    assert any("onnxruntime" in f for f in files), files


def test_the_package_sets_every_switch():
    from changeanywhere.telemetry import TELEMETRY_OFF

    assert all(os.environ.get(k) for k in TELEMETRY_OFF)

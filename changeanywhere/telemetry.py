"""No telemetry: the switches that turn off the usage reports of the libraries this package loads.

ONNX Runtime (from 1.32) stores telemetry events under `~/.cache/Microsoft/DeveloperTools/.onnxruntime/` as soon
as it is imported, so its switch must be in the environment before the first `import onnxruntime`; the Hugging
Face Hub and Gradio read theirs once, at import, too. `changeanywhere/__init__.py` calls `disable_telemetry()`
before anything else, so importing the package first is enough. A variable the user has set is kept.
"""

from __future__ import annotations

import os
import sys

TELEMETRY_OFF = {
    "ORT_DISABLE_TELEMETRY": "1",  # ONNX Runtime
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub (diffusers, gradio_client)
    "GRADIO_ANALYTICS_ENABLED": "False",  # Gradio and gradio_client
}


def disable_telemetry() -> None:
    """Set each switch in `TELEMETRY_OFF` unless already set; an ONNX Runtime loaded earlier is told too (its
    import-time event is then already stored: import this package first)."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    ort = sys.modules.get("onnxruntime")
    if ort is not None and os.environ["ORT_DISABLE_TELEMETRY"] == "1" and hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()

"""ChangeAnywhere: synthetic change-detection pairs from single-date land-cover maps."""

from .telemetry import disable_telemetry

disable_telemetry()  # before anything imports onnxruntime, huggingface_hub or gradio

from .classes import ClassSet, LandCoverClass  # noqa: E402
from .errors import ChangeAnywhereError, MapSizeError, UnknownColorsError, WeightsNotFoundError  # noqa: E402
from .events import ChangeResult, UserEdit, simulate_changes  # noqa: E402
from .generator.outputs import ChangeOutput, SynthesisOutput  # noqa: E402
from .generator.pipeline import ChangeAnywherePipeline  # noqa: E402
from .generator.semantic_encoder import SemanticEncoder  # noqa: E402
from .pairs import ChangePair, PairSettings, build_pairs, simulate_events  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ChangeAnywhereError",
    "ChangeAnywherePipeline",
    "ChangeOutput",
    "ChangePair",
    "ChangeResult",
    "ClassSet",
    "LandCoverClass",
    "MapSizeError",
    "PairSettings",
    "SemanticEncoder",
    "SynthesisOutput",
    "UnknownColorsError",
    "UserEdit",
    "WeightsNotFoundError",
    "build_pairs",
    "simulate_changes",
    "simulate_events",
]

"""ChangeAnywhere: synthetic change-detection pairs from single-date land-cover maps."""

from .classes import ClassSet, LandCoverClass
from .errors import ChangeAnywhereError, MapSizeError, UnknownColorsError, WeightsNotFoundError
from .events import ChangeResult, UserEdit, simulate_changes
from .generator.pipeline import ChangeAnywherePipeline, ChangeOutput, SynthesisOutput
from .generator.semantic_encoder import SemanticEncoder
from .pairs import ChangePair, PairSettings, build_pairs, simulate_events

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

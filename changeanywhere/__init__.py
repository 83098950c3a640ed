"""ChangeAnywhere: synthetic change-detection pairs from single-date land-cover maps."""

from .classes import ClassSet, LandCoverClass
from .errors import ChangeAnywhereError, MapSizeError, UnknownColorsError, WeightsNotFoundError
from .events import ChangeResult, UserEdit, simulate_changes
from .generator.pipeline import ChangeAnywherePipeline, ChangeOutput, SynthesisOutput
from .generator.semantic_encoder import SemanticEncoder

__version__ = "0.1.0"

__all__ = [
    "ChangeAnywhereError",
    "ChangeAnywherePipeline",
    "ChangeOutput",
    "ChangeResult",
    "ClassSet",
    "LandCoverClass",
    "MapSizeError",
    "SemanticEncoder",
    "SynthesisOutput",
    "UnknownColorsError",
    "UserEdit",
    "WeightsNotFoundError",
    "simulate_changes",
]

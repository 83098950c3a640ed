"""Dataset generation at scale (`changeanywhere generate`): N change pairs from single-date tiles.

Following one sample: `sources` picks its before tile, `pairs` draws its change events and makes its after
image through the pipeline, `layout` writes its files (PNG or GeoTIFF, see `geo`); `run` drives the batches and
`card` rebuilds the manifest, split lists and dataset card at the end, with `hf`'s metadata.jsonl for
`datasets.load_dataset` (and its upload to the Hub). `config` holds the parameters and the settings record
(generation.json), `plan` deals the batches to processes.

Determinism. Sample i's seed is `seeds.sample_seed(global_seed, i)`; its tile, events and diffusion noise all
derive from it, never from a process rank or a batch position, and batches are always computed in full, so a
sample's bytes do not depend on how a run was interrupted, resumed, grown or split across processes. Every
file goes through a temp file + rename; a sample is finished when its meta/<id>.json exists.
"""

from .card import dataset_card, dataset_stats, finalize
from .config import GenerateConfig, dataset_settings, merge_settings
from .layout import IMAGE_DIRS, META_DIR, sample_id, write_pair
from .plan import Plan, make_plan
from .report import format_plan, format_summary
from .result import GenerateResult
from .run import generate, run_batches
from .sources import Source, SourceCache, TilePicker, find_sources

__all__ = [
    "IMAGE_DIRS",
    "META_DIR",
    "GenerateConfig",
    "GenerateResult",
    "Plan",
    "Source",
    "SourceCache",
    "TilePicker",
    "dataset_card",
    "dataset_settings",
    "dataset_stats",
    "finalize",
    "find_sources",
    "format_plan",
    "format_summary",
    "generate",
    "make_plan",
    "merge_settings",
    "run_batches",
    "sample_id",
    "write_pair",
]

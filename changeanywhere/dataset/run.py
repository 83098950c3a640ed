"""Running `generate`: check the inputs, agree on the plan across processes, make this process's batches
(inputs of the next batch prepared and files of the last one written while a batch denoises), finalize."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import geo
from ..bank import BankSettings, ObjectBank, bank_cache_key, cached, resolve_bank
from ..classes import ClassSet
from ..errors import GenerationError
from ..events import ChangeResult
from ..generator.drift import colour_stats
from ..generator.pipeline import ChangeAnywherePipeline
from ..io import atomic_write_text
from ..pairs import PairSettings, build_pairs, draws, simulate_events
from ..seeds import DRIFT_REFERENCE, derive_seed, sample_seed
from .card import finalize
from .config import (
    GenerateConfig,
    check_out_folder,
    dataset_settings,
    merge_settings,
    read_settings,
    sources_fingerprint,
)
from .layout import make_folders, remove_temp_files, scan_done, write_pair
from .plan import Plan, make_plan
from .result import GenerateResult
from .sources import Source, SourceCache, TilePicker, find_sources, source_windows, validate_sources


def generate(cfg: GenerateConfig, pipe: ChangeAnywherePipeline | None = None) -> GenerateResult:
    """Generate (or resume, or extend) the dataset at `cfg.out`; under torchrun / accelerate launch, each
    process makes its share of the batches and the main process writes the manifest and card at the end.
    A full or read-only output disk stops the run with a `GenerationError`; a rerun continues it."""
    cfg.check()
    class_set = cfg.classes if isinstance(cfg.classes, ClassSet) else ClassSet.load(cfg.classes)
    cfg.pair.change_class_ids(class_set)  # `change_classes` must name classes of the set
    sources = find_sources(cfg.images, cfg.labels, cfg.split, cfg.val_pattern, cfg.resample)
    if cfg.bands is not None and not any(s.windowed for s in sources):
        geo.rasterio_module("choosing image bands (`bands`)")
        raise GenerationError("`bands` chooses bands of TIFF images; the sources hold none", "bands")
    cfg.output_format(sources)  # a GeoTIFF output without rasterio fails now
    out = Path(cfg.out)
    check_out_folder(out)
    with write_errors(out):
        if not cfg.dry_run:
            check_writable(out)
        return _generate(cfg, pipe, class_set, sources, out)


# what a full, read-only or forbidden output folder raises; the run stops with a GenerationError saying so
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextmanager
def write_errors(out: Path) -> Iterator[None]:
    """Turn a failed write under `out` (disk full, read-only, no permission) into a GenerationError that says
    what happened and that a rerun resumes: finished samples are kept, an unfinished one leaves no file."""
    try:
        yield
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        where = f" ({err.filename})" if err.filename else ""
        raise GenerationError(
            f"cannot write to the output folder {out}: {err.strerror or err}{where}. Finished samples are kept and "
            "unfinished ones removed: free some space (or make the folder writable) and rerun the same command to "
            "continue where it stopped", "out"
        ) from err


def check_writable(out: Path) -> None:
    """Write (then delete) a probe file in `out`, or where it will be created: a read-only folder fails before
    any work, and nothing is left behind."""
    folder = out.absolute()
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
    os.close(fd)
    os.unlink(probe)


def _generate(
    cfg: GenerateConfig, pipe: ChangeAnywherePipeline | None, class_set: ClassSet, sources: list[Source], out: Path
) -> GenerateResult:
    from accelerate import PartialState

    from ..generator.schedulers import use_scheduler
    from ..hub import load_pipeline
    from ..runtime import resolve_device

    device = resolve_device(cfg.device)
    state = PartialState(cpu=device == "cpu")
    if state.num_processes > 1 and device != "cpu":
        device = str(state.device)
    if pipe is None:
        pipe = load_pipeline(cfg.model, device=device, dtype=cfg.dtype)
        pipe.set_backend(cfg.backend)
    use_scheduler(pipe, cfg.scheduler)
    dtype = pipe.unet.dtype  # as loaded (a pipeline passed in keeps its own)
    check_model(pipe, class_set, cfg.size, cfg.pair.content)
    cfg = replace(cfg, pair=cfg.pair.resolved(pipe))  # the model's defaults filled in once, for every stage below
    cache = SourceCache(sources, class_set, cfg.size, cfg.snap_colors, bands=cfg.bands, resample=cfg.resample)
    bank = _on_main(state, lambda: sources_bank(cfg, class_set, sources, cache)) if cfg.pair.content == "bank" else None
    record = dataset_settings(cfg, pipe, class_set, sources, dtype, cfg.output_format(sources), bank)

    def prepare() -> tuple[dict[str, Any], list[int]]:
        return prepare_folder(out, record, sources, class_set, cfg, cache)

    merged, done = _on_main(state, prepare)
    plan = make_plan(cfg.num, cfg.batch_size, done, state.num_processes)
    result = GenerateResult(state.is_main_process, out, plan, merged, sources, device, dry_run=cfg.dry_run)
    if cfg.dry_run:
        return result

    start = time.perf_counter()
    share = plan.shares[state.process_index]
    show = state.is_main_process and cfg.progress
    run_batches(pipe, cfg, class_set, sources, plan, share, out, show_progress=show, cache=cache, bank=bank)
    state.wait_for_everyone()
    if state.is_main_process:
        result.stats = finalize(out, merged, class_set)
        result.made = len(plan.to_make(plan.pending))
        result.seconds = time.perf_counter() - start
    return result


def sources_bank(cfg: GenerateConfig, class_set: ClassSet, sources: Sequence[Source], cache: SourceCache
                 ) -> ObjectBank:
    """The object bank of a run: `cfg.bank` when given, else one cut from the sources themselves (read as the run
    reads them), built on the first run and cached by the sources' fingerprint."""
    settings = BankSettings()
    key = bank_cache_key([sources_fingerprint(sources), cfg.bands, cfg.resample, cfg.snap_colors], class_set, settings)
    origin = f"{Path(cfg.images).name} ({len(sources)} images)"
    return resolve_bank(cfg.bank, class_set, lambda: cached(key, lambda: ObjectBank.build(
        source_windows(sources, cache), class_set, settings, origin)))


def prepare_folder(
    out: Path, record: dict[str, Any], sources: Sequence[Source], class_set: ClassSet, cfg: GenerateConfig,
    cache: SourceCache,
) -> tuple[dict[str, Any], list[int]]:
    """Check the dataset's record (generation.json's contents) against the folder's and every source map;
    unless a dry run, create the folders, clear a killed run's temp files and write generation.json. Returns
    (the merged record, finished samples)."""
    old = read_settings(out)
    merged = merge_settings(old, record, out)
    validate_sources(sources, class_set, cfg.snap_colors, cache)
    if cfg.dry_run:
        return merged, scan_done(out) if out.is_dir() else []
    make_folders(out)
    remove_temp_files(out)
    if merged != old:
        atomic_write_text(out / "generation.json", json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return merged, scan_done(out)


def _on_main(state: Any, fn: Callable[[], Any]) -> Any:
    """Run `fn` on the main process and hand its result (or its error) to every process."""
    if state.num_processes == 1:
        return fn()
    from accelerate.utils import broadcast_object_list

    box: list[Any] = [None]
    if state.is_main_process:
        try:
            box[0] = ("ok", fn())
        except Exception as err:  # every rank raises it, none waits forever
            box[0] = ("error", err)
    broadcast_object_list(box, from_process=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


def check_model(pipe: ChangeAnywherePipeline, class_set: ClassSet, size: int, content: str = "diffusion") -> None:
    """The model draws this class set, in this order, at this tile size; with bank content a model of other classes
    is fine (the pasted content is then not refined, `pairs.unrefined`)."""
    if content == "bank" and not draws(pipe, class_set):
        return
    if pipe.num_classes != class_set.num_classes:
        raise GenerationError(
            f"the model expects {pipe.num_classes} classes but class set {class_set.name!r} has "
            f"{class_set.num_classes}: use the class set the model was trained with"
        )
    own = pipe.class_set
    if own is not None and [n.lower() for n in own.names] != [n.lower() for n in class_set.names]:
        raise GenerationError(
            f"the model was trained on classes {list(own.names)} ({own.name!r}) but `classes` gives "
            f"{list(class_set.names)} ({class_set.name!r}): the class order must match", "classes"
        )
    if size % pipe.size_multiple:
        m = pipe.size_multiple
        raise GenerationError(
            f"`size` {size} must be a multiple of {m} for this model (e.g. {max(size // m, 1) * m})", "size"
        )


@dataclass
class SampleInput:
    """What a batch's preparation hands the sampler for one sample: its tile, its events, their record."""

    index: int
    seed: int
    image: np.ndarray
    change: ChangeResult
    meta: dict[str, Any]
    drift_reference: dict[str, Any] | None = None


def sample_input(
    index: int, cfg: GenerateConfig, class_set: ClassSet, settings: PairSettings, sources: Sequence[Source],
    picker: TilePicker, cache: SourceCache, bank: ObjectBank | None = None,
) -> SampleInput:
    """Sample `index`'s before tile (image and map) and its change events, all from its seed."""
    seed = sample_seed(cfg.seed, index)
    k, x, y = picker.pick(index, seed)
    s = cfg.size
    image, label = cache.tile(k, x, y, s)
    change, event_meta = simulate_events(label, class_set, seed, settings, bank, image)
    src = sources[k]
    where = {"image": src.image.name, "label": src.label.name, "x": x, "y": y, "size": s,
             "padded": x + s > src.width or y + s > src.height}
    grid = src.tile_grid(x, y, s)
    wants_reference = settings.drift_strength > 0 or settings.nonchange_strength > 0
    reference, ref_meta = (drift_reference(seed, k, sources, cache, s, class_set.num_classes) if wants_reference
                           else (None, None))
    return SampleInput(index, seed, image, change,
                       {**event_meta, "source": where, **({"geo": grid.to_meta()} if grid else {}),
                        **({"drift_source": ref_meta} if ref_meta else {})},
                       reference)


def drift_reference(
    seed: int, own: int, sources: Sequence[Source], cache: SourceCache, size: int, num_classes: int = 0,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Colour statistics (global and per class) of a tile of *another* source image, drawn from the pair's own
    seed: non-change (and the drift) pull B's colours towards them (another date of the same region looks
    like another image of the set)."""
    others = [k for k in range(len(sources)) if k != own]
    if not others:
        return None, None
    rng = np.random.default_rng(derive_seed(seed, DRIFT_REFERENCE))
    k = others[int(rng.integers(len(others)))]
    h, w = sources[k].height, sources[k].width
    y, x = int(rng.integers(max(h - size, 0) + 1)), int(rng.integers(max(w - size, 0) + 1))
    image, label = cache.tile(k, x, y, size)
    return colour_stats(image, label, num_classes), {"image": sources[k].image.name, "x": x, "y": y}


def run_batches(
    pipe: ChangeAnywherePipeline,
    cfg: GenerateConfig,
    class_set: ClassSet,
    sources: Sequence[Source],
    plan: Plan,
    batches: Sequence[int],
    out: Path,
    *,
    show_progress: bool = False,
    cache: SourceCache | None = None,
    timings: dict[str, float] | None = None,
    bank: ObjectBank | None = None,
) -> None:
    """Make the given batches (one rank's share): the inputs of batch j+1 (tiles, events) are prepared in a
    thread while batch j denoises, and batch j's files are written by worker threads while batch j+1 runs.
    `timings` (optional) accumulates the seconds spent in the sampler (`render_s`) and waiting for inputs."""
    from tqdm.auto import tqdm

    if not batches:
        return
    cache = cache or SourceCache(sources, class_set, cfg.size, cfg.snap_colors, bands=cfg.bands,
                                 resample=cfg.resample)
    file_format = cfg.output_format(sources)
    timings = timings if timings is not None else {}
    picker = TilePicker(sources, cfg.size, cfg.tiling)
    done = set(plan.done)
    b = cfg.batch_size
    settings = cfg.pair.resolved(pipe)

    def prepare(k: int) -> list[SampleInput]:
        return [sample_input(i, cfg, class_set, settings, sources, picker, cache, bank)
                for i in range(k * b, (k + 1) * b)]

    desc = "generate" if plan.world == 1 else f"generate (main's share, {plan.world} processes)"
    bar = tqdm(total=len(plan.to_make(batches)), unit="pair", desc=desc, disable=not show_progress,
               dynamic_ncols=True)
    writes: list[Future] = []
    # PNG encoding and fsync release the GIL: about 0.1 s of one core per pair, so use the cores there are
    writers = max(2, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))
    with ThreadPoolExecutor(1) as prep_pool, ThreadPoolExecutor(writers) as write_pool:
        upcoming = prep_pool.submit(prepare, batches[0])
        for j in range(len(batches)):
            t0 = time.perf_counter()
            items = upcoming.result()
            if j + 1 < len(batches):
                upcoming = prep_pool.submit(prepare, batches[j + 1])
            t1 = time.perf_counter()
            pairs = build_pairs(pipe, [it.image for it in items], [it.change for it in items],
                                [it.seed for it in items], class_set, settings, meta=[it.meta for it in items],
                                drift_references=[it.drift_reference for it in items], bank=bank)
            t2 = time.perf_counter()
            for f in writes:  # at most one batch of writes in flight
                f.result()
            t3 = time.perf_counter()
            for key, dt in (("wait_inputs_s", t1 - t0), ("render_s", t2 - t1), ("wait_writes_s", t3 - t2)):
                timings[key] = timings.get(key, 0.0) + dt
            bar.update(len(writes))
            writes = [write_pool.submit(write_pair, out, it.index, pair, class_set, file_format)
                      for it, pair in zip(items, pairs, strict=True) if it.index < plan.num and it.index not in done]
        for f in writes:
            f.result()
        bar.update(len(writes))
    bar.close()

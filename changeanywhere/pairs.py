"""The generated change pair: how one is made from a before image and its events, and what it holds.

One builder, `build_pairs`, turns (before image or map, change events, settings, seed) into `ChangePair`s; the
dataset generator (`changeanywhere generate`), the app and the tests all call it. The events come from
`simulate_events` (a pair seed -> events) or from the user (painted edits); the after image from
`ChangeAnywherePipeline.change`. `dataset.layout.write_pair` is the one writer of a pair to disk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .change_classes import change_class_ids, counted_change
from .classes import ClassSet
from .config_fields import arg
from .errors import ParameterError
from .events import EVENT_TYPES, ChangeResult, EventSettings, change_type_legend, simulate_changes
from .generator.settings import SamplerSettings
from .image_utils import load_rgb, tensor_to_uint8, uint8_to_tensor
from .labels import IGNORE_INDEX
from .seeds import CONTENT, DIFFUSION, EVENTS, derive_seed

if TYPE_CHECKING:
    from .bank import ObjectBank
    from .generator.outputs import ChangeOutput
    from .generator.pipeline import ChangeAnywherePipeline

CONTENT_SOURCES = ("bank", "diffusion")


@dataclass(frozen=True)
class PairSettings(EventSettings, SamplerSettings):
    """How a pair is made from a before tile: the sampler settings (`SamplerSettings`), the change events
    (`events.EventSettings`) and what fills them."""

    max_event_tries: int = 10  # re-draw the events (next derived seed) while they change nothing
    # the change that counts: the label marks only changes to or from these classes (None: every change); the
    # other simulated changes still happen in B, labelled no change and recorded in meta as of no interest
    content: Literal["bank", "diffusion"] = arg(
        "bank", "what fills the change: bank (real objects and textures of the imagery, fitted into the scene; "
        "the default) or diffusion (painted by the model)")
    # 0 measured best on Dubai val (docs/results.md, "Content strength"): the 3.9 M UNet's refinement blurs the
    # pasted objects (changed_kid 0.254 at 0, 0.286 at 0.15, 0.336 at 0.3, 0.367 at 0.5)
    content_strength: float = arg(0.0, "with --content bank: how far the diffusion model repaints the pasted "
                                  "content and a band around it (0: pasted as is, the default; 1: painted anew)")
    change_classes: tuple[str, ...] | None = arg(
        None, "the change that counts: comma-separated classes (e.g. building); the label marks only changes to or "
        "from them, other simulated changes stay in B as changes of no interest (default: every change counts)",
        metavar="NAMES")

    def change_class_ids(self, class_set: ClassSet) -> tuple[int, ...] | None:
        """The indices of `change_classes` in `class_set` (None: every change counts); unknown names are a
        `ParameterError`."""
        return None if self.change_classes is None else change_class_ids(self.change_classes, class_set)

    def resolved(self, pipe: ChangeAnywherePipeline | None) -> PairSettings:
        """These settings resolved once: the sampler's filled in and every field checked by the pipeline
        (`pipe.resolve`); without a model only checked. Resolved settings pass through."""
        if self.is_resolved:
            return self
        if pipe is None:
            self.check()
            return self.mark_resolved()
        return pipe.resolve(self)[0]

    def check(self) -> None:
        """Validate the settings once, before a long run starts (errors name the parameters): the sampler's
        (`SamplerSettings.check`), then the events'."""
        super().check()
        elo, ehi = self.num_events
        if not 0 <= elo <= ehi:
            raise ParameterError(f"`num_events` must satisfy 0 ≤ low ≤ high, got {elo}:{ehi}", "num_events")
        unknown = sorted(set(self.event_types) - set(EVENT_TYPES))
        if unknown or not self.event_types:
            raise ParameterError(f"unknown `event_types` {unknown}; choose from {', '.join(EVENT_TYPES)}",
                                 "event_types")
        if self.content not in CONTENT_SOURCES:
            raise ParameterError(f"`content` must be one of {', '.join(CONTENT_SOURCES)}, got {self.content!r}",
                                 "content")
        if isinstance(self.content_strength, bool) or not 0.0 <= float(self.content_strength) <= 1.0:
            raise ParameterError(f"`content_strength` must lie in [0, 1] (0: pasted as is), got "
                                 f"{self.content_strength!r}", "content_strength")
        if self.min_area < 1 or self.max_event_tries < 1:
            raise ParameterError("`min_area` and `max_event_tries` must be at least 1", "min_area", "max_event_tries")
        if self.change_classes is not None and (
            isinstance(self.change_classes, str) or not self.change_classes
            or not all(isinstance(n, str) and n.strip() for n in self.change_classes)
        ):
            raise ParameterError(f"`change_classes` must be a non-empty tuple of class names (or None: every "
                                 f"change counts), got {self.change_classes!r}", "change_classes")


@dataclass
class ChangePair:
    """One change pair: the before image (A) and the generated after image (B), both dates' land-cover maps,
    the label and change type, and `meta`: its seeds, events, the sampler's content scale, anchored steps and
    drift, and pixel statistics (JSON-serialisable). `label` is the change that counts (what `label/` holds):
    every change, or with `change_classes` only those; `change_type` and the maps hold every change."""

    before_image: np.ndarray  # HxWx3 uint8
    after_image: np.ndarray  # HxWx3 uint8
    before_map: np.ndarray  # HxW uint8 index map
    after_map: np.ndarray  # HxW uint8 index map
    label: np.ndarray  # HxW bool: the counted change
    change_type: np.ndarray  # HxW uint8: 0 = no change, else 1 + from * K + to
    meta: dict[str, Any]
    rerendered: np.ndarray | None = None  # HxW bool: unchanged pixels the model re-rendered (non-change)

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def content_scale(self) -> float:
        return float(self.meta["content_scale"])


def simulate_events(
    before_map: np.ndarray, class_set: ClassSet, seed: int, settings: PairSettings, bank: ObjectBank | None = None,
    image: np.ndarray | None = None,
) -> tuple[ChangeResult, dict[str, int]]:
    """The change events of a pair seed, re-drawn while they change nothing: (result, {events_seed,
    event_attempts}), the second part for the pair's meta. With `content="bank"`, `add` places `bank` instances
    (matched to the colours of the before `image`, when given)."""
    attempts = 1 if settings.num_events[1] == 0 else settings.max_event_tries
    use = bank if settings.content == "bank" else None
    for attempt in range(attempts):
        events_seed = derive_seed(seed, EVENTS, attempt)
        result = simulate_changes(before_map, class_set, seed=events_seed, num_events=settings.num_events,
                                  event_types=settings.event_types, min_area=settings.min_area, bank=use,
                                  image=image if use is not None else None)
        if result.change_mask.any():
            break
    return result, {"events_seed": events_seed, "event_attempts": attempt + 1}


def pair_stats(result: ChangeResult, class_set: ClassSet) -> dict[str, Any]:
    """Pixel statistics of one pair: changed pixels, from->to transitions, class pixels of both maps."""
    k = class_set.num_classes
    legend = change_type_legend(class_set)
    changed = int(result.change_mask.sum())
    codes = np.bincount(result.change_type[result.change_mask], minlength=1 + k * k)
    names = [*class_set.names, class_set.ignore_name]

    def class_pixels(m: np.ndarray) -> dict[str, int]:
        counts = np.bincount(m.ravel(), minlength=256)
        return {n: int(c) for n, c in zip(names, [*counts[:k], counts[IGNORE_INDEX]], strict=True)}

    return {
        "changed_pixels": changed,
        "pixels": int(result.change_mask.size),
        "change_ratio": round(changed / max(result.change_mask.size, 1), 6),
        "transitions": {legend[c]: int(codes[c]) for c in sorted(legend) if codes[c]},
        "class_pixels_A": class_pixels(result.before),
        "class_pixels_B": class_pixels(result.after),
    }


def counted_stats(result: ChangeResult, class_set: ClassSet, class_ids: tuple[int, ...] | None
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """(label mask, statistics for meta) of a change: every change, or with `class_ids` only those to or from
    these classes, the rest recorded under `no_interest` (changed pixels and transitions)."""
    if class_ids is None:
        return result.change_mask, pair_stats(result, class_set)
    counted = counted_change(result.before, result.after, result.change_mask, class_ids)
    stats = pair_stats(replace(result, change_mask=counted), class_set)
    other = pair_stats(replace(result, change_mask=result.change_mask & ~counted), class_set)
    stats["change_classes"] = [class_set.names[i] for i in class_ids]
    stats["no_interest"] = {"changed_pixels": other["changed_pixels"], "transitions": other["transitions"]}
    return counted, stats


def paste_content(
    images: Sequence[np.ndarray], changes: Sequence[ChangeResult], seeds: Sequence[int], class_set: ClassSet,
    bank: ObjectBank | None, settings: PairSettings,
) -> tuple[list[np.ndarray], list[ChangeResult], list[dict[str, Any]]]:
    """Real content pasted into each change (`content.paste_changes`, seeded by the pair's content stream): the
    pasted images, the changes as pasted (the after map holds exactly what was pasted), and each pair's content
    record (source, strength, bank, every paste's provenance). Painted edits need the bank to have their class;
    `bank` None: the embedded bank (`runtime.DEFAULT_BANK`) when `class_set` is its class set."""
    from .bank import resolve_bank
    from .content import paste_changes

    bank = resolve_bank(bank, class_set)  # None: the embedded bank, for its class set only
    starts, pasted, records = [], [], []
    for image, change, seed in zip(images, changes, seeds, strict=True):
        strict = any(e["type"] == "edit" for e in change.events)
        done, result = paste_changes(image, change, class_set, bank, np.random.default_rng(derive_seed(seed, CONTENT)),
                                     strict=strict)
        starts.append(done.image)
        pasted.append(result)
        records.append({"source": "bank", "strength": float(settings.content_strength), "bank": bank.origin,
                        "pastes": done.records})
    return starts, pasted, records


def draws(pipe: ChangeAnywherePipeline | None, class_set: ClassSet) -> bool:
    """Whether `pipe` draws the classes of `class_set` (same count and, where it stores them, the same names)."""
    if pipe is None or pipe.num_classes != class_set.num_classes:
        return False
    own = pipe.class_set
    return own is None or [n.lower() for n in own.names] == [n.lower() for n in class_set.names]


def unrefined(
    starts: Sequence[np.ndarray], changes: Sequence[ChangeResult], seeds: Sequence[int], class_set: ClassSet,
    settings: PairSettings, references: Sequence[dict | None] | None,
) -> ChangeOutput:
    """After images without the model (a class set it was not trained on): the pasted content, then the
    appearance and acquisition parts of non-change (nothing re-rendered), each from the pair's own stream."""
    from .generator.nonchange import apply_nonchange, as_nonchange_settings, draw_nonchange, nonchange_rng
    from .generator.outputs import ChangeOutput

    kinds = [class_set.kind_of(i) for i in range(class_set.num_classes)]
    refs = list(references) if references is not None else [None] * len(starts)
    nc = as_nonchange_settings(settings.nonchange, inpainting=False)
    images, records = [], []
    for start, change, seed, ref in zip(starts, changes, seeds, refs, strict=True):
        params = draw_nonchange(nonchange_rng(derive_seed(seed, DIFFUSION)), nc, ref) if nc else None
        images.append(apply_nonchange(start, params, change.after, kinds) if params else start)
        records.append(params)
    n = len(starts)
    return ChangeOutput(images=uint8_to_tensor(np.stack(images)),
                        change_masks=np.stack([c.change_mask for c in changes]),
                        after_maps=np.stack([c.after for c in changes]), content_scales=[1.0] * n,
                        seeds=[derive_seed(s, DIFFUSION) for s in seeds], mix_steps=[0] * n, drifts=[None] * n,
                        sampler={**settings.record(), "sampler": None}, nonchange=records)


def synthesize_before(
    pipe: ChangeAnywherePipeline, before_maps: Sequence[np.ndarray], seeds: Sequence[int], settings: PairSettings,
    callback_on_step_end: Callable | None = None,
) -> list[np.ndarray]:
    """Before images drawn from their maps (plain semantic synthesis), for pairs without a real image."""
    out = pipe.synthesize(list(before_maps), settings=settings, seed=[int(s) for s in seeds], output_type="pt",
                          callback_on_step_end=callback_on_step_end)
    return list(tensor_to_uint8(out.images))


def build_pairs(
    pipe: ChangeAnywherePipeline,
    before_images: Sequence[Any | None],
    changes: Sequence[ChangeResult],
    seeds: Sequence[int],
    class_set: ClassSet,
    settings: PairSettings,
    *,
    meta: Sequence[Mapping[str, Any]] | None = None,
    drift_references: Sequence[dict | None] | None = None,
    callback_on_step_end: Callable | None = None,
    bank: ObjectBank | None = None,
) -> list[ChangePair]:
    """Make the after images of a batch of changes: one `ChangePair` per (before image, change, seed).

    The diffusion noise derives from the pair's seed, so a pair does not depend on the rest of its batch (up
    to float rounding). With `content="bank"` (the default) each change first gets real content from the bank
    (`paste_content`), which the model then refines at `content_strength`; with `content="diffusion"` the model
    paints the change (`ChangeAnywherePipeline.change`).

    Args:
        pipe (`ChangeAnywherePipeline`):
            The model that draws the after images (`pipe.change`) and any missing before images
            (`pipe.synthesize`). With `content="bank"` and a model that draws other classes than `class_set`'s
            (`draws`), the after images are made without it: the pasted content plus the appearance and
            acquisition parts of non-change, nothing re-rendered (`unrefined`).
        before_images (`Sequence`):
            Per pair, the before image A (a path, PIL image, HxWx3 uint8 array or 3xHxW tensor in [-1, 1], read
            by `image_utils.load_rgb`), or None: A is then synthesized from the change's before map with the
            pair's seed.
        changes (`Sequence[ChangeResult]`):
            Per pair, the change events applied to the before map (`simulate_events`, or
            `events.simulate_changes` with user edits): both maps, the change mask, change type and events.
            With `content="bank"` the after map becomes exactly what was pasted.
        seeds (`Sequence[int]`):
            Per pair, its seed; the content and diffusion streams derive from it (`seeds.derive_seed`).
        class_set (`ClassSet`):
            The classes of the maps; `settings.change_classes` and the bank's classes are checked against it.
        settings (`PairSettings`):
            The sampler settings (`SamplerSettings` fields, passed to `pipe.change`; non-change re-renders only
            with an inpainting UNet), the content source and strength, and `change_classes`. Resolved first
            (`PairSettings.resolved`: checked once, passed through when already resolved); unknown
            `change_classes` names raise a `ParameterError` before any sampling.
        meta (`Sequence[Mapping[str, Any]]`, *optional*):
            Per pair, extra JSON fields merged last into its `meta` (e.g. where its tile came from). None: none.
        drift_references (`Sequence[dict | None]`, *optional*):
            Per pair, colour statistics of another real image (`drift.colour_stats`) that the non-change style
            (and the drift, when `settings.drift` > 0) pulls B towards. None: no reference.
        callback_on_step_end (`Callable`, *optional*):
            Passed to `pipe.change` (not to the synthesis of missing before images). None: no callback.
        bank (`ObjectBank`, *optional*):
            The object bank of `content="bank"` (unused with `content="diffusion"`). None: the embedded bank
            (`runtime.DEFAULT_BANK`), which holds only its own class set's classes (`bank.resolve_bank` refuses
            others with a `BankError`).

    Returns:
        `list[ChangePair]`: one per pair, in input order: the before image (as given or synthesized, without
        pasted content), the after image, both maps, the label (only the counted changes with
        `change_classes`), the change type, `meta` (seeds, content scale, anchored steps, change sampler, drift,
        non-change, content record, events, pixel statistics, then the given `meta`) and the re-rendered
        unchanged pixels (None when non-change is off).
    """
    settings = settings.resolved(pipe)  # checked once (passed through when the caller resolved them)
    settings.change_class_ids(class_set)  # unknown class names fail before any sampling
    images = [None if im is None else load_rgb(im) for im in before_images]
    missing = [i for i, im in enumerate(images) if im is None]
    if missing:
        drawn = synthesize_before(pipe, [changes[i].before for i in missing], [seeds[i] for i in missing], settings)
        for i, im in zip(missing, drawn, strict=True):
            images[i] = im
    starts, content = images, [{"source": "diffusion"} for _ in changes]
    if settings.content == "bank":
        starts, changes, content = paste_content(images, changes, seeds, class_set, bank, settings)
    if settings.content == "bank" and not draws(pipe, class_set):
        out = unrefined(starts, changes, seeds, class_set, settings, drift_references)
        for c in content:
            c["refinement"] = "none: the model draws other classes (ring matching and Poisson blending only)"
    else:
        # with bank content the sampler's strength is `content_strength` (checked with the pair settings)
        run = replace(settings, strength=settings.content_strength).mark_resolved() if settings.content == "bank" \
            else settings
        out = pipe.change(
            starts, [c.before for c in changes], [c.after for c in changes], settings=run,
            drift_reference=(list(drift_references) if drift_references is not None and settings.drift_strength > 0
                             else None),
            nonchange_reference=list(drift_references) if drift_references is not None else None,
            seed=[derive_seed(s, DIFFUSION) for s in seeds], output_type="pt",
            callback_on_step_end=callback_on_step_end, start_from="image" if settings.content == "bank" else "texture",
        )
        for c in content:
            if c["source"] == "bank":
                c["refinement"] = (f"diffusion (SDEdit) at strength {settings.content_strength:g}"
                                   if settings.content_strength > 0 else "none: strength 0 (pasted as is)")
    after = tensor_to_uint8(out.images)
    extra = meta if meta is not None else [{}] * len(changes)
    class_ids = settings.change_class_ids(class_set)
    pairs = []
    for i, (c, seed, more) in enumerate(zip(changes, seeds, extra, strict=True)):
        label, stats = counted_stats(c, class_set, class_ids)
        record = {"seed": int(seed), "diffusion_seed": int(out.seeds[i]), "content_scale": float(out.content_scales[i]),
                  "mix_steps": int(out.mix_steps[i]), "sampler": out.sampler["sampler"],
                  "drift": out.drifts[i], "nonchange": out.nonchange[i], "content": content[i], "events": c.events,
                  **stats, **more}
        pairs.append(ChangePair(np.ascontiguousarray(images[i]), after[i], c.before, c.after, label,
                                c.change_type, record, None if out.rerendered is None else out.rerendered[i]))
    return pairs

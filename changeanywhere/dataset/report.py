"""The console reports of `generate` (the --dry-run plan, the closing summary) and the dataset record's sampler
in words, which the dataset card shows too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import INFO_KEY
from .layout import sample_id

if TYPE_CHECKING:
    from .result import GenerateResult


def format_plan(result: GenerateResult) -> str:
    """The --dry-run plan."""
    p, s = result.plan, result.settings
    smp, ev = s["sampler"], s["events"]
    done = len(p.done)
    extra = p.num_batches * p.batch_size - p.num
    lines = [
        f"plan for {result.out}" + (" (exists)" if (result.out / "generation.json").is_file() else " (new)"),
        f"  model      {s[INFO_KEY]['model']} ({s['dtype']} on {result.device}, "
        f"weights {s['model']['weights_sha256'][:12]})",
        f"  sources    {len(result.sources)} image/label pairs ({s['sources']['split']}), "
        f"{s['tiling']} {s['size']}² tiles",
        f"  samples    {p.num:,} (ids {sample_id(0)}..{sample_id(p.num - 1)}), global seed {s['seed']}",
        f"  batches    {p.num_batches:,} of {p.batch_size}"
        + (f" (the last one computed in full: {extra} extra sample(s) not written)" if extra else ""),
        f"  sampler    {describe_sampler(s)}, {smp['sampler']} change sampler",
        f"  nonchange  {describe_nonchange(smp)}",
        f"  events     {ev['num_events'][0]}:{ev['num_events'][1]} per pair ({','.join(ev['event_types'])}), "
        f"min area {ev['min_area']} px",
        f"  on disk    {done:,} finished, {p.num - done:,} to make in {len(p.pending):,} batch(es)",
        f"  processes  {p.world}",
    ]
    for r, share in enumerate(p.shares):
        lines.append(f"    rank {r}: {len(share):,} batch(es), {len(p.to_make(share)):,} sample(s) to write")
    return "\n".join(lines)


def format_summary(result: GenerateResult) -> str:
    """The closing summary."""
    st = result.stats or {}
    rate = result.made / result.seconds if result.seconds > 0 else 0.0
    skipped = len(result.plan.done)
    ch = st.get("changed_pixels", 0) / max(st.get("pixels", 0), 1)
    return "\n".join(
        [
            f"{st.get('pairs', 0):,} pairs in {result.out}: made {result.made:,}, skipped {skipped:,} already on disk,"
            f" in {result.seconds:.1f} s ({rate:.2f} pairs/s on {result.plan.world} process(es), {result.device})",
            f"changed pixels: {100 * ch:.2f} % overall, {100 * st.get('ratio_mean', 0.0):.2f} % per pair on "
            f"average; {st.get('no_change_pairs', 0):,} pair(s) without change",
            f"wrote {result.out / 'manifest.jsonl'} and the dataset card {result.out / 'README.md'}",
        ]
    )


def describe_sampler(settings: dict[str, Any]) -> str:
    """The sampler of a dataset record (generation.json) in words: scheduler, steps, eta, guidance and the steps
    it applies to, content scale."""
    smp = settings["sampler"]
    return (f"{settings[INFO_KEY]['scheduler']}, {smp['num_inference_steps']} steps,{_eta(settings)} guidance "
            f"{smp['guidance_scale']:g}{_interval(settings)}, content scale "
            f"{smp['content_scale'][0]:g}–{smp['content_scale'][1]:g}")


def _eta(settings: dict[str, Any]) -> str:
    """' eta 1,' where the scheduler takes an eta (DDIM), '' where it has none."""
    return f" eta {settings['sampler']['eta']:g}," if settings[INFO_KEY]["scheduler_takes_eta"] else ""


def _interval(settings: dict[str, Any]) -> str:
    """' on the last 3 of 8 steps' where guidance applies to part of the run (the model's guidance interval)."""
    from ..generator.sampling import guided_steps

    start, stop = settings[INFO_KEY]["guidance_interval"]
    n, scale = settings["sampler"]["num_inference_steps"], settings["sampler"]["guidance_scale"]
    steps = guided_steps((start, stop), n, scale)
    if scale == 1.0 or steps == range(n):
        return ""  # no guidance at all (scale 1), or on every step: nothing to add
    if not steps:
        return f" on no step of {n} (guidance interval {start:g}–{stop:g})"
    return f" on steps {steps.start + 1}–{steps.stop} of {n} (guidance interval {start:g}–{stop:g})"


def describe_nonchange(sampler: dict) -> str:
    """The non-change setting of a sampler record in words: its strength, or off."""
    strength = sampler["nonchange"]
    if not strength:
        return "off: unchanged pixels are the before image (up to the feathered seam)" + (
            f"; global drift {sampler['drift']:g}" if sampler.get("drift") else "")
    return (f"strength {strength:g}: unchanged objects re-rendered under the same map, scene appearance, "
            "misregistration, blur, noise, JPEG; never in the label (parameters in each sample's meta)")

"""Real content for change regions: bank instances and textures pasted into the before image.

`paste_changes` turns (before image, simulated change, bank) into the pasted after image, the after map of what
was pasted and the provenance of every paste. Each paste takes the scene's light (colour matched on its ring,
`match_ring`) and is Poisson-blended (OpenCV `seamlessClone`, `poisson_paste`); the diffusion model may then
refine it (`ChangeAnywherePipeline.change(..., start_from="image")`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from .bank import BankError, Instance, ObjectBank, transform
from .classes import ClassSet
from .events import ChangeResult, change_result
from .labels import IGNORE_INDEX

# the per-channel gain of the ring colour match: a full match of mean and spread (as in the pilot) turned new roofs
# into the colour of the ground they landed on, and the segmenter read them as ground (bench/content_blend.py)
GAIN_CLIP = (0.8, 1.25)
SEAM_PX = 1  # the Poisson solution is kept on a band this wide inside the pasted region; inside it, the content
SCENE_PURITY = 0.97  # share of a same-scene texture window that must be the fill class
SCENE_TRIES = 120
PACK_TRIES = 80
ADD_BLEND_PX = 6  # an instance is pasted with its footprint dilated by this (at most its ring: its shadow)
FILL_BLEND_PX = 2  # a texture fill is blended on its region dilated by this
ROAD_WIDTH = (8, 17)  # px, drawn per new road: a region turning into a "paved" class gets a strip this wide


@dataclass
class Pasted:
    """The pasted after image, its after map, and one provenance record per paste."""

    image: np.ndarray  # HxWx3 uint8
    after: np.ndarray  # HxW uint8 index map: exactly what was pasted
    records: list[dict[str, Any]] = field(default_factory=list)


def match_ring(src: np.ndarray, src_ring: np.ndarray, dst: np.ndarray, dst_ring: np.ndarray) -> np.ndarray:
    """`src` scaled per channel so that its ring's mean colour matches the destination ring's (the gain clipped to
    `GAIN_CLIP`): the content takes the scene's light, and keeps its own contrast."""
    if src_ring.sum() < 4 or dst_ring.sum() < 4:
        return src
    a = src[src_ring].astype(np.float64).mean(axis=0)
    b = dst[dst_ring].astype(np.float64).mean(axis=0)
    gain = np.clip((b + 1.0) / (a + 1.0), *GAIN_CLIP)
    return np.clip(np.round(src * gain), 0, 255).astype(np.uint8)


def poisson_paste(dst: np.ndarray, src: np.ndarray, mask: np.ndarray, seam: int = SEAM_PX) -> np.ndarray:
    """`src` Poisson-blended into `dst` (same size) on `mask` (OpenCV `seamlessClone`), the blend kept on a `seam` px
    band along the mask's edge and faded into `src`'s own colours inside (a full Poisson solution takes its
    colours from the destination's boundary: a roof on sand turned to sand); pixels outside `mask` stay `dst`'s."""
    if not mask.any():
        return dst
    pad = 8  # seamlessClone needs the region away from the border
    ys, xs = np.nonzero(mask)
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, dst.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, dst.shape[1])
    d = cv2.copyMakeBorder(dst[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
    s = cv2.copyMakeBorder(src[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
    m = cv2.copyMakeBorder(mask[y0:y1, x0:x1].astype(np.uint8) * 255, pad, pad, pad, pad, cv2.BORDER_CONSTANT, 0)
    bx, by, bw, bh = cv2.boundingRect(m)
    cloned = cv2.seamlessClone(s, d, m, (bx + bw // 2, by + bh // 2), cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    local = mask[y0:y1, x0:x1]
    if seam > 0:
        inner = cv2.erode(local.astype(np.uint8), np.ones((2 * seam + 1, 2 * seam + 1), np.uint8))
        w = (cv2.GaussianBlur(inner.astype(np.float32), (0, 0), seam * 0.75) * local)[..., None]
        cloned = np.clip(np.round(w * src[y0:y1, x0:x1] + (1 - w) * cloned), 0, 255).astype(np.uint8)
    out = dst.copy()
    out[y0:y1, x0:x1][local] = cloned[local]
    return out


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def place_instance(image: np.ndarray, inst: Instance, rot90: int, flip: bool, x: int, y: int,
                   region: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image with the instance pasted with its window's top-left at (x, y), its footprint in image coordinates):
    colour matched on the ring, Poisson-blended on the footprint dilated by `ADD_BLEND_PX` (within the ring).
    `region` (optional): the footprint is cut to it."""
    pix, fp, ring = inst.turned(rot90, flip)
    h, w = fp.shape
    height, width = image.shape[:2]
    win = (slice(y, y + h), slice(x, x + w))
    if y < 0 or x < 0 or y + h > height or x + w > width:
        raise ValueError("instance window outside the image")
    if region is not None:
        fp = fp & region[win]
    matched = match_ring(pix, ring, image[win], ring)
    blend = dilate(fp, ADD_BLEND_PX) & (fp | ring)
    src = image.copy()
    src[win] = np.where(blend[..., None], matched, image[win])
    full = np.zeros((height, width), bool)
    full[win] = blend
    footprint = np.zeros((height, width), bool)
    footprint[win] = fp
    return poisson_paste(image, src, full), footprint


def texture_source(image: np.ndarray, label: np.ndarray, avoid: np.ndarray, cls: int, h: int, w: int,
                   bank: ObjectBank | None, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]] | None:
    """An h×w window of class `cls`: from the same scene first (a window at least `SCENE_PURITY` of that class,
    clear of `avoid`), then from the bank's textures (`quilt`ed to size); None when neither has the class."""
    height, width = label.shape
    if h < height and w < width:
        good = cv2.integral(((label == cls) & ~avoid).astype(np.uint8))
        for _ in range(SCENE_TRIES):
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            share = (good[y + h, x + w] - good[y, x + w] - good[y + h, x] + good[y, x]) / float(h * w)
            if share >= SCENE_PURITY:
                return image[y:y + h, x:x + w].copy(), {"from": "scene", "x": x, "y": y}
    ids = bank.texture_ids(cls) if bank is not None else []
    if not ids:
        return None
    tex = bank.textures[ids[int(rng.integers(len(ids)))]]
    return quilt(tex.pixels, h, w, rng), {"from": "bank", "source": tex.source, "x": tex.x, "y": tex.y}


def quilt(texture: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An h×w texture of random crops of `texture` (turned and flipped at random), on a grid of overlapping
    cells cross-faded over a quarter of their side: no mirrored tiling, no repeat at a fixed period."""
    s = texture.shape[0]
    cell = max(min(s, 48), 8)
    overlap = cell // 4
    step = cell - overlap
    ramp = np.minimum(np.minimum(np.arange(cell) + 1, cell - np.arange(cell)) / (overlap + 1), 1.0)
    weight = np.outer(ramp, ramp)[..., None]
    ny, nx = -(-max(h - overlap, 1) // step), -(-max(w - overlap, 1) // step)
    acc = np.zeros((ny * step + overlap, nx * step + overlap, 3))
    total = np.zeros((*acc.shape[:2], 1))
    for i in range(ny):
        for j in range(nx):
            y, x = int(rng.integers(0, s - cell + 1)), int(rng.integers(0, s - cell + 1))
            crop = transform(texture[y:y + cell, x:x + cell], int(rng.integers(4)), bool(rng.integers(2)))
            acc[i * step:i * step + cell, j * step:j * step + cell] += weight * crop
            total[i * step:i * step + cell, j * step:j * step + cell] += weight
    out = acc / np.maximum(total, 1e-6)
    return np.clip(np.round(out[:h, :w]), 0, 255).astype(np.uint8)


def fill_region(image: np.ndarray, label: np.ndarray, avoid: np.ndarray, region: np.ndarray, cls: int,
                bank: ObjectBank | None, rng: np.random.Generator, class_set: ClassSet, strict: bool = False,
                angle: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Fill `region` with texture of class `cls` (`texture_source`; turned by `angle` degrees when given), a bank
    texture taking the mean colour of its class in this scene, Poisson-blended on the region dilated by
    `FILL_BLEND_PX`. Without any texture of the class: OpenCV inpainting from the surroundings (or, `strict`, a
    `BankError`)."""
    blend = dilate(region, FILL_BLEND_PX)
    ys, xs = np.nonzero(blend)
    y0, x0 = int(ys.min()), int(xs.min())
    h, w = int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1
    if angle is None:
        got = texture_source(image, label, avoid | blend, cls, h, w, bank, rng)
    else:  # a square window turned to `angle` (a road's lanes along the road), cut to the region's box
        side = int(np.ceil(np.hypot(h, w)))
        got = texture_source(image, label, avoid | blend, cls, side, side, bank, rng)
        if got is not None:
            turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
            big = cv2.warpAffine(got[0], turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            oy, ox = (side - h) // 2, (side - w) // 2
            got = (np.ascontiguousarray(big[oy:oy + h, ox:ox + w]), {**got[1], "angle": round(float(angle), 1)})
    name = class_set.names[cls]
    if got is None:
        if strict:
            if bank is None:
                raise BankError(f"no texture of class {name!r} in this scene and no bank")
            bank.require(cls, "textures")
        out = cv2.inpaint(image, blend.astype(np.uint8), 5, cv2.INPAINT_TELEA)
        out = np.where(blend[..., None], out, image)
        return out, {"class": name, "kind": "inpaint", "at": [x0, y0, w, h]}
    tex, where = got
    win = (slice(y0, y0 + h), slice(x0, x0 + w))
    if where["from"] == "bank":  # another scene's texture takes this scene's light: its class's mean colour here
        same = (label == cls) & ~avoid
        if same.sum() >= 64:
            tex = match_ring(tex, np.ones(tex.shape[:2], bool), image, same)
    src = image.copy()
    src[win] = tex
    return poisson_paste(image, src, blend), {"class": name, "kind": "texture", **where, "at": [x0, y0, w, h]}


def corridor(region: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A straight strip `ROAD_WIDTH` px wide through `region` along its long axis (shifted at random across it),
    and its angle in degrees (OpenCV's, counter-clockwise): where a new road goes in a region that turns paved."""
    ys, xs = np.nonzero(region)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centre = pts.mean(0)
    cov = np.cov((pts - centre).T) if len(pts) > 2 else np.eye(2)
    vals, vecs = np.linalg.eigh(cov)
    along, across = vecs[:, 1], vecs[:, 0]
    shift = rng.uniform(-0.5, 0.5) * np.sqrt(max(vals[0], 0.0))
    width = float(rng.integers(*ROAD_WIDTH))
    gy, gx = np.mgrid[0:region.shape[0], 0:region.shape[1]]
    dist = np.abs((gx - centre[0]) * across[0] + (gy - centre[1]) * across[1] - shift)
    strip = region & (dist <= width / 2)
    if strip.sum() < 16:
        return region, 0.0
    return strip, float(np.degrees(np.arctan2(-along[1], along[0])))


def pack_instances(image: np.ndarray, before: np.ndarray, region: np.ndarray, cls: int, bank: ObjectBank,
                   rng: np.random.Generator, taken: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Instances of class `cls` packed into `region` (each footprint inside it, none overlapping `taken` or each
    other), preferring instances cut from the class the region was; when none fits, one instance fitted
    (resized) to the region. Returns (image, footprints, records)."""
    ids = bank.require(cls, "instances")
    under = np.bincount(before[region], minlength=256)[:255].argmax()  # what the region was
    ids = [i for i in ids if bank.instances[i].ring_class == under] or ids  # cut from the same ground
    ys, xs = np.nonzero(region)
    ry0, rx0, ry1, rx1 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    height, width = region.shape
    covered = np.zeros_like(region)
    records: list[dict[str, Any]] = []
    area = int(region.sum())
    for _ in range(PACK_TRIES):
        if covered.sum() >= 0.6 * area:
            break
        i = ids[int(rng.integers(len(ids)))]
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        _, fp, _ = bank.instances[i].turned(k, flip)
        h, w = fp.shape
        y = int(rng.integers(ry0 - h // 2, ry1 - h // 2 + 1))
        x = int(rng.integers(rx0 - w // 2, rx1 - w // 2 + 1))
        if y < 0 or x < 0 or y + h > height or x + w > width:
            continue
        win = (slice(y, y + h), slice(x, x + w))
        if not region[win][fp].all() or (covered | taken)[win][fp].any():
            continue
        image, footprint = place_instance(image, bank.instances[i], k, flip, x, y)
        covered |= footprint
        records.append(instance_record(bank, i, k, flip, x, y))
    if not records:  # nothing fits: one instance fitted to the region's box
        i = ids[int(rng.integers(len(ids)))]
        inst = bank.instances[i]
        r = bank.settings.ring
        fy, fx = np.nonzero(inst.footprint)
        scale_y = (ry1 - ry0) / (fy.max() - fy.min() + 1)
        scale_x = (rx1 - rx0) / (fx.max() - fx.min() + 1)
        h = max(int(round(inst.pixels.shape[0] * scale_y)), 3)
        w = max(int(round(inst.pixels.shape[1] * scale_x)), 3)
        y, x = int(ry0 - round(r * scale_y)), int(rx0 - round(r * scale_x))
        y, x = min(max(y, 0), height - h), min(max(x, 0), width - w)
        if h <= height and w <= width:
            window = np.zeros((h, w), bool)
            sub = region[y:y + h, x:x + w] & ~taken[y:y + h, x:x + w]
            window[:sub.shape[0], :sub.shape[1]] = sub
            ring = cv2.resize(inst.ring.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            fitted = replace(inst, pixels=cv2.resize(inst.pixels, (w, h), interpolation=cv2.INTER_AREA),
                             footprint=window, ring=ring & ~window)
            image, footprint = place_instance(image, fitted, 0, False, x, y)
            covered |= footprint
            records.append({**instance_record(bank, i, 0, False, x, y), "fitted": [w, h]})
    return image, covered, records


def instance_record(bank: ObjectBank, i: int, rot90: int, flip: bool, x: int, y: int) -> dict[str, Any]:
    """Provenance of a pasted instance: its class, source image and position there, where it went, how turned."""
    inst = bank.instances[i]
    return {"class": bank.class_set.names[inst.cls], "kind": "instance", "bank_index": i, "source": inst.source,
            "x": inst.x, "y": inst.y, "at": [x, y], "rot90": rot90, "flip": flip}


def paste_changes(image: np.ndarray, change: ChangeResult, class_set: ClassSet, bank: ObjectBank | None,
                  rng: np.random.Generator, strict: bool = False) -> tuple[Pasted, ChangeResult]:
    """Real content for every change of `change`: the bank instances its `add` events placed (`instance` in the
    event), the scene's own pixels where an `add` copied a map object of a stuff class, then each remaining changed
    region by its new class: object classes get bank instances packed into
    it (the rest of the region keeps its before class), stuff classes a texture fill. Returns the pasted image
    with its after map and provenance, and the change recomputed from that map (the label never lies).
    `strict`: a class the bank lacks is a `BankError` (painted edits), not an OpenCV inpainting."""
    before, after = change.before, change.after.copy()
    out = np.ascontiguousarray(image).copy()
    records: list[dict[str, Any]] = []
    done = np.zeros(before.shape, bool)
    for ev in change.events:
        placed = ev.get("instance")
        if placed is None or bank is None:
            continue
        i = placed["bank_index"]
        out, footprint = place_instance(out, bank.instances[i], placed["rot90"], placed["flip"], *placed["at"])
        done |= footprint
        records.append(instance_record(bank, i, placed["rot90"], placed["flip"], *placed["at"]))
    objects = set(class_set.object_classes)
    for ev in change.events:  # an `add` that copied a map object: that object's own pixels, moved
        if ev["type"] != "add" or "instance" in ev or "offset" not in ev:
            continue
        cls = class_set.names.index(ev["to"])
        if ev.get("block"):  # a copied block: all its classes' pixels at once
            region = change.change_mask & ~done
        elif cls in objects and bank is not None and bank.instance_ids(cls):
            continue  # objects get bank instances, packed into the footprint below
        else:
            region = change.change_mask & ~done & (after == cls)
        out, moved, rec = copy_within(out, image, region, ev, class_set)
        done |= moved
        if rec:
            records.append(rec)
    rest = change.change_mask & ~done
    for cls in np.unique(after[rest]).tolist():
        if cls == IGNORE_INDEX:
            continue
        n, comp = cv2.connectedComponents((rest & (after == cls)).astype(np.uint8), connectivity=8)
        for j in range(1, n):
            region = comp == j
            if cls in objects:
                if bank is None or not bank.instance_ids(cls):
                    if strict:
                        (bank or _no_bank(class_set)).require(cls, "instances")
                    after[region] = before[region]  # no instance to paste: the region stays as it was
                    continue
                out, footprint, recs = pack_instances(out, before, region, cls, bank, rng, done)
                after[region & ~footprint] = before[region & ~footprint]
                done |= footprint
                records += recs
            else:
                angle = None
                if class_set.kind_of(cls) == "paved" and not strict:  # a new road is a strip, not a paved blob
                    strip, angle = corridor(region, rng)
                    after[region & ~strip] = before[region & ~strip]
                    region = strip
                out, rec = fill_region(out, before, change.change_mask, region, cls, bank, rng, class_set, strict,
                                       angle)
                done |= region
                records.append(rec)
    result = change_result(before, after, change.events, class_set.num_classes)
    return Pasted(out, after, records), result


def copy_within(out: np.ndarray, image: np.ndarray, changed: np.ndarray, event: dict[str, Any],
                class_set: ClassSet) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """The pixels of the object an `add` event copied (its `source_bbox`, moved by its `offset`) pasted where the
    copy landed (`changed` pixels within the copy's box), Poisson-blended on the region dilated by
    `FILL_BLEND_PX`. Returns (image, pasted region, provenance record or None)."""
    x, y, w, h = event["source_bbox"]
    dx, dy = event["offset"]
    height, width = changed.shape
    dest = np.zeros_like(changed)
    dest[max(y + dy, 0):y + dy + h, max(x + dx, 0):x + dx + w] = True
    dest &= changed
    if not dest.any():
        return out, dest, None
    blend = dilate(dest, FILL_BLEND_PX)
    ys, xs = np.nonzero(blend)
    sy, sx = np.clip(ys - dy, 0, height - 1), np.clip(xs - dx, 0, width - 1)
    src = out.copy()
    src[ys, xs] = image[sy, sx]
    record = {"class": event["to"], "kind": "scene", "x": int(x), "y": int(y), "at": [int(x + dx), int(y + dy)]}
    return poisson_paste(out, src, blend), dest, record


def _no_bank(class_set: ClassSet) -> ObjectBank:
    return ObjectBank(class_set, [], [], origin="no bank given")

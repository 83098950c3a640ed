"""Change detection: metrics, tiling, models (save/load, Hub cache, strict), CVA, naive pairs, train/eval CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from changeanywhere.cd import (
    BinaryConfusion,
    CDModel,
    all_change_f1,
    binary_metrics,
    cva_predict,
    find_cd_pairs,
    load_cd_model,
    predict,
    sliding_window,
    window_starts,
)
from changeanywhere.cd.augment import BitemporalAugment, crop_pair, gaussian_blur, radiometry
from changeanywhere.cd.data import CDTrainData, read_label
from changeanywhere.cd.train import ohem_cross_entropy
from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.derived.naive import build_naive_set, naive_after_image
from changeanywhere.errors import ChangeAnywhereError, MapSizeError, WeightsNotFoundError
from changeanywhere.maps import write_map

DUBAI = ClassSet.builtin("dubai-landcover")
TINY = ["--arch", "tiny", "--widths", "8", "16", "16", "16"]


# ----------------------------------------------------------------------------------------------- metrics


def test_metrics_hand_computed():
    # TP 30, FP 10, FN 20, TN 940 (N = 1000)
    m = binary_metrics(30, 10, 20, 940)
    p, r = 30 / 40, 30 / 50
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(2 * p * r / (p + r))  # 2/3
    assert m["f1"] == pytest.approx(2 * 30 / (2 * 30 + 10 + 20))
    assert m["iou"] == pytest.approx(30 / 60)
    assert m["oa"] == pytest.approx(0.97)
    pe = (40 * 50 + 960 * 950) / 1000**2  # 0.914
    assert m["kappa"] == pytest.approx((0.97 - pe) / (1 - pe))  # 0.651162...
    assert m["kappa"] == pytest.approx(0.6511627906976745)


def test_metrics_zero_denominators():
    assert binary_metrics(0, 0, 0, 0) == dict.fromkeys(("precision", "recall", "f1", "iou", "oa", "kappa"), 0.0)
    nothing = binary_metrics(0, 0, 0, 100)  # nothing to find, nothing found: perfect
    assert nothing["f1"] == nothing["iou"] == nothing["kappa"] == nothing["oa"] == 1.0
    missed = binary_metrics(0, 0, 10, 90)  # no prediction at all
    assert missed["precision"] == missed["recall"] == missed["f1"] == missed["iou"] == 0.0
    assert missed["oa"] == pytest.approx(0.9) and missed["kappa"] == pytest.approx(0.0)
    everything = binary_metrics(10, 90, 0, 0)  # all-change
    assert everything["f1"] == pytest.approx(all_change_f1(0.1)) and everything["kappa"] == pytest.approx(0.0)


def test_confusion_accumulates_over_images_with_ignore():
    t1 = np.array([[1, 0], [255, 1]], np.uint8)
    p1 = np.array([[1, 1], [1, 0]], bool)
    t2 = np.array([[0, 0], [0, 1]], np.uint8)
    p2 = np.array([[0, 0], [0, 1]], bool)
    cm = BinaryConfusion().update(p1, t1).update(p2, t2)
    assert cm.counts() == {"tp": 2, "fp": 1, "fn": 1, "tn": 3}
    assert (cm + cm).counts() == {"tp": 4, "fp": 2, "fn": 2, "tn": 6}
    assert cm.matrix().tolist() == [[3, 1], [1, 2]]
    floor = cm.all_change()
    assert floor.counts() == {"tp": 3, "fp": 4, "fn": 0, "tn": 0}
    assert floor.metrics()["f1"] == pytest.approx(all_change_f1(3 / 7))


# ----------------------------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("length,tile,overlap", [(256, 256, 32), (100, 256, 32), (600, 256, 32), (513, 128, 0)])
def test_window_starts_cover(length, tile, overlap):
    starts = window_starts(length, tile, overlap)
    covered = np.zeros(max(length, tile), bool)
    for s in starts:
        covered[s : s + tile] = True
        assert s + tile <= max(length, tile)
    assert covered[:length].all()
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("shape", [(300, 520), (100, 90), (256, 256), (257, 600)])
def test_tiling_exact_for_pointwise_model(shape):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 2, 1)  # pointwise: tiling must not change anything

    def fn(a, b):
        return conv(torch.cat([a, b], 1))

    a, b = torch.rand(3, *shape), torch.rand(3, *shape)
    with torch.no_grad():
        whole = fn(a[None], b[None])[0]
    tiled = sliding_window(fn, a, b, tile=128, overlap=40, batch_size=3)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, rtol=1e-6, atol=1e-6)
    assert torch.equal(tiled.argmax(0), whole.argmax(0))


def test_predict_any_size_and_mismatch():
    model = CDModel(arch="tiny", widths=[8, 8, 8, 8]).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (70, 300, 3), dtype=np.uint8)
    mask = predict(model, a, a, tile_size=64, overlap=16)
    assert mask.shape == (70, 300) and mask.dtype == bool
    with pytest.raises(MapSizeError):
        predict(model, a, a[:60])


# ----------------------------------------------------------------------------------------------- models


@pytest.mark.parametrize("arch,widths", [("changerex-r18", [8, 16, 16, 32]), ("siamdiff", [8, 8, 16, 16]),
                                         ("tiny", None)])
def test_save_load_round_trip(tmp_path, arch, widths):
    torch.manual_seed(0)
    model = CDModel(arch=arch, widths=widths, head_channels=16).eval()
    model.save_pretrained(tmp_path / "m")
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / "m").iterdir()}
    loaded = load_cd_model(tmp_path / "m", device="cpu")
    x, y = torch.rand(2, 3, 64, 48) * 2 - 1, torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x, y), loaded(x, y))
    assert loaded.arch == arch and not loaded.training


def test_default_parameter_counts():
    assert 11.0e6 < CDModel().num_parameters < 11.8e6  # ChangerEx-R18: ~11.4 M
    assert CDModel(arch="tiny").num_parameters < 0.4e6
    assert 4.0e6 < CDModel(arch="siamdiff").num_parameters < 6.0e6  # mid-size: ≤ 12 MB in fp16


def test_siamdiff_is_symmetric_in_the_dates():
    """Its fusion uses |a − b| and (a + b) / 2 only: swapping A and B gives the same prediction (eval mode)."""
    torch.manual_seed(0)
    model = CDModel(arch="siamdiff", widths=[8, 8, 16, 16]).eval()
    for m in model.modules():  # non-trivial BN statistics, so the check is not vacuous
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.weight.data.uniform_(0.5, 1.5)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ab, ba = model(a, b), model(b, a)
    torch.testing.assert_close(ab, ba, atol=1e-5, rtol=1e-5)
    assert ab.std() > 0


def _fake_hub_cache(cache: Path, repo: str, folder: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(folder / f, snap / f)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(sha)


def test_load_from_fake_hub_cache(tmp_path):
    torch.manual_seed(1)
    model = CDModel(arch="tiny", widths=[8, 8, 8, 8]).eval()
    model.save_pretrained(tmp_path / "m")
    _fake_hub_cache(tmp_path / "cache", "org/cd-tiny", tmp_path / "m")
    loaded = load_cd_model("org/cd-tiny", cache_dir=tmp_path / "cache")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(WeightsNotFoundError, match="offline"):
        load_cd_model("org/not-there", cache_dir=tmp_path / "cache")


def test_load_errors(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="config.json"):
        load_cd_model(tmp_path / "nowhere")
    model = CDModel(arch="tiny", widths=[8, 8, 8, 8])
    model.save_pretrained(tmp_path / "m")
    sd = load_file(str(tmp_path / "m" / "model.safetensors"))
    sd.pop(next(iter(sd)))  # a missing tensor
    sd["extra.weight"] = torch.zeros(1)  # an unexpected one
    save_file(sd, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ChangeAnywhereError, match="do not fit"):
        load_cd_model(tmp_path / "m")
    # a config that does not match the weights (strict shapes)
    model.save_pretrained(tmp_path / "m2")
    cfg = json.loads((tmp_path / "m2" / "config.json").read_text())
    cfg["widths"] = [8, 8, 8, 16]
    (tmp_path / "m2" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ChangeAnywhereError, match="do not fit"):
        load_cd_model(tmp_path / "m2")


def test_default_model_message(monkeypatch, tmp_path):
    import changeanywhere.cd.models as models

    monkeypatch.setattr(models, "DEFAULT_CD_MODEL", tmp_path / "absent")
    with pytest.raises(WeightsNotFoundError, match="--method cva"):
        models.load_cd_model(None)


def test_ohem_keeps_hardest():
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 1, 0] = torch.tensor([5.0, -5.0, 0.0, 2.0])
    target = torch.tensor([[[1, 1, 1, 255]]])
    per_pixel = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="none")[0, 0, :3]
    assert ohem_cross_entropy(logits, target, 1.0, 0) == pytest.approx(per_pixel.mean().item())
    # keep 1 of 3: the hardest (logit -5 on the change class)
    assert ohem_cross_entropy(logits, target, 0.3, 1) == pytest.approx(per_pixel.max().item())


# ----------------------------------------------------------------------------------------------- CVA


def test_cva_finds_bright_square():
    rng = np.random.default_rng(0)
    a = np.clip(rng.normal(90, 6, (128, 128, 3)), 0, 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-4, 5, a.shape), 0, 255).astype(np.uint8)
    b[40:80, 50:100] = 240
    truth = np.zeros((128, 128), np.uint8)
    truth[40:80, 50:100] = 1
    cm = BinaryConfusion().update(cva_predict(a, b), truth)
    assert cm.metrics()["f1"] > 0.9


# ----------------------------------------------------------------------------------------------- data


def make_cd_folder(root: Path, n: int = 4, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """A/B/label folders: a bright block appears in B where the label says change (label 0/255)."""
    rng = np.random.default_rng(seed)
    for d in ("A", "B", "label"):
        (root / d).mkdir(parents=True, exist_ok=True)
    h, w = size
    for i in range(n):
        a = np.clip(rng.normal(100, 15, (h, w, 3)), 0, 255).astype(np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-5, 6, a.shape), 0, 255).astype(np.uint8)
        label = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        label[y : y + h // 3, x : x + w // 3] = 255
        b[label > 0] = (220, 200, 180)
        Image.fromarray(a).save(root / "A" / f"p{i}.png")
        Image.fromarray(b).save(root / "B" / f"p{i}.png")
        Image.fromarray(label).save(root / "label" / f"p{i}.png")
    return root


def test_find_pairs_errors(tmp_path):
    root = make_cd_folder(tmp_path / "d", n=2)
    assert [it.stem for it in find_cd_pairs(root)] == ["p0", "p1"]
    (root / "B" / "p1.png").unlink()
    with pytest.raises(ChangeAnywhereError, match="no file in B/"):
        find_cd_pairs(root)
    with pytest.raises(ChangeAnywhereError, match="missing A/"):
        find_cd_pairs(tmp_path)


def test_read_label_conventions(tmp_path):
    for values, expect in [((0, 255), (0, 1)), ((0, 1), (0, 1)), ((0, 1, 255), (0, 1, 255))]:
        arr = np.array([values * 4], np.uint8)
        Image.fromarray(arr).save(tmp_path / "l.png")
        assert tuple(np.unique(read_label(tmp_path / "l.png"))) == expect


def test_train_batches_deterministic_and_augmented(tmp_path):
    root = make_cd_folder(tmp_path / "d", n=3, size=(40, 72))
    data = CDTrainData([root], crop_size=48, seed=3)
    b1, b2 = data.batch(5, 4), data.batch(5, 4)
    assert b1["a"].shape == (4, 3, 48, 48) and b1["label"].shape == (4, 48, 48)
    assert torch.equal(b1["a"], b2["a"]) and torch.equal(b1["label"], b2["label"])
    assert not torch.equal(b1["a"], data.batch(6, 4)["a"])
    assert set(torch.unique(b1["label"]).tolist()) <= {0, 1, 255}  # 255: padding of the 40-px side
    assert b1["a"].min() >= -1 and b1["a"].max() <= 1


def test_augment_geometry_follows_a_and_misregisters_b_within_bounds():
    """With B = A: no shift and no scale keep the crops equal; a shift of 2 px moves B by at most 2 px."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    label = (rng.random((80, 80)) > 0.5).astype(np.uint8)
    still = BitemporalAugment(shift=0, scale=0)
    ta, tb, tl = crop_pair(np.random.default_rng(1), img, img, label, 32, still)
    assert torch.equal(ta, tb) and tl.shape == (32, 32)
    moved = BitemporalAugment(shift=2, scale=0)
    offsets = set()
    for seed in range(12):
        ta, tb, tl = crop_pair(np.random.default_rng(seed), img, img, label, 32, moved)
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(ta[:, 2:-2, 2:-2], tb[:, 2 - dy : 30 - dy, 2 - dx : 30 - dx])]
        assert len(found) == 1  # B is A's window moved by one offset of at most 2 px
        offsets.add(found[0])
        # the label is A's: the crop of A and of the label come from the same window
        ya, xa = np.argwhere((np.lib.stride_tricks.sliding_window_view(img[..., 0], (32, 32))
                              == ((ta[0] + 1) * 127.5).round().byte().numpy()).all((2, 3)))[0]
        assert np.array_equal(tl.numpy(), label[ya : ya + 32, xa : xa + 32])
    assert len(offsets) > 3
    scaled = crop_pair(np.random.default_rng(3), img, img, label, 32, BitemporalAugment(shift=0, scale=0.3))
    assert scaled[0].shape == (3, 32, 32) and set(torch.unique(scaled[2]).tolist()) <= {0, 1}


def test_radiometry_is_per_date_seeded_and_in_range():
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    aug = BitemporalAugment()
    y1 = radiometry(x, aug, torch.Generator().manual_seed(0))
    y2 = radiometry(x, aug, torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2) and not torch.equal(y1, x)
    assert y1.min() >= -1 and y1.max() <= 1
    off = BitemporalAugment(jitter=0, gamma=0, blur=0, noise=0)
    torch.testing.assert_close(radiometry(x, off, torch.Generator().manual_seed(0)), x)
    blurred = gaussian_blur(x[0], 1.0)
    assert blurred.shape == x[0].shape and blurred.std() < x[0].std()


# ----------------------------------------------------------------------------------------------- naive pairs


def test_naive_after_image():
    rng = np.random.default_rng(0)
    before_map = np.zeros((64, 64), np.uint8)  # land
    before_map[:, 40:] = 2  # building strip on the right
    after_map = before_map.copy()
    after_map[10:30, 5:25] = 2  # a new building
    before = np.zeros((64, 64, 3), np.uint8)
    before[before_map == 0] = (120, 100, 80)
    before[before_map == 2] = (200, 200, 210)
    after = naive_after_image(before, before_map, after_map, rng, jitter=0.05)
    assert after.shape == before.shape and after.dtype == np.uint8
    changed = before_map != after_map
    # the new building got building texture; the rest stays close to the before image
    assert np.abs(after[changed].astype(int) - (200, 200, 210)).mean() < 20
    assert np.abs(after[~changed].astype(int) - before[~changed]).mean() < 15


def test_build_naive_set(tmp_path):
    gen = tmp_path / "gen"
    for d in ("A", "B", "label", "label_A", "label_B"):
        (gen / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        m = rng.integers(0, 5, (4, 4)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
        m2 = m.copy()
        m2[:8, :8] = (m[0, 0] + 1) % 5
        img = DUBAI.palette[m].astype(np.uint8)
        Image.fromarray(img).save(gen / "A" / f"t{i}.png")
        Image.fromarray(img).save(gen / "B" / f"t{i}.png")
        Image.fromarray(((m != m2) * 255).astype(np.uint8)).save(gen / "label" / f"t{i}.png")
        write_map(gen / "label_A" / f"t{i}.png", m, DUBAI)
        write_map(gen / "label_B" / f"t{i}.png", m2, DUBAI)
    assert build_naive_set(gen, tmp_path / "naive", DUBAI, progress=False) == 3
    items = find_cd_pairs(tmp_path / "naive")
    assert len(items) == 3
    b = np.asarray(Image.open(items[0].b))
    assert b.shape == (32, 32, 3)


# ----------------------------------------------------------------------------------------------- CLI


def test_train_cd_resume_and_eval_cd(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=4)
    out = tmp_path / "run"
    common = ["train-cd", "--data", str(data), "--val", str(data), "--output-dir", str(out), *TINY,
              "--crop-size", "32", "--batch-size", "2", "--val-steps", "1", "--checkpointing-steps", "1",
              "--log-steps", "1", "--warmup-steps", "0", "--tile-size", "32", "--overlap", "8"]
    assert main([*common, "--max-steps", "2"]) == 0
    assert (out / "checkpoint-2" / "state.safetensors").is_file()
    assert (out / "final" / "model.safetensors").is_file() and (out / "best" / "val_metrics.json").is_file()
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["arch"] == "tiny" and cfg["train_info"]["step"] == 2
    assert main([*common, "--max-steps", "3"]) == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "resume"] == [2]
    assert (out / "checkpoint-3").is_dir()
    assert json.loads((out / "final" / "training.json").read_text())["step"] == 3

    js = tmp_path / "m.json"
    preds = tmp_path / "preds"
    argv = ["eval-cd", "--model", str(out / "final"), "--data", str(data), "--json", str(js), "--no-progress",
            "--tile-size", "32", "--overlap", "8", "--save-predictions", str(preds)]
    assert main(argv) == 0
    result = json.loads(js.read_text())
    for key in ("precision", "recall", "f1", "iou", "oa", "kappa", "tp", "fp", "fn", "tn"):
        assert key in result
    assert result["tp"] + result["fp"] + result["fn"] + result["tn"] == 4 * 64 * 64
    assert (preds / "data" / "p0_pred.png").is_file() and (preds / "data" / "p0_errors.png").is_file()
    # several folders + CVA: per dataset and pooled
    assert main(["eval-cd", "--method", "cva", "--data", str(data), str(data), "--json", str(js), "--no-progress"]) == 0
    result = json.loads(js.read_text())
    assert set(result["datasets"]) == {"data", "data-2"} and result["pooled"]["pairs"] == 8
    assert result["f1"] == pytest.approx(result["datasets"]["data"]["f1"])


def test_eval_cd_missing_default_model(tmp_path, monkeypatch, capsys):
    import changeanywhere.cd.models as models

    monkeypatch.setattr(models, "DEFAULT_CD_MODEL", tmp_path / "absent")
    data = make_cd_folder(tmp_path / "data", n=1)
    assert main(["eval-cd", "--data", str(data), "--no-progress"]) == 2
    assert "--model" in capsys.readouterr().err


def test_train_cd_changerex_one_step(tmp_path):
    data = make_cd_folder(tmp_path / "data", n=2)
    out = tmp_path / "run"
    argv = ["train-cd", "--data", str(data), "--output-dir", str(out), "--arch", "changerex-r18", "--widths", "8",
            "16", "16", "32", "--head-channels", "16", "--crop-size", "64", "--batch-size", "2", "--max-steps", "1",
            "--log-steps", "1"]
    assert main(argv) == 0
    model = load_cd_model(out / "final")
    assert model.arch == "changerex-r18" and model.net.exchange == [None, "spatial", "channel", "channel"]


def test_dice_loss_punishes_predicting_no_change_on_sparse_change():
    from changeanywhere.cd.train import dice_loss

    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, :4, :4] = 1  # 1.6 % change
    target[0, -1] = 255  # ignore
    none = torch.zeros(1, 2, 32, 32)
    none[:, 0] = 8.0  # confident "no change" everywhere
    right = torch.where(target == 1, 8.0, -8.0).float().unsqueeze(1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    assert dice_loss(none, target) > 0.9  # plain cross-entropy of this prediction is small: ~1.6 % of pixels wrong
    assert dice_loss(right, target) < 0.01


def test_fine_tune_with_frozen_batchnorm_keeps_its_statistics(tmp_path):
    """The few-shot recipe (`--freeze-bn --loss ohem-dice`) on tiny data: the weights move, the BatchNorm
    statistics stay as loaded, and the run records its recipe."""
    data = make_cd_folder(tmp_path / "data", n=2)
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    common = ["train-cd", "--data", str(data), *TINY, "--crop-size", "32", "--batch-size", "2", "--log-steps", "1",
              "--warmup-steps", "1"]
    assert main([*common, "--output-dir", str(base), "--max-steps", "2"]) == 0
    assert main([*common, "--output-dir", str(tuned), "--max-steps", "3", "--init", str(base / "final"),
                 "--freeze-bn", "--loss", "ohem-dice", "--lr", "0.01"]) == 0
    before, after = load_file(base / "final" / "model.safetensors"), load_file(tuned / "final" / "model.safetensors")
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in before if k.endswith("weight") and before[k].ndim == 4]
    assert stats and weights
    assert all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], after[k]) for k in weights)
    info = json.loads((tuned / "final" / "config.json").read_text())["train_info"]
    assert info["loss"] == "ohem-dice" and info["freeze_bn"] is True
    with pytest.raises(SystemExit):
        main([*common, "--output-dir", str(tmp_path / "bad"), "--max-steps", "1", "--loss", "focal"])

"""A generated folder in the tools people use: `datasets.load_dataset` (typed columns, one row per pair),
`generate --push-to-hub` (up to the upload call), torchgeo's sample convention and open-cd's folder conventions."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from changeanywhere.classes import ClassSet
from changeanywhere.cli import main
from changeanywhere.dataset import IMAGE_DIRS
from tests.helpers import saved_model_and_data

DUBAI = ClassSet.builtin("dubai-landcover")
NUM = 6
SMALL = ["--size", "32", "--num-inference-steps", "2", "--batch-size", "2", "--min-area", "16", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_pipe):
    return saved_model_and_data(tmp_path_factory, tiny_pipe, "ecosystem", DUBAI)


def args_for(setup, out: Path, *extra: str) -> list[str]:
    root, data = setup
    return ["generate", "--images", str(data / "images"), "--labels", str(data / "labels"), "--classes",
            "dubai-landcover", "--model", str(root / "model"), "--out", str(out), "--num", str(NUM), *SMALL, *extra]


@pytest.fixture(scope="module")
def folder(setup) -> Path:
    out = setup[0] / "out"
    assert main(args_for(setup, out, "--splits", "0.5:0.5")) == 0
    return out


# ------------------------------------------------------------------------------------------- Hugging Face


def test_load_dataset_gives_typed_columns_one_row_per_pair(folder, tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert list(ds) == ["train"]
    train = ds["train"]
    assert train.num_rows == NUM
    images = {"A", "B", "label", "label_A", "label_B", "change_type"}
    assert images | {"id", "index", "seed", "split", "changed_pixels", "pixels", "change_ratio", "content_scale",
                     "num_events", "events", "transitions", "source_image", "source_label", "x", "y"} == set(
        train.column_names)
    for name in images:
        assert isinstance(train.features[name], datasets.Image), name
    assert train.features["changed_pixels"].dtype == "int64" and train.features["change_ratio"].dtype == "float64"
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    by_id = {m["id"]: m for m in manifest}
    for row in train:
        m = by_id[row["id"]]
        assert row["changed_pixels"] == m["changed_pixels"] and row["split"] == m["split"]
        assert json.loads(row["events"]) == m["events"]
        label = np.asarray(row["label"])
        np.testing.assert_array_equal(label, np.asarray(Image.open(folder / "label" / f"{row['id']}.png")))
        assert int((label == 255).sum()) == row["changed_pixels"]
        assert np.asarray(row["A"]).shape == (32, 32, 3)
    assert sorted(train["split"]) == sorted(m["split"] for m in manifest)


def test_push_to_hub_uploads_the_finished_folder(setup, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)))

    def upload_folder(self, **kw):
        folder = Path(kw["folder_path"])
        calls.append(("upload_folder", kw, sorted(p.name for p in folder.iterdir())))
        return "https://huggingface.co/datasets/me/pairs/commit/0"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    out = tmp_path / "pushed"
    assert main(args_for(setup, out, "--push-to-hub", "me/pairs", "--hub-private")) == 0
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"]
    assert calls[0][1] == "me/pairs" and calls[0][2] == {"private": True, "exist_ok": True, "repo_type": "dataset"}
    kw, names = calls[1][1], calls[1][2]
    assert kw["repo_id"] == "me/pairs" and kw["repo_type"] == "dataset" and Path(kw["folder_path"]) == out
    assert {*IMAGE_DIRS, "meta", "metadata.jsonl", "manifest.jsonl", "README.md", "generation.json"} <= set(names)
    assert "pushed" in capsys.readouterr().out
    # a bad repo id fails before any work; a failed upload says how to upload by hand
    assert main(args_for(setup, tmp_path / "bad", "--push-to-hub", "no/such/repo")) == 2
    assert "--push-to-hub 'no/such/repo' is not a Hub repo id" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    def offline(self, **kw):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", offline)
    assert main(args_for(setup, out, "--push-to-hub", "me/pairs")) == 2  # the folder is complete, the upload not
    err = capsys.readouterr().err
    assert "upload failed (OSError: offline)" in err and f"hf upload me/pairs {out} --repo-type dataset" in err


# --------------------------------------------------------------------------------------------- torchgeo


def test_torchgeo_style_samples(folder):
    from changeanywhere.cd.torchgeo_style import TorchGeoChangeFolder

    data = TorchGeoChangeFolder(folder)
    assert len(data) == NUM
    sample = data[2]
    assert sample["image"].shape == (2, 3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (1, 32, 32) and sample["mask"].dtype == torch.int64
    a = np.asarray(Image.open(folder / "A" / "000002.png"))
    np.testing.assert_array_equal(sample["image"][0].permute(1, 2, 0).numpy(), a)
    label = np.asarray(Image.open(folder / "label" / "000002.png"))
    np.testing.assert_array_equal(sample["mask"][0].numpy(), label // 255)
    val = TorchGeoChangeFolder(folder, split="val", transforms=lambda s: {**s, "seen": True})
    listed = (folder / "list" / "val.txt").read_text().split()
    assert len(val) == len(listed) and val[0]["seen"]


def test_torchgeo_dataset_class_when_installed(folder):
    datasets = pytest.importorskip("torchgeo.datasets")
    from changeanywhere.cd.torchgeo_style import TorchGeoChangeFolder

    assert isinstance(TorchGeoChangeFolder(folder), datasets.NonGeoDataset)


# ---------------------------------------------------------------------------------------------- open-cd


def opencd_data_list(root: Path, suffix: str = ".png", ann_file: Path | None = None) -> list[dict]:
    """What open-cd's `_BaseCDDataset.load_data_list` builds for data_prefix = dict(img_path_from='A',
    img_path_to='B', seg_map_path='label'): from `ann_file` (names without suffix, one a line), else from a
    listing of A/ (which must pair one-to-one with B/)."""
    a, b, label = root / "A", root / "B", root / "label"
    if ann_file is not None:
        names = [line.strip() + suffix for line in ann_file.read_text().splitlines() if line.strip()]
    else:
        names = sorted(p.name for p in a.iterdir() if p.name.endswith(suffix))
        assert names == sorted(p.name for p in b.iterdir() if p.name.endswith(suffix))
    return [{"img_path": [a / n, b / n], "seg_map_path": label / n} for n in names]


def test_opencd_conventions(folder, tmp_path):
    items = opencd_data_list(folder)
    assert len(items) == NUM
    for item in items:
        for path in (*item["img_path"], item["seg_map_path"]):
            assert path.is_file(), path
        seg = np.asarray(Image.open(item["seg_map_path"]))
        assert seg.ndim == 2 and set(np.unique(seg)) <= {0, 255}  # open-cd's format_seg_map='to_binary': >= 128 -> 1
    # a split: open-cd's ann_file takes names without the suffix (the README's sed line makes it)
    stems = tmp_path / "val.txt"
    stems.write_text("".join(Path(n).stem + "\n" for n in (folder / "list" / "val.txt").read_text().split()))
    val = opencd_data_list(folder, ann_file=stems)
    assert val and all(p.is_file() for it in val for p in (*it["img_path"], it["seg_map_path"]))

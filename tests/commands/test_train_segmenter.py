"""`changeanywhere train-segmenter`: a tiny run end to end, its flags read into `SegmenterTrainConfig`."""

import json

from changeanywhere.cli import main
from changeanywhere.segmenter import SegmenterTrainConfig, load_segmenter


def test_train_segmenter_cli(tmp_path, fake_dataset, capsys):
    out = tmp_path / "seg"
    assert main(["train-segmenter", "--data", str(fake_dataset), "--classes", "dubai-landcover", "--out", str(out),
                 "--split", "all", "--crop-size", "32", "--batch-size", "2", "--max-steps", "2", "--seed", "1"]) == 0
    info = json.loads((out / "training.json").read_text())
    assert (info["split"], info["crop_size"], info["batch_size"], info["max_steps"], info["seed"], info["steps"]) == \
        ("all", 32, 2, 2, 1, 2)
    assert info["color_jitter"] == SegmenterTrainConfig().color_jitter and info["num_pairs"] > 0
    assert load_segmenter(out).num_classes == 5
    assert "saved segmenter to" in capsys.readouterr().out

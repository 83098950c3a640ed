"""`changeanywhere eval-generator` on the tiny model: the report, a missing model refused."""

import json

from changeanywhere.cli import main
from changeanywhere.segmenter import LandCoverSegmenter


def test_eval_generator_cli(tmp_path, fake_dataset, dubai, tiny_pipe, capsys):
    tiny_pipe.save_pretrained(tmp_path / "pipe")
    LandCoverSegmenter(num_classes=5, widths=(4, 8)).save_pretrained(tmp_path / "seg")
    out = tmp_path / "report.json"
    rc = main(
        [
            "eval-generator",
            "--model",
            str(tmp_path / "pipe"),
            "--data",
            str(fake_dataset),
            "--split",
            "train",
            "--val-pattern",
            "none",
            "--segmenter",
            str(tmp_path / "seg"),
            "--max-tiles",
            "2",
            "--tile-size",
            "32",
            "--steps",
            "2",
            "--json",
            str(out),
            "--device",
            "cpu",
            "--no-change",
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    assert {"real_miou", "generated_miou", "fidelity_ratio"} <= set(report)
    assert "generated mIoU" in capsys.readouterr().out
    rc = main(
        [
            "eval-generator",
            "--model",
            str(tmp_path / "missing"),
            "--data",
            str(fake_dataset),
            "--segmenter",
            str(tmp_path / "seg"),
        ]
    )
    assert rc == 2

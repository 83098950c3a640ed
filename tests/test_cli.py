"""The command line: flags parse into the library's typed configs (same names and defaults), old spellings
still work, and library errors that name a parameter reach the user as its flag."""

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from changeanywhere.cli import build_parser, main
from changeanywhere.commands.options import config_from_args
from changeanywhere.dataset import GenerateConfig
from changeanywhere.errors import ParameterError
from changeanywhere.pairs import PairSettings
from changeanywhere.training.config import AutoencoderTrainConfig, CDTrainConfig, DiffusionTrainConfig

REQUIRED = {
    "train-autoencoder": ["--data", "D", "--classes", "dubai-landcover", "--output-dir", "O"],
    "train-diffusion": ["--data", "D", "--classes", "dubai-landcover", "--output-dir", "O", "--autoencoder", "A"],
    "train-cd": ["--data", "D", "--output-dir", "O"],
}


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.mark.parametrize(("command", "cls"), [("train-autoencoder", AutoencoderTrainConfig),
                                              ("train-diffusion", DiffusionTrainConfig), ("train-cd", CDTrainConfig)])
def test_training_flags_are_the_config_fields_with_the_same_defaults(command, cls):
    args = parse(command, *REQUIRED[command])
    required = {f.name for f in fields(cls) if f.default is f.default_factory}  # no default: given above
    derived = {"sample_steps"} if cls is CDTrainConfig else set()  # train-cd validates every val_steps
    for f in fields(cls):
        if f.name in derived:
            continue
        assert hasattr(args, f.name), f"{command} has no flag for {f.name}"
        if f.name not in required and f.name != "val_pattern":
            assert getattr(args, f.name) == f.default, f.name
    extra = {"val_pattern": tuple(args.val_pattern)} if hasattr(args, "val_pattern") else {}
    config = config_from_args(cls, args, **extra)
    assert Path(config.output_dir) == Path("O")


def test_generate_flags_are_the_pair_settings():
    args = parse("generate", "--images", "I", "--labels", "L", "--classes", "x", "--out", "O", "--num", "3")
    for f in fields(PairSettings):
        if f.name in ("guidance_interval", "free_band", "strength"):  # no flags of generate: the defaults
            assert not hasattr(args, f.name), f.name
        elif f.name not in ("content_scale", "num_events", "event_types", "max_event_tries"):  # parsed from text
            assert getattr(args, f.name) == f.default, f.name
    assert {f.name for f in fields(GenerateConfig)} - set(vars(args)) == {"pair"}  # built from flags


def test_old_spellings_are_aliases():
    base = ("generate", "--images", "I", "--labels", "L", "--classes", "x", "--out", "O")
    for old in (("--output-dir", "O2"), ("--steps", "7"), ("--events-per-sample", "2:3"), ("--events", "add"),
                ("--quiet",)):  # generate's 0.x spellings are gone (its flags are built from its configs)
        with pytest.raises(SystemExit):
            parse(*base, "--num", "3", *old)
    new = parse(*base, "--num-pairs", "3", "--num-inference-steps", "7", "--num-events", "2:3", "--no-progress")
    assert (new.num, new.num_inference_steps, new.num_events, new.progress) == (3, 7, "2:3", False)
    with pytest.raises(SystemExit):  # simulate's 0.x --label is gone too
        parse("simulate", "--label", "m.png", "--classes", "x", "--out", "O")
    sim = parse("simulate", "--before-map", "m.png", "--classes", "x", "--out", "O", "--num-events", "2",
                "--event-types", "remove")
    assert (sim.before_map, sim.num_events, sim.event_types) == (Path("m.png"), "2", "remove")
    assert parse("eval-cd", "--data", "D", "--quiet").no_progress
    assert parse("eval-generator", "--data", "D", "--steps", "9").num_inference_steps == 9
    assert parse("train-cd", "--data", "D", "--out", "O").output_dir == "O"


def test_library_errors_name_parameters_and_the_cli_names_flags(tmp_path, capsys):
    with pytest.raises(ParameterError, match="`num_events` must satisfy") as info:
        PairSettings(num_events=(3, 1)).check()
    assert info.value.for_flags({"num_events": "--num-events"}).startswith("--num-events must satisfy")
    with pytest.raises(ParameterError, match="`crop_size` must be at least 1"):
        from changeanywhere.training.common import fill_defaults
        from changeanywhere.training.diffusion import DIFFUSION_DEFAULTS

        fill_defaults(DiffusionTrainConfig(data="D", classes="x", output_dir="O", autoencoder="A", crop_size=0),
                      DIFFUSION_DEFAULTS)
    (tmp_path / "i").mkdir()
    base = ["generate", "--images", str(tmp_path / "i"), "--labels", str(tmp_path / "nope"), "--classes",
            "dubai-landcover", "--out", str(tmp_path / "o")]
    assert main([*base, "--num", "3"]) == 2
    assert "--labels folder" in capsys.readouterr().err
    assert main([*base, "--num", "3", "--num-events", "4:2"]) == 2
    assert "--num-events must satisfy" in capsys.readouterr().err
    assert main(["train-cd", "--data", str(tmp_path), "--output-dir", str(tmp_path / "cd"), "--ohem-ratio", "2"]) == 2
    assert "--ohem-ratio must be in (0, 1]" in capsys.readouterr().err


def test_train_cd_choices_are_the_models():
    import typing

    from changeanywhere.cd.effnet import FUSIONS
    from changeanywhere.cd.models import ARCHS

    hints = typing.get_type_hints(CDTrainConfig)
    assert typing.get_args(hints["arch"]) == tuple(ARCHS) and typing.get_args(hints["fusion"]) == tuple(FUSIONS)
    args = build_parser().parse_args(["train-cd", "--data", "D", "--out", "O", "--variant", "tiny", "--no-pretrained",
                                      "--change-classes", "building,road", "--widths", "4", "8"])
    config = config_from_args(CDTrainConfig, args)
    assert (config.arch, config.pretrained, config.change_classes, config.widths) == (
        "tiny", False, ("building", "road"), [4, 8])

"""The command line: flags parse into the library's typed configs (same names and defaults), old spellings
still work, and library errors that name a parameter reach the user as its flag."""

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from changeanywhere.cli import build_parser, main
from changeanywhere.commands import eval_cd, eval_generator, train_segmenter
from changeanywhere.commands.eval_cd import EvalCDConfig
from changeanywhere.commands.eval_generator import EvalGeneratorConfig
from changeanywhere.commands.options import config_from_args
from changeanywhere.commands.train_segmenter import TrainSegmenterConfig
from changeanywhere.dataset import GenerateConfig
from changeanywhere.errors import ParameterError
from changeanywhere.pairs import PairSettings
from changeanywhere.segmenter import SegmenterTrainConfig
from changeanywhere.training.config import AutoencoderTrainConfig, CDTrainConfig, DiffusionTrainConfig

REQUIRED = {
    "train-autoencoder": ["--data", "D", "--classes", "dubai-landcover", "--output-dir", "O"],
    "train-diffusion": ["--data", "D", "--classes", "dubai-landcover", "--output-dir", "O", "--autoencoder", "A"],
    "train-cd": ["--data", "D", "--output-dir", "O"],
}


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def command_parser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def flag_defaults(parser: argparse.ArgumentParser) -> dict[str, object]:
    """Each flag's dest -> its default (a list default as a tuple, as the configs hold it)."""
    return {a.dest: tuple(a.default) if isinstance(a.default, list) else a.default
            for a in parser._actions if a.option_strings and a.dest != "help"}


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
        if not f.init:  # set by the library (`is_resolved`), never a flag
            assert not hasattr(args, f.name), f.name
        elif f.name in ("guidance_interval", "free_band", "strength"):  # no flags of generate: the defaults
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
    with pytest.raises(SystemExit):  # eval-cd's 0.x --quiet is gone too
        parse("eval-cd", "--data", "D", "--quiet")
    assert parse("eval-cd", "--data", "D", "--no-progress").progress is False
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


# the commands whose flags are built from one config of theirs: (command, config, nested configs (field -> config
# and its fields without a flag), the required flags)
COMMAND_CONFIGS = [
    ("eval-cd", EvalCDConfig, {}, ["--data", "D"]),
    ("eval-generator", EvalGeneratorConfig, {}, ["--data", "D"]),
    ("train-segmenter", TrainSegmenterConfig, {"train": (SegmenterTrainConfig, train_segmenter.TRAIN_SKIP)},
     ["--data", "D", "--classes", "x", "--out", "O"]),
]


@pytest.mark.parametrize(("command", "cls", "nested", "required"), COMMAND_CONFIGS)
def test_command_flags_are_its_config_fields_with_the_same_defaults(command, cls, nested, required):
    defaults = flag_defaults(command_parser(command))
    expected = {f.name: f.default for f in fields(cls) if f.name not in nested}
    for sub, skip in nested.values():
        expected.update({f.name: f.default for f in fields(sub) if f.name not in skip})
    assert set(defaults) == set(expected)  # a flag for every field, none without one
    for name, default in expected.items():
        if default is not MISSING:  # a required flag has no default
            assert defaults[name] == default, name
    module = {"eval-cd": eval_cd, "eval-generator": eval_generator, "train-segmenter": train_segmenter}[command]
    assert isinstance(module.make_config(parse(command, *required)), cls)  # the required flags suffice


def test_eval_cd_parses_into_its_config(tmp_path, capsys):
    assert eval_cd.make_config(parse("eval-cd", "--data", "D")) == EvalCDConfig(data=(Path("D"),))
    args = parse("eval-cd", "--data", "A", "B", "--model", "m", "--method", "deep-cva", "--json", "o.json",
                 "--save-predictions", "P", "--tile-size", "128", "--overlap", "8", "--batch-size", "2",
                 "--device", "cpu", "--no-progress")
    assert eval_cd.make_config(args) == EvalCDConfig(
        data=(Path("A"), Path("B")), model="m", method="deep-cva", json=Path("o.json"), save_predictions=Path("P"),
        tile_size=128, overlap=8, batch_size=2, device="cpu", progress=False)
    with pytest.raises(SystemExit):
        parse("eval-cd", "--data", "D", "--method", "otsu")
    with pytest.raises(ParameterError, match="`tile_size` must be at least 16"):
        EvalCDConfig(data=(Path("D"),), tile_size=8).check()
    # checked before any folder is read: the message names the flags
    assert main(["eval-cd", "--data", str(tmp_path / "nope"), "--tile-size", "64", "--overlap", "64"]) == 2
    assert "--tile-size must be at least 16 and 0 <= --overlap < --tile-size" in capsys.readouterr().err


def test_eval_generator_parses_into_its_config():
    assert eval_generator.make_config(parse("eval-generator", "--data", "D")) == EvalGeneratorConfig(data=Path("D"))
    args = parse("eval-generator", "--data", "D", "--model", "M", "--split", "train", "--val-pattern", "a*", "b*",
                 "--classes", "x", "--segmenter", "S", "--max-tiles", "3", "--tile-size", "64", "--steps", "9",
                 "--scheduler", "ddim", "--backend", "torch", "--guidance-scale", "2.5", "--guidance-interval", "0.1",
                 "0.9", "--sampler", "inpaint", "--nonchange", "0.5", "--drift", "0.25", "--content", "diffusion",
                 "--content-strength", "0.3", "--bank", "B", "--batch-size", "2", "--seed", "7", "--no-change",
                 "--device", "cpu", "--json", "r.json")
    cfg = eval_generator.make_config(args)
    assert cfg == EvalGeneratorConfig(
        data=Path("D"), model="M", split="train", val_pattern=("a*", "b*"), classes="x", segmenter="S", max_tiles=3,
        tile_size=64, num_inference_steps=9, scheduler="ddim", backend="torch", guidance_scale=2.5,
        guidance_interval=(0.1, 0.9), sampler="inpaint", nonchange=0.5, drift=0.25, content="diffusion",
        content_strength=0.3, bank=Path("B"), batch_size=2, seed=7, no_change=True, device="cpu", json=Path("r.json"))
    assert cfg.pair_settings() == PairSettings(sampler="inpaint", nonchange=0.5, drift=0.25, content="diffusion",
                                               content_strength=0.3)
    assert EvalGeneratorConfig(data=Path("D")).pair_settings() == PairSettings()  # as `generate`'s defaults
    with pytest.raises(SystemExit):  # a fixed-length tuple takes exactly its values
        parse("eval-generator", "--data", "D", "--guidance-interval", "0.1")


def test_train_segmenter_parses_into_its_config():
    base = ("train-segmenter", "--data", "D", "--classes", "x")
    assert train_segmenter.make_config(parse(*base, "--output-dir", "O")) == TrainSegmenterConfig(
        data=Path("D"), classes="x", output_dir=Path("O"))
    args = parse(*base, "--out", "O", "--split", "all", "--val-pattern", "a*", "b*", "--crop-size", "64",
                 "--batch-size", "4", "--max-steps", "10", "--lr", "0.01", "--seed", "3")
    assert train_segmenter.make_config(args) == TrainSegmenterConfig(
        data=Path("D"), classes="x", output_dir=Path("O"), split="all", val_pattern=("a*", "b*"),
        train=SegmenterTrainConfig(crop_size=64, batch_size=4, max_steps=10, lr=0.01, seed=3))
    with pytest.raises(SystemExit):  # the colour jitter is no flag
        parse(*base, "--out", "O", "--color-jitter", "0.2")

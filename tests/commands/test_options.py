"""`commands.options`: a command's flags built from a config dataclass, and parsed back into it."""

import argparse
from dataclasses import fields

import pytest

from changeanywhere.commands.options import add_config_args, config_from_args
from changeanywhere.training.config import DiffusionTrainConfig


def test_training_flags_are_built_from_the_configs(capsys):
    p = argparse.ArgumentParser()
    add_config_args(p, DiffusionTrainConfig, crop_size="a help of this command's own")
    assert {a.dest for a in p._actions if a.option_strings} - {"help"} == {f.name for f in fields(DiffusionTrainConfig)}
    required = ["--data", "D", "--classes", "x", "--out", "O", "--autoencoder", "A"]
    args = p.parse_args([*required, "--loss", "mse", "--inpainting", "--val-pattern", "a*", "b*", "--lr", "0.5"])
    config = config_from_args(DiffusionTrainConfig, args, val_pattern=tuple(args.val_pattern))
    assert config == DiffusionTrainConfig(data="D", classes="x", output_dir="O", autoencoder="A", loss="mse",
                                          inpainting=True, val_pattern=("a*", "b*"), lr=0.5)
    assert config_from_args(DiffusionTrainConfig, p.parse_args(required), val_pattern=tuple(args.val_pattern)) \
        == DiffusionTrainConfig(data="D", classes="x", output_dir="O", autoencoder="A", val_pattern=("a*", "b*"))
    # a choice outside the Literal, a value of the wrong type, a required field missing (--data)
    for argv in ([*required, "--loss", "huber"], [*required, "--lr", "fast"], required[2:]):
        with pytest.raises(SystemExit):
            p.parse_args(argv)
    assert "a help of this command's own" in p.format_help() and "{l1,mse}" in p.format_help()

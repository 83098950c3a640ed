"""One default per setting, one home for each check: the typed configs of `changeanywhere/` and the CLI built
from them. The scans read the source (`ast`), so a copied default or a second check of a field fails here."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import changeanywhere
from changeanywhere.cli import build_parser

PACKAGE = Path(changeanywhere.__file__).resolve().parent
SETTINGS_SUFFIXES = ("Settings", "Config", "Augment")  # the typed settings: what a user or a command sets
# one name, different settings: each command or object has its own (they are not copies of one another); any
# other class writing the same default is a copy and fails
DIFFERENT_SETTINGS = {
    "seed": ({"commands.eval_generator.EvalGeneratorConfig", "commands.simulate.SimulateConfig",
              "dataset.config.GenerateConfig", "segmenter.SegmenterTrainConfig", "training.config.LoopConfig"},
             "each command's own seed"),
    "batch_size": ({"dataset.config.GenerateConfig", "segmenter.SegmenterTrainConfig",
                    "training.config.CDTrainConfig", "commands.eval_generator.EvalGeneratorConfig",
                    "commands.eval_cd.EvalCDConfig"}, "a dataset run's, a segmenter's and a CD model's batches differ"),
    "crop_size": ({"segmenter.SegmenterTrainConfig", "training.config.CDTrainConfig"},
                  "the segmenter's and the CD model's training crops differ"),
    "lr": ({"segmenter.SegmenterTrainConfig", "training.config.CDTrainConfig"},
           "the segmenter's and the CD model's learning rates differ"),
    "max_steps": ({"segmenter.SegmenterTrainConfig", "training.config.CDTrainConfig"},
                  "the segmenter's and the CD model's training lengths differ"),
    "split": ({"commands.build_bank.BuildBankConfig", "segmenter.SegmenterTrainConfig",
               "commands.train_segmenter.TrainSegmenterConfig", "commands.eval_generator.EvalGeneratorConfig"},
              "each command reads its own split of the sources (all, train, val)"),
    "progress": ({"commands.eval_cd.EvalCDConfig", "dataset.config.GenerateConfig"},
                 "each command's own progress bars (a switch, on by default)"),
    "min_area": ({"bank.BankSettings", "events.EventSettings"},
                 "the bank's smallest instance is not the smallest object an event picks"),
    "strength": ({"generator.drift.DriftSettings", "generator.nonchange.NonChangeSettings",
                  "generator.settings.SamplerSettings"},
                 "diffusers' SDEdit `strength` (`SamplerSettings`) and the amplitudes of drift and non-change"),
}
# a field checked again where something its home does not have is known (the model, the files, the processes)
CONTEXT_CHECKS = {
    "bands": {"changeanywhere.geo", "changeanywhere.image_utils"},  # against the file's band count
    "resample": {"changeanywhere.dataset.sources", "changeanywhere.geo"},  # against the files' grids
    "change_classes": {"changeanywhere.cd.data"},  # against a generated folder's class set
    "nonchange": {"changeanywhere.generator.pipeline"},  # re-rendering needs the model's inpainting UNet
    "sampler": {"changeanywhere.generator.inputs"},  # "inpaint" needs the model's inpainting UNet
    "strength": {"changeanywhere.generator.pipeline"},  # 0 only with `start_from="image"`, another argument
    "freeze_encoder_steps": {"changeanywhere.cd.models"},  # the model's architecture
}


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        out.append((name, ast.parse(path.read_text(encoding="utf-8"))))
    return out


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for d in cls.decorator_list:
        node = d.func if isinstance(d, ast.Call) else d
        if getattr(node, "id", getattr(node, "attr", "")) == "dataclass":
            return True
    return False


def _default(value: ast.expr) -> ast.expr | None:
    """The default expression of a dataclass field: `arg(default, ...)`, `field(default=...)` or the value."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") in ("arg", "field"):
        if getattr(value.func, "id", "") == "arg" and value.args:
            return value.args[0]
        return next((k.value for k in value.keywords if k.arg == "default"), None)
    return value


def literal_defaults(modules: list[tuple[str, ast.Module]]) -> dict[str, list[tuple[str, object]]]:
    """Field name -> [(settings class, literal default)]: defaults written as values (not None or False, which
    leave a setting open or a switch off; not a reference to another setting's default)."""
    found: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for module, tree in modules:
        for cls in ast.walk(tree):
            if not (isinstance(cls, ast.ClassDef) and _is_dataclass(cls) and cls.name.endswith(SETTINGS_SUFFIXES)):
                continue
            for st in cls.body:
                if isinstance(st, ast.AnnAssign) and st.value is not None and isinstance(st.target, ast.Name):
                    expr = _default(st.value)
                    try:
                        value = ast.literal_eval(expr) if expr is not None else None
                    except ValueError:
                        continue  # a reference (e.g. `NonChangeSettings.strength`): the default lives there
                    if value is not None and value is not False:
                        found[st.target.id].append((f"{module}.{cls.name}".removeprefix("changeanywhere."), value))
    return found


def parameter_checks(modules: list[tuple[str, ast.Module]]) -> dict[str, set[str]]:
    """Parameter name -> the modules that raise a `ParameterError` naming it."""
    found: dict[str, set[str]] = defaultdict(set)
    for module, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ParameterError":
                for a in node.args[1:]:
                    if isinstance(a, ast.Constant) and isinstance(a.value, str):
                        found[a.value].add(module)
    return found


def test_each_setting_has_one_default_in_one_place():
    allowed = {name: classes for name, (classes, _) in DIFFERENT_SETTINGS.items()}
    twice = {name: where for name, where in literal_defaults(_modules()).items()
             if len(where) > 1 and not {c for c, _ in where} <= allowed.get(name, set())}
    assert not twice, f"settings with a default written in more than one place (refer to the first): {twice}"


def test_the_scan_sees_a_second_default(tmp_path):
    tree = ast.parse("@dataclass\nclass ASettings:\n    x: float = arg(1.0, 'x')\n\n"
                     "@dataclass\nclass BConfig(ASettings):\n    x: float = 2.0\n    y: float = ASettings.x\n")
    assert literal_defaults([("m", tree)]) == {"x": [("m.ASettings", 1.0), ("m.BConfig", 2.0)]}


def _settings_classes() -> list[type]:
    out = []
    for info in pkgutil.walk_packages(changeanywhere.__path__, "changeanywhere."):
        if info.name.endswith(("onnx_backend", "torchgeo_style")):
            continue  # optional dependencies; they define no settings
        module = importlib.import_module(info.name)
        out += [c for c in vars(module).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
                and c.__module__ == module.__name__ and c.__name__.endswith(SETTINGS_SUFFIXES)]
    return out


def test_no_settings_class_replaces_a_default_it_inherits():
    replaced = []
    for cls in _settings_classes():
        own = cls.__dict__.get("__annotations__", {})
        for base in cls.__mro__[1:]:
            if not dataclasses.is_dataclass(base):
                continue
            for f in dataclasses.fields(base):
                if f.name in own and f.default not in (None, dataclasses.MISSING):
                    replaced.append(f"{cls.__name__}.{f.name} (default in {base.__name__})")
    assert not replaced, replaced


def test_each_field_is_checked_in_one_home():
    """A field's `ParameterError`s come from one module, its home; a second only where it needs what the home
    does not know (`CONTEXT_CHECKS`)."""
    spread = {}
    for name, modules in parameter_checks(_modules()).items():
        rest = modules - CONTEXT_CHECKS.get(name, set())
        if len(rest) > 1:
            spread[name] = sorted(rest)
    assert not spread, f"fields checked in more than one module: {spread}"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_flag_default_is_its_config_fields():
    """A flag that sets a field of a typed config has that field's default: the CLI never writes its own."""
    defaults: dict[str, set[str]] = defaultdict(set)
    for cls in _settings_classes():
        for f in dataclasses.fields(cls):
            if f.init and f.default is not dataclasses.MISSING:
                defaults[f.name].add(repr(list(f.default) if isinstance(f.default, tuple) else f.default))
    wrong = []
    for command, sub in _subparsers(build_parser()).items():
        for a in sub._actions:
            if a.dest in defaults and a.default is not None and a.option_strings:
                shown = repr(list(a.default) if isinstance(a.default, tuple) else a.default)
                if shown not in defaults[a.dest]:
                    wrong.append(f"{command} {a.option_strings[0]}: {shown} not in {sorted(defaults[a.dest])}")
    assert not wrong, wrong


@pytest.mark.parametrize("value", [-0.5, 3.5])
def test_nonchange_strength_is_checked_once_with_one_message(value):
    from changeanywhere.errors import ParameterError
    from changeanywhere.generator.nonchange import NonChangeSettings
    from changeanywhere.pairs import PairSettings

    with pytest.raises(ParameterError, match=r"`nonchange` must lie in \[0, 3\]") as settings_error:
        PairSettings(nonchange=value).check()
    with pytest.raises(ParameterError) as direct:
        NonChangeSettings(strength=value)
    assert str(settings_error.value) == str(direct.value)
    assert PairSettings().nonchange == NonChangeSettings.strength

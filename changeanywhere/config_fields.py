"""`arg`: a config dataclass field with what its command-line flag needs. The commands and the app build their
flags from typed configs (`commands.options.add_config_args`): the training configs, `dataset.config.GenerateConfig`,
`pairs.PairSettings`, `generator.settings.SamplerSettings`, each command's own (e.g. `commands.eval_cd.EvalCDConfig`)
and `demo.config.AppConfig`."""

from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any


def arg(default: Any = MISSING, help: str | None = None, **flag: Any) -> Any:
    """A config field with what its command-line flag needs (`commands.options.add_config_args`): the help
    text and, in `flag`, `aliases` (other spellings of the flag), `metavar`, and `negatable` (a bool that also
    gets --no-NAME). A mutable default (a list) is not allowed; use a tuple."""
    return field(default=default, metadata={"help": help, **flag})

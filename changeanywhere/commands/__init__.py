"""Sub-commands of the CLI. Each module exposes `add_parser(subparsers)` that sets `func`."""

from . import simulate

COMMANDS = [simulate]

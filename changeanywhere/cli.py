"""The `changeanywhere` command line: one sub-command per module in `changeanywhere.commands`."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from .commands import COMMANDS
from .commands.options import flags
from .errors import ChangeAnywhereError, IndexOffsetWarning, ParameterError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changeanywhere",
        description="Synthetic change-detection data from single-date land-cover maps.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = command.add_parser(sub)
        p.set_defaults(flags=flags(p))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; library errors become a one-line message (parameters named by their flags) and
    exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", IndexOffsetWarning)  # once per map file, not once per code line
        show = warnings.showwarning

        def show_warning(message, category, *rest, **kw):
            if issubclass(category, IndexOffsetWarning):
                print(f"changeanywhere {args.command}: warning: {message}", file=sys.stderr)
            else:
                show(message, category, *rest, **kw)

        warnings.showwarning = show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except ParameterError as err:
        print(f"changeanywhere {args.command}: error: {err.for_flags(args.flags)}", file=sys.stderr)
        return 2
    except ChangeAnywhereError as err:
        print(f"changeanywhere {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"changeanywhere {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

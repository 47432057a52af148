"""The `tinycnn` command: parse, dispatch to one subcommand module, print one line on user error.

    tinycnn --help
    tinycnn <command> --help

Each subcommand lives in `tinycnn/cli/<name>.py` and defines `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int`. Those modules import torch and friends
inside `run`, so that `tinycnn --help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tinycnn import __version__
from tinycnn.errors import TinycnnError

# (command name, module under tinycnn.cli). Order is the order of `tinycnn --help`.
COMMANDS: list[tuple[str, str]] = [
    ("train", "train"),
    ("recipes", "recipes"),
    ("check", "check"),
    ("eval", "eval"),
    ("reproduce", "reproduce"),
    ("data", "data"),
    ("models", "models"),
    ("summary", "summary"),
    ("backprop", "backprop"),
    ("report", "report"),
    ("compare", "compare"),
    ("experiment", "experiment"),
    ("search", "search"),
    ("lr-find", "lr_find"),
    ("lr-sweep", "lr_sweep"),
    ("export", "export"),
    ("predict", "predict"),
    ("bench", "bench"),
]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it has none or its help already says it."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinycnn",
        description="Design, train and check compact CNNs on MNIST under parameter and epoch budgets.",
    )
    parser.add_argument("--version", action="version", version=f"tinycnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, module_name in COMMANDS:
        module = importlib.import_module(f"tinycnn.cli.{module_name}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except TinycnnError as exc:
        print(f"tinycnn: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tinycnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinycnn models | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    except OSError as exc:  # the file system's word (a full disk, a read-only directory), where nothing above caught it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tinycnn: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Argument helpers shared by several subcommands."""

from __future__ import annotations

from tinycnn.seeds.seed_list import parse_seeds  # noqa: F401  (the --seeds syntax, shared with tinycnn.train)


def add_data_arguments(parser, dataset_default="mnist"):
    """--dataset and --data-dir, shared by every command that reads data."""
    parser.add_argument("--dataset", default=dataset_default, choices=["mnist", "fashion-mnist"], help="which dataset")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="cache directory (default: $TINYCNN_DATA, else ~/.cache/tinycnn)",
    )


def keyword_arguments(text: str | None, flag: str) -> dict:
    """A JSON object of a model's keyword arguments, as --args and --model-args take it."""
    import json

    from tinycnn.errors import TinycnnError

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TinycnnError(f"{flag} {text!r}: not JSON ({exc.msg}); give an object, e.g. '{{\"widths\": [8, 12]}}'") from None
    if not isinstance(value, dict):
        raise TinycnnError(f"{flag}: give a JSON object of keyword arguments, e.g. '{{\"widths\": [8, 12]}}'")
    return value

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

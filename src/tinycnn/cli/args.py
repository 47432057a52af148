"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import re

from tinycnn.errors import TinycnnError


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0..4' (inclusive) or a mix: '0..2,7'."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*(?:\.\.|-)\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise TinycnnError(f"--seeds range {part!r} runs backwards")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise TinycnnError(f"--seeds {text!r}: expected numbers like 0,1,2 or a range like 0..4")
    if len(set(seeds)) != len(seeds):
        raise TinycnnError(f"--seeds {text!r} names a seed twice")
    return seeds


def add_data_arguments(parser, dataset_default="mnist"):
    """--dataset and --data-dir, shared by every command that reads data."""
    parser.add_argument("--dataset", default=dataset_default, choices=["mnist", "fashion-mnist"], help="which dataset")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="cache directory (default: $TINYCNN_DATA, else ~/.cache/tinycnn)",
    )

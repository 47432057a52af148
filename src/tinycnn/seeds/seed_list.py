"""The seeds a user names: `0,1,2`, `0..4` (inclusive) or a mix, as --seeds and tinycnn.train take them."""

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

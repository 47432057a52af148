"""How fast each generator draws the random words of one dropout mask on the CPU.

    PYTHONPATH=src python3 benchmarks/random_words.py [--words 301056] [--repeats 100]

301,056 int64 words are the 16-bit lanes of a 128x12x28x28 activation (era-s7-8172's
first layers at batch 128). Prints the median time of each way, one thread: torch's
mt19937 (`torch.randint`, as FastDropout drew them before), numpy's bit generators
(`random_raw`), and `fast_dropout.random_words`, which seeds SFC64 from torch's generator.
"""
import argparse
import statistics
import time

import numpy as np
import torch

from tinycnn.speed.fast_dropout import random_words


def median_ms(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=301_056)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    n = args.words
    torch.set_num_threads(1)
    ways = {"torch.randint (mt19937)": lambda: torch.randint(-(2**63), 2**63 - 1, (n,), dtype=torch.int64)}
    for name in ("SFC64", "PCG64", "PCG64DXSM", "Philox", "MT19937"):
        bits = getattr(np.random, name)(1)
        ways[f"numpy {name}.random_raw"] = lambda bits=bits: bits.random_raw(n)
    ways["fast_dropout.random_words (SFC64 seeded from torch)"] = lambda: random_words(n, "cpu")
    for name, fn in ways.items():
        print(f"{name:55s} {median_ms(fn, args.repeats):6.3f} ms for {n:,} words")


if __name__ == "__main__":
    main()

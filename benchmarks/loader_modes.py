"""Seconds per epoch of the input pipeline alone, batch by batch against a whole epoch at once.

    PYTHONPATH=src python3 benchmarks/loader_modes.py [--device cpu] [--repeats 3]

MNIST's 60,000 training images, batch 128, rotation 15 (nearest): the era-s7-8172 bench's
augmentation. Alternates the two modes and prints each epoch's time and the medians.
"""

import argparse
import statistics
import time

import torch

from tinycnn.data.augment import Augment
from tinycnn.data.loader import BatchLoader, load_splits


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    device = torch.device(args.device)
    x, y = load_splits("mnist", device=device)["train"]
    augment = Augment(rotation=15.0, interpolation="nearest")
    times = {False: [], True: []}
    for r in range(args.repeats):
        for whole in (False, True) if r % 2 == 0 else (True, False):
            loader = BatchLoader(x, y, 128, shuffle=True, seed=r, augment=augment, whole_epoch=whole)
            t0 = time.perf_counter()
            for xb, _ in loader.epoch(0):
                pass
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[whole].append(time.perf_counter() - t0)
    for whole, ts in times.items():
        label = "whole epoch at once" if whole else "batch by batch"
        print(f"{label:20s} median {statistics.median(ts):.3f} s an epoch  ({', '.join(f'{t:.3f}' for t in ts)})")


if __name__ == "__main__":
    main()

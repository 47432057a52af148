"""The C of `tinycnn export --format c` against the int8 ONNX model it was made from, on the
whole test set: agreement of their predictions and both accuracies.

    tinycnn export RUN_DIR --format c --out DIR
    python3 benchmarks/c_agreement.py DIR
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="where model.c, model.h and model.int8.onnx are")
    args = parser.parse_args()
    from tinycnn.data import datasets
    from tinycnn.deploy.c_export import c_predictions
    from tinycnn.deploy.onnx_export import onnx_logits

    test = datasets.load("mnist", "test")
    start = time.perf_counter()
    c = c_predictions(args.directory, test.images)
    seconds = time.perf_counter() - start
    onnx = onnx_logits(args.directory / "model.int8.onnx", (test.images.astype(np.float32) / 255)[:, None]).argmax(1)
    print(f"{len(c):,} test images: the C agrees with the int8 ONNX model on {100 * (c == onnx).mean():.2f}% "
          f"({int((c != onnx).sum())} differ); accuracy C {100 * (c == test.labels).mean():.2f}%, "
          f"int8 ONNX {100 * (onnx == test.labels).mean():.2f}%; {seconds:.1f} s for the C, compiling it included (cc -O2, this CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MNIST test digits drawn the way people make them (tests/deploy/drawn.py: larger, mostly dark
ink on light paper, off-centre on a wider sheet, noisy, PNG or JPEG), read back by a run's
network through `tinycnn predict`'s preprocessing; beside its accuracy on the same digits as
MNIST stores them.

    python3 benchmarks/drawn_digits.py RUN_DIR [--images 2000]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deploy"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory, or a .onnx model")
    parser.add_argument("--images", type=int, default=2000, help="test digits to draw (the first N)")
    args = parser.parse_args()
    from drawn import draw

    from tinycnn.data import datasets
    from tinycnn.deploy.predict import Reader

    test = datasets.load("mnist", "test")
    rng = np.random.default_rng(0)
    reader = Reader(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [draw(test.images[i], rng, inverted=i % 4 != 3, jpeg=i % 3 == 0, path=Path(tmp) / f"d{i:05d}")
                 for i in range(args.images)]
        drawn = np.array([p.digit for p in reader.read(paths)])
    labels = test.labels[: args.images]
    plain = reader.logits((test.images[: args.images].astype(np.float32) / 255)[:, None]).argmax(1)
    print(f"{args.images:,} test digits: {100 * (drawn == labels).mean():.2f}% read right as drawn photos, "
          f"{100 * (plain == labels).mean():.2f}% as MNIST stores them")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which decay for the weight average (`ema`), and what its update costs.

    PYTHONPATH=src python3 benchmarks/weight_average.py run --seed 0 --out results/ema-decays
    PYTHONPATH=src python3 benchmarks/weight_average.py table results/ema-decays
    PYTHONPATH=src python3 benchmarks/weight_average.py cost --model era-s7-6750

`run` and `table`: several averages of one training trajectory, each evaluated on the
validation split (and the test split) at the end of every epoch.
The average never feeds back into training (weight_average.py), so every decay, and the
trained weights themselves ("raw"), are measured on the same run of a seed: differences
between them are the averages', not the seeds'. `run` trains one seed of the recipe with a
validation split carved from the training set and writes OUT/seed-S.jsonl (one line per
epoch); start one process per seed to use the cores. `table` prints the mean over the
seeds found, epoch by epoch, and the score the choice is made on: the mean validation
accuracy of epochs 8 to the last (how early and how steadily a network is good), with
that of the last 3 epochs (what the run ends with). The test columns are printed for the
record; the choice is made on validation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DECAYS = (0.99, 0.995, 0.998, 0.999)


def run(args) -> None:
    from tinycnn.engine.evaluate import evaluate
    from tinycnn.engine.trainer import Trainer
    from tinycnn.engine.weight_average import WeightAverage
    from tinycnn.recipes import load_recipe

    model = {"model": args.model} if args.model else {}
    config = load_recipe(args.recipe, seed=args.seed, val_size=args.val_size, threads=args.threads,
                         compile=args.compile, amp=args.amp, ema=0.0, **model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / f"seed-{args.seed}.jsonl"
    if rows_path.exists():
        sys.exit(f"{rows_path} exists; remove it or choose another --out")
    trainer = Trainer(config, out / f"run-seed-{args.seed}", progress=False, log=lambda m: None)
    setup, averages = trainer._setup, {}

    def setup_with_averages():
        setup()
        averages.update({d: WeightAverage(trainer.model, d) for d in args.decays})

    trainer._setup = setup_with_averages

    def on_batch(epoch: int, batch: int) -> None:
        for average in averages.values():
            average.update()
        if batch == len(trainer.train_loader) - 1:  # the epoch's end: evaluate every average
            row = {"epoch": epoch + 1}
            for name, loader in trainer.eval_loaders.items():
                row[f"raw_{name}"] = evaluate(trainer.model, loader, config.amp)["acc"]
                for d, average in averages.items():
                    row[f"{d}_{name}"] = evaluate(average.model, loader, config.amp)["acc"]
            with open(rows_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    trainer.fit(on_batch=on_batch)


def table(args) -> None:
    files = sorted(Path(args.dir).glob("seed-*.jsonl"))
    if not files:
        sys.exit(f"no seed-*.jsonl in {args.dir}")
    runs = [[json.loads(line) for line in f.read_text().splitlines() if line.strip()] for f in files]
    epochs = min(len(r) for r in runs)
    keys = ["raw"] + sorted({k.rsplit("_", 1)[0] for k in runs[0][0] if k != "epoch"} - {"raw"}, key=float)
    print(f"seeds: {', '.join(f.stem for f in files)}; {epochs} epochs; mean accuracy (%) over the seeds")
    for split in ("val", "test"):
        print(f"\n{split}: epoch " + " ".join(f"{e + 1:>6}" for e in range(epochs)) + "   mean 8..  last 3")
        for k in keys:
            means = [sum(r[e][f"{k}_{split}"] for r in runs) / len(runs) for e in range(epochs)]
            late, last3 = means[7:] or means, means[-3:]
            print(f"{k:>12} " + " ".join(f"{m:6.2f}" for m in means) + f"   {sum(late) / len(late):6.3f}  {sum(last3) / len(last3):6.3f}")


def cost(args) -> None:
    """The median time of one update of the average, and of one training step of the same
    network (forward, loss, backward, SGD) at the default recipe's batch, as Trainer runs it."""
    import statistics
    import time

    import torch
    import torch.nn.functional as F

    from tinycnn.engine.optim import build_optimizer
    from tinycnn.engine.step import TrainStep
    from tinycnn.engine.weight_average import WeightAverage
    from tinycnn.models.build import build_model
    from tinycnn.recipes import load_recipe

    torch.set_num_threads(args.threads)
    config = load_recipe("default", model=args.model, device="cpu", compile=False, amp=False)  # an eager fp32 step
    model = build_model(config)
    step = TrainStep(model, config, torch.device("cpu"), lambda logits, y: F.cross_entropy(logits, y))
    optimizer = build_optimizer(config, model)
    average = WeightAverage(model, 0.995)
    x, y = torch.randn(config.batch_size, 1, 28, 28), torch.randint(0, 10, (config.batch_size,))

    def timed(fn, repeats: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def train_step():
        step(x, y)
        optimizer.step()

    for _ in range(5):  # warm-up
        train_step()
        average.update()
    params = sum(p.numel() for p in model.parameters())
    for r in range(args.rounds):
        t_step, t_update = timed(train_step, 50), timed(average.update, 500)
        print(f"round {r + 1}: {args.model} ({params:,} parameters), {args.threads} thread(s): training step {t_step * 1e3:.2f} ms, "
              f"update of the average {t_update * 1e6:.1f} us ({100 * t_update / t_step:.2f}% of a step)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train one seed and evaluate its averages every epoch")
    r.add_argument("--recipe", default="default")
    r.add_argument("--model", default=None, help="another network than the recipe's")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--decays", type=lambda s: [float(v) for v in s.split(",")], default=list(DECAYS))
    r.add_argument("--val-size", type=int, default=10000)
    r.add_argument("--threads", type=int, default=1, help="torch threads (1: one process per core)")
    r.add_argument("--compile", action="store_true")
    r.add_argument("--amp", action="store_true")
    r.add_argument("--out", required=True)
    t = sub.add_parser("table", help="the mean over the seeds of a directory, epoch by epoch")
    t.add_argument("dir")
    c = sub.add_parser("cost", help="the update's time against a training step's")
    c.add_argument("--model", default="era-s7-6750")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    {"run": run, "table": table, "cost": cost}[args.command](args)


if __name__ == "__main__":
    main()

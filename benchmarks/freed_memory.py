"""glibc's default handling of freed memory (A) against host_memory.keep_freed_memory (B).

    PYTHONPATH=src python3 benchmarks/freed_memory.py [--pairs 4] [--rounds 6] [--images 1280] [--amp] [--compile]
    PYTHONPATH=src python3 benchmarks/freed_memory.py --model era-s7-6750 --dropout 0.05   # the default recipe's network
    PYTHONPATH=src python3 benchmarks/freed_memory.py --recipe default --epochs 2 --pairs 3  # whole training runs

The setting holds for a whole process, so A and B cannot alternate inside one: each side
runs in a process of its own, started in turns (A B, B A, A B, ...; `--pairs` of each). A
process trains the Trainer of `tinycnn bench` (era-s7-8172 unless --model, batch 128,
rotation 15 nearest; eager fp32 unless --amp / --compile), one warm-up round, then `--rounds` timed rounds of
`--images` images, and reports its median img/s, its minor page faults per step and its
peak resident set. With --recipe, a process instead trains that recipe for --epochs epochs
on all 60,000 images as `tinycnn train --recipe R --epochs E` does (A with keep_freed_memory
replaced by a no-op) and reports the median of its epochs' img/s; A's and B's results must
then be identical, and are checked to be. The ratio of each pair (B's median over A's, the two processes started one after the other) is
printed, and the median of those ratios: processes on this machine differ in speed by more
than rounds inside one process do, so several pairs are needed.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(args) -> None:
    from tinycnn.analysis import bench
    from tinycnn.engine import trainer as train
    from tinycnn.recipes import load_recipe

    if args.side == "A":
        train.keep_freed_memory = lambda device: False
    # --amp / --compile as given (off unless given), never the recipe's "auto": both sides alike.
    config = load_recipe(args.recipe, epochs=args.epochs, device="cpu", amp=args.amp, compile=args.compile)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = train.Trainer(config, Path(tmp) / "run", progress=False, log=lambda m: None)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        result = trainer.fit()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    rows = result.metrics
    steps = args.epochs * len(trainer.train_loader)  # the recipe's batches, validation split taken out
    print(json.dumps({"kept": args.side == "B", "median": statistics.median(r["images_per_second"] for r in rows),
                      "faults_per_step": faults / steps, "peak_rss_mib": bench.peak_rss_mib(),
                      "losses": [r["train_loss"] for r in rows]}))


def one_process(args) -> None:
    import torch

    from tinycnn.analysis import bench
    from tinycnn.speed.host_memory import keep_freed_memory

    kept = keep_freed_memory() if args.side == "B" else False
    d = bench.DEFAULTS
    values = {"model": args.model, "batch_size": d["batch_size"], "rotation": d["rotation"],
              **bench.best_settings(torch.device("cpu")), "compile": args.compile, "amp": args.amp}
    if args.dropout is not None:
        values["dropout"] = args.dropout
    config, _ = bench.bench_config(values, images=args.images, device="cpu")
    steps = -(-args.images // config.batch_size)
    side = bench.Side(args.side, "Trainer")
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = bench.TrainerPipeline("Trainer", config, Path(tmp))
        bench._timed(pipeline, args.images, side, resettable=False)  # the warm-up round
        side.page_faults.clear()
        for _ in range(args.rounds):
            rate, _ = bench._timed(pipeline, args.images, side, resettable=False)
            side.rates.append(rate)
    print(json.dumps({"kept": kept, "median": side.median, "faults_per_step": statistics.median(side.page_faults) / steps,
                      "peak_rss_mib": bench.peak_rss_mib()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--images", type=int, default=1280)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on both sides")
    parser.add_argument("--compile", action="store_true", help="torch.compile on both sides")
    parser.add_argument("--model", default="era-s7-8172")
    parser.add_argument("--dropout", type=float, default=None, help="the model's dropout rate (default: its own)")
    parser.add_argument("--recipe", default=None, help="whole training runs of this recipe instead of bench rounds")
    parser.add_argument("--epochs", type=int, default=2, help="with --recipe: epochs a run")
    parser.add_argument("--side", choices=["A", "B"], help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.side:
        return one_run(args) if args.recipe else one_process(args)
    child = [sys.executable, __file__, "--rounds", str(args.rounds), "--images", str(args.images), "--model", args.model]
    child += ["--dropout", str(args.dropout)] if args.dropout is not None else []
    child += ["--recipe", args.recipe, "--epochs", str(args.epochs)] if args.recipe else []
    child += ["--amp"] * args.amp + ["--compile"] * args.compile
    how = f"{'compile' if args.compile else 'eager'}, {'bf16' if args.amp else 'fp32'}"
    what = (f"recipe {args.recipe}, {args.epochs} epochs per process (median of the epochs' img/s)" if args.recipe else
            f"Trainer ({args.model}, {how}), {args.rounds} rounds of {args.images:,} images per process")
    print(f"{what}; A = glibc's defaults, B = keep_freed_memory()")
    print(f"{'pair':>4}  {'A img/s':>9}  {'B img/s':>9}  {'B/A':>5}  {'A faults/step':>13}  {'B faults/step':>13}  "
          f"{'A peak MiB':>10}  {'B peak MiB':>10}")
    ratios = []
    for p in range(args.pairs):
        result = {}
        for side in ("A", "B") if p % 2 == 0 else ("B", "A"):
            out = subprocess.run([*child, "--side", side], capture_output=True, text=True, check=True).stdout
            result[side] = json.loads(out.strip().splitlines()[-1])
        if not result["B"]["kept"]:
            raise SystemExit("keep_freed_memory() changed nothing here (not glibc?)")
        a, b = result["A"], result["B"]
        if "losses" in a and a["losses"] != b["losses"]:
            raise SystemExit(f"pair {p + 1}: A's and B's training losses differ: {a['losses']} / {b['losses']}")
        ratios.append(b["median"] / a["median"])
        print(f"{p + 1:>4}  {a['median']:>9,.0f}  {b['median']:>9,.0f}  {ratios[-1]:>5.2f}  "
              f"{a['faults_per_step']:>13,.0f}  {b['faults_per_step']:>13,.0f}  "
              f"{a['peak_rss_mib']:>10,.0f}  {b['peak_rss_mib']:>10,.0f}")
    if args.recipe:
        print("training losses identical in every pair")
    print(f"median B/A over {args.pairs} pairs: {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()

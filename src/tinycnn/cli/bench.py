"""`tinycnn bench`: training throughput, A against B, rounds alternating in one run."""

from tinycnn.errors import TinycnnError

HELP = "training speed: the torchvision seed pipeline (A) against tinycnn's trainer (B), or two settings"
DESCRIPTION = (
    "Time training rounds alternately (A B, B A, A B, ...) after one warm-up round each, and print "
    "images/s per round, the medians, B/A and peak memory. A is the course notebooks' pipeline "
    "(torchvision MNIST, RandomRotation/ToTensor/Normalize, DataLoader workers, eager SGD loop) "
    "unless --a gives tinycnn settings; B is tinycnn's Trainer with the best settings for the "
    "device, changed by --b. Settings are TrainConfig keys (channels_last=true, threads=1, "
    "amp=true, compile=true, interpolation=bilinear, eval_batch_size=500, ...), sgd=loop|foreach|fused, "
    "inference=folded|plain (with --measure eval: BatchNorm folded into the convolutions, or not), "
    "or, with compile=true on the CPU, random=philox|torch, cpp_wrapper=true|false, "
    "layout_optimization=true|false. "
    "--time-to-accuracy trains a recipe instead and reports the seconds until test accuracy "
    "reaches 99.4% and stays there."
)


def add_arguments(parser):
    parser.add_argument("--model", default="era-s7-8172", help="a zoo name (`tinycnn models`), or path/to/file.py:Name or package.module:Name")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size, both sides")
    parser.add_argument("--rotation", type=float, default=15.0, help="random rotation, degrees, on both sides")
    parser.add_argument("--images", type=int, default=10_240, help="training images per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each side")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the seed pipeline")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train (auto: CUDA if there is a GPU)")
    parser.add_argument("--a", nargs="+", metavar="KEY=VALUE", default=None, help="A is tinycnn's Trainer with these settings (instead of the seed pipeline)")
    parser.add_argument("--b", nargs="+", metavar="KEY=VALUE", default=None, help="settings of B on top of its defaults")
    parser.add_argument("--measure", choices=["train", "eval"], default="train", help="eval: time evaluation of the test split instead")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's operator table for one round of B instead")
    parser.add_argument("--by-shape", action="store_true", help="with --profile: a row per operator and input shapes (each layer's convolution apart)")
    parser.add_argument("--seeds", type=int, default=0, metavar="S", help="compare S separate runs (A) with the S seeds stacked in one network (B); img/s counts every seed's images")
    parser.add_argument("--time-to-accuracy", action="store_true", help="train --recipe (with --b's settings) and report wall time to 99.4%% held to the end")
    parser.add_argument("--recipe", default="default", help="with --time-to-accuracy: the recipe to train")
    parser.add_argument("--target", type=float, default=99.4, help="with --time-to-accuracy: the test accuracy, %%")
    parser.add_argument("--out", default=None, help="with --time-to-accuracy: run directory (default: runs/<recipe>-<UTC time>)")


def run(args):
    from tinycnn.analysis import bench
    from tinycnn.models import source

    args.model = source.resolve(args.model)
    if args.by_shape and not args.profile:
        raise TinycnnError("--by-shape splits the table of --profile: add --profile")
    if args.time_to_accuracy:
        return _time_to_accuracy(args)
    a = bench.parse_assignments(args.a) if args.a is not None else None
    b = bench.parse_assignments(args.b)
    if args.profile:
        from tinycnn.device import select_device

        common = {"model": args.model, "batch_size": args.batch_size, "rotation": args.rotation}
        values = {**common, **bench.best_settings(select_device(args.device)), **b}
        print(bench.profile_step(values, images=args.images, device=args.device, by_shape=args.by_shape))
        return 0
    sides = bench.run_bench(
        model=args.model, batch_size=args.batch_size, rotation=args.rotation, images=args.images,
        rounds=args.rounds, device=args.device, workers=args.workers, a=a, b=b, measure=args.measure, seeds=args.seeds,
    )
    print(bench.report(*sides, "evaluation" if args.measure == "eval" else "training"))
    return 0


def _time_to_accuracy(args):
    from pathlib import Path

    from tinycnn.analysis.bench import TWEAKS, parse_assignments
    from tinycnn.config import config_from_dict
    from tinycnn.device import device_name
    from tinycnn.engine.rundir import default_run_dir, read_metrics
    from tinycnn.engine.trainer import Trainer
    from tinycnn.recipes import load_recipe
    from tinycnn.seeds.stats import time_to_accuracy
    from tinycnn.speed.auto_settings import resolve_auto

    config = load_recipe(args.recipe, device=args.device)
    settings = parse_assignments(args.b)
    tweaks = sorted(set(settings) & set(TWEAKS))
    if tweaks:
        raise TinycnnError(f"--time-to-accuracy takes recipe settings in --b, not {', '.join(tweaks)}")
    if settings:  # e.g. --b compile=true amp=true: the recipe trained with B's settings
        config = config_from_dict({**config.to_dict(), **settings}, where="--b").validate()
    run_dir = Path(args.out) if args.out else default_run_dir(config)
    if (run_dir / "config.toml").exists():
        raise TinycnnError(f"{run_dir} already holds a run; choose another --out")
    config = resolve_auto(config, log=print)  # the recipe's "auto", said as `tinycnn train` says it
    trainer = Trainer(config, run_dir)
    trainer.fit()
    metrics = read_metrics(run_dir)
    result = time_to_accuracy(metrics, args.target)
    print(f"{config.name} on {device_name(trainer.device)}:")
    if metrics and "raw_test_acc" in metrics[0]:  # a weight average was evaluated: the weights alone, same run
        raw = time_to_accuracy(metrics, args.target, "raw_test_acc")
        print("the trained weights without the average: " + (
            f">= {args.target}% from epoch {raw['epoch']} ({raw['seconds']:.0f} s in this run)" if raw else f"never held {args.target}%"))
    if result is None:
        print(f"test accuracy did not reach {args.target}% and stay there; run directory: {run_dir}")
        return 1
    print(
        f"test accuracy >= {args.target}% from epoch {result['epoch']} to the end "
        f"({result['test_acc']:.2f}% then, {result['final_test_acc']:.2f}% at the end): "
        f"{result['seconds']:.0f} s of training + evaluation; run directory: {run_dir}"
    )
    return 0

"""`tinycnn train`: train a recipe (flags override it), print per-epoch lines and the budget check."""

import argparse

HELP = "train a recipe (default: the `default` recipe); flags override it"
DESCRIPTION = (
    "Train one model on MNIST. With no flags it runs the `default` recipe; every flag "
    "overrides the recipe's value. Writes runs/<recipe>-<UTC time>/ (or --out): config.toml, "
    "metrics.jsonl, run.json, last.pt and, with --val-size, best.pt. Ctrl-C saves a resume point."
)

S = argparse.SUPPRESS  # an override flag that is not given leaves the recipe's value


def add_arguments(parser):
    from tinycnn.cli.args import add_data_arguments

    parser.add_argument("--recipe", default="default", help="a recipe name (`tinycnn recipes`) or a .toml file")
    parser.add_argument("--model", default=S, help="a zoo name (`tinycnn models`), or your own network: path/to/file.py:Name or package.module:Name "
                                                    "(with --resume: the file to rebuild the run's network from)")
    parser.add_argument("--model-args", default=S, metavar="JSON",
                        help="the model's keyword arguments, e.g. '{\"widths\": [8, 12, 10, 10], \"pool_after\": 2}' for family")
    parser.add_argument("--epochs", type=int, default=S, help="number of epochs")
    parser.add_argument("--batch-size", type=int, default=S, help="training batch size")
    parser.add_argument("--eval-batch-size", type=int, default=S, help="evaluation batch size (no effect on results; on a GPU, 10000 is faster)")
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=S)
    parser.add_argument("--lr", type=float, default=S, help="learning rate (the base lr for onecycle is max-lr/div-factor)")
    parser.add_argument("--max-lr", type=float, default=S, help="onecycle peak learning rate")
    parser.add_argument("--momentum", type=float, default=S)
    parser.add_argument("--weight-decay", type=float, default=S)
    parser.add_argument("--scheduler", choices=["none", "step", "onecycle", "exp", "cosine"], default=S)
    parser.add_argument("--rotation", type=float, default=S, help="random rotation, degrees")
    parser.add_argument("--translate", type=float, default=S, help="random translation, fraction of the image")
    parser.add_argument("--erasing", type=float, default=S, help="random erasing probability")
    parser.add_argument("--dropout", type=float, default=S, help="dropout rate of the model")
    parser.add_argument("--label-smoothing", type=float, default=S)
    parser.add_argument("--ema", type=float, default=S, metavar="DECAY",
                        help="evaluate and keep a moving average of the weights with this decay, e.g. 0.999 (0: off)")
    parser.add_argument("--val-size", type=int, default=S, help="validation images carved from the 60,000 (best.pt is chosen on them)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=S)
    seeds.add_argument("--seeds", default=None, help="several seeds, e.g. 0,1,2 or 0..4: one run each, and a summary")
    parser.add_argument(
        "--stack", action=argparse.BooleanOptionalAction, default=None,
        help="train the --seeds together as one stacked network (default: on a GPU yes, on the CPU no)",
    )
    parser.add_argument(
        "--parallel", action="store_true",
        help="on the CPU, train the --seeds side by side, one process each with its share of the cores "
             "(sooner than one after another; each seed's results are those of a run with --threads set to that share)",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=S)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=S,
                        help='bf16 autocast (the default recipe: "auto", on where the CPU multiplies bf16 natively)')
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=S,
                        help='torch.compile the model (the default recipe: "auto", on for runs of 4 epochs or more on the CPU)')
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=S)
    parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=S, help="deterministic algorithms")
    parser.add_argument("--fast-dropout", action=argparse.BooleanOptionalAction, default=S, help="cheap dropout masks (same distribution)")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=S, help="on a GPU, replay each step as one CUDA graph")
    parser.add_argument("--threads", type=int, default=S, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--subset", type=int, default=S, help="train on N images (and test on <= N): a smoke run")
    parser.add_argument("--out", default=None, help="run directory (default: runs/<recipe>-<UTC time>)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run (other flags but --model are ignored)")
    parser.add_argument("--last", type=int, default=None, help="K for 'each of the last K epochs' (default: the spec's)")
    parser.add_argument("--no-progress", action="store_true", help="plain lines instead of progress bars")
    add_data_arguments(parser, dataset_default=S)


def run(args):
    from pathlib import Path

    if args.data_dir:
        import os

        os.environ["TINYCNN_DATA"] = args.data_dir
    overrides = {k: v for k, v in vars(args).items() if k in overridable()}
    if "model_args" in overrides:
        from tinycnn.cli.args import keyword_arguments

        overrides["model_args"] = keyword_arguments(overrides["model_args"], "--model-args")
    progress = False if args.no_progress else None
    if args.resume:
        return resume(Path(args.resume), progress=progress, last_k=args.last, model=getattr(args, "model", None))
    from tinycnn.cli.args import parse_seeds

    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    return train_recipe(args.recipe, overrides, seeds=seeds, out=args.out, progress=progress, last_k=args.last, stack=args.stack,
                        parallel=args.parallel)


def overridable() -> set[str]:
    """The TrainConfig keys a flag may set (the recipe's bookkeeping left out)."""
    from tinycnn.config import FIELD_TYPES

    return set(FIELD_TYPES) - {"name", "description", "source"}


def print_config(config) -> None:
    items = [f"{k}={v}" for k, v in config.to_dict().items() if k not in ("description", "source") and v is not None]
    print(f"recipe {config.name}: {config.description}" if config.description else f"recipe {config.name}")
    line = "config:"
    for item in items:
        if len(line) + len(item) > 100:
            print(line)
            line = "       "
        line += " " + item
    print(line)


def verdict(run_dir, config, last_k: int | None = None) -> bool:
    """Print parameters, the last K test accuracies and the budget check; True if it passes."""
    from tinycnn.seeds.stats import check_run
    from tinycnn.specs import load_spec, render

    spec = load_spec(config.spec)
    k = last_k or spec.get("last_k", 1)
    criteria, facts, metrics = check_run(run_dir, spec, k)
    test = [m["test_acc"] for m in metrics]
    print(f"\n{config.model}: {facts['params']:,} parameters; test accuracy of the last {k} epochs: " + ", ".join(f"{a:.2f}%" for a in test[-k:]))
    print(render(criteria, f"budget {spec['name']} ({spec.get('description', '')}):"))
    print(f"run directory: {run_dir}")
    return all(c.passed for c in criteria)


def train_recipe(recipe: str, overrides: dict, *, seeds=None, out=None, progress=None, last_k=None, stack=None,
                 parallel=False) -> int:
    """`tinycnn train`: a recipe with flags over it, one seed or several, into a new run directory."""
    from pathlib import Path

    from tinycnn.engine.rundir import claim, default_run_dir, holds_run
    from tinycnn.engine.trainer import Trainer
    from tinycnn.errors import TinycnnError
    from tinycnn.models import source
    from tinycnn.models.build import check_model
    from tinycnn.recipes import load_recipe
    from tinycnn.seeds.runner import check_parallel, run_seeds, start_seeds
    from tinycnn.speed.auto_settings import resolve_auto

    if overrides.get("model"):
        overrides = {**overrides, "model": source.resolve(overrides["model"])}  # a file relative to here
    config = load_recipe(recipe, **overrides)
    check_model(config)  # one line, before anything is written
    if stack and seeds is None:
        raise TinycnnError("--stack trains several seeds as one network: give them with --seeds, e.g. --seeds 0..7 --stack")
    if parallel:
        check_parallel(config, seeds, stack)
    run_dir = Path(out) if out else default_run_dir(config)
    if holds_run(run_dir):
        raise TinycnnError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
    decisions: list[str] = []
    config = resolve_auto(config, log=decisions.append)  # before anything is saved: a resume keeps the decision
    with claim(run_dir):  # created, writable and this process's before any data loads
        if holds_run(run_dir):  # another process got there first
            raise TinycnnError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        print_config(config)
        for line in decisions:
            print(line)
        if seeds is None:
            Trainer(config, run_dir, progress=progress).fit()
            verdict(run_dir, config, last_k)
            return 0
        start_seeds(config, seeds, run_dir, stack=stack, parallel=parallel)
        run_seeds(config, run_dir, progress=progress, last_k=last_k)
    return 0


def resume(run_dir, *, progress=None, last_k=None, model: str | None = None) -> int:
    """`tinycnn train --resume`: continue a run where its files say it stopped; `model` names
    the file to rebuild a network of the user's from, where the recorded one has changed."""
    from tinycnn.engine.provenance import config_to_rebuild
    from tinycnn.engine.rundir import claim, is_multi_seed
    from tinycnn.engine.trainer import Trainer
    from tinycnn.errors import TinycnnError
    from tinycnn.seeds.runner import resume_seeds

    if not run_dir.is_dir():
        raise TinycnnError(f"{run_dir}: no such run directory")
    with claim(run_dir):  # not while another process writes it
        if is_multi_seed(run_dir):
            resume_seeds(run_dir, progress=progress, last_k=last_k, model=model)
            return 0
        config = config_to_rebuild(run_dir, model)
        saved = (run_dir / "last.pt").exists()
        print(f"resuming {run_dir}" if saved else f"{run_dir}: no epoch was saved before it stopped; starting it again")
        Trainer(config, run_dir, progress=progress).fit(resume=saved)
        verdict(run_dir, config, last_k)
    return 0

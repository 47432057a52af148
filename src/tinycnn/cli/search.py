"""`tinycnn search`: the smallest network that meets a budget, found by Optuna (or on Ray), chosen
on a validation split; `--confirm DIR` trains the best designs over seeds on the test set."""

import argparse

HELP = "search for the smallest network that meets a budget (Optuna, or Ray); --confirm DIR trains the best over seeds"
DESCRIPTION = (
    "Each trial draws a network and settings from --space, counts its parameters first (over the "
    "budget: never trained), trains for the spec's epochs on the training images less a validation "
    "split (--val-size, default 10000), and scores the mean validation accuracy of the spec's last K "
    "epochs; Optuna's median pruner stops weak trials early. The study lives in OUT/journal.log (or "
    "--storage URL, an RDB several machines share); the same command continues an interrupted "
    "search, each trial cut short from its resume point; --workers K runs K trials at a time, here (processes) or on Ray (--backend ray). Writes "
    "OUT/trials.csv, OUT/search.md, OUT/frontier.png and OUT/best-*.toml. The test set is read only "
    "by --confirm."
)

S = argparse.SUPPRESS


def add_arguments(parser):
    parser.add_argument("--spec", default=None,
                        help="the budget: era-s6, era-s7, at-most-4000 or a spec .toml (default: era-s7; with --confirm, the search's)")
    parser.add_argument("--space", default="family", help="family, settings, family+settings, or a space .toml")
    parser.add_argument("--recipe", default="default", help="the recipe trials start from")
    parser.add_argument("--trials", type=int, default=20, help="points to try, in all: trials that complete or are pruned, not repeats (a space file with no more points: each once)")
    parser.add_argument("--out", default=None, help="the search's directory (default: runs/search-<UTC time>)")
    parser.add_argument("--workers", type=int, default=1, help="trials at a time")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="processes here, or Ray tasks")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster's address (default: a local Ray instance)")
    parser.add_argument("--storage", default=None, metavar="URL", help="an RDB for the study (e.g. postgresql://..., sqlite:///s.db)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (trials train with the recipe's seed)")
    parser.add_argument("--objective", choices=["accuracy", "pareto"], default="accuracy",
                        help="accuracy (weak trials pruned), or pareto: fewer parameters and higher accuracy together")
    parser.add_argument("--top", type=int, default=None,
                        help="best designs written as best-*.toml (default 3); with --confirm, how many of them to train (default all)")
    parser.add_argument("--epochs", type=int, default=S, help="epochs per trial (default: the spec's)")
    parser.add_argument("--subset", type=int, default=S, help="train each trial on N images: a faster, rougher search")
    parser.add_argument("--val-size", type=int, default=S, help="validation images carved from the training set (default 10000)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=S)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=S, help="torch.compile each trial")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=S, help="bf16 autocast")
    parser.add_argument("--confirm", default=None, metavar="DIR", help="train DIR's best-*.toml over --seeds on the whole training set")
    parser.add_argument("--seeds", default="0..4", help="with --confirm: the seeds")
    parser.add_argument("--parallel", action="store_true", help="with --confirm, on the CPU: each design's seeds side by side")


def run(args):
    from tinycnn.nas.run import OVERRIDES, confirm, search
    from tinycnn.seeds.seed_list import parse_seeds

    overrides = {k: v for k, v in vars(args).items() if k in OVERRIDES}
    if args.confirm:
        overrides.pop("val_size", None)  # the whole training set
        confirm(args.confirm, parse_seeds(args.seeds), parallel=args.parallel, top=args.top, spec=args.spec, **overrides)
        return 0
    search(args.out, spec=args.spec or "era-s7", space=args.space, recipe=args.recipe, trials=args.trials, workers=args.workers,
           backend=args.backend, ray_address=args.ray_address, storage=args.storage, seed=args.seed, top=3 if args.top is None else args.top,
           objective=args.objective, **overrides)
    return 0

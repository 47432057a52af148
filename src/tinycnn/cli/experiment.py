"""`tinycnn experiment FILE.toml`: train each step of an experiment, then write experiment.md."""

HELP = "run an experiment file (steps of recipes, each with a target); resumable; writes experiment.md"
DESCRIPTION = (
    "Train every [[step]] of an experiment file (a recipe, optional overrides, seeds) into "
    "OUT/<step>/, skipping steps that finished and resuming unfinished ones, then write "
    "OUT/experiment.md: per step the target, the measured result and an analysis computed from "
    "the numbers (fit, target met and how consistently, what changed against the previous step "
    "and what it bought). Run it again after an interruption to continue."
)


def add_arguments(parser):
    parser.add_argument("file", help="an experiment .toml (see experiments/era-s7.toml)")
    parser.add_argument("--out", default=None, help="output directory (default: runs/<experiment name>[-subsetN][-eN])")
    parser.add_argument("--subset", type=int, default=None, help="train every step on N images: a smoke run")
    parser.add_argument("--epochs", type=int, default=None, help="override every step's number of epochs")
    parser.add_argument("--seeds", default=None, help="override every step's seeds, e.g. 0 or 0,1,2 or 0..4")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="override every step's device")
    parser.add_argument("--parallel", action="store_true",
                        help="on the CPU, train the seeds of all steps side by side, one process each with its share of the cores "
                             "(as tinycnn train --parallel; each seed's results are those of a run with --threads set to that share)")
    parser.add_argument("--dry-run", action="store_true", help="check the file and print the steps and their changes; train nothing")
    parser.add_argument("--no-progress", action="store_true", help="plain lines instead of progress bars")


def run(args):
    from tinycnn.analysis import experiment
    from tinycnn.cli.args import parse_seeds

    seeds = parse_seeds(args.seeds) if args.seeds else None
    exp = experiment.load_experiment(args.file, subset=args.subset, epochs=args.epochs, seeds=seeds, device=args.device)
    if args.dry_run:
        print(experiment.describe(exp))
        return 0
    out = args.out or experiment.default_out(exp)
    experiment.run_experiment(exp, out, progress=False if args.no_progress else None, parallel=args.parallel)
    return 0

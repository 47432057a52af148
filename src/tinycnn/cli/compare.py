"""`tinycnn compare RUN_DIR...`: several runs in one table and one test-accuracy figure."""

HELP = "compare runs: parameters, epochs, final and last-K test accuracy, speed; one overlay PNG"


def add_arguments(parser):
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (single or multi-seed)")
    parser.add_argument("--out", default="compare.png", help="the figure overlaying the test accuracy curves")
    parser.add_argument("--frontier", default=None, metavar="PNG",
                        help="also a figure of parameters against final test accuracy over seeds, one point per run")
    parser.add_argument("--last", type=int, default=None, help="K for 'lowest of the last K epochs' (default: each run's spec)")


def run(args):
    from tinycnn.analysis.report import compare

    print(compare(args.run_dirs, args.out, last_k=args.last, frontier_png=args.frontier))
    return 0

"""`tinycnn report RUN_DIR`: report.md and figures (curves, learning rate, errors) in the run directory."""

HELP = "write report.md and PNG figures into a run directory (single or multi-seed)"
DESCRIPTION = (
    "Write report.md into RUN_DIR with curves.png (loss and accuracy per epoch), lr.png (the "
    "learning rate), confusion.png (confusion matrix, per-class accuracy) and misclassified.png "
    "(the 25 most confident errors, recomputed from last.pt), the model's layer table, the "
    "resolved recipe, the budget check, versions and timings. A multi-seed run gets mean and "
    "min-max bands over seeds and the per-seed table."
)


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run directory written by tinycnn train (or tinycnn experiment)")
    parser.add_argument("--last", type=int, default=None, help="K for 'each of the last K epochs' (default: the spec's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="where last.pt is evaluated")
    parser.add_argument("--model", default=None, metavar="FILE.py:NAME",
                        help="for a network of your own whose recorded file has changed or is gone: the file to rebuild it from")


def run(args):
    from tinycnn.analysis.report import write_report

    write_report(args.run_dir, last_k=args.last, device=args.device, model=args.model)
    return 0

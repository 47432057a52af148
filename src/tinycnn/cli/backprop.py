"""`tinycnn backprop`: the Session 6 sheet's 2-2-2 network trained by hand-derived gradients.

    tinycnn backprop                                  # defaults: 6 learning rates x 68 iterations
    tinycnn backprop --lrs 0.5,2 --iterations 20 --out /tmp/bp --explain

Writes backprop.csv (every number), backprop.xlsx (the same as live formulas, with a chart)
and error_vs_lr.png (E_total against iteration) into --out.
"""

HELP = "backpropagation by hand on the Session 6 2-2-2 network: CSV, live spreadsheet, plot"
DESCRIPTION = (
    "Train the 2-2-2 sigmoid network of the Session 6 sheet with hand-derived gradients, once per "
    "learning rate, and write backprop.csv, backprop.xlsx (live formulas and a chart) and "
    "error_vs_lr.png into --out."
)

# Defaults as strings, so a bad value is reported by run() in one line.
_DEFAULTS = {
    "lrs": "0.1,0.2,0.5,0.8,1.0,2.0",
    "iterations": "68",
    "inputs": "0.05,0.1",
    "targets": "0.5,0.5",
    "weights": "0.15,0.2,0.25,0.3,0.4,0.45,0.5,0.55",
}


def add_arguments(parser):
    parser.add_argument("--lrs", default=_DEFAULTS["lrs"], help="comma-separated learning rates, one run each")
    parser.add_argument("--iterations", default=_DEFAULTS["iterations"],
                        help="iterations per run; iteration 1 holds the initial weights")
    parser.add_argument("--inputs", default=_DEFAULTS["inputs"], help="i1,i2")
    parser.add_argument("--targets", default=_DEFAULTS["targets"], help="t1,t2")
    parser.add_argument("--weights", default=_DEFAULTS["weights"], help="initial w1,...,w8")
    parser.add_argument("--out", default="backprop", help="folder for backprop.csv, backprop.xlsx, error_vs_lr.png")
    parser.add_argument("--explain", action="store_true",
                        help="print each partial derivative by the chain rule, then iteration 1's numbers")


def run(args):
    from pathlib import Path

    from tinycnn.course import backprop
    from tinycnn.course.backprop_xlsx import write_xlsx
    from tinycnn.errors import TinycnnError

    setup = backprop.parse_setup(args.lrs, args.iterations, args.inputs, args.targets, args.weights)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise TinycnnError(f"--out: {out} is a file, not a folder; pass a folder path")
    if args.explain:
        print(backprop.explain(setup))
        print()
    runs = backprop.run_all(setup)
    written = [
        backprop.write_csv(out / "backprop.csv", runs),
        write_xlsx(out / "backprop.xlsx", setup),
        backprop.plot_error(out / "error_vs_lr.png", runs),
    ]
    for path in written:
        print(f"wrote {path}")
    print(f"final E_total after {setup.iterations} iterations:")
    for lr, rows in runs.items():
        print(f"  lr = {lr:<8g} E_total = {rows[-1]['E_total']:.9f}")
    return 0

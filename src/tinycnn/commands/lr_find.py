"""`tinycnn lr-find --recipe NAME`: the learning-rate range test, a suggested rate and a PNG."""

HELP = "learning-rate range test: exponential lr ramp over a few hundred batches, suggested lr, PNG"
DESCRIPTION = (
    "Train the recipe's freshly initialised model for --steps batches while the learning rate "
    "grows exponentially from --start to --end; smooth the loss, stop when it passes --diverge "
    "times its best, and suggest a rate (the steepest descent of the smoothed loss; the "
    "min/10 rule is printed beside it). The model and optimizer are restored afterwards. "
    "Writes the figure (--out) and the curve as JSON beside it."
)


def add_arguments(parser):
    parser.add_argument("--recipe", default="default", help="a recipe name (`tinycnn recipes`) or a .toml file")
    parser.add_argument("--start", type=float, default=1e-5, help="first learning rate")
    parser.add_argument("--end", type=float, default=1.0, help="last learning rate")
    parser.add_argument("--steps", type=int, default=200, help="batches (one learning rate each)")
    parser.add_argument("--smooth", type=float, default=0.05, help="smoothing factor f: s = f * loss + (1 - f) * s")
    parser.add_argument("--diverge", type=float, default=4.0, help="stop when the smoothed loss exceeds this many times its best")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    parser.add_argument("--subset", type=int, default=None, help="draw the batches from the first N training images")
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--out", default="lr-find.png", help="the figure; the curve goes to the same name with .json")


def run(args):
    from tinycnn.lr_find import lr_find_command

    return lr_find_command(args)

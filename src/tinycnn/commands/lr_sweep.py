"""`tinycnn lr-sweep --recipe NAME --lrs ...`: one short constant-rate run per learning rate, losses overlaid."""

HELP = "one short run per learning rate (constant lr, no schedule); training-loss curves in one PNG"
DESCRIPTION = (
    "For each learning rate, train the recipe's model from the same initialisation on the same "
    "batches with that constant rate (scheduler none) for --epochs, record the loss of every "
    "batch, and overlay the curves in one PNG (faint: per batch; bold: smoothed). Each rate's "
    "final test accuracy goes into the legend; a rate whose loss stops being finite is marked "
    "as diverged. Writes the figure (--out) and the curves as JSON beside it."
)


def add_arguments(parser):
    parser.add_argument("--recipe", default="default", help="a recipe name (`tinycnn recipes`) or a .toml file")
    parser.add_argument("--lrs", default="0.1,0.2,0.5,0.8,1.0,2.0", help="comma-separated learning rates")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per learning rate")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images (test on <= N)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--out", default="lr-sweep.png", help="the figure; the curves go to the same name with .json")


def run(args):
    from tinycnn.lr_find import lr_sweep_command

    return lr_sweep_command(args)

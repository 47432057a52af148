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
    parser.add_argument("--model", default=None, help="instead of the recipe's: a zoo name, or path/to/file.py:Name or package.module:Name")
    parser.add_argument("--lrs", default="0.1,0.2,0.5,0.8,1.0,2.0", help="comma-separated learning rates")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per learning rate")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images (test on <= N)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--out", default="lr-sweep.png", help="the figure; the curves go to the same name with .json")


def run(args):
    import json
    import math
    from pathlib import Path

    from tinycnn.analysis import plots
    from tinycnn.analysis.lr_find import sweep
    from tinycnn.atomic import atomic_write_text
    from tinycnn.errors import TinycnnError
    from tinycnn.models import source
    from tinycnn.recipes import load_recipe

    try:
        lrs = [float(x) for x in args.lrs.split(",") if x.strip()]
    except ValueError:
        raise TinycnnError(f"--lrs {args.lrs!r}: expected comma-separated numbers, e.g. 0.1,0.2,0.5") from None
    if not lrs or any(not (math.isfinite(lr) and lr > 0) for lr in lrs):
        raise TinycnnError(f"--lrs {args.lrs!r}: every learning rate must be a positive number")
    model = source.resolve(args.model) if args.model else None
    config = load_recipe(args.recipe, model=model, batch_size=args.batch_size, seed=args.seed, device=args.device, subset=args.subset,
                         epochs=args.epochs)
    print(f"lr sweep: recipe {config.name}, model {config.model}, {config.optimizer} (momentum {config.momentum:g}), batch {config.batch_size}, "
          f"{config.epochs} epoch(s) per rate, constant rate (scheduler none), same initial weights for every rate")
    curves, per_epoch = sweep(config, lrs)
    data = f"{config.subset:,} images" if config.subset else "full training set"
    png = plots.plot_lr_sweep(args.out, curves, steps_per_epoch=per_epoch,
                              title=f"Training loss per learning rate: {config.name} ({config.model}), {config.optimizer}, {data}")
    record = {"recipe": config.name, "model": config.model, "epochs": config.epochs, "subset": config.subset, "batches_per_epoch": per_epoch, "curves": curves}
    json_path = Path(png).with_suffix(".json")
    atomic_write_text(json_path, json.dumps(record) + "\n")
    print(f"wrote {png} and {json_path}")
    return 0

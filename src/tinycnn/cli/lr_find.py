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
    parser.add_argument("--model", default=None, help="instead of the recipe's: a zoo name, or path/to/file.py:Name or package.module:Name")
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
    import json
    import time
    from dataclasses import asdict
    from pathlib import Path

    from tinycnn.analysis import plots
    from tinycnn.analysis.lr_find import find_lr, suggest
    from tinycnn.atomic import atomic_write_text
    from tinycnn.models import source
    from tinycnn.recipes import load_recipe

    model = source.resolve(args.model) if args.model else None
    config = load_recipe(args.recipe, model=model, batch_size=args.batch_size, seed=args.seed, device=args.device, subset=args.subset)
    t0 = time.perf_counter()
    result = find_lr(config, start=args.start, end=args.end, steps=args.steps, smooth=args.smooth, diverge=args.diverge)
    seconds = time.perf_counter() - t0
    marks = suggest(result)
    print(f"{len(result.lrs)} batches in {seconds:.1f} s; {result.stopped}")
    low = min(result.smoothed)
    print(f"lowest smoothed loss {low:.4f} at lr {marks['min/10'] * 10:.3g}")
    if "steepest" in marks:
        print(f"suggested lr: {marks['steepest']:.3g} (steepest descent of the smoothed loss)")
        print(f"min/10 rule:  {marks['min/10']:.3g} (lr at the lowest smoothed loss, divided by 10)")
    else:
        print(f"suggested lr: {marks['min/10']:.3g} (min/10 rule; too few points for the steepest descent, use more --steps)")
    if config.scheduler == "onecycle":
        print(f"this recipe uses onecycle: its max_lr is {config.max_lr:g}; a candidate from this test is the min/10 rate, {marks['min/10']:.3g}")
    labels = {"steepest descent (suggested)": marks["steepest"]} if "steepest" in marks else {}
    labels["min/10" + ("" if "steepest" in marks else " (suggested)")] = marks["min/10"]
    png = plots.plot_lr_find(args.out, result.lrs, result.losses, result.smoothed, labels,
                             title=f"LR range test: {config.name} ({config.model}), {config.optimizer}, batch {config.batch_size}")
    record = {"recipe": config.name, "model": config.model, "start": args.start, "end": args.end, "steps": args.steps,
              "smooth": args.smooth, "diverge": args.diverge, "suggestions": marks, "seconds": seconds, **asdict(result)}
    json_path = Path(png).with_suffix(".json")
    atomic_write_text(json_path, json.dumps(record, indent=1) + "\n")
    print(f"wrote {png} and {json_path}")
    return 0

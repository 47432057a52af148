"""`tinycnn reproduce`: train the ERA write-ups' systems over seeds into results/reproduction/, and tabulate them."""

HELP = "reproduce the ERA write-ups' systems over seeds (results/reproduction/) and print or update the table"

MARK_BEGIN, MARK_END = "<!-- reproduction-table:begin -->", "<!-- reproduction-table:end -->"


def add_arguments(parser):
    from tinycnn.course.reproduce import CLAIMS

    parser.add_argument("--results", default="results/reproduction", help="where each recipe's multi-seed run directory lives")
    parser.add_argument("--train", action="store_true", help="train the missing seeds first (resumes unfinished ones)")
    parser.add_argument("--recipes", default=",".join(CLAIMS), help="comma-separated recipes, with --train")
    parser.add_argument("--seeds", default="0,1,2", help="seeds, with --train")
    parser.add_argument("--parallel", action="store_true",
                        help="with --train, on the CPU: each recipe's seeds side by side (as `tinycnn train --parallel`)")
    parser.add_argument(
        "--update",
        default=None,
        metavar="FILE.md",
        help=f"replace the table between {MARK_BEGIN} and {MARK_END} in this file",
    )


def run(args):
    from pathlib import Path

    from tinycnn.atomic import atomic_write_text
    from tinycnn.course.reproduce import CLAIMS, collect, render_markdown
    from tinycnn.errors import TinycnnError

    results = Path(args.results)
    if args.train:
        from tinycnn.cli.args import parse_seeds
        from tinycnn.cli.train import resume, train_recipe
        from tinycnn.recipes import load_recipe

        seeds = parse_seeds(args.seeds)
        for recipe in [r.strip() for r in args.recipes.split(",") if r.strip()]:
            if recipe not in CLAIMS:
                raise TinycnnError(f"{recipe!r} is not a write-up system; choose from {', '.join(CLAIMS)}")
            load_recipe(recipe)
            run_dir = results / recipe
            if (run_dir / "seeds.json").exists():
                resume(run_dir, progress=False)
            else:
                train_recipe(recipe, {}, seeds=seeds, out=run_dir, progress=False, parallel=args.parallel)
    rows = collect(results)
    if not rows:
        raise TinycnnError(f"no finished runs under {results}/; train them with `tinycnn reproduce --train`")
    table = render_markdown(rows)
    if args.update:
        path = Path(args.update)
        text = path.read_text() if path.exists() else ""
        if MARK_BEGIN not in text or MARK_END not in text:
            raise TinycnnError(f"{path} has no {MARK_BEGIN} ... {MARK_END} block to replace")
        before, rest = text.split(MARK_BEGIN, 1)
        after = rest.split(MARK_END, 1)[1]
        atomic_write_text(path, f"{before}{MARK_BEGIN}\n{table}{MARK_END}{after}")
        print(f"updated the table in {path}")
    print(table, end="")
    return 0

"""`tinycnn check RUN_DIR`: does a run meet the assignment's budget? PASS/FAIL per criterion."""

HELP = "check a run against a budget spec (era-s6, era-s7, at-most-4000, or a .toml); exit 0 only if all pass"


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run directory written by tinycnn train")
    parser.add_argument("--spec", default=None, help="era-s6, era-s7, at-most-4000 or a spec .toml (default: the run's recipe's)")
    parser.add_argument("--last", type=int, default=None, help="K: accuracy must hold in each of the last K epochs (default: the spec's)")


def run(args):
    from pathlib import Path

    from tinycnn.engine.rundir import read_config
    from tinycnn.errors import TinycnnError
    from tinycnn.seeds.stats import check_run
    from tinycnn.specs import load_spec, render

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise TinycnnError(f"{run_dir}: no such run directory")
    if (run_dir / "seeds.json").exists():
        from tinycnn.seeds.stats import render_summary, summarize_seeds

        seeds = sorted(run_dir.glob("seed-*"))
        summary = summarize_seeds(seeds, args.spec or read_config(run_dir).spec, args.last)
        print(render_summary(summary))
        return 0 if summary["passing_seeds"] == summary["seeds"] else 1
    spec = load_spec(args.spec or read_config(run_dir).spec)
    criteria, _, _ = check_run(run_dir, spec, args.last)
    print(render(criteria, f"{run_dir}: budget {spec['name']}"))
    return 0 if all(c.passed for c in criteria) else 1

"""`tinycnn search` and `tinycnn.search`: a search run end to end, then its outputs; and
`--confirm`, the frontier's best designs trained on the whole training set over seeds, the
only time the test set is read."""

from __future__ import annotations

import time
from pathlib import Path

from tinycnn.errors import TinycnnError
from tinycnn.nas.trial import Plan

# The train overrides a search takes from its command line (fidelity and place, not design).
OVERRIDES = ("epochs", "subset", "val_size", "device", "compile", "amp", "threads")


def search(out: str | Path | None = None, *, spec: str = "era-s7", space: str = "family", recipe: str = "default",
           trials: int = 20, workers: int = 1, backend: str = "local", ray_address: str | None = None,
           storage: str | None = None, seed: int = 0, top: int = 3, objective: str = "accuracy", log=print,
           **overrides) -> Path:
    """Search `space` for networks meeting `spec`, trials starting from `recipe`; returns the
    search's directory (trials.csv, search.md, frontier.png, best-*.toml). `objective` is
    "accuracy" (the validation accuracy; weak trials pruned) or "pareto" (fewer parameters and
    a higher accuracy, two objectives; nothing pruned but designs over the budget). Run it again
    with the same arguments to continue an interrupted search."""
    from tinycnn.nas.outputs import write_outputs
    from tinycnn.nas.space import load_space
    from tinycnn.nas.study import OBJECTIVES, open_study, run_search
    from tinycnn.recipes import recipe_path
    from tinycnn.specs import load_spec

    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise TinycnnError(f"a search takes {', '.join(OVERRIDES)} as train overrides, not {unknown[0]!r}")
    if objective not in OBJECTIVES:
        raise TinycnnError(f"--objective {objective!r}: choose {' or '.join(OBJECTIVES)}")
    if backend not in ("local", "ray"):
        raise TinycnnError(f"--backend {backend!r}: choose local or ray")
    loaded_spec = load_spec(spec)
    loaded_space = load_space(space)  # one line now for a bad space file
    recipe = loaded_space.recipe or recipe
    recipe_path(recipe)
    directory = Path(out) if out is not None else Path("runs") / f"search-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    directory.mkdir(parents=True, exist_ok=True)
    plan = Plan(str(directory.resolve()), resolved(recipe), resolved(spec), resolved(space),
                {k: v for k, v in overrides.items() if v is not None}, objective)
    try:
        run_search(directory, plan, trials=trials, workers=workers, backend=backend, ray_address=ray_address,
                   url=storage, seed=seed, log=log)
    finally:
        if (directory / "search.json").exists():
            recipes = write_outputs(directory, open_study(directory, storage, seed, objective=objective), plan, loaded_spec, top)
            log(f"wrote {directory / 'search.md'}, trials.csv, frontier.png" + (f" and {len(recipes)} best-*.toml" if recipes else ""))
    return directory


def resolved(name_or_file: str) -> str:
    """A built-in's name as it is; a .toml file's absolute path, so that every process finds it."""
    return str(Path(name_or_file).resolve()) if name_or_file.endswith(".toml") else name_or_file


def confirm(directory: str | Path, seeds, *, parallel: bool = False, top: int | None = None, spec: str | None = None,
            log=print, **overrides) -> list[dict]:
    """Train each best-*.toml of a search (the first `top` of them, or all) on the whole training
    set over `seeds` (a list or "0..4"); per design the test accuracy over seeds and the budget
    check against `spec` (a name or a .toml; default: the search's), in DIR/confirm/<best-i>/ and
    DIR/confirm.md. `overrides` (subset=, epochs=, device=, ...) make a smoke run of it."""
    from tinycnn.seeds.seed_list import parse_seeds

    seeds = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    from tinycnn.atomic import atomic_write_text
    from tinycnn.engine.rundir import claim, holds_run
    from tinycnn.recipes import load_recipe
    from tinycnn.seeds.runner import resume_seeds, run_seeds, start_seeds

    directory = Path(directory)
    if spec is not None:
        from tinycnn.specs import load_spec

        load_spec(spec)  # one line now for a spec that does not load
        overrides["spec"] = resolved(spec)
    if top is not None and top < 1:
        raise TinycnnError(f"--top should be at least 1, got {top}")
    recipes = sorted(directory.glob("best-*.toml"), key=lambda p: int(p.stem.split("-")[1]))[:top]
    if not recipes:
        raise TinycnnError(f"{directory}: no best-*.toml to confirm; run the search first (tinycnn search --out {directory})")
    results = []
    for recipe in recipes:
        run_dir = directory / "confirm" / confirm_name(recipe)
        log(f"\n##### {recipe.name} over seeds {','.join(map(str, seeds))} -> {run_dir}")
        if holds_run(run_dir):
            summary = resume_seeds(run_dir, log=log)
        else:
            config = load_recipe(str(recipe), **{k: v for k, v in overrides.items() if v is not None})
            with claim(run_dir):
                start_seeds(config, seeds, run_dir, parallel=parallel, log=log)
                summary = run_seeds(config, run_dir, log=log)
        results.append({**summary, "design": f"{recipe.name} ({run_dir.name.replace('-', ' ')})"
                        if run_dir.name != recipe.stem else recipe.name, "run_dir": str(run_dir)})
    atomic_write_text(directory / "confirm.md", confirm_markdown(results, directory))
    log(f"\nwrote {directory / 'confirm.md'}")
    return results


def confirm_name(recipe: Path) -> str:
    """A design's directory under DIR/confirm: named by its trial ("trial-9"), which stays the
    same when a continued search ranks its best designs anew (best-1 may become best-2); by the
    file's name for a recipe that does not say its trial."""
    from tinycnn.config import read_toml
    from tinycnn.nas.outputs import recipe_trial

    number = recipe_trial(read_toml(recipe))
    return f"trial-{number}" if number is not None else recipe.stem


def confirm_markdown(results: list[dict], directory: Path) -> str:
    lines = ["# The search's best designs on the test set", "",
             ("Each best-*.toml trained on the whole training set (no validation split) over the seeds given, "
              f"with `tinycnn search --confirm {directory} --seeds ...`: the only time the test set was read."), "",
             "| design | params | final test %, mean ± std | min | min of the last K | seeds meeting the spec | runs |",
             "|---|---:|---|---:|---:|---|---|"]
    for r in results:
        f, m = r["final_test_acc"], r["min_last_k_test_acc"]
        params = r["runs"][0]["params"] if r["runs"] else 0
        lines.append(f"| {r['design']} | {params:,} | {f['mean']:.2f} ± {f['std']:.2f} | {f['min']:.2f} | {m['min']:.2f} | "
                     f"{r['passing_seeds']} of {r['seeds']} ({r['spec']}) | `{Path(r['run_dir']).relative_to(directory)}` |")
    return "\n".join(lines) + "\n"

"""Experiments: steps of recipes, each with a target, trained in order and written up from the numbers.

    tinycnn experiment experiments/era-s7.toml                  # trains into runs/era-s7/<step>/
    tinycnn experiment experiments/era-s7.toml --subset 2000 --epochs 2 --seeds 0   # a smoke run
    tinycnn experiment experiments/era-s7.toml --dry-run        # check the file, show the steps
    tinycnn experiment experiments/era-s7.toml --parallel       # on the CPU: seeds of all steps side by side

An experiment file:

    name = "era-s7"                  # optional; default: the file's name without .toml
    description = "..."              # optional, one line
    source = "..."                   # optional: where the steps come from
    seeds = 3                        # optional default for every step: a count (0..n-1) or a list

    [[step]]
    name = "step1"                   # names the step's directory: letters, digits, '.', '_', '-'
    target = ["Settle on ...", "..."]  # free text: a string or a list of strings
    recipe = "era-s7-step1"          # a recipe name, or a .toml file (relative to this file)
    seeds = [0, 1, 2]                # optional
    [step.overrides]                 # optional: any TrainConfig value, e.g.
    epochs = 12

Each step trains into OUT/<step>/ as a multi-seed run (seeds.json, config.toml, summary.json,
seed-<n>/), the layout of `tinycnn train --seeds`. Running the same command again skips the
steps whose seeds all finished and resumes the others, so an interrupted experiment continues
where it stopped. Then OUT/experiment.md (and experiment.json, experiment.png) is written
from the run files alone: per step the target as given, the measured result, and an analysis
whose every sentence is chosen and filled in from measured numbers.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.config import (
    FIELD_TYPES,
    TrainConfig,
    anchor_model_file,
    config_from_dict,
    read_toml,
    to_toml,
)
from tinycnn.engine.rundir import (
    SEEDS_FILE,
    open_run,
    read_config,
    read_run,
    read_seeds,
    write_json,
)
from tinycnn.errors import TinycnnError
from tinycnn.specs import load_spec
from tinycnn.speed.auto_settings import resolve_auto

TOP_KEYS = ("name", "description", "source", "seeds", "step")
STEP_KEYS = ("name", "target", "recipe", "overrides", "seeds")
OVERRIDABLE = sorted(set(FIELD_TYPES) - {"name", "description", "source"})
STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Thresholds of the analysis, in percentage points of accuracy.
OVERFIT_GAP = 0.3  # train - test above this: over-fitting
UNDERFIT_GAP = -0.1  # train - test below this: the training batches are harder than the test
FELL_BACK = 0.1  # best - final test accuracy above this: the last epochs lost ground


@dataclass
class Step:
    name: str
    target: list[str]
    recipe: str
    overrides: dict
    seeds: list[int]
    config: TrainConfig


@dataclass
class Experiment:
    path: Path
    name: str
    description: str
    source: str
    steps: list[Step]
    cli: dict = field(default_factory=dict)  # overrides given on the command line


# ---------------------------------------------------------------------- the file


def _check_keys(table: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TinycnnError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _seed_list(value, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        if len(set(value)) != len(value):
            raise TinycnnError(f"{where}: seeds {value} names a seed twice")
        return list(value)
    raise TinycnnError(f"{where}: seeds = {value!r} should be a count (e.g. 3) or a list of seeds (e.g. [0, 1, 2])")


def _resolve_recipe(recipe: str, base: Path) -> str:
    """A .toml recipe path is taken relative to the experiment file when it exists there."""
    p = Path(recipe)
    if p.suffix == ".toml" and not p.is_absolute() and (base / p).exists():
        return str(base / p)
    return recipe


def load_experiment(path: str | Path, *, subset: int | None = None, epochs: int | None = None,
                    seeds: list[int] | None = None, device: str | None = None) -> Experiment:
    """Read and check an experiment file; every step's configuration is resolved and validated."""
    from tinycnn.recipes import recipe_path, recipe_values

    path = Path(path)
    if path.is_dir() or not path.exists():
        raise TinycnnError(f"{path}: no such experiment file (see experiments/era-s7.toml for the format)")
    data = read_toml(path)
    _check_keys(data, TOP_KEYS, str(path))
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps or not all(isinstance(s, dict) for s in raw_steps):
        raise TinycnnError(f"{path}: no steps; add [[step]] tables with name, target and recipe")
    default_seeds = _seed_list(data.get("seeds", 1), str(path))
    cli = {k: v for k, v in {"subset": subset, "epochs": epochs, "device": device}.items() if v is not None}

    steps: list[Step] = []
    for i, raw in enumerate(raw_steps, 1):
        where = f"{path}: step {i}" + (f" ({raw['name']!r})" if isinstance(raw.get("name"), str) else "")
        _check_keys(raw, STEP_KEYS, where)
        for key, hint in (("name", 'name = "step1"'), ("recipe", 'recipe = "NAME" (`tinycnn recipes` lists them)'), ("target", 'target = "what this step tries"')):
            if key not in raw:
                raise TinycnnError(f"{where}: missing {key}; add {hint}")
        name = raw["name"]
        if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            raise TinycnnError(f"{where}: name {name!r} should be letters, digits, '.', '_' or '-' (it names a directory)")
        if any(s.name == name for s in steps):
            raise TinycnnError(f"{where}: step name {name!r} is used twice")
        target = raw["target"]
        if isinstance(target, str):
            target = [target]
        if not isinstance(target, list) or not target or not all(isinstance(t, str) for t in target):
            raise TinycnnError(f"{where}: target should be a string or a list of strings")
        if not isinstance(raw["recipe"], str):
            raise TinycnnError(f"{where}: recipe = {raw['recipe']!r} should be a recipe name")
        overrides = raw.get("overrides", {})
        if not isinstance(overrides, dict):
            raise TinycnnError(f"{where}: overrides should be a table ([step.overrides])")
        _check_keys(overrides, tuple(OVERRIDABLE), f"{where}, overrides")
        if isinstance(overrides.get("model"), str):  # a network's file is relative to the experiment file
            overrides = {**overrides, "model": anchor_model_file(overrides["model"], path.parent)}
        recipe = _resolve_recipe(raw["recipe"], path.parent)
        try:
            values = {**recipe_values(recipe), "name": recipe_path(recipe).stem}
            config = config_from_dict({**values, **overrides}, where=f"{where}, overrides")
            config = config_from_dict({**config.to_dict(), **cli}, where="command line").validate()
            config = resolve_auto(config)  # decided once: the step's config.toml and its resume keep it
        except TinycnnError as exc:
            message = str(exc)
            raise TinycnnError(message if message.startswith(str(path)) else f"{where}: {message}") from None
        step_seeds = seeds or (_seed_list(raw["seeds"], where) if "seeds" in raw else default_seeds)
        steps.append(Step(name, target, raw["recipe"], overrides, step_seeds, config))

    name = data.get("name", path.stem)
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise TinycnnError(f"{path}: name {name!r} should be letters, digits, '.', '_' or '-'")
    cli_all = {**cli, **({"seeds": seeds} if seeds else {})}
    return Experiment(path, name, str(data.get("description", "")), str(data.get("source", "")), steps, cli_all)


def default_out(exp: Experiment) -> Path:
    """runs/<name>, marked with the command-line overrides so that a smoke run never meets a full one."""
    suffix = ""
    if "subset" in exp.cli:
        suffix += f"-subset{exp.cli['subset']}"
    if "epochs" in exp.cli:
        suffix += f"-e{exp.cli['epochs']}"
    if "seeds" in exp.cli:
        suffix += "-seeds" + "_".join(map(str, exp.cli["seeds"]))
    return Path("runs") / f"{exp.name}{suffix}"


def _value(v) -> str:
    if v is None:
        return "default"
    if isinstance(v, list) and all(isinstance(x, int) for x in v):
        return ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def changes_text(changes: dict) -> str:
    return ", ".join(f"{k} {_value(a)} -> {_value(b)}" for k, (a, b) in changes.items())


def describe(exp: Experiment) -> str:
    """The plan: each step's recipe, seeds, epochs and what it changes against the step before."""
    lines = [f"experiment {exp.name}: {len(exp.steps)} steps" + (f" ({exp.description})" if exp.description else "")]
    if exp.cli:
        lines.append("command-line overrides: " + ", ".join(f"{k}={_value(v)}" for k, v in exp.cli.items()))
    prev = None
    for i, s in enumerate(exp.steps, 1):
        c = s.config
        lines.append(f"{i}. {s.name}: recipe {s.recipe}, model {c.model}, {c.epochs} epoch{'s' if c.epochs != 1 else ''}, seeds {','.join(map(str, s.seeds))}")
        lines.append(f"   target: {' / '.join(s.target)}")
        if prev is not None:
            lines.append(f"   changes from {prev.name}: {changes_text(c.changes_from(prev.config)) or 'none'}")
        prev = s
    return "\n".join(lines)


# ---------------------------------------------------------------------- running


def step_state(step: Step, step_dir: Path) -> str:
    """'new', 'finished' (every seed done and summarised) or 'unfinished'."""
    if not (step_dir / "seeds.json").exists():
        return "new"
    stored = json.loads((step_dir / "seeds.json").read_text())["seeds"]
    if stored != step.seeds or not (step_dir / "summary.json").exists():
        return "unfinished"
    for seed in step.seeds:
        run = step_dir / f"seed-{seed}" / "run.json"
        if not run.exists():
            return "unfinished"
        info = read_run(run.parent)
        if info.get("status") != "finished" or info.get("epochs_done", 0) < step.config.epochs:
            return "unfinished"
    return "finished"


def _check_stored(step: Step, step_dir: Path) -> None:
    stored = read_config(step_dir)
    changed = step.config.changes_from(stored)
    if changed:
        diff = ", ".join(f"{k} {_value(a)} there, {_value(b)} now" for k, (a, b) in changed.items())
        raise TinycnnError(f"{step_dir} holds step {step.name!r} trained with another configuration ({diff}); use another --out, or delete {step_dir} to train it again")


def resume_command(exp: Experiment, out: Path, parallel: bool) -> str:
    """The command that continues an interrupted experiment: the same overrides, the same OUT."""
    flags = "".join(f" --{key} {','.join(map(str, value)) if key == 'seeds' else value}" for key, value in exp.cli.items())
    return f"tinycnn experiment {exp.path}{flags} --out {out}" + (" --parallel" if parallel else "")


def run_experiment(exp: Experiment, out: str | Path, *, progress: bool | None = False, log=print,
                   parallel: bool = False) -> dict[str, str]:
    """Train what is not finished, then write experiment.md; returns {step: 'trained'|'resumed'|'skipped'}.

    With `parallel` (the CPU only) the seeds of all new steps train side by side, each in a
    process of its own, across steps, as `tinycnn train --parallel` trains a run's seeds."""
    from tinycnn.device import TORCH_DEFAULT_THREADS
    from tinycnn.engine import provenance
    from tinycnn.seeds import runner
    from tinycnn.seeds.parallel import plan_processes

    out = Path(out)
    again = resume_command(exp, out, parallel)
    states = {step.name: step_state(step, out / step.name) for step in exp.steps}
    # How each unfinished step was started (seeds.json), to go on the same way.
    saved = {step.name: read_seeds(out / step.name)
             for step in exp.steps if states[step.name] == "unfinished"}
    processes, threads = 1, 0
    if parallel:
        for step in exp.steps:
            runner.check_cpu_for_parallel(step.config)
        pooled = [step for step in exp.steps if states[step.name] == "new" or saved.get(step.name, {}).get("processes", 1) > 1]
        processes, threads = plan_processes(sum(len(step.seeds) for step in pooled), 0, TORCH_DEFAULT_THREADS)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "experiment.toml", exp.path.read_text())
    done: dict[str, str] = {}
    jobs, side_by_side = [], []
    for i, step in enumerate(exp.steps, 1):
        step_dir, state = out / step.name, states[step.name]
        if state == "finished":
            _check_stored(step, step_dir)
            log(f"step {i}/{len(exp.steps)} {step.name}: finished earlier, skipped ({step_dir})")
            done[step.name] = "skipped"
            continue
        if state == "new":
            step_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(step_dir / "config.toml", to_toml(step.config.to_dict()))
            if processes > 1:
                record = runner.seeds_record(step.seeds, False, processes, step.config.threads or threads)
            else:
                record = {"seeds": step.seeds, "stacked": runner.choose_stacking(step.config, step.seeds, None, log)}
            origin = provenance.record(step_dir, step.config.model)  # a network of the user's: where it came from
            if origin is not None:
                record["model_source"] = origin
        else:
            _check_stored(step, step_dir)
            # As it was started (a step saved without the key ran its seeds one by one).
            record = {**saved[step.name], "seeds": step.seeds, "stacked": saved[step.name].get("stacked", False)}
            provenance.config_to_rebuild(step_dir)  # one line if a network's file changed since
        write_json(step_dir / SEEDS_FILE, record)
        verb = "training" if state == "new" else "resuming"
        done[step.name] = "trained" if state == "new" else "resumed"
        if parallel and record.get("processes", 1) > 1:  # joins the others, trained below
            log(f"\n##### step {i}/{len(exp.steps)} {step.name}: {verb} recipe {step.recipe}, seeds {','.join(map(str, step.seeds))} "
                f"side by side with the other steps -> {step_dir}")
            jobs += runner.seed_jobs(step.config, step.seeds, step_dir, record.get("threads", step.config.threads), label=f"{step.name} ", log=log)
            side_by_side.append(step)
            continue
        log(f"\n##### step {i}/{len(exp.steps)} {step.name}: {verb} recipe {step.recipe}, seeds {','.join(map(str, step.seeds))} -> {step_dir}")
        try:
            runner.resume_seeds(step_dir, progress=progress, log=log)
        except KeyboardInterrupt:
            log(f"\nexperiment interrupted in step {step.name}; run the same command again to resume it: {again}")
            raise
    if side_by_side:
        from tinycnn.seeds.parallel import run_in_processes

        try:
            run_in_processes(jobs, processes, again)
        except KeyboardInterrupt:
            log(f"\nexperiment interrupted; run the same command again to resume it: {again}")
            raise
        for step in side_by_side:
            log(f"\n##### step {exp.steps.index(step) + 1}/{len(exp.steps)} {step.name}: trained")
            runner.write_summary(step.config, [out / step.name / f"seed-{seed}" for seed in step.seeds], out / step.name, None, log)
    path = write_experiment_report(exp, out)
    log(f"\nwrote {path}")
    return done


# ---------------------------------------------------------------------- facts and analysis


def step_facts(step: Step, step_dir: Path) -> dict | None:
    """The measured numbers of one step (over its seeds), or None when nothing has been trained."""
    from tinycnn.analysis.report import seed_criteria
    from tinycnn.analysis.report import spread as _spread
    from tinycnn.seeds.stats import run_outcome

    try:
        view = open_run(step_dir)
    except TinycnnError:
        return None
    spec = load_spec(view.config.spec)
    k = spec.get("last_k", 1)
    target = spec["accuracy_at_least"]
    outs = [run_outcome(d, spec, k) for d in view.seed_dirs]
    finals_train = [m[-1]["train_acc"] for m in view.metrics]
    finals_test = [m[-1]["test_acc"] for m in view.metrics]
    first_hit = []
    for m in view.metrics:
        hits = [r["epoch"] for r in m if r["test_acc"] >= target]
        if hits:
            first_hit.append(hits[0])
    per_seed = seed_criteria(view, spec, k)
    criteria = [
        {"name": c.name, "required": c.required, "passed": sum(s[i].passed for s in per_seed),
         "measured": list(dict.fromkeys(s[i].measured for s in per_seed))}
        for i, c in enumerate(per_seed[0])
    ]
    last_gain = [m[-1]["test_acc"] - m[-2]["test_acc"] if len(m) > 1 else 0.0 for m in view.metrics]
    return {
        "step": step.name,
        "recipe": step.recipe,
        "model": view.config.model,
        "dir": str(step_dir),
        "params": view.params,
        "seeds": [i.get("seed") for i in view.infos],
        "epochs": max(len(m) for m in view.metrics),
        "finished": view.finished(),
        "spec": spec["name"],
        "target": target,
        "last_k": k,
        "best_train": _spread([o["best_train_acc"] for o in outs]),
        "best_test": _spread([o["best_test_acc"] for o in outs]),
        "final_train": _spread(finals_train),
        "final_test": _spread(finals_test),
        "min_last_k": _spread([o["min_last_k_test_acc"] for o in outs]),
        "gap": _spread([a - b for a, b in zip(finals_train, finals_test)]),
        "peak_epoch": [max(m, key=lambda r: r["test_acc"])["epoch"] for m in view.metrics],
        "last_gain": _spread(last_gain),
        "reached": len(first_hit),
        "first_epoch": first_hit,
        "consistent": sum(o["min_last_k_test_acc"] is not None and o["min_last_k_test_acc"] >= target for o in outs),
        "passing": sum(o["passes"] for o in outs),
        "criteria": criteria,
        "seconds_per_epoch": _spread([o["seconds_per_epoch"] for o in outs]),
        "has_dropout": bool(view.infos[0].get("has_dropout")),
        "curves": [[r["test_acc"] for r in m] for m in view.metrics],
    }


def regularisers(config: TrainConfig, has_dropout: bool) -> list[str]:
    out = []
    if has_dropout:
        out.append(f"dropout {config.dropout:g}" if config.dropout else "dropout")
    for key, text in (("rotation", "rotation +-{:g} deg"), ("translate", "translation {:g}"), ("shear", "shear {:g} deg"),
                      ("erasing", "random erasing p={:g}"), ("label_smoothing", "label smoothing {:g}"), ("weight_decay", "weight decay {:g}")):
        if getattr(config, key):
            out.append(text.format(getattr(config, key)))
    if list(config.scale) != [1.0, 1.0]:
        out.append(f"scale {config.scale[0]:g}-{config.scale[1]:g}")
    return out


def _pp(x: float) -> str:
    return f"{x:+.2f} pp"


def analyse(step: Step, f: dict, prev: Step | None = None, pf: dict | None = None) -> list[str]:
    """The analysis of one step as sentences, each chosen by a measured fact and quoting it."""
    n, k, t = len(f["seeds"]), f["last_k"], f["target"]
    of = f" (mean of {n} seeds)" if n > 1 else ""
    out = []

    # Fit: the gap between training and test accuracy in the last epoch.
    tr, te, gap = f["final_train"]["mean"], f["final_test"]["mean"], f["gap"]["mean"]
    reg = regularisers(step.config, f["has_dropout"])
    if gap > OVERFIT_GAP:
        why = f" Regularisation in use: {', '.join(reg)}." if reg else " The step has no dropout and no augmentation."
        out.append(f"Over-fitting: in the last epoch the training accuracy, {tr:.2f}%, is {gap:.2f} pp above the test accuracy, {te:.2f}%{of}.{why}")
    elif gap < UNDERFIT_GAP:
        why = (f"the training batches are made harder by {', '.join(reg)}, so the model does not over-fit and has room to fit more"
               if reg else "the training accuracy is an average over an epoch in which the weights were still improving")
        out.append(f"No over-fitting: the test accuracy, {te:.2f}%, is {-gap:.2f} pp above the training accuracy, {tr:.2f}%, in the last epoch{of}; {why}.")
    else:
        out.append(f"Training ({tr:.2f}%) and test ({te:.2f}%) accuracy agree within {abs(gap):.2f} pp in the last epoch{of}: no sign of over-fitting.")
    if gap <= OVERFIT_GAP and f["best_train"]["max"] < t and f["best_test"]["max"] < t:
        out.append(f"Under-fitting: neither the training accuracy (best {f['best_train']['max']:.2f}%) nor the test accuracy (best {f['best_test']['max']:.2f}%) reaches {t:g}%; the model needs capacity or training, not regularisation.")

    # The target: reached at all, and held in each of the last K epochs.
    if f["reached"] == 0:
        out.append(f"Target {t:g}% not reached: the best test accuracy is {f['best_test']['max']:.2f}%, {t - f['best_test']['max']:.2f} pp short.")
    else:
        first = sorted(f["first_epoch"])
        when = f"first in epoch {first[0]}" if n == 1 else f"first in epoch {first[0]}-{first[-1]}"
        held = f"held it in each of the last {k} epochs in {f['consistent']} of {n} seed{'s' if n > 1 else ''}"
        if f["consistent"] == n:
            verdict = "consistently met"
        elif f["consistent"] == 0:
            verdict = f"not consistent: the lowest of the last {k} epochs is {f['min_last_k']['min']:.2f}%"
        else:
            verdict = f"not consistent in every seed (lowest of the last {k}: {f['min_last_k']['min']:.2f}%)"
        out.append(f"Target {t:g}% reached in {f['reached']} of {n} seed{'s' if n > 1 else ''} ({when}); {held}: {verdict}.")

    # The end of the run: fell back from a peak, or still rising.
    drop = f["best_test"]["mean"] - f["final_test"]["mean"]
    if drop > FELL_BACK:
        out.append(f"The last epochs lost ground: the best test accuracy, {f['best_test']['mean']:.2f}% (epoch {statistics.median(f['peak_epoch']):g}), against {f['final_test']['mean']:.2f}% at the end{of}.")
    elif all(e == f["epochs"] for e in f["peak_epoch"]) and f["last_gain"]["mean"] > 0.05:
        out.append(f"Still improving at the end: the best test accuracy came in the last epoch ({_pp(f['last_gain']['mean'])} over the one before){of}.")

    # What changed against the previous step, and what it bought.
    if prev is not None and pf is not None:
        changes = step.config.changes_from(prev.config)
        if not changes:
            out.append(f"Same configuration as {prev.name}; the difference is seeds and noise.")
        else:
            dp = f["params"] - pf["params"]
            params = f"parameters {pf['params']:,} -> {f['params']:,}" + (f" ({100 * dp / pf['params']:+.0f}%)" if dp else " (same)")
            d_best = f["best_test"]["mean"] - pf["best_test"]["mean"]
            d_last = f["min_last_k"]["mean"] - pf["min_last_k"]["mean"]
            out.append(
                f"Against {prev.name}: changed {changes_text(changes)}. It bought: {params}; best test accuracy {_pp(d_best)}; "
                f"lowest of the last {k} epochs {_pp(d_last)}; train-test gap {pf['gap']['mean']:+.2f} -> {gap:+.2f} pp."
            )
            out.append(_noise(f, pf, d_last, k))
    return [s for s in out if s]


def _noise(f: dict, pf: dict, delta: float, k: int) -> str:
    """Is a difference of the last-K accuracy larger than the seed-to-seed spread?"""
    a, b = f["min_last_k"], pf["min_last_k"]
    if a["n"] < 2 or b["n"] < 2:
        return "With one seed per step, differences of a few tenths of a point can be noise; use more seeds to tell."
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    if se == 0:
        return ""
    if abs(delta) > 2 * se:
        return f"The change of the last-{k} accuracy, {_pp(delta)}, is more than twice its standard error over seeds ({se:.2f} pp): a real difference."
    return f"The change of the last-{k} accuracy, {_pp(delta)}, is within twice its standard error over seeds ({se:.2f} pp): not a clear difference."


# ---------------------------------------------------------------------- experiment.md


def _result_lines(f: dict) -> list[str]:
    from tinycnn.analysis.report import fmt_spread

    k, n = f["last_k"], len(f["seeds"])
    failed = [c for c in f["criteria"] if c["passed"] < n]
    if not failed:
        budget = f"{'meets it' if n == 1 else f'all {n} seeds meet it'} (all {len(f['criteria'])} criteria pass)"
    else:
        said = "; ".join(
            f"{c['name']}: {' / '.join(c['measured'])}, needs {c['required']}" + ("" if n == 1 else f" (passes in {c['passed']} of {n} seeds)")
            for c in failed
        )
        budget = ("fails" if n == 1 else f"{f['passing']} of {n} seeds meet it") + f"; failing: {said}"
    return [
        f"- Parameters: {f['params']:,} (model `{f['model']}`)",
        f"- Best training accuracy: {fmt_spread(f['best_train'])}",
        f"- Best test accuracy: {fmt_spread(f['best_test'])}",
        f"- Test accuracy of the last {k} epochs: lowest {fmt_spread(f['min_last_k'])}; final {fmt_spread(f['final_test'])}",
        f"- Budget check {f['spec']}: {budget}",
        f"- Epochs: {f['epochs']}, {fmt_spread(f['seconds_per_epoch'], 1, ' s')} per epoch (train + eval)",
    ]


def render_markdown(exp: Experiment, out: Path, facts: list[dict | None]) -> str:
    lines = [f"# Experiment {exp.name}", ""]
    if exp.description:
        lines += [exp.description, ""]
    if exp.source:
        lines += [f"Source: {exp.source}.", ""]
    lines += [f"File `{exp.path}`; runs in `{out}`; one directory per step (`tinycnn report {out}/<step>` draws its figures)."]
    if exp.cli:
        lines += ["", "Command-line overrides: " + ", ".join(f"{k} = {_value(v)}" for k, v in exp.cli.items()) + "."]
    subset = next((s.config.subset for s in exp.steps if s.config.subset), None)
    if subset:
        lines += ["", f"**Subset run** on {subset:,} training images: these numbers check the pipeline and are not comparable with full runs."]
    lines += ["", "## Summary", ""]
    from tinycnn.analysis.report import md_table

    rows = []
    for s, f in zip(exp.steps, facts):
        if f is None:
            rows.append([s.name, s.recipe, "not trained", "", "", "", "", ""])
            continue
        n = len(f["seeds"])
        rows.append([
            s.name, s.recipe, f"{f['params']:,}", f"{f['best_train']['mean']:.2f}", f"{f['best_test']['mean']:.2f}",
            f"{f['min_last_k']['mean']:.2f}", f"{f['consistent']} of {n}", f"{f['passing']} of {n}",
        ])
    k = next((f["last_k"] for f in facts if f), 1)
    lines += [md_table(["step", "recipe", "params", "best train %", "best test %", f"lowest of last {k} %", "target held", "budget met"], rows, right={2, 3, 4, 5}), ""]
    lines += ["Accuracies are means over seeds. Target held: seeds whose test accuracy meets the target in each of the last epochs.", ""]
    if any(facts):
        lines += ["![test accuracy per step](experiment.png)", ""]

    prev, pf = None, None
    for i, (s, f) in enumerate(zip(exp.steps, facts), 1):
        lines += [f"## Step {i}: {s.name}", "", f"Recipe `{s.recipe}`" + (f" with overrides {', '.join(f'{k} = {_value(v)}' for k, v in s.overrides.items())}" if s.overrides else "")
                  + (f" ({s.config.description})" if s.config.description else "") + f"; runs in `{out / s.name}`.", ""]
        lines += ["### Target", ""] + [f"{j}. {t}" for j, t in enumerate(s.target, 1)] + [""]
        if f is None:
            lines += ["Not trained yet.", ""]
            continue
        lines += ["### Result", ""] + _result_lines(f) + [""]
        if not f["finished"]:
            lines += ["**Unfinished**: the numbers cover the epochs done so far.", ""]
        lines += ["### Analysis", ""] + [f"{j}. {a}" for j, a in enumerate(analyse(s, f, prev, pf), 1)] + [""]
        prev, pf = s, f
    return "\n".join(lines)


def write_experiment_report(exp: Experiment, out: str | Path) -> Path:
    """experiment.md, experiment.json (the facts) and experiment.png (test accuracy per step)."""
    from tinycnn.analysis import plots

    out = Path(out)
    facts = [step_facts(s, out / s.name) for s in exp.steps]
    done = [(s, f) for s, f in zip(exp.steps, facts) if f]
    if done:
        targets = {f["target"] for _, f in done}
        plots.plot_overlay(out / "experiment.png", [(s.name, f["curves"]) for s, f in done],
                           target=targets.pop() if len(targets) == 1 else None,
                           title=f"Experiment {exp.name}: test accuracy per step" + (" (mean over seeds, shaded from min to max)" if any(len(f["seeds"]) > 1 for _, f in done) else ""))
    atomic_write_text(out / "experiment.json", json.dumps({"experiment": exp.name, "steps": facts}, indent=2) + "\n")
    path = out / "experiment.md"
    atomic_write_text(path, render_markdown(exp, out, facts))
    return path

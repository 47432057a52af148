"""What a search leaves in its directory, from the study alone: trials.csv (a row per trial),
search.md (the best trials, the frontier, how long it took), frontier.png (parameters against
validation accuracy, the zoo's sizes as reference lines) and the best designs as recipes,
best-<i>.toml, which `tinycnn train --recipe` takes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.config import to_toml
from tinycnn.nas.trial import Plan

COLUMNS = ["number", "state", "value", "params", "macs", "model", "design", "settings", "val_acc", "seconds", "reason",
           "continues"]


def rows(study) -> list[dict]:
    """One dict per trial, the study's record of it."""
    out = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        out.append({
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.values[-1] if t.values else None,  # the mean validation accuracy of the last K epochs
            "params": a.get("params"),
            "macs": a.get("macs"),
            "model": a.get("model"),
            "design": a.get("design", {}),
            "settings": a.get("settings", {}),
            "val_acc": a.get("val_acc", []),
            "seconds": a.get("seconds"),
            "reason": a.get("reason", ""),
            "continues": a.get("continues"),  # the interrupted trial this one resumed
        })
    return out


def frontier(trials: list[dict]) -> list[dict]:
    """The completed trials no other beats on both counts: fewer parameters and a higher
    validation accuracy; smallest first."""
    done = sorted((t for t in trials if t["state"] == "complete"), key=lambda t: (t["params"], -t["value"]))
    front, best = [], float("-inf")
    for t in done:
        if t["value"] > best:
            front.append(t)
            best = t["value"]
    return front


def best_designs(trials: list[dict], top: int) -> list[dict]:
    """The most accurate trial, then the frontier's others from the most accurate down."""
    front = sorted(frontier(trials), key=lambda t: -t["value"])
    return front[:top]


def write_outputs(directory: Path, study, plan: Plan, spec: dict, top: int = 3) -> list[Path]:
    """Every output, written atomically; the recipes' paths."""
    from tinycnn.nas.study import wall_seconds

    trials = rows(study)
    write_csv(directory / "trials.csv", trials)
    best = best_designs(trials, top)
    recipes = [write_recipe(directory / f"best-{i}.toml", t, plan, spec) for i, t in enumerate(best, 1)]
    for stale in directory.glob("best-*.toml"):
        if stale not in recipes:
            stale.unlink()
    plot(directory / "frontier.png", trials, spec)
    atomic_write_text(directory / "search.md", markdown(trials, best, plan, spec, wall_seconds(study)))
    return recipes


def write_csv(path: Path, trials: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS)
    writer.writeheader()
    for t in trials:
        writer.writerow({**t, **{k: json.dumps(t[k]) for k in ("design", "settings", "val_acc")}})
    atomic_write_text(path, buffer.getvalue())


def recipe_relative(name_or_file: str, directory: Path) -> str:
    """A built-in's name as it is; a file relative to `directory` (the recipe's, the search's)."""
    return os.path.relpath(name_or_file, directory) if name_or_file.endswith(".toml") else name_or_file


def recipe_trial(recipe: dict) -> int | None:
    """The trial a best-*.toml was written from, as its description (below) says; None for
    another recipe."""
    found = re.match(r"search trial (\d+):", str(recipe.get("description", "")))
    return int(found.group(1)) if found else None


def write_recipe(path: Path, trial: dict, plan: Plan, spec: dict) -> Path:
    """A recipe that trains the trial's design and settings on the whole training set."""
    values = {"extends": plan.recipe,  # a recipe file's path is absolute in the plan already
              "description": f"search trial {trial['number']}: {trial['params']:,} params, validation {trial['value']:.2f}%",
              "spec": recipe_relative(plan.spec, path.parent), "epochs": spec["epochs_at_most"]}
    if trial["model"]:
        values["model"] = trial["model"]
    if trial["design"]:
        values["model_args"] = trial["design"]
    values.update(trial["settings"])
    header = (f"# Found by tinycnn search in {path.parent} (trial {trial['number']}), chosen on the validation split;\n"
              f"# confirm it on the test set over seeds: tinycnn search --confirm {path.parent} --seeds 0..4\n")
    atomic_write_text(path, header + to_toml(values))
    return path


def plot(path: Path, trials: list[dict], spec: dict) -> None:
    from tinycnn.analysis.plots import new_figure, save
    from tinycnn.models import create_model, list_models

    fig = new_figure((10, 6))
    ax = fig.subplots()
    done = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned" and t["val_acc"]]
    if done:
        ax.scatter([t["params"] for t in done], [t["value"] for t in done], s=18, color="tab:blue", label="trials")
    if pruned:
        ax.scatter([t["params"] for t in pruned], [t["val_acc"][-1] for t in pruned], s=12, color="tab:gray", marker="x",
                   label="pruned (last epoch reached)")
    if done:  # the completed trials fill the height; trials stopped early far below them fall off it
        values = [t["value"] for t in done]
        margin = max(0.05, (max(values) - min(values)) / 2)
        ax.set_ylim(min(values) - margin, max(values) + margin / 2)
    front = frontier(trials)
    if front:
        ax.step([t["params"] for t in front], [t["value"] for t in front], where="post", color="tab:red", label="frontier")
    for name in list_models():  # the zoo's sizes, for reference: their accuracies are not on this split
        if name == "family":
            continue
        params = sum(p.numel() for p in create_model(name).parameters())
        if params < 2 * spec["params_below"]:
            ax.axvline(params, color="tab:green", alpha=0.3, linewidth=1)
            ax.annotate(name, (params, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, color="tab:green")
    ax.axvline(spec["params_below"], color="tab:red", linestyle="--", linewidth=1, label=f"budget: < {spec['params_below']:,}")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"validation accuracy, mean of the last {spec.get('last_k', 1)} epochs (%)")
    ax.set_title("tinycnn search: parameters against validation accuracy (zoo sizes in green)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save(fig, path)


def markdown(trials: list[dict], best: list[dict], plan: Plan, spec: dict, seconds: float) -> str:
    continued = {t["continues"] for t in trials if t["continues"] is not None}
    counts = {state: sum(t["state"] == state and t["number"] not in continued for t in trials)
              for state in ("complete", "pruned", "fail", "running")}
    trained = sum(t["seconds"] or 0 for t in trials)
    resumed = f", {len(continued)} interrupted and continued by a later trial" if continued else ""
    lines = [
        (f"# tinycnn search: {spec['name']}, space {recipe_relative(plan.space, Path(plan.directory))}, "
         f"recipe {recipe_relative(plan.recipe, Path(plan.directory))}"), "",
        (f"{len(trials)} trials: {counts['complete']} complete, {counts['pruned']} pruned (over the budget, not fitting, "
         f"or stopped behind the others), {counts['fail']} failed{resumed}. {seconds / 60:.1f} minutes with trials running "
         f"(the pauses between runs left out); {trained / 60:.1f} minutes of training in all."),
        "", (f"Overrides of the trials: {json.dumps(plan.overrides) if plan.overrides else 'none'}. Chosen on the "
             "validation split (the mean accuracy of the last epochs); the test set is read only by `--confirm`."), "",
        "## Best designs", "",
        "| recipe | trial | params | MACs | validation % | design | settings |", "|---|---:|---:|---:|---:|---|---|",
    ]
    for i, t in enumerate(best, 1):
        lines.append(f"| best-{i}.toml | {t['number']} | {t['params']:,} | {t['macs']:,} | {t['value']:.2f} | "
                     f"{_design(t)} | {_settings(t)} |")
    lines += ["", "## Frontier", "", "The completed trials that no other beats with fewer parameters and a higher validation accuracy.", "",
              "| trial | params | validation % |", "|---:|---:|---:|"]
    lines += [f"| {t['number']} | {t['params']:,} | {t['value']:.2f} |" for t in frontier(trials)]
    lines += ["", "![frontier](frontier.png)", ""]
    trained = sorted((t for t in trials if t["state"] == "complete" and t["seconds"]), key=lambda t: -t["value"])
    if len(trained) > 1:  # how close the runners-up came: the spread says how much the choice means
        lines += ["## Completed trials, most accurate first", "",
                  "Each point trained once; a point drawn again reuses its result and is not listed twice.", "",
                  "| trial | params | validation % | last epochs' validation % | design | settings |",
                  "|---:|---:|---:|---|---|---|"]
        last_k = spec.get("last_k", 1)
        lines += [f"| {t['number']} | {t['params']:,} | {t['value']:.2f} | {', '.join(f'{v:.2f}' for v in t['val_acc'][-last_k:])} | "
                  f"{_design(t)} | {_settings(t)} |" for t in trained]
        lines.append("")
    return "\n".join(lines)


def _design(trial: dict) -> str:
    """The trial's model arguments, or the model itself where the space searched no design."""
    return f"`{json.dumps(trial['design'])}`" if trial["design"] else f"{trial['model']} (the recipe's)"


def _settings(trial: dict) -> str:
    return f"`{json.dumps(trial['settings'])}`" if trial["settings"] else "the recipe's"

"""A run judged from its files (check_run), and statistics over seeds: per seed the final and the minimum of the last K test accuracies
and when the accuracy target was reached for good, then mean, std, min over seeds and how
many seeds meet the spec."""

from __future__ import annotations

import statistics
from pathlib import Path

from tinycnn.engine.rundir import read_config, read_metrics, read_run
from tinycnn.specs import Criterion, accuracy_criterion, evaluate_spec, load_spec


def check_run(run_dir: Path, spec: dict, last_k: int | None = None) -> tuple[list[Criterion], dict, list[dict]]:
    """(criteria, facts from run.json, metrics per epoch) of a run directory, read from its files."""
    metrics = read_metrics(run_dir)
    facts = {**read_run(run_dir), "epochs": len(metrics), "planned_epochs": read_config(run_dir).epochs}
    test = [m["test_acc"] for m in metrics if "test_acc" in m]
    return evaluate_spec(spec, facts, test, last_k), facts, metrics


def time_to_accuracy(metrics: list[dict], target: float = 99.4, key: str = "test_acc") -> dict | None:
    """The first epoch from which test accuracy (`key`: also raw_test_acc, the trained
    weights' where a weight average was evaluated) stays >= target to the end, and the
    seconds of training and evaluation spent up to and including it; None if never."""
    accs = [m[key] for m in metrics]
    for i in range(len(accs)):
        if all(a >= target for a in accs[i:]):
            seconds = sum(m["train_seconds"] + m["eval_seconds"] for m in metrics[: i + 1])
            return {"epoch": i + 1, "seconds": seconds, "test_acc": accs[i], "final_test_acc": accs[-1]}
    return None


def run_outcome(run_dir: Path, spec: dict, last_k: int | None = None) -> dict:
    """One run's numbers and verdict, from its files."""
    k = last_k or spec.get("last_k", 1)
    criteria, run, metrics = check_run(run_dir, spec, k)
    test = [m["test_acc"] for m in metrics if "test_acc" in m]
    held = time_to_accuracy(metrics, spec["accuracy_at_least"]) if len(test) == len(metrics) and test else None
    return {
        "run_dir": str(run_dir),
        "seed": run.get("seed"),
        "params": run.get("params"),
        "epochs": len(metrics),
        "final_test_acc": test[-1] if test else None,
        "min_last_k_test_acc": min(test[-k:]) if test else None,
        "best_test_acc": max(test) if test else None,
        "best_train_acc": max((m["train_acc"] for m in metrics), default=None),
        "seconds_per_epoch": statistics.median(m["train_seconds"] + m["eval_seconds"] for m in metrics) if metrics else None,
        "passes": all(c.passed for c in criteria),
        # The accuracy target alone, over the spec's own last K epochs whatever last_k is
        # (a report may show the last-3 minimum of a spec that looks at the final epoch).
        "meets_accuracy": accuracy_criterion(spec, test).passed,
        # From this epoch to the end at or above the target, and the training + evaluation
        # seconds up to it (for seeds stacked in one network: the time of all of them).
        "target_held_from_epoch": held["epoch"] if held else None,
        "seconds_to_target": held["seconds"] if held else None,
        "stacked": len(run.get("stacked_seeds") or []) > 1,
        "last_k": k,
    }


def _spread(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def summarize_seeds(run_dirs: list[Path], spec_name: str, last_k: int | None = None) -> dict:
    spec = load_spec(spec_name)
    runs = [run_outcome(Path(d), spec, last_k) for d in run_dirs]
    return {
        "spec": spec["name"],
        "last_k": runs[0]["last_k"] if runs else last_k,
        "runs": runs,
        "final_test_acc": _spread([r["final_test_acc"] for r in runs if r["final_test_acc"] is not None]),
        "min_last_k_test_acc": _spread([r["min_last_k_test_acc"] for r in runs if r["min_last_k_test_acc"] is not None]),
        "best_test_acc": _spread([r["best_test_acc"] for r in runs if r["best_test_acc"] is not None]),
        "passing_seeds": sum(r["passes"] for r in runs),
        "seeds": len(runs),
        "target": spec["accuracy_at_least"],
        "seconds_to_target": _spread([r["seconds_to_target"] for r in runs if r["seconds_to_target"] is not None]),
    }


def render_summary(summary: dict) -> str:
    k, target = summary["last_k"], summary.get("target", 99.4)
    held_title = f"held {target:g}% from"
    lines = [f"{'seed':>6}  {'final test %':>12}  {f'min last {k} %':>12}  {'best %':>7}  {held_title:<24}  {summary['spec']}"]
    for r in summary["runs"]:
        lines.append(
            f"{r['seed']:>6}  {r['final_test_acc']:>12.2f}  {r['min_last_k_test_acc']:>12.2f}  {r['best_test_acc']:>7.2f}  "
            f"{_held(r):<24}  {'PASS' if r['passes'] else 'FAIL'}"
        )
    f, m = summary["final_test_acc"], summary["min_last_k_test_acc"]
    if f["mean"] is not None:
        lines.append(f"{'mean':>6}  {f['mean']:>12.2f}  {m['mean']:>12.2f}")
        lines.append(f"{'std':>6}  {f['std']:>12.2f}  {m['std']:>12.2f}")
        lines.append(f"{'min':>6}  {f['min']:>12.2f}  {m['min']:>12.2f}")
    lines.append(f"{summary['passing_seeds']} of {summary['seeds']} seeds meet {summary['spec']}")
    if any(r.get("stacked") for r in summary["runs"]):
        lines.append("(the seeds were trained stacked in one network: each time is that of all of them)")
    return "\n".join(lines)


def _held(outcome: dict) -> str:
    """'epoch 12 (321 s)' for a run whose test accuracy held the target from epoch 12 on."""
    if outcome.get("target_held_from_epoch") is None:
        return "-"
    return f"epoch {outcome['target_held_from_epoch']} ({outcome['seconds_to_target']:,.0f} s)"

"""One trial of a search: a point of the space, checked against the budget before anything
trains, trained for the spec's epochs on the training images less a validation split, scored
on that split (the mean accuracy of the last K epochs, K the spec's), and stopped early by the
study's pruner. The test set is never read here."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from tinycnn.config import TrainConfig
from tinycnn.errors import TinycnnError


@dataclass(frozen=True)
class Plan:
    """What every trial of a search shares; the same in every process that runs trials."""

    directory: str  # the search's directory: trials train into DIR/trials/trial-<n>/
    recipe: str
    spec: str
    space: str
    overrides: dict  # the command line's train overrides (epochs, subset, val_size, device, ...)
    objective: str = "accuracy"  # or "pareto": (parameters, accuracy), two objectives
    threads: int = 0


def trial_config(plan: Plan, point, spec: dict) -> TrainConfig:
    """The recipe with the point's network and settings, the spec's epochs and a validation split."""
    from tinycnn.recipes import load_recipe

    values = {"epochs": spec["epochs_at_most"], "val_size": 10_000, "spec": plan.spec, **plan.overrides, **point.settings}
    if point.model is not None:
        values["model"] = point.model
    if point.model_args:
        values["model_args"] = point.model_args
    if plan.threads:
        values["threads"] = plan.threads
    config = load_recipe(plan.recipe, **values)
    if config.val_size < 1:
        raise TinycnnError("a search chooses on a validation split: give --val-size N with N >= 1")
    return config


def run_trial(trial, plan: Plan) -> float | tuple[int, float]:
    """Optuna's objective: the validation accuracy (%) to maximise, or (parameters, accuracy)
    for a Pareto search; TrialPruned for a design over the budget or a weak trial. A point
    tried before takes that trial's result; a trial enqueued to continue an interrupted one
    resumes its run from the resume point it saved."""
    import optuna

    from tinycnn.models.build import build_model
    from tinycnn.models.summary import summarize
    from tinycnn.nas.space import load_space
    from tinycnn.specs import load_spec

    spec = load_spec(plan.spec)
    point = load_space(plan.space).sample(trial)
    trial.set_user_attr("design", point.model_args)
    trial.set_user_attr("settings", point.settings)
    interrupted = interrupted_trial(trial)
    if interrupted is None:
        twin = earlier_twin(trial)
        if twin is not None:  # training is seeded: the same point would give the same result again
            return twin_result(trial, twin, plan)
    try:
        config = trial_config(plan, point, spec)
        network = build_model(config)
    except TinycnnError as exc:  # a design that does not fit a 28x28 image, an argument its factory refuses
        trial.set_user_attr("reason", str(exc))
        raise optuna.TrialPruned(str(exc)) from None
    summary = summarize(network)
    trial.set_user_attr("params", summary.total_params)
    trial.set_user_attr("macs", summary.macs)
    trial.set_user_attr("model", config.model)
    if summary.total_params >= spec["params_below"]:  # never trained: over the budget
        trial.set_user_attr("reason", f"{summary.total_params:,} parameters, not < {spec['params_below']:,}")
        raise optuna.TrialPruned("over the parameter budget")
    try:
        accuracies = train_trial(trial, plan, config, interrupted, spec.get("last_k", 1))
    except KeyboardInterrupt:
        trial.set_user_attr("reason", "interrupted: the same command continues it")
        raise
    except TinycnnError as exc:  # a NaN loss, a full disk: the trial fails, the search goes on
        trial.set_user_attr("reason", str(exc))
        trial.set_user_attr("error", True)
        raise
    k = spec.get("last_k", 1)
    accuracy = sum(accuracies[-k:]) / len(accuracies[-k:])
    return (summary.total_params, accuracy) if plan.objective == "pareto" else accuracy


def train_trial(trial, plan: Plan, config: TrainConfig, interrupted, k: int) -> list[float]:
    """Train the trial's run (or resume the interrupted trial's), reporting each epoch's validation
    accuracy to the pruner (which may stop it before the last `k` epochs, those scored); the
    accuracies of every epoch."""
    import optuna

    from tinycnn.engine.checkpoint import load_checkpoint
    from tinycnn.engine.rundir import read_config
    from tinycnn.engine.trainer import Trainer

    run_dir = Path(plan.directory) / "trials" / f"trial-{trial.number}"
    accuracies: list[float] = []
    resume = False
    if interrupted is not None and interrupted.user_attrs.get("run_dir"):
        run_dir = Path(plan.directory) / "trials" / f"trial-{interrupted.number}"  # here, should the search have moved
        resume = (run_dir / "last.pt").exists()
    if resume:  # the run as it was saved, its epochs so far reported again
        config = read_config(run_dir)
        for row in load_checkpoint(run_dir / "last.pt", kind="resume").get("metrics", []):
            accuracies.append(row["val_acc"])
            trial.report(row["val_acc"], row["epoch"])
    if interrupted is not None:
        trial.set_user_attr("reason", f"continues trial {interrupted.number}, " + (
            f"from its resume point after epoch {len(accuracies)}" if resume else "from the start (no resume point)"))
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("val_acc", list(accuracies))
    start = time.perf_counter()

    def report(row: dict) -> None:
        accuracies.append(row["val_acc"])
        trial.set_user_attr("val_acc", list(accuracies))
        trial.set_user_attr("seconds", time.perf_counter() - start)  # this trial's own: the sum over trials adds up
        if plan.objective == "pareto":  # Optuna prunes single-objective studies only
            return
        trial.report(row["val_acc"], row["epoch"])
        if may_stop_after(row["epoch"], config.epochs, k) and trial.should_prune():
            trial.set_user_attr("reason", f"stopped after epoch {row['epoch']}: behind the trials before it")
            raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

    result = Trainer(config, run_dir, progress=False, log=lambda line: None, test=False).fit(resume=resume, on_epoch=report)
    trial.set_user_attr("seconds", time.perf_counter() - start)
    return [row["val_acc"] for row in result.metrics]


def may_stop_after(epoch: int, epochs: int, k: int) -> bool:
    """Whether the pruner may stop a trial after `epoch`: from first_prunable_epoch on, and not in
    the last `k` epochs, the scored ones (stopping there saves little and loses the score)."""
    return first_prunable_epoch(epochs) <= epoch <= epochs - k


def first_prunable_epoch(epochs: int) -> int:
    """The pruner may stop a trial from a third of its epochs on (not before the second): while
    OneCycle's rate still climbs, which trial is ahead says little about where it ends."""
    return max(2, math.ceil(epochs / 3))


def interrupted_trial(trial):
    """The interrupted trial this one was enqueued to continue (see nas/study.continue_interrupted), or None."""
    number = trial.user_attrs.get("continues")
    if number is None:
        return None
    return next(t for t in trial.study.get_trials(deepcopy=False) if t.number == number)


def earlier_twin(trial):
    """A finished trial of the same point (a small space, or workers drawing alike), or None;
    TrialPruned where an earlier trial of it is still training. (Repeats do not count towards
    --trials: nas/study.tally.)"""
    import optuna
    from optuna.trial import TrialState

    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
        if other.number == trial.number or other.params != trial.params or drawn_while_training(other):
            continue  # (a trial drawn while its point trained elsewhere has no result of its own)
        if other.state == TrialState.RUNNING:
            if other.number < trial.number:
                trial.set_user_attr("drawn_while_training", True)
                trial.set_user_attr("reason", f"the same point as trial {other.number}, still training: not trained twice")
                raise optuna.TrialPruned(f"the same point as trial {other.number}")
        else:
            return other
    return None


def drawn_while_training(trial) -> bool:
    """Whether a trial was a repeat of a point still training elsewhere (pruned without a result);
    journals from before the mark say so in the reason only."""
    return bool(trial.user_attrs.get("drawn_while_training")) or trial.user_attrs.get("reason", "").endswith(
        "still training: not trained twice")


def twin_result(trial, twin, plan: Plan) -> float | tuple[int, float]:
    """The twin's result as this trial's, without training: its accuracies, its run directory."""
    import optuna
    from optuna.trial import TrialState

    for key in ("params", "macs", "model", "val_acc", "run_dir"):
        if key in twin.user_attrs:
            trial.set_user_attr(key, twin.user_attrs[key])
    trial.set_user_attr("seconds", 0.0)
    if twin.state == TrialState.PRUNED:
        why = twin.user_attrs.get("reason", "stopped early")
        trial.set_user_attr("reason", f"the same point as trial {twin.number}: {why}")
        raise optuna.TrialPruned(f"the same point as trial {twin.number}")
    trial.set_user_attr("reason", f"the same point as trial {twin.number}: its result, not trained again")
    return tuple(twin.values) if plan.objective == "pareto" else twin.value

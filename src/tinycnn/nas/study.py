"""Running a search: one Optuna study, kept in DIR/journal.log (or an RDB given by --storage),
its trials run here one at a time, in K processes sharing the study, or as Ray tasks; resumed
where it stopped by the same command.

Optuna chooses (TPE, seeded) and prunes (median of the trials before, per epoch); tinycnn only
trains what it is asked to and says what it got. Every process that runs trials samples with
a sampler of its own seed (the search's seed plus its worker number), so that two workers do
not draw the same points.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from tinycnn.errors import TinycnnError
from tinycnn.nas.trial import Plan, run_trial

STUDY = "tinycnn-search"
PLAN_FILE = "search.json"
Log = Callable[[str], None]


def storage(directory: Path, url: str | None):
    """Optuna's storage: the RDB at `url`, or the journal file in the search's directory."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if url:
        return url
    return optuna.storages.JournalStorage(JournalFileBackend(str(directory / "journal.log")))


OBJECTIVES = {"accuracy": ["maximize"], "pareto": ["minimize", "maximize"]}  # (parameters, accuracy)


def open_study(directory: Path, url: str | None, seed: int, worker: int = 0, objective: str = "accuracy"):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if objective not in OBJECTIVES:
        raise TinycnnError(f"--objective {objective!r}: choose accuracy or pareto")
    try:
        return optuna.create_study(
            study_name=STUDY, storage=storage(directory, url), directions=OBJECTIVES[objective], load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed + worker),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        )
    except Exception as exc:  # an RDB that cannot be reached, a journal that is not one
        if isinstance(exc, TinycnnError):
            raise
        raise TinycnnError(f"cannot open the study in {url or directory / 'journal.log'} ({str(exc).splitlines()[0][:200]})") from None


def finished(study) -> int:
    """Trials that count towards --trials: completed or pruned (not failed)."""
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


def check_plan(directory: Path, plan: Plan, seed: int, url: str | None) -> None:
    """The first run writes what the search is; a later one must be the same search."""
    from tinycnn.engine.rundir import write_json

    path = directory / PLAN_FILE
    mine = {"plan": asdict(plan) | {"directory": None}, "seed": seed, "storage": url}
    if not path.exists():
        write_json(path, mine)
        return
    try:
        theirs = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TinycnnError(f"{path}, line {exc.lineno}: not valid JSON; the file is damaged") from None
    flat = lambda record: {**{k: v for k, v in record.get("plan", {}).items() if k != "overrides"},
                           **record.get("plan", {}).get("overrides", {}), "seed": record.get("seed"), "storage": record.get("storage")}
    there, here = flat(theirs), flat(mine)
    differ = [k for k in sorted(set(there) | set(here)) if there.get(k) != here.get(k)]
    if differ:
        key = differ[0]
        raise TinycnnError(f"{directory} holds another search ({key} = {there.get(key)!r} there, {here.get(key)!r} now); "
                           "use another --out, or the same settings to continue it")


def run_search(directory: Path, plan: Plan, *, trials: int, workers: int = 1, backend: str = "local",
               ray_address: str | None = None, url: str | None = None, seed: int = 0, log: Log = print) -> None:
    """Run trials until `trials` of them have completed or been pruned."""
    from tinycnn.engine.rundir import claim

    if trials < 1 or workers < 1:
        raise TinycnnError("--trials and --workers must be >= 1")
    with claim(directory):  # one controller per search directory
        check_plan(directory, plan, seed, url)
        study = open_study(directory, url, seed, objective=plan.objective)
        if url is None:
            fail_stale(study, log)
        left = trials - finished(study)
        if left <= 0:
            log(f"{directory}: {finished(study)} trials already finished")
            return
        log(f"search {directory}: {left} trials to go of {trials} ({backend}, {workers} at a time)")
        started = time.perf_counter()
        try:
            if backend == "ray":
                run_on_ray(directory, plan, trials, workers, ray_address, url, seed, log)
            elif workers == 1:
                optimize(str(directory), url, plan, trials, seed, 0)
            else:
                run_in_processes(directory, plan, trials, workers, url, seed)
        finally:
            elapsed = time.perf_counter() - started
            log(f"{finished(open_study(directory, url, seed, objective=plan.objective))} trials finished; {elapsed:.0f} s in this run")


def fail_stale(study, log: Log) -> None:
    """Trials left running by a search that was killed: failed, so that they are run again.
    (Only for the search's own journal: the directory's lock says no other process runs them.)"""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        log(f"trial {trial.number} was cut short by an interruption; it counts as failed and another takes its place")


def optimize(directory: str, url: str | None, plan: Plan, trials: int, seed: int, worker: int) -> None:
    """Trials in this process until the study holds `trials` finished ones."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = open_study(Path(directory), url, seed, worker, plan.objective)
    if finished(study) >= trials:
        return
    study.optimize(lambda trial: run_trial(trial, plan), catch=(TinycnnError,),
                   callbacks=[MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED))])


def run_in_processes(directory: Path, plan: Plan, trials: int, workers: int, url: str | None, seed: int) -> None:
    """`workers` processes share the study, each with its share of the cores."""
    from tinycnn.device import TORCH_DEFAULT_THREADS

    threads = max(1, TORCH_DEFAULT_THREADS // workers)
    shared = Plan(**{**asdict(plan), "threads": plan.threads or threads})
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=optimize, args=(str(directory), url, shared, trials, seed, i)) for i in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # each worker heard it too: its trial saves and fails, the worker ends
        for process in processes:
            process.join()
        raise
    failed = [p.exitcode for p in processes if p.exitcode not in (0, None)]
    if failed:
        raise TinycnnError(f"{len(failed)} of {workers} search processes ended with an error (exit code {failed[0]}); "
                           "their output is above")


def run_on_ray(directory: Path, plan: Plan, trials: int, workers: int, address: str | None, url: str | None,
               seed: int, log: Log) -> None:
    """Trials as Ray tasks, `workers` at a time: Optuna asks here, each task trains one trial and
    reports its epochs to the same study, Optuna is told here."""
    import ray
    from optuna.trial import TrialState

    if address and not url:
        raise TinycnnError("--ray-address runs trials on other machines: give them a shared study with --storage URL (an RDB)")
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(log_to_driver=False, ignore_reinit_error=True, configure_logging=False, **kwargs)
    try:
        study = open_study(directory, url, seed, objective=plan.objective)
        task = ray.remote(num_cpus=1)(ray_trial)
        running: dict = {}
        while finished(study) + len(running) < trials or running:
            while finished(study) + len(running) < trials and len(running) < workers:
                trial = study.ask()
                running[task.remote(str(directory), url, asdict(plan), trial._trial_id, seed)] = trial
            done, _ = ray.wait(list(running), num_returns=1)
            trial = running.pop(done[0])
            state, value, message = ray.get(done[0])
            if state == "complete":
                study.tell(trial, list(value) if isinstance(value, tuple) else value)
            else:
                study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)
                if state == "failed":
                    log(f"trial {trial.number} failed: {message}")
    finally:
        if started_here:
            ray.shutdown()


def ray_trial(directory: str, url: str | None, plan: dict, trial_id: int, seed: int) -> tuple[str, object, str]:
    """One trial in a Ray worker: the study's trial (its points and reports go to the shared
    storage), trained here; ('complete', value, '') or ('pruned' | 'failed', None, why)."""
    import optuna

    study = open_study(Path(directory), url, seed, trial_id + 1, plan["objective"])
    trial = optuna.trial.Trial(study, trial_id)
    try:
        return "complete", run_trial(trial, Plan(**{**plan, "threads": plan["threads"] or 1})), ""
    except optuna.TrialPruned as exc:
        return "pruned", None, str(exc)
    except TinycnnError as exc:
        return "failed", None, str(exc)


def wall_seconds(study) -> float:
    """From the first trial's start to the last one's end."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    if not trials:
        return 0.0
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()


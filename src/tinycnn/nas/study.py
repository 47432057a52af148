"""Running a search: one Optuna study, kept in DIR/journal.log (or an RDB given by --storage),
its trials run here one at a time, in K processes sharing the study, or as Ray tasks; resumed
where it stopped by the same command.

Optuna chooses (TPE, seeded; or, for a finite space that --trials covers, its grid, every point
once) and prunes (median of the trials before, per epoch); tinycnn only trains what it is asked
to and says what it got. Every process that runs trials samples with a sampler of its own seed
(the search's seed plus its worker number), so that two workers seldom draw the same point;
a point drawn again takes the earlier result and does not count towards --trials.

A trial cut short (Ctrl-C, a killed process) is continued by the next run of the same command,
from the resume point its run saved.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from tinycnn.errors import TinycnnError
from tinycnn.nas.trial import Plan, drawn_while_training, run_trial

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


def open_study(directory: Path, url: str | None, seed: int, worker: int = 0, objective: str = "accuracy",
               sampler=None):
    """The search's study; `sampler` (see make_sampler) where this process draws points."""
    import optuna

    # errors only: a trial that fails or is interrupted is said in one line here, not in a traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if objective not in OBJECTIVES:
        raise TinycnnError(f"--objective {objective!r}: choose accuracy or pareto")
    try:
        return optuna.create_study(
            study_name=STUDY, storage=storage(directory, url), directions=OBJECTIVES[objective], load_if_exists=True,
            sampler=sampler or optuna.samplers.TPESampler(seed=seed + worker),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        )
    except Exception as exc:  # an RDB that cannot be reached, a journal that is not one
        if isinstance(exc, TinycnnError):
            raise
        raise TinycnnError(f"cannot open the study in {url or directory / 'journal.log'} ({str(exc).splitlines()[0][:200]})") from None


def make_sampler(plan: Plan, trials: int, seed: int, worker: int):
    """The space's grid where it is finite and --trials covers it (every point once, then the
    search ends); TPE otherwise."""
    import optuna

    from tinycnn.nas.space import load_space

    space = load_space(plan.space)
    if space.walked_by(trials):
        grid = optuna.samplers.GridSampler(space.grid, seed=seed)  # one seed: every process numbers the grid alike
        if worker:
            grid.reseed_rng()  # but draws from it its own way
        return grid
    return optuna.samplers.TPESampler(seed=seed + worker)


def tally(study) -> tuple[int, int, int]:
    """(finished, running, repeats): the points completed or pruned (each counts towards
    --trials), the trials training now, and the trials of a point finished before (which do
    not count)."""
    from optuna.trial import TrialState

    points, finished_trials, running = set(), 0, 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            finished_trials += 1
            if not drawn_while_training(t):  # its point's own trial counts, however it ends
                points.add(tuple(sorted(t.params.items())))
        elif t.state == TrialState.RUNNING:
            running += 1
    return len(points), running, finished_trials - len(points)


def finished(study) -> int:
    """The trials that count towards --trials: points completed or pruned (not failed, not drawn again)."""
    return tally(study)[0]


def enough(study, goal: int, trials: int) -> bool:
    """Whether no more trials should start: `goal` points finished or training, or the sampler
    has drawn points tried before as often as --trials (it has settled on them)."""
    done, running, repeats = tally(study)
    return done + running >= goal or repeats >= trials


def check_plan(directory: Path, plan: Plan, seed: int, url: str | None) -> None:
    """The first run writes what the search is; a later one must be the same search."""
    from tinycnn.engine.rundir import write_json

    path = directory / PLAN_FILE
    mine = {"plan": portable(asdict(plan) | {"directory": None}, directory), "seed": seed, "storage": url}
    if not path.exists():
        write_json(path, mine)
        return
    try:
        theirs = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TinycnnError(f"{path}, line {exc.lineno}: not valid JSON; the file is damaged") from None
    theirs["plan"] = portable(theirs.get("plan", {}), directory)
    flat = lambda record: {**{k: v for k, v in record.get("plan", {}).items() if k != "overrides"},
                           **record.get("plan", {}).get("overrides", {}), "seed": record.get("seed"), "storage": record.get("storage")}
    there, here = flat(theirs), flat(mine)
    differ = [k for k in sorted(set(there) | set(here)) if there.get(k) != here.get(k)]
    if differ:
        key = differ[0]
        raise TinycnnError(f"{directory} holds another search ({key} = {there.get(key)!r} there, {here.get(key)!r} now); "
                           "use another --out, or the same settings to continue it")


def portable(plan: dict, directory: Path) -> dict:
    """The plan with its files (a recipe, spec or space .toml) relative to the search's
    directory, so that a search moved with its files (a clone elsewhere) is the same search."""

    def relative(value):
        if isinstance(value, str) and value.endswith(".toml") and os.path.isabs(value):
            return os.path.relpath(value, directory.resolve())
        return value

    return {k: relative(v) if k in ("recipe", "spec", "space") else v for k, v in plan.items()}


def run_search(directory: Path, plan: Plan, *, trials: int, workers: int = 1, backend: str = "local",
               ray_address: str | None = None, url: str | None = None, seed: int = 0, log: Log = print) -> None:
    """Run trials until `trials` of them have completed or been pruned."""
    from tinycnn.engine.rundir import claim
    from tinycnn.nas.space import load_space

    if trials < 1 or workers < 1:
        raise TinycnnError("--trials and --workers must be >= 1")
    with claim(directory), sigterm_as_ctrl_c():  # one controller per search directory; `kill` stops it cleanly
        check_plan(directory, plan, seed, url)
        study = open_study(directory, url, seed, objective=plan.objective)
        if url is None:
            continue_interrupted(study, log)
        space = load_space(plan.space)
        goal = min(trials, space.size) if space.size is not None else trials
        left = goal - finished(study)
        if left <= 0:
            log(f"{directory}: {finished(study)} trials already finished")
            return
        grid = f", each point of the space's {space.size} once" if space.walked_by(trials) else ""
        log(f"search {directory}: {left} trials to go of {goal} ({backend}, {workers} at a time{grid})")
        started = time.perf_counter()
        try:
            if backend == "ray":
                run_on_ray(directory, plan, trials, goal, workers, ray_address, url, seed, log)
            elif workers == 1:
                optimize(str(directory), url, plan, trials, goal, seed, 0)
            else:
                run_in_processes(directory, plan, trials, goal, workers, url, seed)
        except KeyboardInterrupt:
            log("interrupted: the same command continues the search, and the trials cut short from their resume points")
            raise
        finally:
            elapsed = time.perf_counter() - started
            done, _, repeats = tally(open_study(directory, url, seed, objective=plan.objective))  # as the workers left it
            log(f"{done} trials finished; {elapsed:.0f} s in this run")
        if done < goal and repeats >= trials:
            log(f"the sampler drew points already tried {repeats} times, so the search stopped at {done} points; "
                "widen the space to go on")


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """SIGTERM (`kill PID`) does what Ctrl-C does: whatever handles Ctrl-C now (a trial's
    trainer saving its resume point, or KeyboardInterrupt) handles it, even where Ctrl-C itself
    is ignored, as in a job started in the background of a script."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        ctrl_c = signal.getsignal(signal.SIGINT)
        if callable(ctrl_c):
            ctrl_c(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def continue_interrupted(study, log: Log) -> None:
    """Trials cut short (left running by a killed search, or failed by a Ctrl-C): each is
    enqueued again, to resume from its run's resume point, unless a trial already continues it.
    (Only for the search's own journal: the directory's lock says no other process runs them.)"""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    continued = {t.user_attrs.get("continues") for t in trials}
    for trial in trials:
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
        elif trial.state != TrialState.FAIL or trial.user_attrs.get("error"):
            continue
        if trial.number in continued or not trial.params:  # not drawn yet: nothing to continue
            continue
        study.enqueue_trial(trial.params, user_attrs={"continues": trial.number})
        log(f"trial {trial.number} was cut short by an interruption; a new trial continues it")


def optimize(directory: str, url: str | None, plan: Plan, trials: int, goal: int, seed: int, worker: int) -> None:
    """Trials in this process until the study holds `goal` finished ones (or enough() says stop)."""
    study = open_study(Path(directory), url, seed, worker, plan.objective, make_sampler(plan, trials, seed, worker))
    if enough(study, goal, trials):
        return

    def stop_when_enough(study, trial) -> None:
        if enough(study, goal, trials):
            study.stop()

    def objective(trial):
        try:
            return run_trial(trial, plan)
        except TinycnnError as exc:
            print(f"trial {trial.number} failed: {exc}", file=sys.stderr, flush=True)
            raise

    study.optimize(objective, catch=(TinycnnError,), callbacks=[stop_when_enough])


def optimize_in_child(directory: str, url: str | None, plan: Plan, trials: int, goal: int, seed: int, worker: int,
                      parent: int) -> None:
    """A worker process: Ctrl-C reaches it from the parent only, once, and the kernel sends it
    one when the parent is killed; its trial then saves its resume point and the worker ends."""
    from tinycnn.seeds.parallel import INTERRUPTED, detach_from_parent_group

    detach_from_parent_group(parent)
    try:
        optimize(directory, url, plan, trials, goal, seed, worker)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)


def run_in_processes(directory: Path, plan: Plan, trials: int, goal: int, workers: int, url: str | None,
                     seed: int) -> None:
    """`workers` processes share the study, each with its share of the cores."""
    from tinycnn.device import TORCH_DEFAULT_THREADS
    from tinycnn.seeds.parallel import INTERRUPTED

    threads = max(1, TORCH_DEFAULT_THREADS // workers)
    shared = Plan(**{**asdict(plan), "threads": plan.threads or threads})
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=optimize_in_child, args=(str(directory), url, shared, trials, goal, seed, i, os.getpid()))
                 for i in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # one Ctrl-C to each worker: its trial saves its resume point, the worker ends
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGINT)
        for process in processes:
            process.join()
        raise
    if any(p.exitcode == INTERRUPTED for p in processes):
        raise KeyboardInterrupt  # a worker was sent a Ctrl-C of its own
    failed = [p.exitcode for p in processes if p.exitcode not in (0, None)]
    if failed:
        raise TinycnnError(f"{len(failed)} of {workers} search processes ended with an error (exit code {failed[0]}); "
                           "their output is above")


def run_on_ray(directory: Path, plan: Plan, trials: int, goal: int, workers: int, address: str | None,
               url: str | None, seed: int, log: Log) -> None:
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
        study = open_study(directory, url, seed, objective=plan.objective, sampler=make_sampler(plan, trials, seed, 0))
        task = ray.remote(num_cpus=1)(ray_trial)
        running: dict = {}
        while True:
            while len(running) < workers and not enough(study, goal, trials):
                trial = study.ask()
                running[task.remote(str(directory), url, asdict(plan), trials, trial._trial_id, seed)] = trial
            if not running:
                break
            done, _ = ray.wait(list(running), num_returns=1)
            trial = running.pop(done[0])
            state, value, message = ray.get(done[0])
            try:
                if state == "complete":
                    study.tell(trial, list(value) if isinstance(value, tuple) else value)
                else:
                    study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)
            except RuntimeError:  # the grid's last point: its sampler calls study.stop(), which ask-and-tell refuses
                pass  # (optuna#5141); the trial is recorded already, and enough() ends the loop
            if state == "failed":
                log(f"trial {trial.number} failed: {message}")
    finally:
        if started_here:
            ray.shutdown()


def ray_trial(directory: str, url: str | None, plan: dict, trials: int, trial_id: int,
              seed: int) -> tuple[str, object, str]:
    """One trial in a Ray worker: the study's trial (its points and reports go to the shared
    storage), trained here; ('complete', value, '') or ('pruned' | 'failed', None, why)."""
    import optuna

    study = open_study(Path(directory), url, seed, trial_id + 1, plan["objective"],
                       make_sampler(Plan(**plan), trials, seed, trial_id + 1))
    trial = optuna.trial.Trial(study, trial_id)
    try:
        return "complete", run_trial(trial, Plan(**{**plan, "threads": plan["threads"] or 1})), ""
    except optuna.TrialPruned as exc:
        return "pruned", None, str(exc)
    except TinycnnError as exc:
        return "failed", None, str(exc)


def wall_seconds(study) -> float:
    """How long trials were running: the union of their times, so that the pauses between the
    runs of an interrupted search are left out."""
    spans = sorted((t.datetime_start, t.datetime_complete) for t in study.get_trials(deepcopy=False)
                   if t.datetime_start and t.datetime_complete)
    total, end = 0.0, None
    for start, stop in spans:
        if end is not None and start < end:
            start = end
        if stop > start:
            total += (stop - start).total_seconds()
        end = stop if end is None else max(end, stop)
    return total

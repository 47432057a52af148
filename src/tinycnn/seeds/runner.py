"""Several seeds of one configuration in one run directory, ROOT/seed-<s>/: one after
another, stacked in one network (seeds/stacked_trainer.py, a GPU's default) or side by side
in processes of their own (seeds/parallel.py, on the CPU). seeds.json records which, so that
a resume trains them the same way; summary.json holds the statistics over the seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tinycnn.config import TrainConfig, config_from_dict
from tinycnn.device import TORCH_DEFAULT_THREADS, select_device
from tinycnn.engine.rundir import (
    SEEDS_FILE,
    SUMMARY_FILE,
    claim,
    read_run,
    read_seeds,
    write_config,
    write_json,
)
from tinycnn.errors import TinycnnError
from tinycnn.seeds.stats import render_summary, summarize_seeds

Log = Callable[[str], None]
# A network given from Python: a class, a function returning one, or an instance; None:
# the configuration's (a zoo name or a file).
ModelSource = Any


def start_seeds(config: TrainConfig, seeds: list[int], run_dir: Path, *, stack: bool | None = None,
                parallel: bool = False, model: ModelSource = None, log: Log = print) -> dict:
    """Decide how the seeds train and record it (seeds.json, config.toml, and where a network
    of the user's came from); returns the record."""
    from tinycnn.engine import provenance

    if parallel:
        processes, threads = choose_processes(config, seeds, stack)
        record = seeds_record(seeds, False, processes, threads)
    else:
        record = seeds_record(seeds, choose_stacking(config, seeds, stack, log, model), 1, config.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    origin = provenance.record(run_dir, config.model, model)
    if origin is not None:
        record["model_source"] = origin
    write_json(run_dir / SEEDS_FILE, record)
    write_config(run_dir, config)
    return record


def seeds_record(seeds: list[int], stacked: bool, processes: int, threads: int) -> dict:
    """What seeds.json holds: how the seeds train, so that a resume trains them the same way.
    The thread count of seeds in processes of their own is saved here (it changes float
    rounding); the keys are written only then, so other runs' files stay as they were."""
    return {"seeds": seeds, "stacked": stacked} | ({"processes": processes, "threads": threads} if processes > 1 else {})


def choose_processes(config: TrainConfig, seeds: list[int] | None, stack: bool | None) -> tuple[int, int]:
    """--parallel: how many seeds train at once, each in a process of its own, and each one's
    thread count (parallel.plan_processes)."""
    from tinycnn.seeds.parallel import plan_processes

    check_parallel(config, seeds, stack)
    return plan_processes(len(seeds), config.threads, TORCH_DEFAULT_THREADS)


def check_parallel(config: TrainConfig, seeds: list[int] | None, stack: bool | None) -> None:
    """One line for what --parallel cannot do."""
    if seeds is None or len(seeds) < 2:
        raise TinycnnError("--parallel trains several seeds side by side: give them with --seeds, e.g. --seeds 0,1 --parallel")
    if stack:
        raise TinycnnError("--parallel and --stack are two ways to train seeds together: choose one")
    check_cpu_for_parallel(config)


def check_cpu_for_parallel(config: TrainConfig) -> None:
    if config.model.startswith("<python>:"):
        raise TinycnnError("--parallel trains each seed in a process of its own, which must import the network: "
                           "give it as a zoo name or as path/to/file.py:Name")
    if select_device(config.device).type != "cpu":
        raise TinycnnError("--parallel is for the CPU; on a GPU the seeds train stacked in one network (the default there)")


def choose_stacking(config: TrainConfig, seeds: list[int], stack: bool | None, log: Log = print,
                    model: ModelSource = None) -> bool:
    """--stack / --no-stack as given; by default, stacked on a GPU (where a step of these
    networks is bound by kernel launches, which stacking divides by the number of seeds) and
    one after another on the CPU (where stacking is slower: docs/performance.md)."""
    from tinycnn.models.build import build_model
    from tinycnn.seeds.stacked import why_not_stackable

    if stack is False or (stack is None and (len(seeds) < 2 or select_device(config.device).type != "cuda")):
        return False
    network = build_model(config) if model is None else seed_factory(model)()
    reason = why_not_stackable(network)  # only where stacking would happen
    if stack:
        if reason:
            raise TinycnnError(f"--stack: {reason}; train the seeds one after another (without --stack)")
        return True
    if reason:
        log(f"seeds run one after another: {reason}")
        return False
    return True


def run_seeds(config: TrainConfig, run_dir: Path, *, progress: bool | None = None, last_k: int | None = None,
              log: Log = print, model: ModelSource = None, resume_hint: str | None = None) -> dict:
    """Train the unfinished seeds of a multi-seed run as its seeds.json says, then write and
    print summary.json; returns the summary. `model`: a network given from Python (a class,
    a factory, or an instance copied and re-initialised for each seed)."""
    with claim(run_dir):
        return _run_seeds(config, run_dir, progress, last_k, log, model, resume_hint)


def _run_seeds(config: TrainConfig, run_dir: Path, progress, last_k, log: Log, model, resume_hint) -> dict:
    record = read_seeds(run_dir)
    seeds = record["seeds"]
    dirs = [run_dir / f"seed-{seed}" for seed in seeds]
    factory = seed_factory(model)
    hint = resume_hint or f"tinycnn train --resume {run_dir}"
    try:
        if record.get("stacked", False):
            _run_stacked(config, seeds, run_dir, progress, log, factory, hint)
        elif record.get("processes", 1) > 1:
            from tinycnn.seeds.parallel import run_in_processes

            jobs = seed_jobs(config, seeds, run_dir, record.get("threads", config.threads), log=log)
            run_in_processes(jobs, record["processes"], hint)
        else:
            for seed, seed_dir in zip(seeds, dirs):
                _run_one_seed(config, seed, seed_dir, progress, log, factory, hint)
    except KeyboardInterrupt:
        log(f"to continue all seeds: {hint}")
        raise
    return write_summary(config, dirs, run_dir, last_k, log)


def resume_seeds(run_dir: Path, *, progress: bool | None = None, last_k: int | None = None, log: Log = print,
                 model: str | None = None) -> dict:
    """Continue a multi-seed run; `model` names the file of a network of the user's where
    the recorded one has changed."""
    from tinycnn.engine.provenance import config_to_rebuild

    return run_seeds(config_to_rebuild(run_dir, model), run_dir, progress=progress, last_k=last_k, log=log)


def seed_factory(model: ModelSource):
    """What each seed's trainer builds its network from: None (the configuration's network),
    the class or factory as given, or fresh re-initialised copies of an instance."""
    import torch

    from tinycnn.models import source

    return source.reinitialising(model) if isinstance(model, torch.nn.Module) else model


def seed_jobs(config: TrainConfig, seeds: list[int], run_dir: Path, threads: int, label: str = "", log: Log = print) -> list:
    """The unfinished seeds of a run as jobs for processes of their own, `threads` each."""
    from tinycnn.seeds.parallel import SeedJob

    return [SeedJob(f"{label}seed {seed}", {**config.to_dict(), "seed": seed, "threads": threads}, run_dir / f"seed-{seed}")
            for seed in seeds if not seed_finished(seed, run_dir / f"seed-{seed}", log)]


def write_summary(config: TrainConfig, dirs: list[Path], run_dir: Path, last_k: int | None, log: Log = print) -> dict:
    """summary.json of a multi-seed run, and its table printed."""
    summary = summarize_seeds(dirs, config.spec, last_k)
    summary["recipe"] = config.name
    write_json(run_dir / SUMMARY_FILE, summary)
    log("")
    log(render_summary(summary))
    log(f"run directory: {run_dir} ({SUMMARY_FILE})")
    return summary


def seed_finished(seed: int, seed_dir: Path, log: Log = print) -> bool:
    """Whether a seed of a multi-seed run has finished (it is then said, and skipped)."""
    if (seed_dir / "run.json").exists() and read_run(seed_dir).get("status") == "finished":
        log(f"seed {seed}: already finished in {seed_dir}")
        return True
    return False


def _run_one_seed(config: TrainConfig, seed: int, seed_dir: Path, progress, log: Log, factory, hint: str) -> None:
    from tinycnn.engine.trainer import Trainer

    seeded = config_from_dict({**config.to_dict(), "seed": seed})
    if seed_finished(seed, seed_dir, log):
        return
    log(f"\n=== seed {seed} -> {seed_dir}")
    Trainer(seeded, seed_dir, model=factory, progress=progress, log=log, resume_hint=hint).fit(resume=(seed_dir / "last.pt").exists())


def _run_stacked(config: TrainConfig, seeds: list[int], run_dir: Path, progress, log: Log, factory, hint: str) -> None:
    from tinycnn.seeds.stacked_trainer import STACKED_CHECKPOINT, StackedTrainer

    log(f"\n=== seeds {', '.join(map(str, seeds))} stacked in one network -> {run_dir}/seed-*")
    StackedTrainer(config, seeds, run_dir, model=factory, progress=progress, log=log, resume_hint=hint).fit(
        resume=(run_dir / STACKED_CHECKPOINT).exists())

"""What `tinycnn train` does around the loop: resolve the recipe, run one or several seeds,
resume, and print the end-of-run verdict (parameters, last epochs, budget check)."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.auto_settings import resolve_auto
from tinycnn.check import check_run, load_spec, render
from tinycnn.config import TrainConfig, config_from_dict, to_toml
from tinycnn.errors import TinycnnError
from tinycnn.models import model_info
from tinycnn.recipes import load_recipe
from tinycnn.stats import render_summary, summarize_seeds
from tinycnn.train import Trainer, default_run_dir, read_config, read_run

OVERRIDABLE = {f.name for f in fields(TrainConfig)} - {"name", "description", "source"}
SEEDS_FILE = "seeds.json"


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0..4' (inclusive) or a mix: '0..2,7'."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*(?:\.\.|-)\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise TinycnnError(f"--seeds range {part!r} runs backwards")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise TinycnnError(f"--seeds {text!r}: expected numbers like 0,1,2 or a range like 0..4")
    if len(set(seeds)) != len(seeds):
        raise TinycnnError(f"--seeds {text!r} names a seed twice")
    return seeds


def print_config(config: TrainConfig) -> None:
    items = [f"{k}={v}" for k, v in config.to_dict().items() if k not in ("description", "source") and v is not None]
    print(f"recipe {config.name}: {config.description}" if config.description else f"recipe {config.name}")
    line = "config:"
    for item in items:
        if len(line) + len(item) > 100:
            print(line)
            line = "       "
        line += " " + item
    print(line)


def verdict(run_dir: Path, config: TrainConfig, last_k: int | None = None) -> bool:
    """Print parameters, the last K test accuracies and the budget check; True if it passes."""
    spec = load_spec(config.spec)
    k = last_k or spec.get("last_k", 1)
    criteria, facts, metrics = check_run(run_dir, spec, k)
    test = [m["test_acc"] for m in metrics]
    print(f"\n{config.model}: {facts['params']:,} parameters; test accuracy of the last {k} epochs: " + ", ".join(f"{a:.2f}%" for a in test[-k:]))
    print(render(criteria, f"budget {spec['name']} ({spec.get('description', '')}):"))
    print(f"run directory: {run_dir}")
    return all(c.passed for c in criteria)


def train_recipe(recipe: str, overrides: dict, *, seeds=None, out=None, progress=None, last_k=None, stack=None,
                 parallel=False) -> int:
    config = load_recipe(recipe, **overrides)
    model_info(config.model)  # an unknown model fails here, before anything is printed or written
    if stack and seeds is None:
        raise TinycnnError("--stack trains several seeds as one network: give them with --seeds, e.g. --seeds 0..7 --stack")
    run_dir = Path(out) if out else default_run_dir(config)
    if (run_dir / "config.toml").exists() or (run_dir / SEEDS_FILE).exists():
        raise TinycnnError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
    decisions: list[str] = []
    config = resolve_auto(config, log=decisions.append)  # before anything is saved: a resume keeps the decision
    processes, threads = 1, config.threads
    if parallel:
        processes, threads = choose_processes(config, seeds, stack)
        stack = False
    elif seeds is not None:
        stack = choose_stacking(config, seeds, stack)
    print_config(config)
    for line in decisions:
        print(line)
    if seeds is None:
        Trainer(config, run_dir, progress=progress).fit()
        verdict(run_dir, config, last_k)
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SEEDS_FILE, json.dumps(seeds_record(seeds, stack, processes, threads)) + "\n")
    atomic_write_text(run_dir / "config.toml", to_toml(config.to_dict()))
    return _run_seeds(config, seeds, run_dir, progress, last_k, stack, processes, threads)


def seeds_record(seeds: list[int], stacked: bool, processes: int, threads: int) -> dict:
    """What seeds.json holds: how the seeds train, so that a resume trains them the same way.
    The thread count of seeds in processes of their own is saved here (it changes float
    rounding); the keys are written only then, so other runs' files stay as they were."""
    return {"seeds": seeds, "stacked": stacked} | ({"processes": processes, "threads": threads} if processes > 1 else {})


def choose_processes(config: TrainConfig, seeds: list[int] | None, stack: bool | None) -> tuple[int, int]:
    """--parallel: how many seeds train at once, each in a process of its own, and each one's
    thread count (parallel_seeds.plan_processes)."""
    from tinycnn.parallel_seeds import plan_processes
    from tinycnn.train import TORCH_DEFAULT_THREADS

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
    from tinycnn.train import select_device

    if select_device(config.device).type != "cpu":
        raise TinycnnError("--parallel is for the CPU; on a GPU the seeds train stacked in one network (the default there)")


def choose_stacking(config: TrainConfig, seeds: list[int], stack: bool | None) -> bool:
    """--stack / --no-stack as given; by default, stacked on a GPU (where a step of these
    networks is bound by kernel launches, which stacking divides by the number of seeds) and
    one after another on the CPU (where stacking was measured slower: docs/benchmarks.md)."""
    from tinycnn.multiseed import why_not_stackable
    from tinycnn.train import build_model, select_device

    if stack is False or (stack is None and (len(seeds) < 2 or select_device(config.device).type != "cuda")):
        return False
    reason = why_not_stackable(build_model(config))  # only where stacking would happen
    if stack:
        if reason:
            raise TinycnnError(f"--stack: {reason}; train the seeds one after another (without --stack)")
        return True
    if reason:
        print(f"seeds run one after another: {reason}")
        return False
    return True


def _run_seeds(config: TrainConfig, seeds: list[int], run_dir: Path, progress, last_k, stacked: bool = False,
               processes: int = 1, threads: int = 0) -> int:
    dirs = [run_dir / f"seed-{seed}" for seed in seeds]
    if stacked:
        _run_stacked(config, seeds, run_dir, progress)
    else:
        try:
            if processes > 1:
                from tinycnn.parallel_seeds import run_in_processes

                run_in_processes(seed_jobs(config, seeds, run_dir, threads), processes, f"tinycnn train --resume {run_dir}")
            else:
                for seed, seed_dir in zip(seeds, dirs):
                    _run_one_seed(config, seed, seed_dir, progress)
        except KeyboardInterrupt:
            print(f"to continue all seeds: tinycnn train --resume {run_dir}")
            raise
    return write_summary(config, dirs, run_dir, last_k)


def seed_jobs(config: TrainConfig, seeds: list[int], run_dir: Path, threads: int, label: str = "") -> list:
    """The unfinished seeds of a run as jobs for processes of their own, `threads` each."""
    from tinycnn.parallel_seeds import SeedJob

    return [SeedJob(f"{label}seed {seed}", {**config.to_dict(), "seed": seed, "threads": threads}, run_dir / f"seed-{seed}")
            for seed in seeds if not seed_finished(seed, run_dir / f"seed-{seed}")]


def write_summary(config: TrainConfig, dirs: list[Path], run_dir: Path, last_k) -> int:
    """summary.json of a multi-seed run, and its table printed."""
    summary = summarize_seeds(dirs, config.spec, last_k)
    summary["recipe"] = config.name
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print()
    print(render_summary(summary))
    print(f"run directory: {run_dir} (summary.json)")
    return 0


def seed_finished(seed: int, seed_dir: Path) -> bool:
    """Whether a seed of a multi-seed run has finished (it is then said, and skipped)."""
    if (seed_dir / "run.json").exists() and read_run(seed_dir).get("status") == "finished":
        print(f"seed {seed}: already finished in {seed_dir}")
        return True
    return False


def _run_one_seed(config: TrainConfig, seed: int, seed_dir: Path, progress) -> None:
    seeded = config_from_dict({**config.to_dict(), "seed": seed})
    if seed_finished(seed, seed_dir):
        return
    print(f"\n=== seed {seed} -> {seed_dir}")
    Trainer(seeded, seed_dir, progress=progress).fit(resume=(seed_dir / "last.pt").exists())


def _run_stacked(config: TrainConfig, seeds: list[int], run_dir: Path, progress) -> None:
    from tinycnn.stacked_trainer import STACKED_CHECKPOINT, StackedTrainer

    print(f"\n=== seeds {', '.join(map(str, seeds))} stacked in one network -> {run_dir}/seed-*")
    StackedTrainer(config, seeds, run_dir, progress=progress).fit(resume=(run_dir / STACKED_CHECKPOINT).exists())


def resume(run_dir: Path, *, progress=None, last_k=None) -> int:
    config = read_config(run_dir)
    if (run_dir / SEEDS_FILE).exists():
        saved = json.loads((run_dir / SEEDS_FILE).read_text())
        return _run_seeds(config, saved["seeds"], run_dir, progress, last_k, saved.get("stacked", False),
                          saved.get("processes", 1), saved.get("threads", config.threads))
    if not (run_dir / "last.pt").exists():
        raise TinycnnError(f"{run_dir} has no last.pt to resume from; start it again with tinycnn train --out {run_dir}-2")
    print(f"resuming {run_dir}")
    Trainer(config, run_dir, progress=progress).fit(resume=True)
    verdict(run_dir, config, last_k)
    return 0

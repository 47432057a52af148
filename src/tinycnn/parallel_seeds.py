"""The seeds of one run trained side by side, each in a process of its own, on the CPU
(`tinycnn train --seeds 0,1 --parallel`).

A step of these networks is a few hundred operators of about a millisecond, and with torch's
2 threads each operator ends by waiting for both: two one-thread `tinycnn train` processes
trained 1.50x and 1.69x the images per second of one two-thread process on a 2-core CPU
(docs/benchmarks.md, "Seeds in parallel processes"). Each seed's run is the run `tinycnn
train --seed S --threads T` makes, value for value, with T the run's saved thread count.

The processes are spawned (fresh interpreters, no forked torch state) and each starts a
process group of its own, so that a Ctrl-C reaches the parent only, which passes exactly one
on to every running seed: each then saves its resume point, as a single run does.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from multiprocessing.connection import wait
from pathlib import Path

from tinycnn.config import TrainConfig, config_from_dict
from tinycnn.errors import TinycnnError

INTERRUPTED = 130  # a child's exit code after Ctrl-C (its resume point saved)
FAILED = 2  # a child's exit code after a TinycnnError (its message sent to the parent)


def process_count(seeds: int, threads: int, cores: int) -> int:
    """How many seeds run at once: as many as the cores hold at `threads` each (1 when no
    thread count was given), never more than there are seeds."""
    return max(1, min(seeds, cores // max(threads, 1)))


def _train_seed(config: dict, seed_dir: str, resume: bool, errors) -> None:
    """A child: one seed's Trainer, its lines prefixed with the seed."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # Ctrl-C at the terminal reaches the parent, which passes it on once
    prefix = f"seed {config['seed']}: "

    def log(message: str) -> None:
        print("\n".join(prefix + line if line else line for line in message.split("\n")), flush=True)

    try:
        from tinycnn.train import Trainer

        Trainer(config_from_dict(config), seed_dir, progress=False, log=log).fit(resume=resume)
    except TinycnnError as exc:
        errors.put((config["seed"], str(exc)))
        sys.exit(FAILED)
    except KeyboardInterrupt:  # also one that came before the Trainer caught Ctrl-C itself
        sys.exit(INTERRUPTED)


def run_seeds_in_processes(config: TrainConfig, seeds: list[int], dirs: list[Path], run_dir: Path, processes: int) -> None:
    """Train the unfinished seeds, at most `processes` at a time. Raises TinycnnError with the
    first seed's error (the other running seeds save their resume points first), and
    KeyboardInterrupt after a Ctrl-C, once every running seed has saved its resume point."""
    from tinycnn.data import fetch
    from tinycnn.session import seed_finished

    fetch(config.dataset)  # once, here: the children then read the verified cache
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    todo = [(seed, seed_dir) for seed, seed_dir in zip(seeds, dirs) if not seed_finished(seed, seed_dir)]
    running: dict = {}  # sentinel -> (seed, process)
    stopped: set[int] = set()  # pids sent their Ctrl-C: a second one would abort without saving
    failure, interrupted = None, False

    def stop_running() -> None:
        for _, process in running.values():
            if process.pid not in stopped:
                stopped.add(process.pid)
                os.kill(process.pid, signal.SIGINT)

    try:
        while todo or running:
            while todo and len(running) < processes and failure is None and not interrupted:
                seed, seed_dir = todo.pop(0)
                seeded = {**config.to_dict(), "seed": seed}
                process = ctx.Process(target=_train_seed, args=(seeded, str(seed_dir), (seed_dir / "last.pt").exists(), errors))
                process.start()
                print(f"=== seed {seed} -> {seed_dir} (process {process.pid})", flush=True)
                running[process.sentinel] = (seed, process)
            if not running:
                break
            for sentinel in wait(list(running)):
                seed, process = running.pop(sentinel)
                process.join()
                if process.exitcode == 0:
                    continue
                if process.exitcode == INTERRUPTED:
                    interrupted = True
                elif failure is None:
                    failure = (seed, process.exitcode)
                stop_running()  # the others save their resume points and stop
    except KeyboardInterrupt:
        interrupted = True
        stop_running()
        for _, process in running.values():
            process.join()
    if failure is not None:
        seed, code = failure
        if not errors.empty():
            seed, message = errors.get()
        else:
            message = f"its process ended with exit code {code} (its output is above)"
        others = f" (seeds stopped with it saved resume points: tinycnn train --resume {run_dir})" if stopped else ""
        raise TinycnnError(f"seed {seed}: {message}{others}")
    if interrupted:
        raise KeyboardInterrupt  # the caller says how to resume

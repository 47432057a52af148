"""Seeds trained side by side on the CPU, each in a process of its own (`tinycnn train --seeds
0,1 --parallel`, and the steps of `tinycnn experiment --parallel`).

A step of these networks is a few hundred operators of about a millisecond, and with several
threads each operator ends by waiting for all of them: processes of one thread each keep
every core busy (docs/performance.md, "CPU"). Each seed's run is the run `tinycnn train
--seed S --threads T` makes, value for value, with T the thread count saved with the run
(seeds.json).

The processes are spawned (fresh interpreters, no forked torch state) and each starts a
process group of its own, so that a Ctrl-C reaches the parent only, which passes exactly one
on to every running seed: each then saves its resume point, as a single run does. On Linux a
seed whose parent is killed outright gets that Ctrl-C from the kernel instead.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from tinycnn.config import config_from_dict
from tinycnn.errors import TinycnnError

INTERRUPTED = 130  # a child's exit code after Ctrl-C (its resume point saved)
FAILED = 2  # a child's exit code after a TinycnnError (its message sent to the parent)


@dataclass(frozen=True)
class SeedJob:
    label: str  # put before each line the seed prints, e.g. "seed 1" or "step3 seed 1"
    config: dict  # the seed's whole config: its seed and thread count set
    seed_dir: Path


def plan_processes(seeds: int, threads: int, cores: int) -> tuple[int, int]:
    """(processes, threads): how many seeds train at once, and each one's threads.

    Without a thread count the cores are shared out, one thread each when there are at least
    as many seeds as cores. As many processes as the cores hold, except that seeds which do not
    divide evenly join the others from the start instead of training alone at the end, which
    finishes sooner (docs/performance.md, "CPU")."""
    threads = threads or max(1, cores // max(1, min(seeds, cores)))
    slots = max(1, cores // threads)
    rounds = max(1, seeds // slots)
    return max(1, math.ceil(seeds / rounds)), threads


def detach_from_parent_group(parent: int) -> None:
    """In a child: a process group of its own, so that Ctrl-C at the terminal reaches the parent
    only, which passes it on once; and, on Linux, the Ctrl-C the parent can no longer pass on
    when it is killed (SIGTERM, SIGKILL, out of memory), so the child saves its resume point and
    ends instead of training on unseen, holding its directory."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    heard = []

    def once(signum, frame):  # the kernel signals again as each of the parent's threads ends
        if not heard:
            heard.append(signum)
            os.kill(os.getpid(), signal.SIGINT)

    signal.signal(signal.SIGUSR1, once)
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGUSR1)
    if os.getppid() != parent:  # it died before the call above
        os.kill(os.getpid(), signal.SIGUSR1)


def _train_seed(label: str, config: dict, seed_dir: str, resume: bool, errors, parent: int) -> None:
    """A child: one seed's Trainer, its lines prefixed with the job's label."""
    detach_from_parent_group(parent)
    prefix = f"{label}: "

    def log(message: str) -> None:
        print("\n".join(prefix + line if line else line for line in message.split("\n")), flush=True)

    try:
        from tinycnn.engine.trainer import Trainer

        Trainer(config_from_dict(config), seed_dir, progress=False, log=log).fit(resume=resume)
    except TinycnnError as exc:
        errors.put((label, str(exc)))
        sys.exit(FAILED)
    except KeyboardInterrupt:  # also one that came before the Trainer caught Ctrl-C itself
        sys.exit(INTERRUPTED)


def run_in_processes(jobs: list[SeedJob], processes: int, resume_hint: str) -> None:
    """Train the jobs in order, at most `processes` at a time, each resuming from its last.pt
    where it has one. Raises TinycnnError with the first job's error (the other running jobs
    save their resume points first; `resume_hint` says how to continue them), and
    KeyboardInterrupt after a Ctrl-C, once every running job has saved its resume point."""
    from tinycnn.data.datasets import fetch

    for dataset in dict.fromkeys(job.config["dataset"] for job in jobs):
        fetch(dataset)  # once, here: the children then read the verified cache
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    todo = list(jobs)
    running: dict = {}  # sentinel -> (job, process)
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
                job = todo.pop(0)
                resume = (job.seed_dir / "last.pt").exists()
                process = ctx.Process(target=_train_seed, args=(job.label, job.config, str(job.seed_dir), resume, errors,
                                                                  os.getpid()))
                process.start()
                print(f"=== {job.label} -> {job.seed_dir} (process {process.pid}, {job.config['threads']} thread"
                      f"{'s' if job.config['threads'] != 1 else ''})", flush=True)
                running[process.sentinel] = (job, process)
            if not running:
                break
            for sentinel in wait(list(running)):
                job, process = running.pop(sentinel)
                process.join()
                if process.exitcode == 0:
                    continue
                if process.exitcode == INTERRUPTED:
                    interrupted = True
                elif failure is None:
                    failure = (job.label, process.exitcode)
                stop_running()  # the others save their resume points and stop
    except KeyboardInterrupt:
        interrupted = True
        stop_running()
        for _, process in running.values():
            process.join()
    if failure is not None:
        label, code = failure
        if not errors.empty():
            label, message = errors.get()
        else:
            message = f"its process ended with exit code {code} (its output is above)"
        others = f" (the seeds stopped with it saved resume points: {resume_hint})" if stopped else ""
        raise TinycnnError(f"{label}: {message}{others}")
    if interrupted:
        raise KeyboardInterrupt  # the caller says how to resume

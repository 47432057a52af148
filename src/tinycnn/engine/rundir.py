"""A run directory's files, read and written; reading imports no torch, so that check,
report, compare and reproduce read runs without loading the trainer.

    config.toml    the resolved TrainConfig
    metrics.jsonl  one JSON object per finished epoch
    run.json       versions, device, seed, model facts, timings, status
    last.pt        the resume point (engine/checkpoint.py)
    best.pt        with a validation split: the weights chosen on it
    seeds.json     a multi-seed run: its seeds and how they train; each seed in seed-<s>/
    summary.json   a multi-seed run: the statistics over its seeds
    .lock          held by the process writing the run (claim), released however it ends

Every file is written atomically (a temporary sibling, fsync, rename), so a reader sees the
old file or the new one; last.pt carries the epochs' metrics rows too, so that a resume
rewrites metrics.jsonl from it whatever instant a run was killed at.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tinycnn.atomic import atomic_write_text
from tinycnn.config import TrainConfig, config_from_dict, read_toml, to_toml
from tinycnn.errors import TinycnnError

SEEDS_FILE = "seeds.json"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
_claimed: set[Path] = set()  # the run directories this process holds


@dataclass
class RunPaths:
    root: Path

    config = property(lambda self: self.root / "config.toml")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    run = property(lambda self: self.root / "run.json")
    last = property(lambda self: self.root / "last.pt")
    best = property(lambda self: self.root / "best.pt")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """metrics.jsonl's rows; one line naming the file and line where one is damaged."""
    path = RunPaths(Path(run_dir)).metrics
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or "epoch" not in row:
            raise TinycnnError(f"{path}, line {number}: not an epoch's metrics (the file is damaged or cut short); "
                               f"tinycnn train --resume {path.parent} rewrites it from last.pt")
        rows.append(row)
    return rows


def read_run(run_dir: str | Path) -> dict:
    path = RunPaths(Path(run_dir)).run
    if not path.exists():
        raise TinycnnError(f"{run_dir} is not a tinycnn run directory (no run.json)")
    return _json_object(path, f"tinycnn train --resume {path.parent} rewrites it from last.pt")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TinycnnError(f"{path}: not UTF-8 text; the file is damaged") from None


def _json_object(path: Path, repair: str) -> dict:
    try:
        value = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise TinycnnError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); the file is damaged; {repair}") from None
    if not isinstance(value, dict):
        raise TinycnnError(f"{path}: holds a {type(value).__name__}, not a JSON object; the file is damaged; {repair}")
    return value


def read_config(run_dir: str | Path) -> TrainConfig:
    path = RunPaths(Path(run_dir)).config
    if not path.exists():
        raise TinycnnError(f"{run_dir} is not a tinycnn run directory (no config.toml)")
    return config_from_dict(read_toml(path), where=str(path))


def read_seeds(run_dir: str | Path) -> dict:
    """seeds.json of a multi-seed run: {"seeds": [...], "stacked": bool[, "processes", "threads"]}."""
    path = Path(run_dir) / SEEDS_FILE
    record = _json_object(path, "restore it, or train the seeds again into another directory")
    seeds = record.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise TinycnnError(f"{path}: no list of seeds in it; the file is damaged")
    return record


def is_multi_seed(run_dir: str | Path) -> bool:
    return (Path(run_dir) / SEEDS_FILE).exists()


def write_config(run_dir: str | Path, config: TrainConfig) -> None:
    atomic_write_text(RunPaths(Path(run_dir)).config, to_toml(config.to_dict()))


def write_metrics(run_dir: str | Path, metrics: list[dict]) -> None:
    atomic_write_text(RunPaths(Path(run_dir)).metrics, "".join(json.dumps(m) + "\n" for m in metrics))


def write_run(run_dir: str | Path, info: dict) -> None:
    atomic_write_text(RunPaths(Path(run_dir)).run, json.dumps(info, indent=2) + "\n")


def write_json(path: str | Path, value) -> None:
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def default_run_dir(config: TrainConfig, base: str | Path = "runs") -> Path:
    return Path(base) / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def holds_run(run_dir: str | Path) -> bool:
    """Whether a directory already holds a run (single or multi-seed)."""
    return (Path(run_dir) / "config.toml").exists() or is_multi_seed(run_dir)


@dataclass
class RunView:
    """A run directory, single or multi-seed, as lists over its seeds."""

    path: Path
    config: TrainConfig
    seed_dirs: list[Path]  # [path] for a single run
    metrics: list[list[dict]]  # per seed, metrics.jsonl rows
    infos: list[dict]  # per seed, run.json
    multi: bool

    @property
    def params(self) -> int:
        return self.infos[0]["params"]

    def finished(self) -> bool:
        return all(i.get("status") == "finished" and i.get("epochs_done", 0) >= self.config.epochs for i in self.infos)


def open_run(path: str | Path) -> RunView:
    """The finished epochs of a run directory, each seed's; an error line when nothing is there."""
    path = Path(path)
    if not path.is_dir():
        raise TinycnnError(f"{path}: no such run directory")
    if is_multi_seed(path):
        seeds = read_seeds(path)["seeds"]
        dirs = [path / f"seed-{s}" for s in seeds if (path / f"seed-{s}" / "run.json").exists()]
        if not dirs:
            raise TinycnnError(f"{path}: no seed has started yet; train it with: tinycnn train --resume {path}")
        multi = True
    else:
        read_run(path)  # a clear error when this is no run directory
        dirs, multi = [path], False
    config = read_config(path)
    metrics = [read_metrics(d) for d in dirs]
    kept = [(d, m) for d, m in zip(dirs, metrics) if m]
    if not kept:
        raise TinycnnError(f"{path}: no epoch has finished yet (metrics.jsonl is empty); train it first")
    return RunView(path, config, [d for d, _ in kept], [m for _, m in kept], [read_run(d) for d, _ in kept], multi)


@contextlib.contextmanager
def claim(run_dir: str | Path) -> Iterator[Path]:
    """Hold `run_dir` for this process while a run writes it: created if need be, checked
    writable, locked (an flock on run_dir/.lock, which the system releases when the process
    ends, however it ends), and cleared of the temporary files of writes that a killed run
    left. One line if it is a file, cannot be created or written, or another process holds
    it. A process that already holds it claims it again for free."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise TinycnnError(f"{run_dir} is a file, not a run directory; choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinycnnError(f"cannot create {run_dir} ({exc.strerror}); choose another --out") from None
    key = run_dir.resolve()
    if key in _claimed:
        yield run_dir
        return
    try:
        lock = open(run_dir / LOCK_FILE, "a+")
    except OSError as exc:
        raise TinycnnError(f"{run_dir} is not writable ({exc.strerror}); choose another --out") from None
    try:
        if not _lock(lock):
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise TinycnnError(f"{run_dir} is in use by another tinycnn process (pid {holder}); "
                               "wait for it to finish, or choose another --out")
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(f"{os.getpid()}\n")
            lock.flush()
        except OSError as exc:
            raise TinycnnError(f"{run_dir} is not writable ({exc.strerror}); make space or choose another --out") from None
        for leftover in [*run_dir.glob(".tmp-*"), *run_dir.glob("seed-*/.tmp-*")]:
            with contextlib.suppress(OSError):
                leftover.unlink()
        _claimed.add(key)
        try:
            yield run_dir
        finally:
            _claimed.discard(key)
    finally:
        lock.close()  # closing releases the flock


def _lock(handle) -> bool:
    """An exclusive, non-blocking lock on an open file; True when this process got it."""
    try:
        import fcntl
    except ImportError:  # no flock on this system: the directory is not locked
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True

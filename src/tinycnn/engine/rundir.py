"""A run directory's files, read and written; reading imports no torch, so that check,
report, compare and reproduce read runs without loading the trainer.

    config.toml    the resolved TrainConfig
    metrics.jsonl  one JSON object per finished epoch
    run.json       versions, device, seed, model facts, timings, status
    last.pt        the resume point (engine/checkpoint.py)
    best.pt        with a validation split: the weights chosen on it
    seeds.json     a multi-seed run: its seeds and how they train; each seed in seed-<s>/
    summary.json   a multi-seed run: the statistics over its seeds
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.config import TrainConfig, config_from_dict, read_toml, to_toml
from tinycnn.errors import TinycnnError

SEEDS_FILE = "seeds.json"
SUMMARY_FILE = "summary.json"


@dataclass
class RunPaths:
    root: Path

    config = property(lambda self: self.root / "config.toml")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    run = property(lambda self: self.root / "run.json")
    last = property(lambda self: self.root / "last.pt")
    best = property(lambda self: self.root / "best.pt")


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = RunPaths(Path(run_dir)).metrics
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_run(run_dir: str | Path) -> dict:
    path = RunPaths(Path(run_dir)).run
    if not path.exists():
        raise TinycnnError(f"{run_dir} is not a tinycnn run directory (no run.json)")
    return json.loads(path.read_text())


def read_config(run_dir: str | Path) -> TrainConfig:
    path = RunPaths(Path(run_dir)).config
    if not path.exists():
        raise TinycnnError(f"{run_dir} is not a tinycnn run directory (no config.toml)")
    return config_from_dict(read_toml(path), where=str(path))


def read_seeds(run_dir: str | Path) -> dict:
    """seeds.json of a multi-seed run: {"seeds": [...], "stacked": bool[, "processes", "threads"]}."""
    return json.loads((Path(run_dir) / SEEDS_FILE).read_text())


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

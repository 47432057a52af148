"""Several seeds trained as one stacked network, written as the runs of separate seeds.

    tinycnn train --seeds 0..7 --stack

`StackedTrainer` runs multiseed.StackedRun and writes what `tinycnn train --seeds` writes
for seeds run one after another: ROOT/seed-S/ with config.toml, metrics.jsonl, run.json,
last.pt and (with a validation split) best.pt, so that `tinycnn check`, `report`, `compare`
and `eval` read them as any run. Each seed's last.pt is a Trainer checkpoint of that seed
alone (its weights and its optimizer state), so a seed can also be
continued by itself with `tinycnn train --resume ROOT/seed-S`.

The resume point of the stacked run is ROOT/stacked.pt, written after the files of every
seed at the end of each epoch (and on Ctrl-C): an interruption anywhere leaves the run
resumable from the last epoch that stacked.pt records, and the seeds' metrics are cut back
to it, as Trainer does with its own.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from tinycnn.config import TrainConfig, config_from_dict
from tinycnn.engine import provenance
from tinycnn.engine.checkpoint import load_checkpoint, save_checkpoint
from tinycnn.engine.epoch_loop import EpochSums
from tinycnn.engine.rundir import (
    RunPaths,
    claim,
    read_metrics,
    read_run,
    utc_now,
    write_config,
    write_metrics,
    write_run,
)
from tinycnn.engine.trainer import (
    RunResult,
    format_epoch,
    new_run_info,
    progress_bar,
    stop_on_sigint,
)
from tinycnn.errors import TinycnnError
from tinycnn.seeds.stacked import StackedRun
from tinycnn.speed.auto_settings import resolve_auto

STACKED_CHECKPOINT = "stacked.pt"


class StackedTrainer:
    """Trains `seeds` of one configuration together into root/seed-<s>/ run directories."""

    def __init__(self, config: TrainConfig, seeds: list[int], root: str | Path, *, model=None,
                 progress: bool | None = None, log: Callable[[str], None] = print, resume_hint: str | None = None):
        self.config = resolve_auto(config).validate()
        self.model_factory = model  # None: the configuration's network
        self.resume_hint = resume_hint or f"tinycnn train --resume {root}"
        self.seeds = list(seeds)
        self.root = Path(root)
        self.paths = [RunPaths(self.root / f"seed-{s}") for s in self.seeds]
        self.configs = [config_from_dict({**self.config.to_dict(), "seed": s}) for s in self.seeds]
        self.log = log
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._stop_requested = False

    @property
    def checkpoint(self) -> Path:
        return self.root / STACKED_CHECKPOINT

    def request_stop(self) -> None:
        """Finish the current batch, save a resume point, stop (what Ctrl-C does)."""
        self._stop_requested = True

    # ------------------------------------------------------------------ files

    def _seed_checkpoint(self, i: int, epochs_done: int, partial: EpochSums) -> dict:
        """Seed i's last.pt, in Trainer's format."""
        run = self.run
        state = {
            "model": run.state(i),
            "optimizer": run.optimizer_state(i),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "average": run.average_state(i),
            "epochs_done": epochs_done,
            "partial": partial.seed_state(i),
            "best_val": self.best_val[i],
            "config": self.configs[i].to_dict(),
            "metrics": list(self.metrics[i][:epochs_done]),
        }
        state["rng_cpu"] = torch.get_rng_state()  # what a Trainer of this seed alone continues from
        if run.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(run.device)
        return state

    def _save(self, epochs_done: int, partial: EpochSums) -> None:
        """Every seed's last.pt, then stacked.pt: the resume point is written last."""
        for i, paths in enumerate(self.paths):
            save_checkpoint(paths.last, self._seed_checkpoint(i, epochs_done, partial))
        save_checkpoint(self.checkpoint, {
            **self.run.resume_state(),
            "seeds": self.seeds,
            "epochs_done": epochs_done,
            "partial": asdict(partial),
            "best_val": list(self.best_val),
            "config": self.config.to_dict(),
            "metrics": [list(m[:epochs_done]) for m in self.metrics],
        })

    def _write_runs(self, **fields) -> None:
        for paths, info in zip(self.paths, self.run_infos):
            info.update(fields)
            write_run(paths.root, info)

    # ------------------------------------------------------------------ the loop

    def fit(self, resume: bool = False, on_batch: Callable[[int, int], None] | None = None) -> list[RunResult]:
        """Train the seeds from their start, or with `resume` from stacked.pt, holding the
        directory all along."""
        with claim(self.root):
            try:
                return self._fit(resume, on_batch)
            except OSError as exc:  # a full disk: the last whole epoch is kept
                where = exc.filename or self.root
                raise TinycnnError(f"{where}: {exc.strerror}; {self.root} keeps its last complete epoch: make space "
                                   f"and resume with: {self.resume_hint}") from None

    def _fit(self, resume: bool, on_batch) -> list[RunResult]:
        c, s = self.config, len(self.seeds)
        self.run = run = StackedRun(c, self.seeds, model=self.model_factory)
        facts = {**run.facts, "full_data": c.subset is None}
        epochs_done, partial = 0, EpochSums.fresh(s)
        self.best_val = [-1.0] * s
        if resume:
            state = load_checkpoint(self.checkpoint, map_location=run.device, kind="stacked")
            if state["seeds"] != self.seeds:
                raise TinycnnError(f"{self.checkpoint} holds seeds {state['seeds']}, not {self.seeds}; "
                                   "train these seeds into another directory")
            run.load_resume_state(state)
            epochs_done, self.best_val = state["epochs_done"], list(state["best_val"])
            partial = EpochSums(**state["partial"])
            # stacked.pt's own rows: every seed's metrics.jsonl agrees with it, whenever the run stopped
            self.metrics = ([list(m) for m in state["metrics"]] if "metrics" in state
                            else [read_metrics(p.root)[:epochs_done] for p in self.paths])
            for p, rows in zip(self.paths, self.metrics):
                write_metrics(p.root, rows)
            self.run_infos = [read_run(p.root) for p in self.paths]
        else:
            trained = [str(p.root) for p in self.paths if p.last.exists()]
            if trained:
                raise TinycnnError(f"{trained[0]} already holds a trained seed and {self.checkpoint} is missing; "
                                   "train the stacked seeds into another directory")
            self.metrics = [[] for _ in self.seeds]
            self.run_infos = []
            for seed, config, paths in zip(self.seeds, self.configs, self.paths):
                paths.root.mkdir(parents=True, exist_ok=True)
                write_config(paths.root, config)
                # trained together in one network:
                info = {**new_run_info(run.device, seed, facts), "stacked_seeds": self.seeds}
                origin = provenance.record(paths.root, config.model, self.model_factory)
                self.run_infos.append(info if origin is None else {**info, "model_source": origin})
        if epochs_done >= c.epochs:  # run.json keeps saying "finished"
            self.log(f"{self.root}: already finished ({epochs_done} epochs)")
            return self._results(facts)
        self._write_runs(status="running", epochs_done=epochs_done)

        previous_handler = stop_on_sigint(self)
        wall_start = time.perf_counter()
        try:
            for epoch in range(epochs_done, c.epochs):
                bar = progress_bar(self.progress, len(run.loaders[0]), partial.batch, f"epoch {epoch + 1}/{c.epochs} ({s} seeds)")
                try:
                    out = run.epoch(epoch, partial=partial, should_stop=lambda: self._stop_requested, bar=bar, on_batch=on_batch)
                finally:
                    if bar is not None:
                        bar.close()
                if "partial" in out:  # stopped mid-epoch
                    self._save(epoch, out["partial"])
                    self._write_runs(status="interrupted", epochs_done=epoch)
                    self.log(f"stopped in epoch {epoch + 1}, batch {out['partial'].batch}; resume with: {self.resume_hint}")
                    raise KeyboardInterrupt
                self._end_epoch(epoch, out)
                partial = EpochSums.fresh(s)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        wall = time.perf_counter() - wall_start
        for info in self.run_infos:
            info["wall_seconds"] = info.get("wall_seconds", 0.0) + wall
        self._write_runs(status="finished", finished_at=utc_now())
        return self._results(facts)

    def _end_epoch(self, epoch: int, out: dict) -> None:
        c, run = self.config, self.run
        eval_start = time.perf_counter()
        scores = {name: run.evaluate(loader) for name, loader in run.eval_loaders.items()}
        raw = {name: run.evaluate(loader, raw=True) for name, loader in run.eval_loaders.items()} if run.average else {}
        eval_seconds = time.perf_counter() - eval_start
        for i, seed in enumerate(self.seeds):
            row = {
                "epoch": epoch + 1,
                "train_loss": out["train_loss"][i],
                "train_acc": out["train_acc"][i],
                "lr": out["lrs"][-1],
                "lr_first": out["lrs"][0],
                "train_seconds": out["seconds"],  # the stacked epoch's: every seed's time is the same
                "images_per_second": out["images_per_second"],
            }
            for name, per_seed in scores.items():
                row[f"{name}_loss"], row[f"{name}_acc"] = per_seed[i]["loss"], per_seed[i]["acc"]
                if name in raw:  # what the average adds, on the same trajectory
                    row[f"raw_{name}_acc"] = raw[name][i]["acc"]
            row["eval_seconds"] = eval_seconds
            self.metrics[i].append(row)
            if "val_acc" in row and row["val_acc"] > self.best_val[i]:
                self.best_val[i] = row["val_acc"]
                save_checkpoint(self.paths[i].best, {"model": run.state(i, run.evaluated_model), "epoch": epoch + 1, "val_acc": row["val_acc"],
                                                     "config": self.configs[i].to_dict()})
            write_metrics(self.paths[i].root, self.metrics[i])
            self.log(f"seed {seed:<3} " + format_epoch(row, c.epochs))
        for info in self.run_infos:
            info["train_seconds"] += out["seconds"]
            info["eval_seconds"] += eval_seconds
        self._save(epoch + 1, EpochSums.fresh(len(self.seeds)))
        self._write_runs(epochs_done=epoch + 1)

    def _results(self, facts: dict) -> list[RunResult]:
        return [RunResult(p.root, cfg, m, facts, "finished") for p, cfg, m in zip(self.paths, self.configs, self.metrics)]


"""One run of one seed: set-up, the epochs, metrics, checkpoints, exact resume and Ctrl-C.

    from tinycnn.engine.trainer import Trainer
    Trainer(config, "runs/mine").fit()                       # config.model from the zoo
    Trainer(config, "runs/mine", model=MyNet).fit()          # a class or factory: built after seeding
    Trainer(config, "runs/mine", model=my_net).fit()         # an instance, trained as it is

A run directory's files are engine/rundir.py's. With `ema` set, what is evaluated, chosen
and kept is the average of the weights (engine/weight_average.py); last.pt holds both.

Every random choice is a function of the seed: the model's initialisation and dropout
use torch's global generator (saved in checkpoints); batch order and augmentation use a
generator seeded by (seed, epoch). Resuming therefore continues exactly, and with
--deterministic on the CPU ends with the weights of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import torch
import torch.nn.functional as F

from tinycnn import __version__
from tinycnn.config import TrainConfig
from tinycnn.data.augment import build_augment
from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
from tinycnn.device import (
    TORCH_DEFAULT_THREADS,
    device_name,
    select_device,
    use_deterministic_algorithms,
)
from tinycnn.engine import provenance
from tinycnn.engine.checkpoint import load_checkpoint, restore_training, save_checkpoint
from tinycnn.engine.epoch_loop import EpochSums, run_batches
from tinycnn.engine.evaluate import evaluate
from tinycnn.engine.optim import build_optimizer, build_scheduler
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
from tinycnn.engine.step import TrainStep
from tinycnn.engine.weight_average import WeightAverage
from tinycnn.errors import TinycnnError
from tinycnn.models import source
from tinycnn.models.build import build_model
from tinycnn.models.summary import summarize
from tinycnn.speed.auto_settings import resolve_auto
from tinycnn.speed.fast_dropout import use_fast_dropout

# What a Trainer trains: an nn.Module as it is, or a class / factory called with no
# arguments after the seed is set; None: config.model from the zoo.
ModelSource = Union[torch.nn.Module, Callable[[], torch.nn.Module], None]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def model_facts(model: torch.nn.Module) -> dict:
    """What the budget check needs to know about the architecture."""
    s = summarize(model)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "has_batchnorm": s.has_batchnorm,
        "has_dropout": s.has_dropout,
        "has_gap": s.has_gap,
        "has_linear": s.has_linear,
        "n_maxpool": s.n_maxpool,
        "n_logits": s.n_logits,
    }


def new_run_info(device: torch.device, seed: int, facts: dict) -> dict:
    """run.json of a run that starts now: versions, where it runs, its seed and model facts."""
    return {
        "tinycnn": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "device": str(device),
        "device_name": device_name(device),
        "seed": seed,
        **facts,
        "started_at": utc_now(),
        "train_seconds": 0.0,
        "eval_seconds": 0.0,
    }


@dataclass
class RunResult:
    run_dir: Path
    config: TrainConfig
    metrics: list[dict]
    facts: dict
    status: str


class Trainer:
    """Trains one seed of one configuration into one run directory."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, model: ModelSource = None,
                 progress: bool | None = None, log: Callable[[str], None] = print, resume_hint: str | None = None,
                 test: bool = True):
        self.config = resolve_auto(config).validate()
        self.model_source = model
        self.paths = RunPaths(Path(run_dir))
        self.resume_hint = resume_hint or f"tinycnn train --resume {run_dir}"
        self.test = test  # False: the test split is never read (a search's trials)
        self.log = log
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._stop_requested = False

    def request_stop(self) -> None:
        """Finish the current batch, save a resume point, stop (what Ctrl-C does)."""
        self._stop_requested = True

    # ------------------------------------------------------------------ set-up

    def _setup(self):
        c = self.config
        if c.deterministic:
            use_deterministic_algorithms()
        self.device = select_device(c.device)
        # torch's default (the physical cores) is fastest on a machine of one's own; on one
        # shared with other jobs --threads 1 is (docs/performance.md). Always set, so that a
        # second run in one process starts the same.
        torch.set_num_threads(c.threads or TORCH_DEFAULT_THREADS)
        torch.manual_seed(c.seed)
        splits = load_splits(c.dataset, val_size=c.val_size, subset=c.subset, device=self.device, test=self.test)
        mean, std = NORMALIZATION[c.dataset]
        augment = build_augment(c)
        common = dict(mean=mean, std=std, channels_last=c.channels_last)
        self.train_loader = BatchLoader(*splits["train"], c.batch_size, shuffle=True, seed=c.seed, augment=augment, **common)
        self.eval_loaders = {name: BatchLoader(*splits[name], c.eval_batch_size, **common) for name in ("val", "test") if name in splits}

        self.model = self._build_model().to(self.device)
        if c.fast_dropout:
            use_fast_dropout(self.model)
        if c.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.facts = {**model_facts(self.model), "full_data": c.subset is None}
        self.average = WeightAverage(self.model, c.ema) if c.ema else None
        self.step = TrainStep(
            self.model, c, self.device, lambda logits, y: F.cross_entropy(logits.float(), y, label_smoothing=c.label_smoothing)
        )
        self.optimizer = build_optimizer(c, self.model)
        self.scheduler, self.per_batch = build_scheduler(c, self.optimizer, len(self.train_loader))

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """The network that is evaluated and kept: the weight average, or the model itself."""
        return self.model if self.average is None else self.average.model

    def _run_info_to_resume(self, metrics: list[dict]) -> dict:
        try:
            return read_run(self.paths.root)
        except TinycnnError as exc:  # damaged: written again, its timings from the epochs' rows
            self.log(f"{exc}; written again")
            info = new_run_info(self.device, self.config.seed, self.facts)
            info["train_seconds"] = sum(m.get("train_seconds", 0.0) for m in metrics)
            info["eval_seconds"] = sum(m.get("eval_seconds", 0.0) for m in metrics)
            return info

    def _checkpoint_state(self, epochs_done: int, partial: EpochSums, best_val: float) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "average": self.average.state_dict() if self.average else None,
            "epochs_done": epochs_done,
            "partial": partial.seed_state(),
            "best_val": best_val,
            "rng_cpu": torch.get_rng_state(),
            "config": self.config.to_dict(),
            "metrics": list(self.metrics[:epochs_done]),  # the rows of the epochs this checkpoint has done
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _build_model(self) -> torch.nn.Module:
        """The network to train, built after torch.manual_seed(seed) so that its
        initialisation is the seed's."""
        given = self.model_source
        if given is None:
            return build_model(self.config)
        if isinstance(given, torch.nn.Module):
            return given
        name = getattr(given, "__name__", repr(given))
        dropout = self.config.dropout
        kwargs = {"dropout": dropout} if dropout is not None and source.takes_dropout(given) else {}
        model = given(**kwargs)
        if not isinstance(model, torch.nn.Module):
            raise TinycnnError(f"the model factory {name!r} returned {type(model).__name__}, not an nn.Module")
        source.check_output(model, name)
        return model

    def _record_model_source(self) -> None:
        """A network of the user's: its spec, file and SHA-256 in run.json, a copy of its file."""
        entry = provenance.record(self.paths.root, self.config.model, self.model_source)
        if entry is not None:
            self.run_info["model_source"] = entry

    def _write_run(self, **fields) -> None:
        self.run_info.update(fields)
        write_run(self.paths.root, self.run_info)

    # ------------------------------------------------------------------ the loop

    def fit(self, resume: bool = False, on_batch: Callable[[int, int], None] | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> RunResult:
        """Train the run from its start, or with `resume` from its last.pt, holding its
        directory all along (engine/rundir.claim). `on_epoch(row)` hears each epoch's metrics
        once its files are written; an exception it raises stops the run there (a search's
        pruner does)."""
        with claim(self.paths.root):
            if resume:
                finished = self._finished_already()
                if finished is not None:
                    return finished
            elif self.paths.last.exists():
                raise TinycnnError(f"{self.paths.root} already holds a trained run; resume it ({self.resume_hint}) "
                                   "or train into another directory")
            try:
                return self._fit(resume, on_batch, on_epoch)
            except OSError as exc:  # a full disk, a directory gone read-only: the last whole epoch is kept
                raise self._stopped_by(exc) from None

    def _finished_already(self) -> RunResult | None:
        """A finished run's result, read from its files before any data is loaded."""
        try:
            info, metrics = read_run(self.paths.root), read_metrics(self.paths.root)
        except TinycnnError:
            return None  # damaged files: the resume below rewrites them from last.pt
        if info.get("status") == "finished" and info.get("epochs_done", 0) >= self.config.epochs == len(metrics):
            self.log(f"{self.paths.root}: already finished ({info['epochs_done']} epochs)")
            return RunResult(self.paths.root, self.config, metrics, info, "finished")
        return None

    def _stopped_by(self, exc: OSError) -> TinycnnError:
        where = exc.filename or self.paths.root
        with contextlib.suppress(Exception):  # run.json records the stop, where the disk still takes it
            self._write_run(status="stopped", stop_reason=f"{where}: {exc.strerror}")
        return TinycnnError(f"{where}: {exc.strerror}; {self.paths.root} keeps its last complete epoch: "
                            f"make space (or make it writable) and resume with: {self.resume_hint}")

    def _check_config(self, saved: dict) -> None:
        """config.toml and last.pt must describe the same run; one line names what differs."""
        mine = self.config.to_dict()
        for key, value in mine.items():
            theirs = saved.get(key, value)
            if key == "model" and source.is_spec(value) and source.is_spec(theirs):
                continue  # a network's file, named again with --model
            if theirs != value:
                raise TinycnnError(f"{self.paths.config} disagrees with {self.paths.last}: {key} = {value!r} in "
                                   f"config.toml, {theirs!r} in last.pt; put config.toml back as it was, or train into "
                                   "another directory")

    def _fit(self, resume: bool, on_batch, on_epoch) -> RunResult:
        c, paths = self.config, self.paths
        state = load_checkpoint(paths.last, kind="resume") if resume else None
        if state is not None:
            self._check_config(state["config"])
        self._setup()
        epochs_done, partial, metrics = 0, EpochSums(), []
        self.best_val = -1.0
        if state is not None:
            restore_training(state, self.model, self.optimizer, self.scheduler, self.average, self.device)
            epochs_done, self.best_val = state["epochs_done"], state["best_val"]
            partial = EpochSums.from_seed_state(state["partial"])
            # The checkpoint's own rows: metrics.jsonl agrees with last.pt whatever instant the
            # run stopped at (a checkpoint from before the rows were kept: the file's, cut back).
            metrics = list(state["metrics"]) if "metrics" in state else read_metrics(paths.root)[:epochs_done]
            write_metrics(paths.root, metrics)
            self.run_info = self._run_info_to_resume(metrics)
            if (self.run_info.get("model_source") or {}).get("spec", c.model) != c.model:  # resumed with --model
                self._record_model_source()
        else:
            write_config(paths.root, c)
            self.run_info = new_run_info(self.device, c.seed, self.facts)
            self._record_model_source()
        self.metrics = metrics
        if epochs_done >= c.epochs:  # run.json keeps saying "finished"
            self._write_run(status="finished", epochs_done=epochs_done)
            self.log(f"{paths.root}: already finished ({epochs_done} epochs)")
            return RunResult(paths.root, c, metrics, self.facts, "finished")
        self._write_run(status="running", epochs_done=epochs_done)

        previous_handler = stop_on_sigint(self)
        wall_start = time.perf_counter()
        try:
            for epoch in range(epochs_done, c.epochs):
                row = self._train_epoch(epoch, partial, on_batch)
                if row is None:  # stopped mid-epoch: the resume point is saved
                    self._write_run(status="interrupted", epochs_done=epoch)
                    self.log(f"stopped in epoch {epoch + 1}, batch {self._stopped_at}; resume with: {self.resume_hint}")
                    raise KeyboardInterrupt
                eval_start = time.perf_counter()
                for name, loader in self.eval_loaders.items():
                    result = evaluate(self.evaluated_model, loader, c.amp)
                    row[f"{name}_loss"], row[f"{name}_acc"] = result["loss"], result["acc"]
                    if self.average is not None:  # what the average adds, on the same trajectory
                        row[f"raw_{name}_acc"] = evaluate(self.model, loader, c.amp)["acc"]
                row["eval_seconds"] = time.perf_counter() - eval_start
                metrics.append(row)
                partial = EpochSums()
                if "val_acc" in row and row["val_acc"] > self.best_val:
                    self.best_val = row["val_acc"]
                    save_checkpoint(paths.best, {"model": self.evaluated_model.state_dict(), "epoch": epoch + 1, "val_acc": self.best_val, "config": c.to_dict()})
                save_checkpoint(paths.last, self._checkpoint_state(epoch + 1, partial, self.best_val))
                write_metrics(paths.root, metrics)
                self._write_run(
                    epochs_done=epoch + 1,
                    train_seconds=self.run_info["train_seconds"] + row["train_seconds"],
                    eval_seconds=self.run_info["eval_seconds"] + row["eval_seconds"],
                )
                self.log(format_epoch(row, c.epochs))
                if on_epoch is not None:
                    on_epoch(row)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        self._write_run(status="finished", finished_at=utc_now(), wall_seconds=self.run_info.get("wall_seconds", 0.0) + time.perf_counter() - wall_start)
        return RunResult(paths.root, c, metrics, self.facts, "finished")

    def _train_epoch(self, epoch: int, partial: EpochSums, on_batch) -> dict | None:
        """One epoch from `partial`: its metrics row, or None when a stop was requested (the
        resume point is saved then)."""
        c = self.config
        self.model.train()
        n_batches = len(self.train_loader)
        batches = self.train_loader.epoch(epoch)
        for _ in range(partial.batch):  # resuming mid-epoch: replay the draws of the done batches
            next(batches)
        bar = progress_bar(self.progress, n_batches, partial.batch, f"epoch {epoch + 1}/{c.epochs}")

        def not_finite(_, batch: int, lr: float) -> str:
            return (f"loss is not finite in epoch {epoch + 1}, batch {batch + 1}, at learning rate {lr:.4g}; "
                    f"stopped, keeping the last good checkpoint {self.paths.last} ({epoch} epochs done). "
                    "Try a lower --lr (or max_lr)")

        try:
            sums, stopped = run_batches(
                self.step, self.optimizer, self.scheduler, self.per_batch, batches, n_batches, partial, epoch=epoch,
                not_finite=not_finite, bar=bar, on_batch=on_batch, should_stop=lambda: self._stop_requested,
                after_step=self.average.update if self.average else None,
            )
        finally:
            if bar is not None:
                bar.close()
        if stopped:
            save_checkpoint(self.paths.last, self._checkpoint_state(epoch, sums, self.best_val))
            self._stopped_at = sums.batch
            return None
        return {
            "epoch": epoch + 1,
            "train_loss": sums.loss_sum[0] / sums.seen,
            "train_acc": 100.0 * sums.correct[0] / sums.seen,
            "lr": sums.lrs[-1],
            "lr_first": sums.lrs[0],
            "train_seconds": sums.seconds,
            "images_per_second": (sums.seen - partial.seen) / max(sums.seconds - partial.seconds, 1e-9),
        }


def stop_on_sigint(trainer):
    """Make Ctrl-C call trainer.request_stop() (a second one stops at once); returns the
    handler it replaced, or None outside the main thread, where signals cannot be caught."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if trainer._stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        trainer.log("\nCtrl-C: finishing this batch and saving a resume point (Ctrl-C again to abort)")
        trainer.request_stop()

    return signal.signal(signal.SIGINT, handler)


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # a widget in Jupyter, a text bar in a terminal

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def format_epoch(row: dict, epochs: int) -> str:
    parts = [
        f"epoch {row['epoch']:>2}/{epochs}",
        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}%",
    ]
    if "val_acc" in row:
        parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2f}%")
    if "test_acc" in row:
        parts.append(f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}%")
    raw = [f"{name} {row[f'raw_{name}_acc']:.2f}%" for name in ("val", "test") if f"raw_{name}_acc" in row]
    if raw:
        parts.append(f"(without the average: {', '.join(raw)})")
    parts.append(f"lr {row['lr']:.3g}")
    parts.append(f"{row['train_seconds']:.1f}s ({row['images_per_second']:,.0f} img/s) + eval {row['eval_seconds']:.1f}s")
    return "  ".join(parts)

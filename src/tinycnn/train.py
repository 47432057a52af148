"""The training loop: one run of one seed, with metrics, checkpoints and exact resume.

    tinycnn train                            # the default recipe
    tinycnn train --recipe era-s7-step5 --seeds 0,1,2
    tinycnn train --resume runs/default-20261122-120000

A run directory holds config.toml (resolved), metrics.jsonl (one line per epoch),
run.json (versions, device, timings, status), last.pt (the resume point, written every
epoch and on Ctrl-C) and, with a validation split, best.pt (chosen on validation
accuracy, never on test). With `ema` set, what is evaluated, chosen and kept is the
average of the weights (weight_average.py); last.pt holds both.

Every random choice is a function of the seed: the model's initialisation and dropout
use torch's global generator (saved in checkpoints); batch order and augmentation use a
generator seeded by (seed, epoch). Resuming therefore continues exactly, and with
--deterministic on the CPU ends with the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from tinycnn import __version__
from tinycnn.atomic import atomic_write_text
from tinycnn.auto_settings import resolve_auto
from tinycnn.checkpoint import load_checkpoint, save_checkpoint
from tinycnn.config import AUTO, TrainConfig, config_from_dict, read_toml, to_toml
from tinycnn.epoch_loop import EpochSums, run_batches
from tinycnn.errors import TinycnnError
from tinycnn.fast_dropout import use_fast_dropout
from tinycnn.graph_step import GraphedStep, graphs_apply
from tinycnn.host_memory import keep_freed_memory
from tinycnn.inference import inference_copy
from tinycnn.loader import NORMALIZATION, Augment, BatchLoader, load_splits
from tinycnn.weight_average import WeightAverage

# torch's own choice of intra-op threads (the physical cores), before anything changes it.
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TinycnnError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def use_deterministic_algorithms() -> None:
    """--deterministic: torch's deterministic kernels (an error where one has none)."""
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def build_model(config: TrainConfig) -> torch.nn.Module:
    from tinycnn.models import create_model

    overrides = {} if config.dropout is None else {"dropout": config.dropout}
    return create_model(config.model, **overrides)


def build_augment(config: TrainConfig) -> Augment:
    """The batched augmentation a configuration asks for."""
    return Augment(
        rotation=config.rotation, translate=config.translate, scale=tuple(config.scale), shear=config.shear,
        erasing=config.erasing, interpolation=config.interpolation,
    )


def compile_model(model: torch.nn.Module, device: torch.device, inductor: dict | None = None, step_graphs: bool = False):
    """torch.compile: on the CPU, fused C++ kernels (about 40 s to compile on 2 cores); on
    CUDA fused Triton kernels, and also CUDA graphs of the model (mode="reduce-overhead")
    unless `step_graphs`: the caller captures whole steps around it (graph_step.py), which
    measured 3.6x faster a step than the model's graphs alone (docs/benchmarks.md "GPU").

    On the CPU the dropout masks' random numbers come from torch's generator, as in eager
    mode (fallback_random), not from inductor's per-element Philox code: 1.05x faster
    training (docs/benchmarks.md), and a compiled run draws the same masks as an eager one.
    `inductor`: inductor options for the CPU that replace or add to that (the bench's levers)."""
    if device.type == "cuda":
        return torch.compile(model) if step_graphs else torch.compile(model, mode="reduce-overhead")
    return torch.compile(model, options={"fallback_random": True, **(inductor or {})})


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, betas=(config.momentum or 0.9, 0.999), weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    """(scheduler or None, stepped per batch?)."""
    s = config.scheduler
    if s == "none":
        return None, False
    if s == "onecycle":
        return (
            torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=config.max_lr,
                epochs=config.epochs,
                steps_per_epoch=steps_per_epoch,
                pct_start=config.pct_start,
                div_factor=config.div_factor,
                final_div_factor=config.final_div_factor,
            ),
            True,
        )
    if s == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma), False
    if s == "exp":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma), False
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs), False


def autocast(device: torch.device, enabled: bool, cache: bool = True):
    """bf16 autocast, or nothing. cache=False inside a CUDA graph capture, whose casts of the
    weights must be redone at every replay, not kept from the capture."""
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache) if enabled else nullcontext()


class TrainStep:
    """Forward, loss and backward of one training step, the gradients zeroed before, run the
    way the device runs it best: replayed as one CUDA graph (graph_step.py), under
    torch.compile's own CUDA graphs (--no-cuda-graphs), or op by op. Called with (x, y), it
    returns (loss, logits), detached; valid until the next call.

    `loss_fn(logits, y)` is the loss to report, a scalar or one per seed (their sum is what
    is differentiated). `graphs_allowed=False` where a step draws from generators a graph
    cannot carry."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, device: torch.device,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], graphs_allowed: bool = True):
        if AUTO in (config.compile, config.amp):  # a run decides these once and records them (auto_settings.py)
            raise TinycnnError('TrainStep needs compile and amp decided: pass the config through auto_settings.resolve_auto first')
        step_graphs = graphs_apply(config, device) and graphs_allowed
        self.model = compile_model(model, device, step_graphs=step_graphs) if config.compile else model
        self.params = list(model.parameters())
        self.device, self.amp, self.loss_fn = device, config.amp, loss_fn
        self.compiled_graphs = config.compile and device.type == "cuda" and not step_graphs  # torch.compile's own
        self.graphed = GraphedStep(self._forward_backward, self.params) if step_graphs else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graphed is not None:
            return self.graphed(x, y)
        if self.compiled_graphs:  # a new training step: the graphs' output buffers may be reused
            torch.compiler.cudagraph_mark_step_begin()
        for p in self.params:
            p.grad = None
        return self._forward_backward(x, y)

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # GraphedStep captures this; autocast's cache must be off inside a capture.
        with autocast(self.device, self.amp, cache=self.graphed is None):
            logits = self.model(x)
        loss = self.loss_fn(logits, y)
        (loss if loss.dim() == 0 else loss.sum()).backward()
        return loss.detach(), logits.detach()


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: BatchLoader, amp: bool = False, folded: bool = True) -> dict:
    """Mean cross-entropy and accuracy (%) over the whole split, in eval mode: through
    inference.inference_copy (BatchNorm folded, channels_last on the CPU), or with
    folded=False the model itself (the reference, and the bench's other side)."""
    was_training = model.training
    model.eval()
    net = None
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    for x, y in loader.epoch(0):
        if net is None:
            net = inference_copy(model, x) if folded else model
        with autocast(loader.device, amp):
            logits = net(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = loader.images.shape[0]
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct.item() / n, "correct": int(correct.item()), "n": n}


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor() or "cpu"


def model_facts(model: torch.nn.Module) -> dict:
    """What the budget check needs to know about the architecture."""
    from tinycnn.summary import summarize

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


@dataclass
class RunResult:
    run_dir: Path
    config: TrainConfig
    metrics: list[dict]
    facts: dict
    status: str


class Trainer:
    """Trains one seed of one configuration into one run directory."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, progress: bool | None = None, log: Callable[[str], None] = print):
        self.config = resolve_auto(config).validate()
        self.paths = RunPaths(Path(run_dir))
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
        # torch's default (the physical cores) is fastest on a machine of one's own; on a
        # machine shared with other jobs, --threads 1 can be several times faster
        # (docs/benchmarks.md). Always set, so a second run in one process starts the same.
        torch.set_num_threads(c.threads or TORCH_DEFAULT_THREADS)
        torch.manual_seed(c.seed)
        splits = load_splits(c.dataset, val_size=c.val_size, subset=c.subset, device=self.device)
        mean, std = NORMALIZATION[c.dataset]
        augment = build_augment(c)
        common = dict(mean=mean, std=std, channels_last=c.channels_last)
        self.train_loader = BatchLoader(*splits["train"], c.batch_size, shuffle=True, seed=c.seed, augment=augment, **common)
        self.eval_loaders = {name: BatchLoader(*splits[name], c.eval_batch_size, **common) for name in ("val", "test") if name in splits}

        self.model = build_model(c).to(self.device)
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
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _write_run(self, **fields) -> None:
        self.run_info.update(fields)
        atomic_write_text(self.paths.run, json.dumps(self.run_info, indent=2) + "\n")

    def _write_metrics(self, metrics: list[dict]) -> None:
        atomic_write_text(self.paths.metrics, "".join(json.dumps(m) + "\n" for m in metrics))

    # ------------------------------------------------------------------ the loop

    def fit(self, resume: bool = False, on_batch: Callable[[int, int], None] | None = None) -> RunResult:
        self._setup()
        keep_freed_memory(self.device)
        c, paths = self.config, self.paths
        paths.root.mkdir(parents=True, exist_ok=True)
        epochs_done, partial, metrics = 0, EpochSums(), []
        self.best_val = -1.0
        if resume:
            state = load_checkpoint(paths.last, map_location=self.device)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if self.average is not None:
                self.average.load_state_dict(state["average"])
            epochs_done, self.best_val = state["epochs_done"], state["best_val"]
            partial = EpochSums.from_seed_state(state["partial"])
            torch.set_rng_state(state["rng_cpu"].cpu())
            if "rng_cuda" in state:
                torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
            metrics = read_metrics(paths.root)[:epochs_done]
            self.run_info = read_run(paths.root)
        else:
            atomic_write_text(paths.config, to_toml(c.to_dict()))
            self.run_info = new_run_info(self.device, c.seed, self.facts)
        if epochs_done >= c.epochs:  # run.json keeps saying "finished"
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
                    self.log(f"stopped in epoch {epoch + 1}, batch {self._stopped_at}; resume with: tinycnn train --resume {paths.root}")
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
                self._write_metrics(metrics)
                self._write_run(
                    epochs_done=epoch + 1,
                    train_seconds=self.run_info["train_seconds"] + row["train_seconds"],
                    eval_seconds=self.run_info["eval_seconds"] + row["eval_seconds"],
                )
                self.log(format_epoch(row, c.epochs))
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
    import threading

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
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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


def default_run_dir(config: TrainConfig, base: str | Path = "runs") -> Path:
    return Path(base) / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"

"""Speed: how fast a training step runs, measured A B, B A, ... in one process.

    tinycnn bench                                    # seed pipeline (A) vs tinycnn (B)
    tinycnn bench --a channels_last=false --b channels_last=true   # one lever, tinycnn on both sides
    tinycnn bench --measure eval --a eval_batch_size=500 --b eval_batch_size=2000
    tinycnn bench --time-to-accuracy --recipe default

A is, unless --a is given, the pipeline of the course notebooks: torchvision's MNIST with
RandomRotation -> ToTensor -> Normalize per PIL image, a DataLoader with worker processes,
and a plain eager loop (SGD, log_softmax + nll_loss, loss.item() every batch). B is
tinycnn's own Trainer: its epoch loop (`Trainer._train_epoch`) on a subset of the training
images, so the figure is that of the code `tinycnn train` runs, not of a copy of it.

Rounds alternate A B, B A, A B, ... after one untimed warm-up round each (which holds
torch.compile's compile time), so that whatever else the machine is doing falls on both
sides alike. The report gives every round, the medians and the ratio B/A of the medians.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from tinycnn.config import TrainConfig, config_from_dict
from tinycnn.errors import TinycnnError

# What is compared when nothing else is asked: the Session 7 step 4/5 network at the batch
# size and augmentation of the write-ups.
DEFAULTS = dict(model="era-s7-8172", batch_size=128, rotation=15.0, images=10_240, rounds=3)

# B's settings per device type, on top of the TrainConfig defaults (which already hold the
# levers that won without changing results: fast dropout, and on the CPU, the thread count):
# the levers of docs/performance.md that win and keep results equivalent. Augmentation is
# nearest-neighbour on both sides, as RandomRotation's. bf16 (amp) changes the arithmetic and
# is left out. On CUDA, torch.compile inside the CUDA graph of each step (cuda_graphs, a
# TrainConfig default) was the fastest step there; channels_last made no difference for one
# network and stays as it was measured (docs/performance.md, "GPU").
BEST = {
    "cpu": {"interpolation": "nearest", "compile": True},
    "cuda": {"interpolation": "nearest", "compile": True, "channels_last": True},
}


def best_settings(device: torch.device) -> dict:
    return dict(BEST["cuda" if device.type == "cuda" else "cpu"])


# ---------------------------------------------------------------- memory


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux: /proc/self/clear_refs); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def process_peak_rss_mib(pid: int | str = "self") -> float:
    """Peak resident set of a live process (VmHWM, since its start or the last reset), MiB;
    0 where /proc cannot tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mib() -> float:
    """Peak resident set of this process, MiB (getrusage's lifetime peak where /proc is missing)."""
    return process_peak_rss_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the two sides


class SeedPipeline:
    """The notebooks' way: PIL images through torchvision transforms in DataLoader workers."""

    def __init__(self, model: str, batch_size: int, rotation: float, *, workers: int = 2, device: torch.device, dropout=None, seed: int = 0):
        try:
            from torchvision import datasets, transforms
        except ImportError:
            raise TinycnnError("the seed pipeline needs torchvision: pip install 'tinycnn[bench]'") from None
        from tinycnn.data import datasets as data
        from tinycnn.device import TORCH_DEFAULT_THREADS
        from tinycnn.models.build import build_model

        data.load("mnist", "train")  # fetched and verified into torchvision's layout if missing
        self.name = (
            "seed pipeline: torchvision MNIST + RandomRotation/ToTensor/Normalize, "
            f"DataLoader(num_workers={workers}), eager SGD loop; threads={TORCH_DEFAULT_THREADS}"
        )
        self.device, self.batch_size = device, batch_size
        tf = transforms.Compose([
            transforms.RandomRotation((-rotation, rotation)),
            transforms.ToTensor(),
            transforms.Normalize((0.1307,), (0.3081,)),
        ])
        train = datasets.MNIST(str(data.data_root()), train=True, download=False, transform=tf)
        kwargs = dict(num_workers=workers, pin_memory=device.type == "cuda")
        self.loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, **kwargs)
        torch.manual_seed(seed)
        self.model = build_model(TrainConfig(model=model, dropout=dropout)).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.threads = TORCH_DEFAULT_THREADS  # what the notebooks ran with
        self._batches = None
        self.workers_peak_rss_mib = 0.0

    def _next(self):
        # One long stream of batches across epochs, as a real run sees it: a worker start-up
        # per 469 batches, not per round.
        while True:
            if self._batches is None:
                self._batches = iter(self.loader)
            try:
                return next(self._batches)
            except StopIteration:
                self._batches = None

    def round(self, images: int) -> int:
        model, optimizer = self.model, self.optimizer
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        for _ in range(math.ceil(images / self.batch_size)):
            data, target = self._next()
            data, target = data.to(self.device), target.to(self.device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(F.log_softmax(output, dim=1), target)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()  # the notebooks' running loss and accuracy, read every batch
            correct += output.argmax(1).eq(target).sum().item()
            seen += target.shape[0]
        for worker in getattr(self._batches, "_workers", []):
            self.workers_peak_rss_mib = max(self.workers_peak_rss_mib, process_peak_rss_mib(worker.pid))
        return seen


class TrainerPipeline:
    """tinycnn's Trainer on `images` training images: one round is one epoch of its loop."""

    def __init__(self, name: str, config: TrainConfig, work_dir: Path, tweak: Callable | None = None):
        from tinycnn.engine.trainer import Trainer

        self.config = config
        self.trainer = Trainer(config, work_dir / f"run-{id(self)}", progress=False, log=lambda m: None)
        self.trainer._setup()
        self.trainer.best_val = -1.0
        self.device = self.trainer.device
        self.threads = torch.get_num_threads()  # as the Trainer set them
        self.name = f"{name}; threads={self.threads}" if self.device.type == "cpu" else name
        if tweak is not None:
            tweak(self.trainer)
        self._epoch = 0

    def round(self, images: int) -> int:
        from tinycnn.engine.epoch_loop import EpochSums

        row = self.trainer._train_epoch(self._epoch, EpochSums(), None)
        self._epoch += 1
        if not math.isfinite(row["train_loss"]):
            raise TinycnnError(f"{self.name}: the loss is not finite")
        return len(self.trainer.train_loader.images)


class EvalPipeline(TrainerPipeline):
    """Evaluation of the test split with the Trainer's model and `evaluate`."""

    def round(self, images: int) -> int:
        from tinycnn.engine.evaluate import evaluate

        loader = self.trainer.eval_loaders["test"]
        evaluate(self.trainer.model, loader, self.config.amp, folded=getattr(self.trainer, "bench_folded", True))
        return len(loader.images)


class SeparateSeeds:
    """S Trainers, one per seed, each running its epoch in turn: `tinycnn train --seeds`."""

    def __init__(self, name: str, config: TrainConfig, seeds: list[int], work_dir: Path):
        self.parts = [TrainerPipeline(name, config_from_dict({**config.to_dict(), "seed": s}), work_dir) for s in seeds]
        self.name, self.device, self.threads = f"{len(seeds)} separate runs: {self.parts[0].name}", self.parts[0].device, self.parts[0].threads

    def round(self, images: int) -> int:
        return sum(p.round(images) for p in self.parts)


class StackedSeeds:
    """The same seeds as one stacked network (multiseed.StackedRun)."""

    def __init__(self, name: str, config: TrainConfig, seeds: list[int]):
        from tinycnn.seeds.stacked import StackedRun

        self.run = StackedRun(config, seeds)
        self.device, self.threads = self.run.device, torch.get_num_threads()
        self.name = f"{len(seeds)} seeds stacked in one network: {name}; threads={self.threads}"
        self._epoch = 0

    def round(self, images: int) -> int:
        out = self.run.epoch(self._epoch)
        self._epoch += 1
        return out["images"]


# ---------------------------------------------------------------- alternation


@dataclass
class Side:
    name: str
    label: str
    rates: list[float] = field(default_factory=list)  # images per second, one per timed round
    warmup_s: float = 0.0
    peak_rss_mib: float = 0.0
    peak_device_mib: float | None = None
    workers_rss_mib: float | None = None
    # Minor page faults of this process per timed round: memory the allocator hands back to the
    # system and maps again costs a fault per page touched (A's DataLoader workers not counted).
    page_faults: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(pipeline, images: int, side: Side, resettable: bool) -> tuple[float, float]:
    torch.set_num_threads(pipeline.threads)
    device = pipeline.device
    if resettable:
        reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    seen = pipeline.round(images)
    _sync(device)
    seconds = time.perf_counter() - start
    side.page_faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    side.peak_rss_mib = max(side.peak_rss_mib, peak_rss_mib())
    if device.type == "cuda":
        side.peak_device_mib = max(side.peak_device_mib or 0.0, torch.cuda.max_memory_allocated(device) / 2**20)
    return seen / seconds if seen else 0.0, seconds


def alternate(a, b, rounds: int, images: int, log: Callable[[str], None] = print) -> tuple[Side, Side]:
    """Warm each up once, then time A B, B A, A B, ...: `rounds` times each."""
    if rounds < 1:
        raise TinycnnError(f"--rounds must be >= 1, got {rounds}")
    resettable = reset_peak_rss()
    sides = (Side("A", a.name), Side("B", b.name))
    for pipeline, side in zip((a, b), sides):
        _, side.warmup_s = _timed(pipeline, images, side, resettable)
        side.page_faults.clear()  # the warm-up's first allocations are not the steady state
        log(f"warm-up {side.name} ({side.label}): {side.warmup_s:.1f} s")
    log(f"{'round':>5}  {'A img/s':>10}  {'B img/s':>10}")
    for r in range(rounds):
        # A B, then B A, ...: whichever runs second in a pair gets no systematic advantage.
        pairs = list(zip((a, b), sides))
        for pipeline, side in pairs if r % 2 == 0 else pairs[::-1]:
            rate, _ = _timed(pipeline, images, side, resettable)
            side.rates.append(rate)
        log(f"{r + 1:>5}  {sides[0].rates[-1]:>10,.0f}  {sides[1].rates[-1]:>10,.0f}")
    if isinstance(a, SeedPipeline):
        sides[0].workers_rss_mib = a.workers_peak_rss_mib or None
    return sides


def report(a: Side, b: Side, what: str = "training") -> str:
    lines = [
        f"median {what} throughput: A {a.median:,.0f} img/s, B {b.median:,.0f} img/s; B/A = {b.median / a.median:.2f}",
        f"  A = {a.label}",
        f"  B = {b.label}",
    ]
    for s in (a, b):
        mem = f"peak RSS {s.name} {s.peak_rss_mib:,.0f} MiB"
        if s.workers_rss_mib:
            mem += f" (+ DataLoader workers, each up to {s.workers_rss_mib:,.0f} MiB)"
        if s.peak_device_mib is not None:
            mem += f", peak device memory {s.peak_device_mib:,.1f} MiB"
        faults = f"; minor page faults per round {statistics.median(s.page_faults):,.0f}" if s.page_faults else ""
        lines.append(mem + faults + f"; warm-up round {s.warmup_s:.1f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------- configurations


def parse_assignments(items: list[str] | None) -> dict:
    """['channels_last=true', 'threads=1'] -> {'channels_last': True, 'threads': 1} (TOML values)."""
    import tomllib

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise TinycnnError(f"{item!r}: expected KEY=VALUE, e.g. channels_last=true")
        if key in TWEAKS:
            out[key] = value.strip()
            continue
        try:
            out[key] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value.strip()  # a bare word: a string
    return out


def _sgd_tweak(kind: str):
    """Rebuild the optimizer as a per-parameter loop, foreach or fused SGD (same maths)."""
    flags = {"loop": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
    if kind not in flags:
        raise TinycnnError(f"sgd={kind!r}: choose loop, foreach or fused")

    def tweak(trainer):
        from tinycnn.engine.optim import build_scheduler

        c = trainer.config
        if c.optimizer != "sgd":
            raise TinycnnError("sgd=... applies to optimizer = 'sgd' only")
        trainer.optimizer = torch.optim.SGD(
            trainer.model.parameters(), lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=c.weight_decay, **flags[kind]
        )
        trainer.scheduler, trainer.per_batch = build_scheduler(c, trainer.optimizer, len(trainer.train_loader))

    return tweak


# inductor settings a side can change (compile=true on the CPU): key -> (inductor option,
# the words it takes, the word that turns the option on). Where compiled code draws random
# numbers (inductor's own Philox code, or torch's generator as in eager mode), the C++
# wrapper around the kernels instead of Python's, and inductor's channels-last layouts for
# convolutions.
COMPILE_TWEAKS = {
    "random": ("fallback_random", ("philox", "torch"), "torch"),
    "cpp_wrapper": ("cpp_wrapper", ("true", "false"), "true"),
    "layout_optimization": ("layout_optimization", ("true", "false"), "true"),
}


def _compile_tweak(values: dict[str, str]):
    """Recompile the model once with the inductor settings `values` (COMPILE_TWEAKS keys)."""
    options = {}
    for key, word in values.items():
        option, words, on = COMPILE_TWEAKS[key]
        if word not in words:
            raise TinycnnError(f"{key}={word!r}: choose {' or '.join(words)}")
        options[option] = word == on

    def tweak(trainer):
        from tinycnn.engine.step import compile_model

        if not trainer.config.compile or trainer.device.type != "cpu":
            raise TinycnnError(f"{', '.join(values)}=... applies to compile=true on the CPU only")
        trainer.step.model = compile_model(trainer.model, trainer.device, inductor=options)

    return tweak


def _inference_tweak(word: str):
    """--measure eval: evaluate through the folded copy (inference.py) or the model itself."""
    if word not in ("folded", "plain"):
        raise TinycnnError(f"inference={word!r}: choose folded or plain")

    def tweak(trainer):
        trainer.bench_folded = word == "folded"

    return tweak


# Settings that are not TrainConfig keys: how the Trainer's optimiser is built, how
# torch.compile builds the step, and what evaluation runs.
TWEAKS = {"sgd", "inference", *COMPILE_TWEAKS}


def bench_config(values: dict, *, images: int, device: str) -> tuple[TrainConfig, Callable | None]:
    tweaks = [_sgd_tweak(values["sgd"])] if "sgd" in values else []
    if "inference" in values:
        tweaks.append(_inference_tweak(values["inference"]))
    compile_values = {k: v for k, v in values.items() if k in COMPILE_TWEAKS}
    if compile_values:
        tweaks.append(_compile_tweak(compile_values))
    plain = {k: v for k, v in values.items() if k not in TWEAKS}
    base = {"scheduler": "none", "lr": 0.01, "momentum": 0.9, "epochs": 10**6, "device": device}
    config = config_from_dict({**base, **plain, "subset": images}, where="bench settings").validate()

    def tweak(trainer):
        for t in tweaks:
            t(trainer)

    return config, (tweak if tweaks else None)


def describe(values: dict) -> str:
    """The label of a Trainer side; its thread count is added once it is known."""
    return "tinycnn Trainer: " + ", ".join(f"{k}={v}" for k, v in values.items() if k != "threads")


def run_bench(
    *,
    model: str = DEFAULTS["model"],
    batch_size: int = DEFAULTS["batch_size"],
    rotation: float = DEFAULTS["rotation"],
    images: int = DEFAULTS["images"],
    rounds: int = DEFAULTS["rounds"],
    device: str = "auto",
    workers: int = 2,
    a: dict | None = None,
    b: dict | None = None,
    measure: str = "train",
    seeds: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[Side, Side]:
    """The comparison `tinycnn bench` prints. a=None: A is the seed pipeline; seeds=S >= 2:
    A is S separate Trainers and B the S seeds stacked, both with B's settings."""
    from tinycnn.device import select_device

    dev = select_device(device)
    if images < batch_size:
        raise TinycnnError(f"--images must be at least one batch ({batch_size}), got {images}")
    if measure != "eval" and any("inference" in side for side in (a or {}, b or {})):
        raise TinycnnError("inference=... changes evaluation only: add --measure eval")
    common = {"model": model, "batch_size": batch_size, "rotation": rotation}
    # Both sides of a lever comparison start from B's settings and change only what is given.
    b_values = {**common, **best_settings(dev), **(b or {})}
    cls = EvalPipeline if measure == "eval" else TrainerPipeline
    log(f"device: {_device_line(dev)}; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="tinycnn-bench-") as tmp:
        work = Path(tmp)
        if seeds:
            if seeds < 2 or a is not None or measure != "train":
                raise TinycnnError("--seeds S compares S >= 2 separate runs with one stacked run; --b sets both, --a does not apply")
            config, tweak = bench_config(b_values, images=images, device=str(dev))
            if tweak is not None:
                raise TinycnnError("--seeds takes TrainConfig settings only")
            pa = SeparateSeeds(describe(b_values), config, list(range(seeds)), work)
            pb = StackedSeeds(describe(b_values), config, list(range(seeds)))
            log(f"{model}, batch {batch_size}, rotation {rotation:g}, {images:,} images per seed per round, {rounds} rounds each")
            sides = alternate(pa, pb, rounds, images, log)
            log(f"load average at the end {os.getloadavg()[0]:.2f}")
            return sides
        if a is None:
            if measure != "train":
                raise TinycnnError("--measure eval compares two tinycnn settings: give --a and/or --b")
            pa = SeedPipeline(model, batch_size, rotation, workers=workers, device=dev)
        else:
            a_values = {**common, **best_settings(dev), **a}
            config, tweak = bench_config(a_values, images=images, device=str(dev))
            pa = cls(describe(a_values), config, work, tweak)
        config, tweak = bench_config(b_values, images=images, device=str(dev))
        pb = cls(describe(b_values), config, work, tweak)
        log(f"{model}, batch {batch_size}, rotation {rotation:g}, {images:,} images per round, {rounds} rounds each")
        sides = alternate(pa, pb, rounds, images, log)
        log(f"load average at the end {os.getloadavg()[0]:.2f}")
        return sides


def _device_line(device: torch.device) -> str:
    from tinycnn.device import device_name

    name = device_name(device)
    if device.type == "cpu":  # the thread count is each side's own, in its label
        name = f"{name.split(' (')[0]} ({os.cpu_count()} logical CPUs)"
    return f"{name}, torch {torch.__version__}"


def profile_step(values: dict, *, images: int, device: str = "auto", rows: int = 15, by_shape: bool = False) -> str:
    """torch.profiler's table (self time per operator) of one round of a Trainer side, after
    a warm-up round: where the time of a step goes. `by_shape`: one row per operator and
    input shapes, so that each layer's convolution has its own row."""
    from torch.profiler import ProfilerActivity, profile

    from tinycnn.device import select_device

    dev = select_device(device)
    config, tweak = bench_config(values, images=images, device=str(dev))
    with tempfile.TemporaryDirectory(prefix="tinycnn-bench-") as tmp:
        pipeline = TrainerPipeline(describe(values), config, Path(tmp), tweak)
        pipeline.round(images)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with profile(activities=activities, record_shapes=by_shape) as prof:
            pipeline.round(images)
            _sync(dev)
    sort = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages(group_by_input_shape=by_shape).table(
        sort_by=sort, row_limit=rows, max_name_column_width=45, max_shapes_column_width=80)
    return f"{pipeline.name}\n{table}"

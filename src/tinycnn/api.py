"""tinycnn from Python: the zoo, a network's summary, training and finished runs.

    import tinycnn
    tinycnn.summary(Net())                           # layer table, receptive field, MACs
    run = tinycnn.train(Net, "default", epochs=15)   # any nn.Module class, factory or instance
    run.check(); run.plot(); run.report()
    run = tinycnn.load_run("runs/default-20261207-120000")

What `tinycnn train` does from a shell, `train` does from Python, into the same run
directories: every command (`tinycnn check`, `report`, `compare`, ...) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tinycnn.config import TrainConfig
from tinycnn.errors import TinycnnError


def create_model(name: str, **overrides):
    """A network from the zoo by name (`list_models()`), or of your own from its file:
    `create_model("path/to/file.py:Net")`; `overrides` (e.g. dropout=0.1) go to its factory."""
    from tinycnn.models import registry, source

    if source.is_spec(name):
        return source.build(source.parse_spec(name), overrides.pop("dropout", None))
    return registry.create_model(name, **overrides)


def summary(model_or_name, input_size: tuple[int, ...] = (1, 28, 28), *, dropout: float | None = None, title: str | None = None):
    """Print the layer table of a network (an nn.Module, a zoo name or `file.py:Name`):
    output shapes, parameters, receptive field, jump and multiply-adds per layer. Returns
    the summary: `.rows`, `.params`, `.macs`, `.receptive_field`."""
    from tinycnn.models.summary import summarize

    if isinstance(model_or_name, str):
        title = title or model_or_name
        model_or_name = create_model(model_or_name, **({} if dropout is None else {"dropout": dropout}))
    result = summarize(model_or_name, input_size)
    print(result.render(title=title or type(model_or_name).__name__))
    return result


def train(model, recipe: str = "default", *, seeds=None, out: str | Path | None = None, progress: bool = True,
          **overrides) -> "Run | SeedsRun":
    """Train `model` with a recipe; every recipe key is an override (epochs=, subset=,
    device=, compile=, ...).

    `model` is a zoo name or `file.py:Name`, an nn.Module class or a function returning one
    (built after the seed is set), or an nn.Module instance (trained as it is; with several
    seeds, copied and re-initialised for each). `seeds` (a list, a range or "0..4") trains
    one run per seed and a summary over them. Ctrl-C, or a notebook's interrupt, saves a
    resume point: `tinycnn.resume(run_dir)` continues it."""
    from tinycnn.engine.rundir import claim, default_run_dir, holds_run
    from tinycnn.engine.trainer import Trainer
    from tinycnn.models import source
    from tinycnn.models.build import check_model
    from tinycnn.recipes import load_recipe
    from tinycnn.seeds.runner import run_seeds, start_seeds
    from tinycnn.speed.auto_settings import resolve_auto

    if "model" in overrides:
        raise TinycnnError("give the network as train's first argument, not as model=")
    given = None
    if isinstance(model, str):
        overrides["model"] = source.resolve(model)
    else:
        if not (callable(model) or _is_module(model)):
            raise TinycnnError(f"model must be a zoo name, 'file.py:Name', an nn.Module class or function, or an nn.Module; got {type(model).__name__}")
        overrides["model"] = source.in_memory_name(model)
        given = model
    seed_list = _seed_list(seeds)
    config = load_recipe(recipe, **overrides)
    if given is None:
        check_model(config)
    run_dir = Path(out) if out is not None else default_run_dir(config)
    taken = f"{run_dir} already holds a run; continue it with tinycnn.resume({str(run_dir)!r}) or choose another out"
    if holds_run(run_dir):
        raise TinycnnError(taken)
    config = resolve_auto(config, log=print)
    hint = _resume_hint(run_dir, given)
    with claim(run_dir):
        if holds_run(run_dir):
            raise TinycnnError(taken)
        if seed_list is None:
            Trainer(config, run_dir, model=given, progress=progress, resume_hint=hint).fit()
            return Run(run_dir, given)
        start_seeds(config, seed_list, run_dir, model=given)
        run_seeds(config, run_dir, progress=progress, model=given, resume_hint=hint)
    return SeedsRun(run_dir, given)


def resume(run_dir: str | Path, *, model=None, progress: bool = True) -> "Run | SeedsRun":
    """Continue an interrupted run. `model`: the network again where it was given from
    Python (a class, function or instance), or `file.py:Name` where its recorded file has
    changed or is gone."""
    from tinycnn.engine.provenance import config_to_rebuild
    from tinycnn.engine.rundir import claim, is_multi_seed, read_config
    from tinycnn.engine.trainer import Trainer
    from tinycnn.seeds.runner import run_seeds

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TinycnnError(f"{run_dir}: no such run directory")
    given = None if isinstance(model, str) else model
    hint = _resume_hint(run_dir, given)
    with claim(run_dir):
        config = config_to_rebuild(run_dir, model) if given is None else read_config(run_dir)
        if is_multi_seed(run_dir):
            run_seeds(config, run_dir, progress=progress, model=given, resume_hint=hint)
            return SeedsRun(run_dir, given)
        saved = (run_dir / "last.pt").exists()  # none: no epoch was saved, the run starts again
        Trainer(config, run_dir, model=given, progress=progress, resume_hint=hint).fit(resume=saved)
    return Run(run_dir, given)


def load_run(path: str | Path, *, model=None) -> "Run | SeedsRun":
    """A finished (or interrupted) run directory as the object `train` returns. `model`: the
    network where it was given from Python, or `file.py:Name` to rebuild it from."""
    from tinycnn.engine.rundir import is_multi_seed, read_run

    path = Path(path)
    if is_multi_seed(path):
        return SeedsRun(path, model)
    read_run(path)  # one line when this is no run directory
    return Run(path, model)


@dataclass
class Check:
    """A run's budget check: `.passed`, and `.criteria` (name, passed, measured, required)."""

    passed: bool
    criteria: list
    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Check(passed={self.passed})"

    def __bool__(self) -> bool:
        return self.passed


class Run:
    """One seed's run directory: `.dir`, `.config`, `.metrics`, `.model`, and what the
    commands do with it: `.check()`, `.report()`, `.plot()`, `.evaluate()`."""

    def __init__(self, run_dir: Path, model=None):
        from tinycnn.engine.rundir import read_config

        self.dir = Path(run_dir)
        self.config: TrainConfig = read_config(self.dir)
        self._given = model

    def __repr__(self) -> str:
        done = len(self.metrics)
        return f"Run({str(self.dir)!r}, model={self.config.model!r}, {done} of {self.config.epochs} epochs)"

    @property
    def metrics(self) -> list[dict]:
        """One dict per finished epoch, as metrics.jsonl holds them."""
        from tinycnn.engine.rundir import read_metrics

        return read_metrics(self.dir)

    @property
    def model(self):
        """The trained network in eval mode: the weight average where the run kept one."""
        from tinycnn.engine.checkpoint import load_checkpoint, load_weights

        network = self._network()
        load_weights(network, load_checkpoint(self.dir / "last.pt"), self.dir / "last.pt", self.config.model)
        return network.eval()

    def _network(self):
        """A fresh network of the run's architecture, from its checked file or as given."""
        from tinycnn.engine.provenance import network_builder

        return network_builder(self.dir, self._given)[1]()

    def check(self, spec: str | None = None, last: int | None = None) -> Check:
        """The budget check (the recipe's spec unless `spec`), printed as `tinycnn check` prints it."""
        from tinycnn.seeds.stats import check_run
        from tinycnn.specs import load_spec, render

        loaded = load_spec(spec or self.config.spec)
        criteria, _, _ = check_run(self.dir, loaded, last)
        text = render(criteria, f"{self.dir}: budget {loaded['name']}")
        print(text)
        return Check(all(c.passed for c in criteria), criteria, text)

    def report(self, device: str = "cpu") -> Path:
        """Write report.md and its figures into the run directory; its path."""
        return _report(self.dir, self._given, device)

    def plot(self):
        """The course's 2 x 2 curves (loss and accuracy, train and test) as a matplotlib Figure."""
        from tinycnn.analysis.plots import curves_figure
        from tinycnn.specs import load_spec

        target = load_spec(self.config.spec)["accuracy_at_least"]
        return curves_figure([self.metrics], target=target, title=f"{self.config.name} ({self.config.model})")

    def evaluate(self, device: str = "auto") -> dict:
        """Test (and validation) loss and accuracy of the kept weights, recomputed."""
        from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
        from tinycnn.device import select_device
        from tinycnn.engine.evaluate import evaluate

        c = self.config
        dev = select_device(device)
        network = self.model.to(dev)
        splits = load_splits(c.dataset, val_size=c.val_size, subset=c.subset, device=dev)
        mean, std = NORMALIZATION[c.dataset]
        return {name: evaluate(network, BatchLoader(*splits[name], c.eval_batch_size, mean=mean, std=std))
                for name in ("val", "test") if name in splits}


class SeedsRun:
    """A multi-seed run directory: `.runs` (one Run per seed), `.summary` (over the seeds),
    `.config`, and `.check()`, `.report()`, `.plot()`, `.evaluate()` over all seeds."""

    def __init__(self, run_dir: Path, model=None):
        from tinycnn.engine.rundir import read_config, read_seeds

        self.dir = Path(run_dir)
        self.config: TrainConfig = read_config(self.dir)
        self.seeds: list[int] = read_seeds(self.dir)["seeds"]
        self._given = model

    def __repr__(self) -> str:
        return f"SeedsRun({str(self.dir)!r}, model={self.config.model!r}, seeds={self.seeds})"

    @property
    def runs(self) -> list[Run]:
        return [Run(self.dir / f"seed-{s}", self._given) for s in self.seeds if (self.dir / f"seed-{s}" / "config.toml").exists()]

    @property
    def metrics(self) -> list[list[dict]]:
        """Per seed, one dict per finished epoch."""
        return [run.metrics for run in self.runs]

    @property
    def summary(self) -> dict:
        """summary.json: per seed and over seeds (mean, std, min), and how many seeds pass."""
        from tinycnn.seeds.stats import summarize_seeds

        return summarize_seeds([run.dir for run in self.runs], self.config.spec)

    def check(self, spec: str | None = None, last: int | None = None) -> Check:
        """The budget check of every seed, printed as `tinycnn check` prints a multi-seed run."""
        from tinycnn.seeds.stats import render_summary, summarize_seeds

        result = summarize_seeds([run.dir for run in self.runs], spec or self.config.spec, last)
        text = render_summary(result)
        print(text)
        return Check(result["passing_seeds"] == result["seeds"], result["runs"], text)

    def report(self, device: str = "cpu") -> Path:
        """Write report.md and its figures (bands over the seeds) into the run directory; its path."""
        return _report(self.dir, self._given, device)

    def plot(self):
        """The course's 2 x 2 curves, the mean over seeds with a min-max band."""
        from tinycnn.analysis.plots import curves_figure
        from tinycnn.specs import load_spec

        target = load_spec(self.config.spec)["accuracy_at_least"]
        return curves_figure(self.metrics, target=target, title=f"{self.config.name} ({self.config.model})")

    def evaluate(self, device: str = "auto") -> list[dict]:
        return [run.evaluate(device) for run in self.runs]


def _report(run_dir: Path, given, device: str) -> Path:
    from tinycnn.analysis.report import write_report

    return write_report(run_dir, device=device, model=given)


def _is_module(obj) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module)


def _resume_hint(run_dir: Path, given) -> str:
    if given is None:
        return f"tinycnn train --resume {run_dir} (or tinycnn.resume({str(run_dir)!r}))"
    name = getattr(given, "__name__", type(given).__name__)
    return f"tinycnn.resume({str(run_dir)!r}, model={name})"


def _seed_list(seeds) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, str):
        from tinycnn.seeds.seed_list import parse_seeds  # the syntax of --seeds

        return parse_seeds(seeds)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        raise TinycnnError(f"seeds={seeds}: give a list of seeds, e.g. seeds=[0, 1, 2] or seeds=range({seeds})")
    values = list(seeds) if isinstance(seeds, Iterable) else None
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values) or len(set(values)) != len(values):
        raise TinycnnError(f"seeds={seeds!r}: give distinct non-negative integers, e.g. [0, 1, 2]")
    return values


__all__ = ["create_model", "summary", "train", "resume", "load_run", "Run", "SeedsRun", "Check"]

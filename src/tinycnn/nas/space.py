"""What a search walks: a space names the network (the zoo's `family`, another zoo model, or a
factory of the user's) and the dimensions of its keyword arguments and of the recipe's
training settings. A trial draws one point: (model, model_args, settings).

Built in:
    family            the family's design: convolutions before and after the pool, their widths,
                      padding, the 1x1 transition, the head, dropout; the recipe's settings
    settings          the recipe's training settings (max_lr, pct_start, rotation, dropout,
                      ema, batch size) for its own network
    family+settings   both

From a TOML file:

    recipe = "default"                       # optional: the recipe trials start from
    model = "my_net.py:make_net"             # optional: its keyword arguments are searched
    [model_args]
    width = { choices = [8, 10, 12] }        # a categorical dimension (numbers, strings, lists)
    depth = { low = 3, high = 6 }            # an integer range (both ends integers)
    [settings]
    max_lr = { low = 0.05, high = 0.3, log = true }
    rotation = { low = 0.0, high = 15.0, step = 1.0 }

A file's space is finite when every dimension is (choices, integer ranges, ranges with a step):
its grid, every point once in a seeded order, is searched instead where --trials covers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinycnn.config import FIELD_TYPES, anchor_model_file, read_toml
from tinycnn.errors import TinycnnError

SETTINGS = ("max_lr", "pct_start", "rotation", "dropout", "ema", "batch_size")


@dataclass
class Point:
    """One trial's network and settings."""

    model: str | None  # None: the recipe's
    model_args: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


@dataclass
class Space:
    name: str
    sample: Callable[[Any], Point]  # an Optuna trial -> a Point
    recipe: str | None = None  # the recipe trials start from, where the space names one
    grid: dict[str, list] | None = None  # every value of every dimension, by its Optuna name; None: not finite

    @property
    def size(self) -> int | None:
        """How many points the space holds, where it is finite."""
        return math.prod(len(values) for values in self.grid.values()) if self.grid is not None else None

    def walked_by(self, trials: int) -> bool:
        """Whether `trials` reach every point: the search then walks the grid, each point once."""
        return self.size is not None and self.size <= trials


def family_design(trial) -> dict:
    before = trial.suggest_int("convs_before_pool", 1, 3)
    after = trial.suggest_int("convs_after_pool", 2, 5)
    widths = [trial.suggest_int(f"width_{i + 1}", 4, 16, step=2) for i in range(before + after)]
    return {
        "widths": widths,
        "pool_after": before,
        "padded": trial.suggest_int("padded", 0, before),
        "transition": trial.suggest_categorical("transition", [0, 6, 8, 10]),
        "head": trial.suggest_categorical("head", ["gap", "fc"]),
    }


def training_settings(trial) -> dict:
    return {
        "max_lr": trial.suggest_float("max_lr", 0.03, 0.4, log=True),
        "pct_start": trial.suggest_float("pct_start", 0.15, 0.45),
        "rotation": trial.suggest_float("rotation", 0.0, 15.0, step=1.0),
        "ema": trial.suggest_categorical("ema", [0.0, 0.99, 0.995, 0.999]),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "dropout": trial.suggest_categorical("dropout", [0.0, 0.03, 0.05, 0.1]),
    }


def dropout(trial) -> dict:
    return {"dropout": trial.suggest_categorical("dropout", [0.0, 0.03, 0.05, 0.1])}


BUILT_IN = {
    "family": lambda trial: Point("family", family_design(trial), dropout(trial)),
    "settings": lambda trial: Point(None, {}, training_settings(trial)),
    "family+settings": lambda trial: Point("family", family_design(trial), training_settings(trial)),
}


def load_space(name_or_file: str) -> Space:
    """A built-in space by name, or a TOML file's."""
    if name_or_file in BUILT_IN:
        return Space(name_or_file, BUILT_IN[name_or_file])
    path = Path(name_or_file)
    if path.suffix != ".toml":
        raise TinycnnError(f"unknown search space {name_or_file!r}; choose {', '.join(BUILT_IN)} or a .toml file")
    values = read_toml(path)
    unknown = sorted(set(values) - {"recipe", "model", "model_args", "settings"})
    if unknown:
        raise TinycnnError(f"{path}: unknown key {unknown[0]!r}; a space has recipe, model, [model_args] and [settings]")
    model = values.get("model")
    if model is not None and not isinstance(model, str):
        raise TinycnnError(f"{path}: model should be a zoo name or path/to/file.py:Name")
    model = anchor_model_file(model, path.parent) if model else None
    model_dims = _dimensions(values.get("model_args", {}), f"{path}, [model_args]", "model.")
    setting_dims = _dimensions(values.get("settings", {}), f"{path}, [settings]")
    unknown_settings = sorted(set(setting_dims) - set(FIELD_TYPES))
    if unknown_settings:
        raise TinycnnError(f"{path}, [settings]: {unknown_settings[0]!r} is not a recipe key")
    if not model_dims and not setting_dims:
        raise TinycnnError(f"{path}: no dimensions to search; give [model_args] or [settings]")
    recipe = values.get("recipe")
    if recipe is not None and not isinstance(recipe, str):
        raise TinycnnError(f"{path}: recipe should be a recipe name")

    dimensions = {**model_dims, **setting_dims}

    def sample(trial) -> Point:
        return Point(model, {k[len("model."):]: model_dims[k].draw(trial) for k in model_dims},
                     {k: d.draw(trial) for k, d in setting_dims.items()})

    finite = all(d.values is not None for d in dimensions.values())
    grid = {d.name: d.values for d in dimensions.values()} if finite else None
    return Space(path.stem, sample, recipe, grid)


@dataclass
class Dimension:
    name: str  # the parameter's name in the study
    draw: Callable[[Any], Any]  # an Optuna trial -> the value
    values: list | None  # every value the study can record for it; None: a continuous range


def _dimensions(table: Any, where: str, prefix: str = "") -> dict[str, Dimension]:
    """{prefix + name: its Dimension} for each dimension of a TOML table."""
    if not isinstance(table, dict):
        raise TinycnnError(f"{where}: should be a table of dimensions")
    return {prefix + name: _dimension(spec, f"{where} {name}", prefix + name) for name, spec in table.items()}


def _dimension(spec: Any, where: str, label: str) -> Dimension:
    if not isinstance(spec, dict):
        raise TinycnnError(f"{where}: should be {{ choices = [...] }} or {{ low = ..., high = ... }}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise TinycnnError(f"{where}: choices should be a non-empty list")
        scalar = all(isinstance(c, (bool, int, float, str)) for c in choices)
        if scalar:
            return Dimension(label, lambda trial: trial.suggest_categorical(label, choices), list(choices))
        # Optuna takes scalars only: a list (e.g. widths) is drawn by its index
        indices = list(range(len(choices)))
        return Dimension(label + "#", lambda trial: choices[trial.suggest_categorical(label + "#", indices)], indices)
    if "low" in spec and "high" in spec:
        low, high = spec["low"], spec["high"]
        log, step = bool(spec.get("log", False)), spec.get("step")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or low >= high:
            raise TinycnnError(f"{where}: low and high should be numbers with low < high")
        if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0):
            raise TinycnnError(f"{where}: step should be a number > 0")
        if isinstance(low, int) and isinstance(high, int) and not isinstance(step, float):
            return Dimension(label, lambda trial: trial.suggest_int(label, low, high, step=step or 1, log=log),
                             list(range(low, high + 1, step or 1)))
        values = None
        if step is not None:  # Optuna's grid of a stepped range: low, low + step, ... up to high
            values = [float(low) + i * step for i in range(math.floor((high - low) / step + 1e-9) + 1)]
        return Dimension(label, lambda trial: trial.suggest_float(label, float(low), float(high), step=step, log=log),
                         values)
    raise TinycnnError(f"{where}: should be {{ choices = [...] }} or {{ low = ..., high = ... }}")

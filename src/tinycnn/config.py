"""Every knob of a training run, in one place, with its check.

A recipe (TOML) is a partial TrainConfig; command-line flags override it; the result is
validated once and saved next to the run as `config.toml`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tinycnn.errors import TinycnnError

MAX_SEED = 2**32 - 1  # the epoch generators' seeds (seed * 1,000,003 + epoch) stay within torch's 64 bits
AUTO = "auto"  # compile and amp: decided for the machine when a run is created (speed/auto_settings.py)

CHOICES = {
    "optimizer": ("sgd", "adam", "adamw"),
    "scheduler": ("none", "step", "onecycle", "exp", "cosine"),
    "device": ("auto", "cpu", "cuda"),
    "interpolation": ("bilinear", "nearest"),
    "dataset": ("mnist", "fashion-mnist"),
}


@dataclass
class TrainConfig:
    # What is trained.
    name: str = "custom"  # the recipe's name; names the run directory
    description: str = ""  # one line: what this recipe reproduces or tries
    source: str = ""  # where it comes from (write-up and link)
    spec: str = "era-s7"  # the budget this run is checked against (tinycnn check)
    model: str = "era-s7-6750"  # a name from `tinycnn models`, or path/to/file.py:Name
    model_args: dict = field(default_factory=dict)  # keyword arguments for the model's factory (e.g. family's widths)
    dropout: float | None = None  # None: the model's own default rate
    dataset: str = "mnist"

    # How long and how big.
    epochs: int = 15
    batch_size: int = 128
    eval_batch_size: int = 256  # evaluation only, no effect on results; the CPU's fastest (docs/performance.md)

    # Optimiser.
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9  # SGD momentum; beta1 for Adam(W)
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of the weight average that is evaluated and kept (engine/weight_average.py); 0: off

    # Learning-rate schedule. onecycle is stepped every batch, the others every epoch.
    scheduler: str = "none"
    max_lr: float = 0.1  # onecycle peak
    pct_start: float = 0.3  # onecycle: fraction of steps spent rising
    div_factor: float = 25.0  # onecycle: initial lr = max_lr / div_factor
    final_div_factor: float = 1e4  # onecycle: final lr = initial lr / final_div_factor
    step_size: int = 6  # step: epochs between decays
    gamma: float = 0.1  # step and exp: decay factor

    # Augmentation (batched, on the device; see loader.Augment).
    rotation: float = 0.0  # degrees
    translate: float = 0.0  # fraction of the image
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    shear: float = 0.0  # degrees
    erasing: float = 0.0  # probability
    interpolation: str = "bilinear"

    # Data split.
    val_size: int = 0  # images carved from the 60,000 for validation
    subset: int | None = None  # use only N train (and <= N test) images: a smoke run

    # Execution.
    seed: int = 0
    device: str = "auto"
    amp: bool | str = False  # bf16 autocast; "auto": where the CPU has native bf16
    compile: bool | str = False  # torch.compile; "auto": on the CPU, for runs long enough to win it back
    channels_last: bool = False
    fast_dropout: bool = True  # cheap dropout masks (speed/fast_dropout.py): same distribution, faster steps
    deterministic: bool = False  # deterministic algorithms; exact resume on the CPU
    cuda_graphs: bool = True  # on a GPU: each step's forward and backward replayed as one CUDA graph (graph_step.py)
    threads: int = 0  # torch intra-op threads; 0 = torch's default (the physical cores)

    def validate(self) -> "TrainConfig":
        for key, options in CHOICES.items():
            if getattr(self, key) not in options:
                raise TinycnnError(f"{key} = {getattr(self, key)!r} is not one of: {', '.join(options)}")
        positive_ints = ("epochs", "batch_size", "eval_batch_size", "step_size")
        for key in positive_ints:
            if getattr(self, key) < 1:
                raise TinycnnError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("lr", "max_lr", "div_factor", "final_div_factor", "gamma"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise TinycnnError(f"{key} must be a positive number, got {value}")
        for key in ("momentum", "weight_decay", "rotation", "translate", "shear"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise TinycnnError(f"{key} must be >= 0, got {value}")
        for key in ("label_smoothing", "erasing", "pct_start", "ema"):
            if not (0 <= getattr(self, key) < 1 or (key == "erasing" and getattr(self, key) == 1)):
                raise TinycnnError(f"{key} must be in [0, 1), got {getattr(self, key)}")
        if self.dropout is not None and not (0 <= self.dropout < 1):
            raise TinycnnError(f"dropout must be in [0, 1), got {self.dropout}")
        if len(self.scale) != 2 or not (0 < self.scale[0] <= self.scale[1]):
            raise TinycnnError(f"scale must be [lo, hi] with 0 < lo <= hi, got {self.scale}")
        for key in ("amp", "compile"):
            if not isinstance(getattr(self, key), bool) and getattr(self, key) != AUTO:
                raise TinycnnError(f'{key} must be true, false or "{AUTO}", got {getattr(self, key)!r}')
        if not 0 <= self.seed <= MAX_SEED:
            raise TinycnnError(f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        if self.val_size < 0 or (self.subset is not None and self.subset < 1) or self.threads < 0:
            raise TinycnnError("val_size and threads must be >= 0 and subset >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changes_from(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """{key: (other's value, this value)} for the keys that differ, run bookkeeping left out."""
        skip = {"name", "description", "source", "seed"}
        a, b = other.to_dict(), self.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in skip and a[k] != b[k]}


FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}


def _coerce(key: str, value: Any, where: str) -> Any:
    """Check a recipe value against the field's type; ints are accepted where floats are."""
    kind = FIELD_TYPES[key]
    if value is None and kind.endswith("| None"):
        return None
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "bool | str": isinstance(value, bool) or value == AUTO,
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "float | None": isinstance(value, (int, float)) and not isinstance(value, bool),
        "int | None": isinstance(value, int) and not isinstance(value, bool),
        "list[float]": isinstance(value, list) and all(isinstance(v, (int, float)) for v in value),
        "dict": isinstance(value, dict) and all(isinstance(k, str) for k in value),
    }[kind]
    if not ok:
        wanted = (kind.replace(" | None", "").replace("list[float]", "a list of numbers").replace("bool | str", f'true, false or "{AUTO}"')
                  .replace("dict", "a table of keyword arguments"))
        raise TinycnnError(f"{where}: {key} = {value!r} should be {wanted}")
    if kind.startswith("float"):
        return float(value)
    if kind == "list[float]":
        return [float(v) for v in value]
    return value


def config_from_dict(values: dict[str, Any], where: str = "recipe") -> TrainConfig:
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        import difflib

        hints = [difflib.get_close_matches(k, FIELD_TYPES, n=1) for k in unknown]
        said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in zip(unknown, hints))
        raise TinycnnError(f"{where}: unknown key {said}")
    return TrainConfig(**{k: _coerce(k, v, where) for k, v in values.items()})


def anchor_model_file(model: str, base: Path) -> str:
    """`model` with the file of a `path/to/file.py:Name` spec made absolute against `base` (the
    directory of the recipe or experiment file that names it); anything else as it is."""
    where, sep, name = model.rpartition(":")
    if not sep or not (where.endswith(".py") or "/" in where or "\\" in where):
        return model
    path = Path(where).expanduser()
    return model if path.is_absolute() else f"{(base / path).resolve()}:{name}"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise TinycnnError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise TinycnnError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise TinycnnError(f"{path}: not UTF-8 text, as TOML must be") from None
    except IsADirectoryError:
        raise TinycnnError(f"{path}: a directory, not a TOML file") from None


def to_toml(values: dict[str, Any]) -> str:
    """A flat dict of scalars and lists as TOML (None values are left out)."""

    def literal(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(literal(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{key} = {literal(x)}" for key, x in v.items()) + " }" if v else "{}"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    return "".join(f"{k} = {literal(v)}\n" for k, v in values.items() if v is not None)

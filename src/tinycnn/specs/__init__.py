"""Budget specs: what an assignment asks of a run (parameters, epochs, accuracy held over the
last K epochs, layers it must use), as TOML files here or the user's, and each criterion's
PASS/FAIL with the measured value.

    tinycnn check RUN_DIR [--spec era-s6|era-s7|FILE.toml] [--last K]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinycnn.config import read_toml
from tinycnn.errors import TinycnnError

SPEC_DIR = Path(__file__).parent
SPEC_KEYS = {
    "description": str,
    "params_below": int,
    "epochs_at_most": int,
    "accuracy_at_least": float,
    "last_k": int,
    "require_batchnorm": bool,
    "require_dropout": bool,
    "require_gap_or_fc": bool,
}


@dataclass
class Criterion:
    name: str
    passed: bool
    measured: str
    required: str


def list_specs() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.toml"))


def load_spec(name_or_file: str) -> dict:
    path = Path(name_or_file)
    if path.suffix != ".toml":
        path = SPEC_DIR / f"{name_or_file}.toml"
        if not path.exists():
            raise TinycnnError(f"unknown spec {name_or_file!r}; choose {', '.join(list_specs())} or a .toml file")
    spec = read_toml(path)
    for key, value in spec.items():
        kind = SPEC_KEYS.get(key)
        if kind is None:
            raise TinycnnError(f"{path}: unknown key {key!r}; known: {', '.join(SPEC_KEYS)}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = spec[key] = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TinycnnError(f"{path}: {key} = {value!r} should be {kind.__name__}")
    missing = [k for k in ("params_below", "epochs_at_most", "accuracy_at_least") if k not in spec]
    if missing:
        raise TinycnnError(f"{path}: missing {', '.join(missing)}")
    spec.setdefault("last_k", 1)
    spec["name"] = path.stem
    return spec


def accuracy_criterion(spec: dict, test_acc: list[float], last_k: int | None = None) -> Criterion:
    """The spec's accuracy target on the last K epochs (K: the spec's own unless given)."""
    k = last_k if last_k is not None else spec.get("last_k", 1)
    target = spec["accuracy_at_least"]
    if len(test_acc) < k:
        return Criterion(f"test accuracy, last {k} epochs", False, f"only {len(test_acc)} epochs", f">= {target}% in each")
    last = test_acc[-k:]
    shown = ", ".join(f"{a:.2f}" for a in last)
    return Criterion(f"test accuracy, each of last {k}" if k > 1 else "test accuracy, final epoch", min(last) >= target, shown, f">= {target}%")


def evaluate_spec(spec: dict, facts: dict, test_acc: list[float], last_k: int | None = None) -> list[Criterion]:
    """facts: params, epochs, full_data, has_batchnorm, has_dropout, has_gap, has_linear;
    with planned_epochs (and status), whether the run finished its schedule too.

    test_acc: test accuracy (%) per epoch, in order.
    """
    k = last_k if last_k is not None else spec.get("last_k", 1)
    if k < 1:
        raise TinycnnError(f"--last must be >= 1, got {k}")
    out = [
        Criterion("parameters", facts["params"] < spec["params_below"], f"{facts['params']:,}", f"< {spec['params_below']:,}"),
        Criterion("epochs", facts["epochs"] <= spec["epochs_at_most"], str(facts["epochs"]), f"<= {spec['epochs_at_most']}"),
    ]
    if "planned_epochs" in facts:  # a run judged from its files: it must have finished what it set out to do
        out.append(finished_criterion(facts.get("status"), facts["epochs"], facts["planned_epochs"]))
    out.append(accuracy_criterion(spec, test_acc, k))
    out.append(Criterion("full train and test sets", bool(facts.get("full_data", True)), "yes" if facts.get("full_data", True) else "subset", "no --subset"))
    if spec.get("require_batchnorm"):
        out.append(Criterion("uses BatchNorm", bool(facts["has_batchnorm"]), _yes(facts["has_batchnorm"]), "yes"))
    if spec.get("require_dropout"):
        out.append(Criterion("uses dropout", bool(facts["has_dropout"]), _yes(facts["has_dropout"]), "yes"))
    if spec.get("require_gap_or_fc"):
        both = f"GAP {_yes(facts['has_gap'])}, FC {_yes(facts['has_linear'])}"
        out.append(Criterion("GAP or fully connected", bool(facts["has_gap"] or facts["has_linear"]), both, "either"))
    return out


def finished_criterion(status: str | None, epochs: int, planned: int) -> Criterion:
    """A run that stopped before the end of its schedule (interrupted, killed, stopped by a
    full disk) does not pass, whatever its epochs so far show."""
    done = status == "finished" and epochs == planned
    return Criterion("run finished", done, f"{status or 'unknown'}, {epochs} of {planned} epochs", "its whole schedule")


def _yes(flag) -> str:
    return "yes" if flag else "no"


def render(criteria: list[Criterion], title: str = "") -> str:
    width = max(len(c.name) for c in criteria)
    lines = [title] if title else []
    for c in criteria:
        lines.append(f"  {'PASS' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.measured}  (needs {c.required})")
    verdict = "meets" if all(c.passed for c in criteria) else "does NOT meet"
    lines.append(f"  => {verdict} the budget")
    return "\n".join(lines)

"""Backpropagation by hand: the 2-2-2 sigmoid network of the ERA Session 6 sheet, in plain floats.

    tinycnn backprop                      # backprop/backprop.csv, backprop.xlsx, error_vs_lr.png
    tinycnn backprop --explain            # the chain rule for each weight, then iteration 1's numbers

The network, with no biases:

    h1 = w1*i1 + w2*i2        a_h1 = sigmoid(h1)        o1 = w5*a_h1 + w6*a_h2    a_o1 = sigmoid(o1)
    h2 = w3*i1 + w4*i2        a_h2 = sigmoid(h2)        o2 = w7*a_h1 + w8*a_h2    a_o2 = sigmoid(o2)
    E1 = 1/2*(t1 - a_o1)^2    E2 = 1/2*(t2 - a_o2)^2    E_total = E1 + E2

Each iteration runs the forward pass, the eight partial derivatives in closed form (no autograd),
then w <- w - lr * dE_total/dw for all eight weights at once. `EXPRESSIONS` holds the same maths
as text: `--explain` prints it and the spreadsheet turns it into live cell formulas.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.atomic import atomic_open, atomic_write_text
from tinycnn.errors import TinycnnError

# The defaults of the classic sheet: one knob per line.
DEFAULTS = {
    "inputs": (0.05, 0.1),  # i1, i2
    "targets": (0.5, 0.5),  # t1, t2
    "weights": (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55),  # w1..w8 before the first update
    "lrs": (0.1, 0.2, 0.5, 0.8, 1.0, 2.0),  # one run per learning rate
    "iterations": 68,  # rows per run; row 1 holds the initial weights
}
MAX_ITERATIONS = 100_000  # keeps every sheet well inside a spreadsheet's row limit

WEIGHTS = [f"w{k}" for k in range(1, 9)]
GRADS = [f"dE_total/dw{k}" for k in range(1, 9)]
FORWARD = ["h1", "h2", "a_h1", "a_h2", "o1", "o2", "a_o1", "a_o2", "E1", "E2", "E_total"]
COLUMNS = ["lr", "iteration", *WEIGHTS, *FORWARD, *GRADS]

# Every computed value as an expression of the ones before it; names are the CSV columns plus
# i1, i2, t1, t2. Display text for --explain and the sheet; the spreadsheet's formulas are built
# from these strings, so the text, the formulas and the code below must say the same thing.
_D1 = "(a_o1 - t1) * a_o1 * (1 - a_o1)"  # dE_total/do1
_D2 = "(a_o2 - t2) * a_o2 * (1 - a_o2)"  # dE_total/do2
EXPRESSIONS = {
    "h1": "w1 * i1 + w2 * i2",
    "h2": "w3 * i1 + w4 * i2",
    "a_h1": "1 / (1 + exp(-h1))",
    "a_h2": "1 / (1 + exp(-h2))",
    "o1": "w5 * a_h1 + w6 * a_h2",
    "o2": "w7 * a_h1 + w8 * a_h2",
    "a_o1": "1 / (1 + exp(-o1))",
    "a_o2": "1 / (1 + exp(-o2))",
    "E1": "1/2 * (t1 - a_o1)^2",
    "E2": "1/2 * (t2 - a_o2)^2",
    "E_total": "E1 + E2",
    "dE_total/dw1": f"({_D1} * w5 + {_D2} * w7) * a_h1 * (1 - a_h1) * i1",
    "dE_total/dw2": f"({_D1} * w5 + {_D2} * w7) * a_h1 * (1 - a_h1) * i2",
    "dE_total/dw3": f"({_D1} * w6 + {_D2} * w8) * a_h2 * (1 - a_h2) * i1",
    "dE_total/dw4": f"({_D1} * w6 + {_D2} * w8) * a_h2 * (1 - a_h2) * i2",
    "dE_total/dw5": f"{_D1} * a_h1",
    "dE_total/dw6": f"{_D1} * a_h2",
    "dE_total/dw7": f"{_D2} * a_h1",
    "dE_total/dw8": f"{_D2} * a_h2",
}
UPDATE = "w_next = w - lr * dE_total/dw  (all eight weights at once)"

# The chain rule written out, step by step; printed by --explain and kept as a sheet.
DERIVATION = [
    "Forward pass (no biases):",
    *(f"  {name} = {EXPRESSIONS[name]}" for name in FORWARD),
    "",
    "Pieces:",
    "  dE_total/da_o1 = a_o1 - t1                 (only E1 depends on a_o1)",
    "  da_o1/do1 = a_o1 * (1 - a_o1)               (sigmoid'(x) = sigmoid(x) * (1 - sigmoid(x)))",
    "  do1/dw5 = a_h1,  do1/dw6 = a_h2,  do1/da_h1 = w5,  do1/da_h2 = w6",
    "  do2/dw7 = a_h1,  do2/dw8 = a_h2,  do2/da_h1 = w7,  do2/da_h2 = w8",
    "  da_h1/dh1 = a_h1 * (1 - a_h1),  dh1/dw1 = i1,  dh1/dw2 = i2",
    "  da_h2/dh2 = a_h2 * (1 - a_h2),  dh2/dw3 = i1,  dh2/dw4 = i2",
    "",
    "Output layer: one path from E_total to each weight:",
    "  dE_total/dw5 = dE_total/da_o1 * da_o1/do1 * do1/dw5",
    *(f"  dE_total/dw{k} = {EXPRESSIONS[f'dE_total/dw{k}']}" for k in (5, 6, 7, 8)),
    "",
    "Hidden layer: a_h1 feeds both o1 and o2, so its two paths add up:",
    f"  dE_total/da_h1 = dE1/da_h1 + dE2/da_h1 = {_D1} * w5 + {_D2} * w7",
    f"  dE_total/da_h2 = dE1/da_h2 + dE2/da_h2 = {_D1} * w6 + {_D2} * w8",
    "  dE_total/dw1 = dE_total/da_h1 * da_h1/dh1 * dh1/dw1",
    *(f"  dE_total/dw{k} = {EXPRESSIONS[f'dE_total/dw{k}']}" for k in (1, 2, 3, 4)),
    "",
    "Update:",
    f"  {UPDATE}",
]


@dataclass
class Setup:
    """One experiment: the network's fixed values and the learning rates to compare."""

    lrs: list[float] = field(default_factory=lambda: list(DEFAULTS["lrs"]))
    iterations: int = DEFAULTS["iterations"]
    inputs: list[float] = field(default_factory=lambda: list(DEFAULTS["inputs"]))
    targets: list[float] = field(default_factory=lambda: list(DEFAULTS["targets"]))
    weights: list[float] = field(default_factory=lambda: list(DEFAULTS["weights"]))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # same value, without overflow for very negative x
    return e / (1.0 + e)


def forward(weights, inputs, targets) -> dict[str, float]:
    """The forward pass and the errors, named as in `FORWARD`."""
    w1, w2, w3, w4, w5, w6, w7, w8 = weights
    i1, i2 = inputs
    t1, t2 = targets
    h1 = w1 * i1 + w2 * i2
    h2 = w3 * i1 + w4 * i2
    a_h1, a_h2 = sigmoid(h1), sigmoid(h2)
    o1 = w5 * a_h1 + w6 * a_h2
    o2 = w7 * a_h1 + w8 * a_h2
    a_o1, a_o2 = sigmoid(o1), sigmoid(o2)
    E1 = 0.5 * (t1 - a_o1) ** 2
    E2 = 0.5 * (t2 - a_o2) ** 2
    return dict(h1=h1, h2=h2, a_h1=a_h1, a_h2=a_h2, o1=o1, o2=o2,
                a_o1=a_o1, a_o2=a_o2, E1=E1, E2=E2, E_total=E1 + E2)


def gradients(weights, inputs, targets, f: dict[str, float] | None = None) -> list[float]:
    """dE_total/dw1..dw8 by the chain rule (see `DERIVATION`); `f` is `forward`'s result if known."""
    f = f or forward(weights, inputs, targets)
    _, _, _, _, w5, w6, w7, w8 = weights
    i1, i2 = inputs
    t1, t2 = targets
    a_h1, a_h2, a_o1, a_o2 = f["a_h1"], f["a_h2"], f["a_o1"], f["a_o2"]
    d_o1 = (a_o1 - t1) * a_o1 * (1 - a_o1)  # dE_total/do1
    d_o2 = (a_o2 - t2) * a_o2 * (1 - a_o2)  # dE_total/do2
    d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1 - a_h1)  # dE_total/dh1
    d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1 - a_h2)  # dE_total/dh2
    return [d_h1 * i1, d_h1 * i2, d_h2 * i1, d_h2 * i2,
            d_o1 * a_h1, d_o1 * a_h2, d_o2 * a_h1, d_o2 * a_h2]


def step(weights, grads, lr: float) -> list[float]:
    """One gradient-descent update of all eight weights together."""
    return [w - lr * g for w, g in zip(weights, grads)]


def train(lr: float, iterations: int, weights, inputs, targets) -> list[dict]:
    """`iterations` rows: the weights an iteration starts from, its forward pass and its gradients."""
    rows, w = [], list(weights)
    for it in range(1, iterations + 1):
        f = forward(w, inputs, targets)
        g = gradients(w, inputs, targets, f)
        rows.append({"lr": lr, "iteration": it, **dict(zip(WEIGHTS, w)), **f, **dict(zip(GRADS, g))})
        w = step(w, g, lr)
    return rows


def run_all(setup: Setup) -> dict[float, list[dict]]:
    """One run per learning rate, in the order given."""
    return {lr: train(lr, setup.iterations, setup.weights, setup.inputs, setup.targets)
            for lr in setup.lrs}


# ---- checking what the user typed -------------------------------------------------------------

def parse_numbers(text: str, flag: str, count: int | None = None) -> list[float]:
    """'0.1,0.2' -> [0.1, 0.2]; a TinycnnError naming `flag` for anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise TinycnnError(f"{flag}: {p!r} is not a number; give comma-separated numbers, e.g. {flag} 0.1,0.2") from None
        if not math.isfinite(v):
            raise TinycnnError(f"{flag}: {p!r} is not a finite number; give finite comma-separated numbers")
        values.append(v)
    if count is not None and len(values) != count:
        raise TinycnnError(f"{flag}: expected {count} comma-separated numbers, got {len(values)} ({text!r})")
    return values


def parse_setup(lrs: str, iterations: str, inputs: str, targets: str, weights: str) -> Setup:
    """Turn the command line's strings into a checked `Setup`."""
    lr_list = parse_numbers(lrs, "--lrs")
    for lr in lr_list:
        if lr < 0:
            raise TinycnnError(f"--lrs: learning rate {lr!r} is negative; use rates >= 0")
    if len(set(lr_list)) != len(lr_list):
        raise TinycnnError(f"--lrs: learning rates repeat ({lrs!r}); list each rate once")
    try:
        n = int(str(iterations).strip())
    except ValueError:
        raise TinycnnError(f"--iterations: {iterations!r} is not a whole number; e.g. --iterations 68") from None
    if not 1 <= n <= MAX_ITERATIONS:
        raise TinycnnError(f"--iterations: {n} is out of range; use 1 to {MAX_ITERATIONS}")
    return Setup(lrs=lr_list, iterations=n,
                 inputs=parse_numbers(inputs, "--inputs", 2),
                 targets=parse_numbers(targets, "--targets", 2),
                 weights=parse_numbers(weights, "--weights", 8))


# ---- files ------------------------------------------------------------------------------------

def write_csv(path: Path, runs: dict[float, list[dict]]) -> Path:
    """One row per (lr, iteration), floats in full precision (repr)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(COLUMNS)
    for rows in runs.values():
        for row in rows:
            out.writerow([row["iteration"] if c == "iteration" else repr(float(row[c])) for c in COLUMNS])

    atomic_write_text(path, buf.getvalue())
    return Path(path)


def plot_error(path: Path, runs: dict[float, list[dict]]) -> Path:
    """E_total against iteration, one line per learning rate."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=120)
    ax = fig.add_subplot()
    for lr, rows in runs.items():
        ax.plot([r["iteration"] for r in rows], [r["E_total"] for r in rows], label=f"lr = {lr:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("E_total")
    ax.set_title("Backprop by hand: E_total against iteration for each learning rate")
    ax.grid(True, alpha=0.3)
    ax.legend(title="learning rate")
    fig.tight_layout()
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png")
    return Path(path)


def explain(setup: Setup) -> str:
    """The chain rule for each weight, then the first iteration's numbers."""
    w = setup.weights
    f = forward(w, setup.inputs, setup.targets)
    g = gradients(w, setup.inputs, setup.targets, f)
    named = {"i1": setup.inputs[0], "i2": setup.inputs[1], "t1": setup.targets[0],
             "t2": setup.targets[1], **dict(zip(WEIGHTS, w))}
    lines = [*DERIVATION, "", "Iteration 1:"]
    lines += [f"  {k:<13} = {v!r}" for k, v in named.items()]
    lines += [f"  {k:<13} = {v!r}" for k, v in f.items()]
    lines += [f"  {k:<13} = {v!r}" for k, v in zip(GRADS, g)]
    for lr in setup.lrs:
        nxt = ", ".join(f"{x:.9f}" for x in step(w, g, lr))
        lines.append(f"  lr = {lr:g}: w1..w8 for iteration 2 = {nxt}")
    return "\n".join(lines)

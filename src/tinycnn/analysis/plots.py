"""Every figure tinycnn draws, as functions of plain numbers: path in, PNG out.

    from tinycnn.analysis.plots import plot_curves
    plot_curves("curves.png", [metrics], target=99.4, title="era-s7-step6")

The figures are drawn on a bare matplotlib `Figure` (the Agg canvas, no pyplot and no
display), saved at a fixed size (the SIZE_* constants at DPI, never cropped) and written
atomically. Callers import this module inside their `run()`, so matplotlib loads only
when a figure is made.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from tinycnn.atomic import atomic_write_bytes

DPI = 100
# (width, height) in inches; a PNG is width*DPI x height*DPI pixels.
SIZE_CURVES = (12, 8)
SIZE_LR = (9, 4.5)
SIZE_GRID = (10, 11)
SIZE_CONFUSION = (14, 6)
SIZE_OVERLAY = (10, 6)
SIZE_LR_FIND = (9, 5.5)
SIZE_LR_SWEEP = (10, 6)
SIZE_FRONTIER = (12, 6)

TARGET_STYLE = dict(color="tab:red", linestyle="--", linewidth=1.0)


class InlineFigure(Figure):
    """A Figure that Jupyter shows as a PNG when a cell returns it, pyplot or not."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()


def new_figure(size: tuple[float, float]) -> Figure:
    fig = InlineFigure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Render at exactly the figure's size and write the PNG atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def ema(values: Sequence[float], factor: float = 0.05) -> list[float]:
    """Exponential smoothing s_i = f * x_i + (1 - f) * s_(i-1), starting at s_0 = x_0."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else factor * v + (1 - factor) * out[-1])
    return out


def _stack(runs: list[list[dict]], key: str) -> np.ndarray | None:
    """(seeds, epochs) array of `key` over the epochs every run has; None if a run lacks it."""
    n = min(len(r) for r in runs)
    if n == 0 or any(key not in m for r in runs for m in r[:n]):
        return None
    return np.array([[m[key] for m in r[:n]] for r in runs], dtype=float)


def _band(ax, epochs, values: np.ndarray, label: str, color, style="-") -> None:
    """One line, or the mean with a min-max band when there are several seeds."""
    if values.shape[0] == 1:
        ax.plot(epochs, values[0], style, color=color, marker="o", markersize=3, label=label)
        return
    ax.plot(epochs, values.mean(0), style, color=color, marker="o", markersize=3, label=label)
    ax.fill_between(epochs, values.min(0), values.max(0), color=color, alpha=0.2, linewidth=0)


def plot_curves(path, runs: list[list[dict]], *, target: float, title: str) -> Path:
    """curves_figure, saved as a PNG."""
    return save(curves_figure(runs, target=target, title=title), path)


def curves_figure(runs: list[list[dict]], *, target: float, title: str) -> Figure:
    """The course's 2 x 2 figure: train/test loss (top), train/test accuracy (bottom).

    runs: one metrics list (metrics.jsonl rows) per seed. With several seeds each panel
    shows the mean and the min-max band. Validation, when present, joins the test panels,
    and so do the trained weights' test accuracy where the run evaluated a weight average.
    """
    fig = new_figure(SIZE_CURVES)
    axes = fig.subplots(2, 2)
    panels = [
        (axes[0, 0], "train_loss", None, "Training loss"),
        (axes[0, 1], "test_loss", "val_loss", "Test loss"),
        (axes[1, 0], "train_acc", None, "Training accuracy (%)"),
        (axes[1, 1], "test_acc", "val_acc", "Test accuracy (%)"),
    ]
    n = min(len(r) for r in runs)
    epochs = np.arange(1, n + 1)
    for ax, key, val_key, name in panels:
        values = _stack(runs, key)
        raw = _stack(runs, "raw_test_acc") if key == "test_acc" else None  # a run with a weight average (`ema`)
        if values is not None:
            _band(ax, epochs, values, key.split("_")[0] + (", weight average" if raw is not None else ""), "tab:blue")
        val = _stack(runs, val_key) if val_key else None
        if val is not None:
            _band(ax, epochs, val, "validation", "tab:orange", "--")
        if raw is not None:
            _band(ax, epochs, raw, "test, trained weights (no average)", "tab:gray", ":")
        if key.endswith("acc"):
            ax.axhline(target, **TARGET_STYLE, label=f"{target:g}% target")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if n <= 20:
            ax.set_xticks(epochs)
        ax.legend(fontsize=8)
    seeds = len(runs)
    fig.suptitle(title + (f": mean over {seeds} seeds, shaded from min to max" if seeds > 1 else ""))
    fig.tight_layout()
    return fig


def plot_lr(path, *, schedule: list[float] | None, steps_per_epoch: int, logged: list[dict], title: str) -> Path:
    """Learning rate against epoch: the per-batch schedule as a line, the logged values as dots.

    logged: metrics rows; `lr_first` is the rate of an epoch's first batch, `lr` of its last.
    """
    fig = new_figure(SIZE_LR)
    ax = fig.add_subplot()
    if schedule:
        x = np.arange(len(schedule)) / steps_per_epoch
        ax.plot(x, schedule, color="tab:blue", linewidth=1.5, label="per batch (rebuilt from the config)")
    first = [(m["epoch"] - 1, m["lr_first"]) for m in logged if "lr_first" in m]
    last = [(m["epoch"] - 1 / steps_per_epoch, m["lr"]) for m in logged if "lr" in m]
    if first:
        ax.plot(*zip(*first), "o", color="tab:green", markersize=5, label="logged: first batch of the epoch")
    if last:
        ax.plot(*zip(*last), "x", color="tab:red", markersize=6, label="logged: last batch of the epoch")
    values = [v for v in (schedule or [])] + [v for _, v in first + last]
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")
    elif values:
        ax.set_ylim(0, 1.1 * max(values))
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def plot_misclassified(path, images: np.ndarray, true: Sequence[int], pred: Sequence[int], confidence: Sequence[float], *, title: str, columns: int = 5) -> Path:
    """A grid of images (uint8, (N, H, W)) titled 'true T, pred P' and the predicted class's probability."""
    fig = new_figure(SIZE_GRID)
    n = len(images)
    rows = max(columns, math.ceil(n / columns))
    axes = fig.subplots(rows, columns).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"true {true[i]}, pred {pred[i]}\nconfidence {100 * confidence[i]:.1f}%", fontsize=10, color="tab:red")
    if n == 0:
        axes[0].text(0, 0.5, "no misclassified test images", fontsize=14)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def plot_confusion(path, matrix: np.ndarray, column_names: Sequence[str], per_class_acc: Sequence[float], *, title: str) -> Path:
    """Left: counts (rows true 0-9, columns predicted), colour on a log scale so that single
    errors show beside the diagonal. Right: accuracy per true class."""
    fig = new_figure(SIZE_CONFUSION)
    ax, bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    shown = np.where(matrix > 0, matrix, np.nan)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, matrix.max())))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images (log scale)")
    rows, cols = matrix.shape
    for r in range(rows):
        for c in range(cols):
            if matrix[r, c]:
                dark = matrix[r, c] > math.sqrt(max(2, matrix.max()))
                ax.text(c, r, str(int(matrix[r, c])), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(cols), column_names)
    ax.set_yticks(range(rows), [str(r) for r in range(rows)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test set)")

    classes = np.arange(len(per_class_acc))
    acc = np.asarray(per_class_acc, dtype=float)
    bar.barh(classes, acc, color="tab:blue")
    for k, a in zip(classes, acc):
        bar.text(a, k, f" {a:.2f}", va="center", fontsize=9)
    # Zoom on the spread (all classes are usually above 98%), leaving room for the labels.
    low = float(np.nanmin(acc)) if len(acc) else 0.0
    left = max(0.0, low - max(1.0, (100 - low) * 0.5))
    bar.set_xlim(left, 100 + (100 - left) * 0.15)
    bar.set_yticks(classes, [str(k) for k in classes])
    bar.invert_yaxis()
    bar.set_xlabel("accuracy (%)")
    bar.set_ylabel("true class")
    bar.set_title("Per-class accuracy")
    bar.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def plot_overlay(path, series: list[tuple[str, list[list[float]]]], *, target: float | None, title: str, ylabel: str = "test accuracy (%)") -> Path:
    """One curve per (label, values per seed) against epoch; several seeds: mean and min-max band."""
    fig = new_figure(SIZE_OVERLAY)
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(series))]
    longest = 0
    for (label, per_seed), color in zip(series, colors):
        n = min((len(s) for s in per_seed), default=0)
        if n == 0:
            continue
        longest = max(longest, n)
        values = np.array([s[:n] for s in per_seed], dtype=float)
        _band(ax, np.arange(1, n + 1), values, label, color)
    if target is not None:
        ax.axhline(target, **TARGET_STYLE, label=f"{target:g}% target")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if 0 < longest <= 30:
        ax.set_xticks(range(1, longest + 1))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save(fig, path)


def plot_lr_find(path, lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float], marks: dict[str, float], *, title: str) -> Path:
    """Loss against learning rate (log axis): raw per batch, smoothed, and the suggested rates."""
    fig = new_figure(SIZE_LR_FIND)
    ax = fig.add_subplot()
    ax.plot(lrs, losses, color="tab:gray", alpha=0.35, linewidth=1, label="loss per batch")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=2, label="smoothed loss")
    for (label, lr), color in zip(marks.items(), ("tab:red", "tab:green", "tab:purple")):
        ax.axvline(lr, color=color, linestyle="--", linewidth=1.2, label=f"{label}: {lr:.3g}")
    ax.set_xscale("log")
    if len(smoothed):  # the smoothed curve in full; raw spikes past it are cut
        ax.set_ylim(0, 1.15 * max(smoothed))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def plot_lr_sweep(path, curves: list[dict], *, steps_per_epoch: int, title: str) -> Path:
    """Training loss against batch, one colour per learning rate: the raw loss faint, smoothed bold.

    curves: {"lr", "losses", "diverged_at" (batch or None), "test_acc" (or None)} per rate.
    The smoothing averages over about a fifth of the run (at least 50 batches' worth, f = 0.02,
    on long runs), so that short runs are not flattened by the lag of the average.
    """
    fig = new_figure(SIZE_LR_SWEEP)
    ax = fig.add_subplot()
    longest = max((len(c["losses"]) for c in curves), default=0)
    smooth = min(0.5, max(0.02, 5 / max(longest, 1)))
    start, highest = [], []
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        losses = [v for v in c["losses"] if math.isfinite(v)]
        if not losses:
            continue
        start.append(losses[0])
        highest.append(max(losses))
        x = np.arange(1, len(losses) + 1)
        ax.plot(x, losses, color=color, alpha=0.2, linewidth=0.8)
        label = f"lr = {c['lr']:g}"
        if c.get("diverged_at") is not None:
            label += f" (diverged at batch {c['diverged_at']})"
        elif c.get("test_acc") is not None:
            label += f" (test {c['test_acc']:.2f}%)"
        ax.plot(x, ema(losses, smooth), color=color, linewidth=2, label=label)
        if c.get("diverged_at") is not None:
            ax.plot([x[-1]], [min(losses[-1], 3 * max(start))], "x", color=color, markersize=10, markeredgewidth=2)
    if start:  # diverging rates are cut at 1.6 times the starting loss
        ax.set_ylim(0, min(1.6 * max(start), 1.05 * max(highest)))
    for e in range(1, longest // max(steps_per_epoch, 1) + 1):
        ax.axvline(e * steps_per_epoch, color="black", linewidth=0.6, alpha=0.4)
    ax.set_xlabel(f"batch ({steps_per_epoch} per epoch; vertical lines: epoch ends)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, title="constant learning rate")
    fig.tight_layout()
    return save(fig, path)


def plot_frontier(path, points: list[dict], *, target: float | None, budgets: Sequence[int] = (), title: str) -> Path:
    """Parameters (log axis) against final test accuracy over seeds, one point per run: the
    mean with a bar from the lowest seed to the highest, labelled. `points`: dicts of name,
    params and the per-seed accuracies `accs`."""
    fig = new_figure(SIZE_FRONTIER)
    ax = fig.add_subplot()
    seen: dict[int, int] = {}
    for i, p in enumerate(sorted(points, key=lambda p: (p["params"], -float(np.mean(p["accs"]))))):
        accs = np.asarray(p["accs"], dtype=float)
        mean = accs.mean()
        x = p["params"] * 1.04 ** seen.get(p["params"], 0)  # runs of one size side by side, not on top of each other
        seen[p["params"]] = seen.get(p["params"], 0) + 1
        ax.errorbar([x], [mean], yerr=[[mean - accs.min()], [accs.max() - mean]], fmt="os^Dv"[i // 10 % 5], color=f"C{i % 10}",
                    capsize=3, markersize=5, label=f"{p['name']} ({len(accs)})")
    for budget in budgets:
        ax.axvline(budget, color="tab:gray", linestyle=":", linewidth=1)
        ax.annotate(f"< {budget:,}", (budget, 0), xycoords=("data", "axes fraction"), xytext=(-3, 4),
                    textcoords="offset points", ha="right", fontsize=7, color="tab:gray")
    if target is not None:
        ax.axhline(target, **TARGET_STYLE, label=f"{target:g}% target")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("final test accuracy (%): mean, bar from min to max over seeds")
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    fig.tight_layout()
    return save(fig, path)

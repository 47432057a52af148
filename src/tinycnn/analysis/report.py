"""What a run did, as report.md and figures in its directory; and several runs side by side.

    tinycnn report runs/era-s7-step6-20261122-120000      # report.md, curves.png, lr.png, ...
    tinycnn report runs/s7-seeds                            # a multi-seed run: bands over seeds
    tinycnn compare runs/a runs/b --out compare.png

Everything comes from the run's own files: config.toml, metrics.jsonl, run.json and
last.pt. The misclassified images and the confusion matrix are recomputed from last.pt on
the run's test split, and the recomputed accuracy is printed next to the logged one as a
check. For a multi-seed run those two come from the seed whose final test accuracy is the
median; the curves show the mean and the min-max band over all seeds.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.config import TrainConfig, to_toml
from tinycnn.engine.rundir import RunView, open_run
from tinycnn.errors import TinycnnError
from tinycnn.seeds.stats import render_summary, run_outcome, summarize_seeds
from tinycnn.specs import Criterion, evaluate_spec, load_spec

FIGURES = {
    "curves": "curves.png",
    "lr": "lr.png",
    "misclassified": "misclassified.png",
    "confusion": "confusion.png",
}
N_WORST = 25  # misclassified images shown, most confident first


# ---------------------------------------------------------------------- summaries of a run


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt_spread(s: dict, digits: int = 2, unit: str = "%") -> str:
    """'99.41%' for one value; '99.41% (mean of 3; 99.38-99.45)' for several."""
    if s["mean"] is None:
        return "n/a"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}{unit}"
    return f"{s['mean']:.{digits}f}{unit} (mean of {s['n']}; {s['min']:.{digits}f}-{s['max']:.{digits}f})"


def representative(view: RunView) -> int:
    """Index of the seed whose final test accuracy is the median (the lower of the two middle ones)."""
    finals = [m[-1]["test_acc"] for m in view.metrics]
    order = sorted(range(len(finals)), key=lambda i: finals[i])
    return order[(len(order) - 1) // 2]


def seed_criteria(view: RunView, spec: dict, last_k: int) -> list[list[Criterion]]:
    return [
        evaluate_spec(spec, {**info, "epochs": len(m), "planned_epochs": view.config.epochs}, [r["test_acc"] for r in m], last_k)
        for info, m in zip(view.infos, view.metrics)
    ]


# ---------------------------------------------------------------------- computed figures' data


TRAIN_IMAGES = 60_000  # both MNIST and Fashion-MNIST


def lr_schedule(config: TrainConfig, logged: list[dict]) -> tuple[list[float] | None, int]:
    """The learning rate of every batch, rebuilt by stepping the run's scheduler on a dummy
    optimizer; None when it does not match the logged first/last rate of each epoch."""
    import torch

    from tinycnn.engine.optim import build_optimizer, build_scheduler

    n = TRAIN_IMAGES - config.val_size
    if config.subset is not None:
        n = min(n, config.subset)
    steps = math.ceil(n / config.batch_size)
    optimizer = build_optimizer(config, torch.nn.Linear(1, 1, bias=False))
    scheduler, per_batch = build_scheduler(config, optimizer, steps)
    lrs = []
    for _ in range(config.epochs):
        for _ in range(steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()  # no gradients: changes nothing, keeps the scheduler's order check happy
            if per_batch:
                scheduler.step()
        if scheduler is not None and not per_batch:
            scheduler.step()
    for m in logged:
        e = m["epoch"]
        if not (math.isclose(lrs[(e - 1) * steps], m["lr_first"], rel_tol=1e-6) and math.isclose(lrs[e * steps - 1], m["lr"], rel_tol=1e-6)):
            return None, steps
    return lrs, steps


def schedule_name(c: TrainConfig) -> str:
    return {
        "none": f"constant {c.lr:g} (no schedule)",
        "onecycle": f"one-cycle to {c.max_lr:g} (stepped every batch)",
        "step": f"x{c.gamma:g} every {c.step_size} epochs from {c.lr:g}",
        "exp": f"x{c.gamma:g} per epoch from {c.lr:g}",
        "cosine": f"cosine annealing from {c.lr:g}",
    }[c.scheduler]


def predict(config: TrainConfig, checkpoint: Path, device: str = "cpu", build=None) -> dict:
    """Test-split predictions of the weights in `checkpoint`: images, labels, predicted class,
    its probability. `build()` makes the network (default: the configuration's)."""
    import torch

    from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
    from tinycnn.device import select_device
    from tinycnn.engine.checkpoint import load_checkpoint, load_weights
    from tinycnn.models.build import build_model

    dev = select_device(device)
    images, labels = load_splits(config.dataset, val_size=config.val_size, subset=config.subset, device=dev)["test"]
    model = build_model(config) if build is None else build()
    load_weights(model, load_checkpoint(checkpoint, map_location="cpu"), checkpoint, f"of {checkpoint.parent / 'config.toml'}")
    model.to(dev).eval()
    mean, std = NORMALIZATION[config.dataset]
    probs = []
    with torch.no_grad():
        for x, _ in BatchLoader(images, labels, config.eval_batch_size, mean=mean, std=std).epoch(0):
            probs.append(torch.softmax(model(x).float(), 1))
    p = torch.cat(probs)
    confidence, pred = p.max(1)
    return {
        "images": images.cpu().numpy(),
        "labels": labels.cpu().numpy(),
        "pred": pred.cpu().numpy(),
        "confidence": confidence.cpu().numpy(),
        "n_logits": p.shape[1],
    }


def confusion(labels, pred, n_classes: int = 10):
    """(n_classes, n_classes [+ 1]) counts; a last column 'other' gathers predictions >= n_classes
    (the seed models with 16 outputs can predict 10-15)."""
    import numpy as np

    cols = n_classes + (1 if (pred >= n_classes).any() else 0)
    matrix = np.zeros((n_classes, cols), dtype=np.int64)
    np.add.at(matrix, (labels, np.minimum(pred, cols - 1)), 1)
    return matrix


# ---------------------------------------------------------------------- markdown


def md_table(header: list[str], rows: list[list], right: set[int] = frozenset()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def model_table(model) -> str:
    from tinycnn.models.summary import summarize

    s = summarize(model)
    rows = [
        [r.name, r.type, "x".join(map(str, r.output_shape)), f"{r.params:,}", r.receptive_field, r.jump, f"{r.macs:,}"]
        for r in s.rows
    ]
    table = md_table(["layer", "type", "output", "params", "RF", "jump", "MACs"], rows, right={3, 4, 5, 6})
    facts = (
        f"{s.total_params:,} parameters, {s.macs:,} multiply-adds per image, receptive field "
        f"{s.receptive_field} px at the output (input {'x'.join(map(str, s.input_size))}); "
        f"BatchNorm {'yes' if s.has_batchnorm else 'no'}, dropout {'yes' if s.has_dropout else 'no'}, "
        f"GAP {'yes' if s.has_gap else 'no'}, Linear {'yes' if s.has_linear else 'no'}, {s.n_maxpool} max-pool(s), {s.n_logits} logits."
    )
    return f"{table}\n\n{facts}"


def criteria_table(per_seed: list[list[Criterion]]) -> str:
    n = len(per_seed)
    rows = []
    for i, first in enumerate(per_seed[0]):
        passed = sum(c[i].passed for c in per_seed)
        measured = first.measured if n == 1 else "; ".join(dict.fromkeys(c[i].measured for c in per_seed))
        verdict = ("PASS" if passed else "FAIL") if n == 1 else f"{passed} of {n} seeds"
        rows.append([first.name, first.required, measured, verdict])
    return md_table(["criterion", "needs", "measured", "result"], rows)


def _seconds(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} s"


def write_report(run_dir: str | Path, *, last_k: int | None = None, device: str = "cpu", model=None,
                 log=print) -> Path:
    """Write report.md and the figures into `run_dir`; return the report's path. A network of
    the user's is rebuilt from its recorded file, checked unchanged, or from `model` (a
    `file.py:Name` spec, or the class, function or instance given from Python)."""
    from tinycnn.analysis import plots
    from tinycnn.engine.checkpoint import load_checkpoint, load_weights
    from tinycnn.engine.provenance import network_builder

    view = open_run(run_dir)
    config, out = view.config, view.path
    _, build = network_builder(out, model)  # before anything is written: one line if the file changed
    rep = representative(view)
    rep_dir = view.seed_dirs[rep]
    if (rep_dir / "last.pt").exists():  # and one line if the checkpoint is not one, or not of this network
        load_weights(build(), load_checkpoint(rep_dir / "last.pt"), rep_dir / "last.pt", f"of {out / 'config.toml'}")
    spec = load_spec(config.spec)
    k = last_k or spec.get("last_k", 1)
    target = spec["accuracy_at_least"]
    title = f"{config.name} ({config.model})"

    plots.plot_curves(out / FIGURES["curves"], view.metrics, target=target, title=title)
    first = view.metrics[0]
    schedule, steps = lr_schedule(config, first)
    plots.plot_lr(out / FIGURES["lr"], schedule=schedule, steps_per_epoch=steps, logged=first, title=f"Learning rate: {schedule_name(config)}, {config.optimizer}")

    predicted = None
    if (rep_dir / "last.pt").exists():
        p = predict(config, rep_dir / "last.pt", device, build)
        wrong = (p["pred"] != p["labels"]).nonzero()[0]
        worst = wrong[p["confidence"][wrong].argsort()[::-1][:N_WORST]]
        who = f" (seed {view.infos[rep].get('seed')}, median final test accuracy)" if view.multi else ""
        plots.plot_misclassified(
            out / FIGURES["misclassified"], p["images"][worst], p["labels"][worst], p["pred"][worst], p["confidence"][worst],
            title=f"{config.name}{who}: {len(wrong):,} of {len(p['labels']):,} test images wrong; the {len(worst)} most confident",
        )
        matrix = confusion(p["labels"], p["pred"])
        per_class = [100.0 * matrix[c, c] / max(1, matrix[c].sum()) for c in range(10)]
        names = [str(c) for c in range(10)] + ([f"10-{p['n_logits'] - 1}"] if matrix.shape[1] > 10 else [])
        plots.plot_confusion(out / FIGURES["confusion"], matrix, names, per_class, title=f"{config.name}{who}")
        predicted = {"wrong": len(wrong), "n": len(p["labels"]), "acc": 100.0 * (1 - len(wrong) / len(p["labels"])), "matrix": matrix, "per_class": per_class}

    text = _markdown(view, spec, k, target, schedule is not None, predicted, rep, build())
    path = out / "report.md"
    atomic_write_text(path, text)
    log(f"wrote {path} and {', '.join(f for f in FIGURES.values() if (out / f).exists())}")
    return path


def _held_row(outcomes: list[dict]) -> str:
    """From which epoch, and after how many seconds of training + evaluation, each seed's
    test accuracy stayed at or above the spec's target to the end."""
    held = [o for o in outcomes if o["target_held_from_epoch"] is not None]
    if not held:
        return "never"
    shared = " (stacked seeds: the time of all of them)" if any(o["stacked"] for o in held) else ""
    if len(outcomes) == 1:
        return f"epoch {held[0]['target_held_from_epoch']}, after {held[0]['seconds_to_target']:,.0f} s"
    epochs = ", ".join(str(o["target_held_from_epoch"]) for o in held)
    return f"{len(held)} of {len(outcomes)} seeds: epochs {epochs}; " + fmt_spread(spread([o["seconds_to_target"] for o in held]), 0, " s") + shared


def _markdown(view: RunView, spec: dict, k: int, target: float, schedule_ok: bool, predicted: dict | None, rep: int,
              network) -> str:
    config = view.config
    outcomes = [run_outcome(d, spec, k) for d in view.seed_dirs]
    n = len(outcomes)
    lines = [f"# {config.name}: {config.description or config.model}", ""]
    if config.source:
        lines += [f"Source: {config.source}.", ""]
    status = ", ".join(sorted({i.get("status", "?") for i in view.infos}))
    epochs = sorted({len(m) for m in view.metrics})
    lines += [
        f"Run directory `{view.path}`: model `{config.model}`, "
        + (f"{n} seeds ({', '.join(str(i.get('seed')) for i in view.infos)})" if view.multi else f"seed {view.infos[0].get('seed')}")
        + f", {'/'.join(map(str, epochs))} of {config.epochs} epochs, status {status}.",
        "",
    ]
    if not view.finished():
        lines += ["**This run has not finished**: the tables and figures show the epochs done so far.", ""]
    if config.subset is not None:
        lines += [f"**Subset run**: trained on {config.subset:,} images (and tested on at most as many), so the budget check fails on data.", ""]

    def col(key):
        return spread([o[key] for o in outcomes])

    rows = [
        ["parameters", f"{view.params:,}"],
        ["best train accuracy", fmt_spread(col("best_train_acc"))],
        ["best test accuracy", fmt_spread(col("best_test_acc"))],
        ["final test accuracy", fmt_spread(col("final_test_acc"))],
        [f"lowest test accuracy of the last {k} epochs", fmt_spread(col("min_last_k_test_acc"))],
        ["seconds per epoch (median, train + eval)", fmt_spread(col("seconds_per_epoch"), 1, " s")],
        [f"test accuracy >= {spec['accuracy_at_least']:g}% to the end, from", _held_row(outcomes)],
    ]
    if predicted:
        logged = view.metrics[rep][-1]["test_acc"]
        rows.append(["test accuracy recomputed from last.pt" + (f" (seed {view.infos[rep].get('seed')})" if view.multi else ""), f"{predicted['acc']:.2f}% (logged: {logged:.2f}%)"])
    lines += ["## Result", "", md_table(["", "value"], rows, right={1}), ""]

    lines += [f"## Budget check: {spec['name']}", "", spec.get("description", ""), ""]
    lines += [criteria_table(seed_criteria(view, spec, k)), ""]
    if view.multi:
        summary = summarize_seeds(view.seed_dirs, config.spec, k)
        lines += ["Per seed:", "", "```", render_summary(summary), "```", ""]
    else:
        verdict = "meets" if outcomes[0]["passes"] else "does not meet"
        lines += [f"The run {verdict} the budget.", ""]

    band = " (mean and min-max band over seeds)" if view.multi else ""
    lines += [
        "## Training curves",
        "",
        f"Loss and accuracy per epoch{band}; the dashed red line is the {target:g}% target.",
        "",
        f"![training curves]({FIGURES['curves']})",
        "",
        "## Learning rate",
        "",
        ("The rate of every batch, rebuilt from the configuration; the dots are the logged first and last rate of each epoch and agree with it."
         if schedule_ok else "The logged first and last rate of each epoch (the per-batch schedule could not be rebuilt to match them)."),
        "",
        f"![learning rate]({FIGURES['lr']})",
        "",
    ]
    if predicted:
        who = f" of seed {view.infos[rep].get('seed')} (the median final test accuracy)" if view.multi else ""
        matrix = predicted["matrix"]
        cols = [str(c) for c in range(matrix.shape[1])]
        if matrix.shape[1] > 10:
            cols[-1] = "other"
        class_rows = []
        for c in range(10):
            errors = {cols[j]: int(matrix[c, j]) for j in range(matrix.shape[1]) if j != c and matrix[c, j]}
            top = ", ".join(f"{v} as {kk}" for kk, v in sorted(errors.items(), key=lambda e: -e[1])[:3]) or "-"
            class_rows.append([c, int(matrix[c].sum()), int(matrix[c, c]), f"{predicted['per_class'][c]:.2f}", top])
        lines += [
            "## Errors on the test set",
            "",
            f"The weights in last.pt{who}: {predicted['wrong']} of {predicted['n']:,} test images wrong.",
            "",
            md_table(["class", "images", "correct", "accuracy %", "most often taken for"], class_rows, right={0, 1, 2, 3}),
            "",
            f"![confusion matrix]({FIGURES['confusion']})",
            "",
            f"The {min(N_WORST, predicted['wrong'])} misclassified images the model was most sure of:",
            "",
            f"![misclassified]({FIGURES['misclassified']})",
            "",
        ]
    lines += ["## Model", "", model_table(network), ""]
    lines += _model_source(view)
    lines += ["## Recipe", "", f"Recipe `{config.name}`, resolved (this is the run's config.toml):", "", "```toml", to_toml(config.to_dict()).rstrip(), "```", ""]
    lines += ["## Versions and timings", "", _versions(view), ""]
    return "\n".join(lines)


def _model_source(view: RunView) -> list[str]:
    """The copy of a network of the user's that the run keeps (model_source.py), shown whole."""
    from tinycnn.models.source import COPY_NAME

    copy = next((d / COPY_NAME for d in (view.path, *view.seed_dirs) if (d / COPY_NAME).exists()), None)
    if copy is None:
        return []
    origin = view.infos[0].get("model_source") or {}
    where = origin.get("file") or origin.get("module") or "Python"
    sha = f", SHA-256 {origin['sha256']}" if origin.get("sha256") else ""
    return ["## The network's source", "",
            f"`{view.config.model}`, from {where}{sha}; the run's copy is `{copy.relative_to(view.path)}`:", "",
            "```python", copy.read_text(encoding="utf-8", errors="replace").rstrip(), "```", ""]


def _versions(view: RunView) -> str:
    info = view.infos[0]
    rows = [[key, info.get(key)] for key in ("tinycnn", "torch", "python", "git_commit", "device", "device_name") if info.get(key)]
    total = lambda key: sum(i.get(key) or 0.0 for i in view.infos)  # noqa: E731
    per_epoch = [m["train_seconds"] for ms in view.metrics for m in ms]
    speed = [m["images_per_second"] for ms in view.metrics for m in ms if "images_per_second" in m]
    scope = f" ({len(view.infos)} seeds together)" if view.multi else ""
    rows += [
        ["started", min(i.get("started_at", "") for i in view.infos)],
        ["finished", max((i.get("finished_at") or "-") for i in view.infos)],
        [f"training time{scope}", _seconds(total("train_seconds"))],
        [f"evaluation time{scope}", _seconds(total("eval_seconds"))],
        [f"wall time{scope}", _seconds(total("wall_seconds"))],
        ["training seconds per epoch (median)", _seconds(statistics.median(per_epoch)) if per_epoch else "n/a"],
        ["training images per second (median)", f"{statistics.median(speed):,.0f}" if speed else "n/a"],
    ]
    return md_table(["", ""], rows)


# ---------------------------------------------------------------------- compare


def unique_labels(paths: list[Path]) -> list[str]:
    """Each path by the fewest of its last parts that tell it from the others (`default`), a
    search's confirmation with its search's name however few would do (`under-4k/confirm/trial-2`)."""
    parts = [Path(p).resolve().parts for p in paths]

    def label(i: int) -> str:
        fewest = 3 if len(parts[i]) >= 3 and parts[i][-2] == "confirm" else 1
        for k in range(fewest, len(parts[i]) + 1):
            if all(parts[i][-k:] != other[-k:] for j, other in enumerate(parts) if j != i):
                return "/".join(parts[i][-k:])
        return str(paths[i])

    return [label(i) for i in range(len(paths))]


def compare(run_dirs: list[str | Path], out_png: str | Path, *, last_k: int | None = None,
            frontier_png: str | Path | None = None) -> str:
    """A text table of the runs and one figure overlaying their test accuracy (and, with
    `frontier_png`, one of parameters against final test accuracy over seeds); returns the table."""
    from tinycnn.analysis import plots

    if not run_dirs:
        raise TinycnnError("name at least one run directory to compare")
    views = [open_run(d) for d in run_dirs]
    names = unique_labels([v.path for v in views])
    header = ["run", "model", "params", "seeds", "epochs", "final test %", "min last K %", "K", "best test %", "s/epoch", "target held from"]
    rows, series, targets, points, budgets = [], [], set(), [], set()
    for name, v in zip(names, views):
        spec = load_spec(v.config.spec)
        k = last_k or spec.get("last_k", 1)
        targets.add(spec["accuracy_at_least"])
        outs = [run_outcome(d, spec, k) for d in v.seed_dirs]

        def mean(key, outs=outs):
            return statistics.fmean(o[key] for o in outs)

        rows.append([
            name, v.config.model, f"{v.params:,}", str(len(outs)), "/".join(map(str, sorted({o["epochs"] for o in outs}))),
            f"{mean('final_test_acc'):.2f}", f"{mean('min_last_k_test_acc'):.2f}", str(k), f"{mean('best_test_acc'):.2f}",
            f"{mean('seconds_per_epoch'):.1f}", _held_row(outs),
        ])
        series.append((name, [[m["test_acc"] for m in ms] for ms in v.metrics]))
        points.append({"name": name, "params": v.params, "accs": [o["final_test_acc"] for o in outs]})
        budgets.add(spec["params_below"])
    target = targets.pop() if len(targets) == 1 else None
    plots.plot_overlay(out_png, series, target=target, title=f"Test accuracy of {len(views)} runs" + (" (several seeds: mean, shaded from min to max)" if any(v.multi for v in views) else ""))
    if frontier_png:
        plots.plot_frontier(frontier_png, points, target=target, budgets=sorted(budgets),
                            title="Parameters against final test accuracy over seeds (the number of seeds in brackets)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    last = len(header) - 1
    fmt = lambda r: "  ".join(c.ljust(w) if i < 2 or i == last else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()  # noqa: E731
    note = ("final, min last K and best: mean over seeds; s/epoch: median training + evaluation seconds; target held from: "
            "the epoch from which test accuracy stayed at or above the spec's target, and the seconds of training + evaluation up to it")
    return "\n".join([fmt(header), *map(fmt, rows), note, f"figure: {out_png}" + (f", {frontier_png}" if frontier_png else "")])

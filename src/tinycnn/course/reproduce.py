"""Reproduce the systems of the ERA write-ups over several seeds and tabulate ours beside theirs.

    tinycnn reproduce --train --seeds 0,1,2     # train what is missing into results/reproduction/, then the table
    tinycnn reproduce                           # the table alone, from results/reproduction/*/seed-*/metrics.jsonl

Each recipe's runs live in results/reproduction/<recipe>/ (a multi-seed run directory); the small
files (config.toml, metrics.jsonl, run.json, summary.json) are kept in git so the table
can be rebuilt without retraining; checkpoints are not.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from tinycnn.seeds.stats import run_outcome
from tinycnn.specs import load_spec


@dataclass(frozen=True)
class Claim:
    document: str  # the write-up, as it is cited
    link: str | None
    params: int | str
    reported: str  # what the write-up says, in its words
    best_acc: float | None  # its best reported test accuracy, %


CLAIMS: dict[str, Claim] = {
    "era-s6-19712": Claim("ERA Session 6 write-up, Task 2", "https://github.com/yuvaraj-venkataswamy/ERA-V1", 19712, "99.45% best; >= 99.4% from epoch 13 on", 99.45),
    "era-s6-11952": Claim("ERA Session 6 write-up, Part 2", "https://github.com/dknayakbu/ERA-V1-S6-Assignment", 11952, "99.17% best (epoch 17)", 99.17),
    "era-s6-15938": Claim("ERA Session 6 write-up, Assignment 3b", None, 15938, "99.4%; last four epochs >= 99.4%", 99.50),
    "era-s6-16k": Claim("ERA Session 6 write-up, Assignment 6 (ERA v2)", None, "about 16k", "99.44% within 20 epochs", 99.44),
    "era-s7-step1": Claim("ERA Session 7 write-up, step 1", "https://github.com/dine1717/ERA2/blob/main/Session7/Step_1.ipynb", 147344, "99.07% best", 99.07),
    "era-s7-step2": Claim("ERA Session 7 write-up, step 2", "https://github.com/dine1717/ERA2/blob/main/Session7/Step_2.ipynb", 10616, "99.48% best", 99.48),
    "era-s7-step3": Claim("ERA Session 7 write-up, step 3", "https://github.com/dine1717/ERA2/blob/main/Session7/Step_3.ipynb", 10616, "99.42% best", 99.42),
    "era-s7-step4": Claim("ERA Session 7 write-up, step 4", "https://github.com/dine1717/ERA2/blob/main/Session7/Step_4.ipynb", 8172, "99.44% best", 99.44),
    "era-s7-step5": Claim("ERA Session 7 write-up, step 5", "https://github.com/dine1717/ERA2/blob/main/Session7/Step_5.ipynb", 8172, "99.57% best", 99.57),
    "era-s7-step6": Claim("ERA Session 7 write-up, step 6", "https://github.com/dine1717/ERA2/blob/main/Session7/Step_6.ipynb", 6750, "99.50% best", 99.50),
}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def recipe_row(recipe: str, run_dir: Path) -> dict | None:
    """One table row from a multi-seed run directory, or None if no seed has finished."""
    from tinycnn.engine.rundir import read_config, read_run

    config = read_config(run_dir)
    spec = load_spec(config.spec)
    seeds = []
    for d in sorted(run_dir.glob("seed-*")):
        if (d / "run.json").exists() and read_run(d).get("status") == "finished":
            seeds.append(run_outcome(d, spec, last_k=3))
    if not seeds:
        return None
    final = [s["final_test_acc"] for s in seeds]
    best = [s["best_test_acc"] for s in seeds]
    claim = CLAIMS.get(recipe)
    return {
        "recipe": recipe,
        "model": config.model,
        "spec": spec["name"],
        "claim": claim,
        "params": seeds[0]["params"],
        "epochs": config.epochs,
        "seeds": len(seeds),
        "final_mean_std": _mean_std(final),
        "min_last3": min(s["min_last_k_test_acc"] for s in seeds),
        "best_mean": statistics.fmean(best),
        "best_max": max(best),
        # The write-ups' own target is the accuracy (the parameter budget is shown beside it):
        # 99.4% in each of the last 3 epochs for Session 7, in the final epoch for Session 6.
        "passing": sum(s["meets_accuracy"] for s in seeds),
        "seconds_per_epoch": statistics.median(s["seconds_per_epoch"] for s in seeds),
        "compiled": config.compile,  # torch.compile: same fp32 arithmetic, faster epochs
        "device": read_run(run_dir / f"seed-{seeds[0]['seed']}").get("device_name", ""),
    }


def collect(results_dir: Path) -> list[dict]:
    rows = []
    for recipe in CLAIMS:
        run_dir = results_dir / recipe
        if (run_dir / "config.toml").exists():
            row = recipe_row(recipe, run_dir)
            if row:
                rows.append(row)
    return rows


def render_markdown(rows: list[dict]) -> str:
    head = (
        "| system | write-up | model | params (ours / theirs) | epochs | theirs: reported | "
        "ours: final epoch, mean ± std | ours: min over seeds of last-3 min | ours: best epoch, mean (max) | "
        "seeds meeting the accuracy target | s / epoch |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        c: Claim = r["claim"]
        doc = f"[{c.document}]({c.link})" if c.link else c.document
        theirs = f"{c.params:,}" if isinstance(c.params, int) else c.params
        mean, std = r["final_mean_std"]
        target = "99.4% in each of the last 3 epochs" if r["spec"] == "era-s7" else "99.4% in the final epoch"
        lines.append(
            f"| {r['recipe']} | {doc} | {r['model']} | {r['params']:,} / {theirs} | {r['epochs']} | {c.reported} | "
            f"{mean:.2f} ± {std:.2f} | {r['min_last3']:.2f} | {r['best_mean']:.2f} ({r['best_max']:.2f}) | "
            f"{r['passing']} of {r['seeds']} ({target}) | {r['seconds_per_epoch']:.0f}{' (compiled)' if r['compiled'] else ''} |"
        )
    return head + "\n".join(lines) + "\n"

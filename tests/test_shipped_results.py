"""README's headline table is what the shipped runs under results/ give, cell for cell."""

import re
from pathlib import Path

import pytest

from tinycnn.seeds.stats import summarize_seeds

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- headline-table:begin -->", "<!-- headline-table:end -->"


def headline_rows() -> list[list[str]]:
    table = (REPO / "README.md").read_text().split(BEGIN, 1)[1].split(END, 1)[0]
    lines = [line for line in table.strip().splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_the_headline_table_has_rows():
    assert len(headline_rows()) >= 4


@pytest.mark.parametrize("row", headline_rows(), ids=lambda row: row[-1].strip("`"))
def test_a_headline_row_is_what_its_runs_give(row):
    _, params, spec, accuracy, passing, runs = row
    run_dir = REPO / runs.strip("`")
    seeds = sorted(run_dir.glob("seed-*"), key=lambda d: int(d.name.split("-")[1]))
    summary = summarize_seeds(seeds, spec)
    final = summary["final_test_acc"]
    assert accuracy == f"{final['mean']:.2f} ± {final['std']:.2f} ({final['min']:.2f})"
    assert passing == f"{summary['passing_seeds']} of {summary['seeds']}"
    assert int(params.replace(",", "")) == summary["runs"][0]["params"]
    assert all(r["epochs"] == summary["runs"][0]["epochs"] for r in summary["runs"])
    assert re.fullmatch(r"era-s[67]|at-most-4000", spec)

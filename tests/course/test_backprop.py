"""The hand-derived backprop against torch.autograd, and the files against each other.

    python -m pytest tests/test_backprop.py -q

The spreadsheet is recalculated by pycel, an engine independent of our code, and must give
the CSV's numbers; its cells must be formulas, not pasted values.
"""

import csv
import math
import random
import struct

import pytest
import torch

from tinycnn.cli import main
from tinycnn.course import backprop as bp
from tinycnn.course.backprop_xlsx import (
    COL,
    FIRST_ROW,
    HEADER_ROW,
    sheet_name,
    write_xlsx,
)

D = bp.DEFAULTS


def torch_loss(weights, inputs, targets):
    """The same network written once more, for autograd; returns (E_total, weight tensor)."""
    w = torch.tensor(weights, dtype=torch.float64, requires_grad=True)
    i = torch.tensor(inputs, dtype=torch.float64)
    t = torch.tensor(targets, dtype=torch.float64)
    a_h = torch.sigmoid(w[:4].view(2, 2) @ i)
    a_o = torch.sigmoid(w[4:].view(2, 2) @ a_h)
    return (0.5 * (t - a_o) ** 2).sum(), w


def torch_grads(weights, inputs, targets):
    loss, w = torch_loss(weights, inputs, targets)
    loss.backward()
    return loss.item(), w.grad.tolist()


def random_cases(n=50, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        yield ([rng.uniform(-3, 3) for _ in range(8)], [rng.uniform(-2, 2) for _ in range(2)],
               [rng.uniform(0, 1) for _ in range(2)])


# ---- the maths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [(D["weights"], D["inputs"], D["targets"]), *random_cases()])
def test_gradients_match_autograd(case):
    weights, inputs, targets = case
    f = bp.forward(weights, inputs, targets)
    loss, expected = torch_grads(weights, inputs, targets)
    assert f["E_total"] == pytest.approx(loss, abs=1e-12)
    for mine, ref in zip(bp.gradients(weights, inputs, targets), expected):
        assert mine == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("lr", [0.1, 2.0])
def test_one_update_matches_torch(lr):
    for weights, inputs, targets in [(D["weights"], D["inputs"], D["targets"]), *random_cases(10, seed=1)]:
        loss, w = torch_loss(weights, inputs, targets)
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
        rows = bp.train(lr, 2, weights, inputs, targets)
        assert [rows[1][k] for k in bp.WEIGHTS] == pytest.approx(w.tolist(), abs=1e-12)
        assert rows[1]["E_total"] == pytest.approx(torch_loss(w.tolist(), inputs, targets)[0].item(), abs=1e-12)


def test_first_iteration_of_the_sheet():
    row = bp.train(0.5, 1, D["weights"], D["inputs"], D["targets"])[0]
    loss, _ = torch_grads(D["weights"], D["inputs"], D["targets"])
    assert row["E_total"] == pytest.approx(loss, abs=1e-15)
    # By hand: h1 = 0.15*0.05 + 0.2*0.1 = 0.0275, o1 = 0.4*sigmoid(0.0275) + 0.45*sigmoid(0.0425).
    assert row["h1"] == pytest.approx(0.0275, abs=1e-15)
    assert row["h2"] == pytest.approx(0.0425, abs=1e-15)
    assert row["a_o1"] == pytest.approx(0.606477732, abs=1e-9)
    assert row["E_total"] == pytest.approx(0.014181378, abs=1e-9)
    assert row["dE_total/dw5"] == pytest.approx(0.012880819, abs=1e-9)


def test_error_falls_and_faster_with_larger_rates():
    runs = bp.run_all(bp.Setup())
    finals = [rows[-1]["E_total"] for rows in runs.values()]
    assert finals == sorted(finals, reverse=True)
    for rows in runs.values():
        assert rows[-1]["E_total"] < rows[0]["E_total"]


# ---- the files ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """2 learning rates x 10 iterations, non-default values, written through the CLI."""
    out = tmp_path_factory.mktemp("bp")
    args = ["backprop", "--out", str(out), "--lrs", "0.7,3", "--iterations", "10",
            "--inputs", "0.3,-0.2", "--targets", "0.1,0.9", "--weights", "0.1,-0.2,0.3,0.4,-0.5,0.6,0.7,0.8"]
    assert main(args) == 0
    setup = bp.parse_setup("0.7,3", "10", "0.3,-0.2", "0.1,0.9", "0.1,-0.2,0.3,0.4,-0.5,0.6,0.7,0.8")
    return out, setup


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_cli_writes_the_three_files(small):
    out, _ = small
    assert sorted(p.name for p in out.iterdir()) == ["backprop.csv", "backprop.xlsx", "error_vs_lr.png"]


def test_csv_columns_rows_and_initial_weights(small):
    out, setup = small
    rows = read_csv(out / "backprop.csv")
    assert rows[0] == bp.COLUMNS
    assert len(rows) == 1 + len(setup.lrs) * setup.iterations
    first = dict(zip(rows[0], rows[1]))
    assert first["iteration"] == "1" and float(first["lr"]) == 0.7
    assert [float(first[w]) for w in bp.WEIGHTS] == setup.weights
    expected = bp.run_all(setup)
    for line in rows[1:]:
        rec = dict(zip(rows[0], line))
        ref = expected[float(rec["lr"])][int(rec["iteration"]) - 1]
        assert all(float(rec[c]) == ref[c] for c in bp.COLUMNS)  # repr round-trips exactly


def test_png_is_valid_and_not_blank(small):
    import matplotlib.image

    path = small[0] / "error_vs_lr.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 300
    pixels = matplotlib.image.imread(path)
    assert pixels.std() > 0.05


def test_spreadsheet_formulas_recalculate_to_the_csv(small):
    from pycel import ExcelCompiler

    out, setup = small
    xl = ExcelCompiler(filename=str(out / "backprop.xlsx"))
    runs = bp.run_all(setup)
    last = FIRST_ROW + setup.iterations - 1
    for lr, rows in runs.items():
        table = xl.evaluate(f"'{sheet_name(lr)}'!A{FIRST_ROW}:{COL['dE_total/dw8']}{last}")
        for got, ref in zip(table, rows):
            assert got == pytest.approx([ref[c] for c in bp.COLUMNS], abs=1e-9, rel=0)

    # The parameters are live: change i1 on the Parameters sheet and the runs follow.
    xl.set_value("Parameters!B2", 0.9)
    new = bp.train(3.0, setup.iterations, setup.weights, [0.9, setup.inputs[1]], setup.targets)
    assert xl.evaluate(f"'{sheet_name(3.0)}'!{COL['E_total']}{last}") == pytest.approx(new[-1]["E_total"], abs=1e-9)


def test_spreadsheet_cells_are_formulas(small):
    from openpyxl import load_workbook

    out, setup = small
    wb = load_workbook(out / "backprop.xlsx")
    assert wb.sheetnames == ["Parameters", "Derivation", "E_total", *map(sheet_name, setup.lrs)]
    for lr in setup.lrs:
        ws = wb[sheet_name(lr)]
        assert [c.value for c in ws[HEADER_ROW]] == bp.COLUMNS
        for r, row in enumerate(ws.iter_rows(min_row=FIRST_ROW, values_only=True)):
            for name, value in zip(bp.COLUMNS, row):
                if name == "iteration" and r == 0:
                    assert value == 1
                else:
                    assert isinstance(value, str) and value.startswith("="), (name, value)
    ws = wb[sheet_name(0.7)]
    assert ws[f"{COL['dE_total/dw5']}{FIRST_ROW}"].value == "=(Q5-$D$2)*Q5*(1-Q5)*M5"
    assert ws[f"{COL['w5']}{FIRST_ROW + 1}"].value == "=G5-$A$2*Z5"
    assert len(wb["E_total"]._charts) == 1
    text = "\n".join(c.value or "" for c in wb["Derivation"]["A"])
    assert "dE_total/dw1 = dE_total/da_h1 * da_h1/dh1 * dh1/dw1" in text


def test_default_spreadsheet_shape(tmp_path):
    from openpyxl import load_workbook
    from pycel import ExcelCompiler

    setup = bp.Setup()
    path = write_xlsx(tmp_path / "backprop.xlsx", setup)
    wb = load_workbook(path)
    assert len(wb.sheetnames) == 3 + 6
    for lr in setup.lrs:
        ws = wb[sheet_name(lr)]
        assert ws.max_row == FIRST_ROW + 67 and ws.max_column == len(bp.COLUMNS)
    summary = wb["E_total"]
    assert summary.max_row == 1 + 68 and summary.max_column == 1 + 6
    # One full run recalculated (each costs ~2 s): the sheet's final E_total is the code's.
    final = bp.train(2.0, 68, setup.weights, setup.inputs, setup.targets)[-1]["E_total"]
    got = ExcelCompiler(filename=str(path)).evaluate(f"'{sheet_name(2.0)}'!{COL['E_total']}{FIRST_ROW + 67}")
    assert got == pytest.approx(final, abs=1e-9, rel=0)


def test_explain_prints_the_chain_rule(tmp_path, capsys):
    assert main(["backprop", "--out", str(tmp_path), "--iterations", "3", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "dE_total/dw5 = (a_o1 - t1) * a_o1 * (1 - a_o1) * a_h1" in text
    assert ("dE_total/dw1 = ((a_o1 - t1) * a_o1 * (1 - a_o1) * w5 + (a_o2 - t2) * a_o2 * (1 - a_o2) * w7)"
            " * a_h1 * (1 - a_h1) * i1") in text
    assert "E_total       = 0.01418137793789" in text
    assert "wrote" in text and "lr = 2" in text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("bad", [
    ["--lrs", "0.1,fast"], ["--lrs", "-0.5"], ["--lrs", "nan"], ["--lrs", "0.1,0.1"], ["--lrs", ""],
    ["--iterations", "0"], ["--iterations", "-3"], ["--iterations", "ten"],
    ["--weights", "0.1,0.2,0.3"], ["--inputs", "0.05"], ["--targets", "0.5,0.5,0.5"], ["--inputs", "1,inf"],
])
def test_bad_values_exit_with_one_line(bad, tmp_path, capsys):
    assert main(["backprop", "--out", str(tmp_path / "out"), *bad]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinycnn: error: --"), err
    assert not (tmp_path / "out").exists()


def test_sigmoid_is_stable_for_large_inputs():
    assert bp.sigmoid(-1000.0) == 0.0 and bp.sigmoid(1000.0) == 1.0
    assert bp.sigmoid(0.3) == pytest.approx(1 / (1 + math.exp(-0.3)), abs=1e-16)

"""The hand-worked backprop sheet as a live spreadsheet: every computed cell is a formula.

    tinycnn backprop --out backprop       # writes backprop/backprop.xlsx next to the CSV and plot

Sheets:
  Parameters   the editable values: i1, i2, t1, t2, the initial w1..w8, one learning rate per run
  Derivation   the chain rule for each weight, as text
  E_total      E_total against iteration for every run (formulas) and a line chart of it
  lr_<rate>    one per learning rate: a small block linked to Parameters, then one row per
               iteration with the CSV's columns, each cell a formula of the cells it depends on

The formulas are built from `backprop.EXPRESSIONS`, so the sheet, `--explain` and the Python
code say the same thing; a formula engine in the tests checks the sheet against the CSV.
"""

from __future__ import annotations

import re
from pathlib import Path

from tinycnn.atomic import atomic_open
from tinycnn.course.backprop import (
    COLUMNS,
    DERIVATION,
    EXPRESSIONS,
    GRADS,
    WEIGHTS,
    Setup,
)

PARAMS = ["i1", "i2", "t1", "t2"]
PARAM_ROW = {name: 2 + k for k, name in enumerate([*PARAMS, *WEIGHTS])}  # rows on Parameters
LR_HEADER_ROW = 16  # "sheet | learning rate"; the runs follow, one row each
BLOCK = {"lr": "$A$2", "i1": "$B$2", "i2": "$C$2", "t1": "$D$2", "t2": "$E$2"}  # on each run's sheet
HEADER_ROW, FIRST_ROW = 4, 5  # the table on each run's sheet
MEANING = {"i1": "input 1", "i2": "input 2", "t1": "target for output 1", "t2": "target for output 2",
           **{w: f"initial {w}" for w in WEIGHTS}}


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    s, index = "", index + 1
    while index:
        index, r = divmod(index - 1, 26)
        s = chr(65 + r) + s
    return s


COL = {name: column_letter(k) for k, name in enumerate(COLUMNS)}


def sheet_name(lr: float) -> str:
    return f"lr_{lr!r}"


def ref(sheet: str, cell: str) -> str:
    return f"'{sheet}'!{cell}"


def to_formula(expression: str, row: int) -> str:
    """'w1 * i1 + w2 * i2' -> '=C5*$B$2+D5*$C$2' for table row `row`."""
    def cell(m):
        name = m.group(0)
        if name == "exp":
            return "EXP"
        return BLOCK.get(name) or f"{COL[name]}{row}"
    return "=" + re.sub(r"[A-Za-z_][A-Za-z_0-9]*", cell, expression.replace(" ", ""))


def build_workbook(setup: Setup):
    """The whole workbook for `setup`; nothing is computed here, only formulas are written."""
    from openpyxl import Workbook
    from openpyxl.chart import LineChart, Reference
    from openpyxl.styles import Font

    bold = Font(bold=True)
    wb = Workbook()
    wb.calculation.fullCalcOnLoad = True  # no cached values are stored: recalculate on open

    params = wb.active
    params.title = "Parameters"
    params.append(["parameter", "value", "meaning"])
    values = dict(zip(PARAMS, [*setup.inputs, *setup.targets]), **dict(zip(WEIGHTS, setup.weights)))
    for name, row in PARAM_ROW.items():
        params.cell(row, 1, name)
        params.cell(row, 2, float(values[name]))
        params.cell(row, 3, MEANING[name])
    params.cell(LR_HEADER_ROW - 1, 1, "Edit any value in column B; every other sheet follows.")
    params.cell(LR_HEADER_ROW, 1, "sheet")
    params.cell(LR_HEADER_ROW, 2, "learning rate")
    for k, lr in enumerate(setup.lrs):
        params.cell(LR_HEADER_ROW + 1 + k, 1, sheet_name(lr))
        params.cell(LR_HEADER_ROW + 1 + k, 2, float(lr))
    for c in params[1] + params[LR_HEADER_ROW]:
        c.font = bold
    params.column_dimensions["A"].width = 24
    params.column_dimensions["B"].width = 14
    params.column_dimensions["C"].width = 22

    deriv = wb.create_sheet("Derivation")
    for line in DERIVATION:
        deriv.append([line])
    deriv.column_dimensions["A"].width = 120

    summary = wb.create_sheet("E_total")
    last = FIRST_ROW + setup.iterations - 1
    for k, lr in enumerate(setup.lrs):
        ws = wb.create_sheet(sheet_name(lr))
        _fill_run_sheet(ws, LR_HEADER_ROW + 1 + k, setup.iterations, bold)

    n_runs = len(setup.lrs)
    summary.append(["iteration", *(f"lr = {lr:g}" for lr in setup.lrs)])
    for row in range(FIRST_ROW, last + 1):
        first = ref(sheet_name(setup.lrs[0]), f"{COL['iteration']}{row}")
        summary.append(["=" + first, *("=" + ref(sheet_name(lr), f"{COL['E_total']}{row}")
                                       for lr in setup.lrs)])
    for c in summary[1]:
        c.font = bold

    chart = LineChart()
    chart.title = "E_total against iteration for each learning rate"
    chart.x_axis.title = "iteration"
    chart.y_axis.title = "E_total"
    chart.x_axis.delete = False  # openpyxl hides the axes otherwise
    chart.y_axis.delete = False
    chart.height, chart.width = 10, 20
    n_rows = setup.iterations + 1
    chart.add_data(Reference(summary, min_col=2, max_col=1 + n_runs, min_row=1, max_row=n_rows),
                   titles_from_data=True)
    chart.set_categories(Reference(summary, min_col=1, min_row=2, max_row=n_rows))
    summary.add_chart(chart, f"{column_letter(n_runs + 2)}2")
    return wb


def _fill_run_sheet(ws, lr_row: int, iterations: int, bold) -> None:
    """Linked parameter block on rows 1-2, the table from `HEADER_ROW` down."""
    ws.append(["lr", *PARAMS])
    ws.append([f"=Parameters!$B${lr_row}", *(f"=Parameters!$B${PARAM_ROW[p]}" for p in PARAMS)])
    ws.append(["Computed cells are formulas: change the values on the Parameters sheet."])
    ws.append(COLUMNS)
    for c in ws[1] + ws[HEADER_ROW]:
        c.font = bold
    for row in range(FIRST_ROW, FIRST_ROW + iterations):
        cells = {"lr": f"={BLOCK['lr']}"}
        if row == FIRST_ROW:
            cells["iteration"] = 1
            for w in WEIGHTS:
                cells[w] = f"=Parameters!$B${PARAM_ROW[w]}"
        else:
            cells["iteration"] = f"={COL['iteration']}{row - 1}+1"
            for w, g in zip(WEIGHTS, GRADS):
                cells[w] = f"={COL[w]}{row - 1}-{BLOCK['lr']}*{COL[g]}{row - 1}"
        for name, expression in EXPRESSIONS.items():
            cells[name] = to_formula(expression, row)
        ws.append([cells[c] for c in COLUMNS])
    for name, letter in COL.items():
        ws.column_dimensions[letter].width = 14 if name != "iteration" else 10
    ws.freeze_panes = f"C{FIRST_ROW}"


def write_xlsx(path: Path, setup: Setup) -> Path:
    wb = build_workbook(setup)
    with atomic_open(path) as fh:
        wb.save(fh)
    return Path(path)

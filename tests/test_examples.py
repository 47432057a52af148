"""The example notebook, executed cell by cell in a real Jupyter kernel (nbclient) at a
smoke size, its outputs checked."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "your_own_network.ipynb"
SMOKE = 'SMOKE = dict(subset=600, epochs=2, batch_size=64, device="cpu", compile=False, amp=False)'


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def test_the_notebook_runs_in_a_kernel_and_shows_what_it_says(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.rstrip().endswith("SMOKE = {}")  # the notebook as shipped trains in full
    code[0].source = SMOKE
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    by_source = {c.source.splitlines()[0]: c for c in code}
    summary = _text(by_source["info = tinycnn.summary(Net())"])
    assert "7,872 parameters, receptive field 32 at the output" in summary and "conv6.0" in summary
    trained = _text(by_source['run = tinycnn.train(Net, "default", **SMOKE)'])
    assert "epoch  2/2" in trained
    check = _text(by_source["result = run.check()"])
    assert "budget era-s7" in check and "does not meet the budget yet" in check  # a smoke run never passes
    plot = by_source["run.plot()"]
    assert any("image/png" in out.get("data", {}) for out in plot.outputs)
    report = tmp_path / _text(by_source["print(run.report())"]).strip().splitlines()[-1]
    assert report.name == "report.md" and report.is_file()
    assert "class Net(Module)" in report.read_text() and "def forward(self, x):" in report.read_text()  # the cell's code
    assert (tmp_path / "runs").is_dir()

"""tinycnn from Python: the zoo, summaries, training a network of the user's, runs."""

import importlib.util
from pathlib import Path

import pytest
import torch

import tinycnn
from tinycnn.errors import TinycnnError

COURSE_NET = Path(__file__).resolve().parent / "fixtures" / "course_net.py"
SMALL = dict(subset=256, epochs=1, batch_size=64, device="cpu", compile=False, amp=False, progress=False)


def _course_net():
    spec = importlib.util.spec_from_file_location("course_net_api", COURSE_NET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_zoo_at_the_top_level():
    assert "era-s7-6750" in tinycnn.list_models("era-s7*")
    assert sum(p.numel() for p in tinycnn.create_model("era-s7-6750").parameters()) == 6750
    assert callable(tinycnn.register_model)


def test_summary_of_a_zoo_model_ends_at_receptive_field_32(capsys):
    result = tinycnn.summary("era-s6-19712")
    assert result.receptive_field == 32 and result.params == 19712 and result.macs > 0 and result.rows
    out = capsys.readouterr().out
    assert "era-s6-19712" in out and "19,712" in out
    assert "ModelSummary(params=19,712" in repr(result)


def test_summary_of_a_module_of_the_users(capsys):
    result = tinycnn.summary(_course_net().Net())
    assert result.params == sum(p.numel() for p in _course_net().Net().parameters())
    assert "Net" in capsys.readouterr().out


def test_train_a_class_and_use_the_run(tmp_path, capsys):
    Net = _course_net().Net
    run = tinycnn.train(Net, "default", out=tmp_path / "r", **SMALL)
    assert isinstance(run, tinycnn.Run) and run.dir == tmp_path / "r"
    assert run.config.epochs == 1 and run.config.model == "<python>:Net"
    assert len(run.metrics) == 1 and "test_acc" in run.metrics[0]
    model = run.model
    assert isinstance(model, Net) and not model.training
    check = run.check()
    assert check.passed is False and any(c.name == "full train and test sets" for c in check.criteria)
    assert "budget era-s7" in capsys.readouterr().out
    figure = run.plot()
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run.report().name == "report.md" and (tmp_path / "r" / "report.md").exists()
    assert "class Net" in (tmp_path / "r" / "report.md").read_text()  # the class's source, kept by the run
    scores = run.evaluate(device="cpu")
    assert scores["test"]["acc"] == pytest.approx(run.metrics[-1]["test_acc"], abs=0.5)
    again = tinycnn.load_run(tmp_path / "r", model=Net)
    assert again.metrics == run.metrics
    with pytest.raises(TinycnnError, match="was given from Python"):
        tinycnn.load_run(tmp_path / "r").model


def test_train_a_file_spec_and_load_it_back_without_the_class(tmp_path):
    run = tinycnn.train(f"{COURSE_NET}:NetWithDim", out=tmp_path / "r", **SMALL)
    assert run.config.model == f"{COURSE_NET}:NetWithDim"
    loaded = tinycnn.load_run(tmp_path / "r")
    assert type(loaded.model).__name__ == "NetWithDim"


def test_several_seeds_of_an_instance_are_reinitialised_copies(tmp_path):
    net = _course_net().Net()
    runs = tinycnn.train(net, seeds=[0, 1], out=tmp_path / "s", **SMALL)
    assert isinstance(runs, tinycnn.SeedsRun) and [r.dir.name for r in runs.runs] == ["seed-0", "seed-1"]
    first = [r.model.conv1.weight for r in runs.runs]
    assert not torch.equal(first[0], first[1])
    assert runs.summary["seeds"] == 2 and len(runs.metrics) == 2
    assert runs.check().passed is False
    assert runs.plot() is not None


def test_an_instance_that_cannot_be_reinitialised_is_named(tmp_path):
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _course_net().Net()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.net(x) * self.scale

    with pytest.raises(TinycnnError, match=r"its layer \(the network itself\) \(Scaled\) has parameters but no reset_parameters"):
        tinycnn.train(Scaled(), seeds=[0, 1], out=tmp_path / "x", **SMALL)


def test_wrong_arguments_are_one_line(tmp_path):
    with pytest.raises(TinycnnError, match="give distinct non-negative integers"):
        tinycnn.train("era-s7-6750", seeds=[0, 0], out=tmp_path / "a", **SMALL)
    with pytest.raises(TinycnnError, match="unknown key 'epoch'"):
        tinycnn.train("era-s7-6750", out=tmp_path / "b", epoch=3)
    with pytest.raises(TinycnnError, match="unknown model"):
        tinycnn.train("era-s7-675", out=tmp_path / "c", **SMALL)
    with pytest.raises(TinycnnError, match="must be a zoo name"):
        tinycnn.train(3, out=tmp_path / "d")


def test_an_interrupt_saves_a_resume_point_and_says_how_to_resume(tmp_path, capsys):
    """What a notebook's interrupt does: SIGINT in the main thread, mid-run."""
    import json
    import os
    import signal
    import threading
    import time

    Net = _course_net().Net
    run_dir = tmp_path / "r"

    def interrupt_once_running():
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if json.loads((run_dir / "run.json").read_text()).get("status") == "running":
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        tinycnn.train(Net, out=run_dir, **{**SMALL, "subset": 3000, "epochs": 3, "batch_size": 32})
    said = capsys.readouterr().out
    assert f"tinycnn.resume({str(run_dir)!r}, model=Net)" in said
    assert (run_dir / "last.pt").exists() and json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    run = tinycnn.resume(run_dir, model=Net, progress=False)
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3]

"""`tinycnn bench` at toy sizes, and the speed settings against the plain path. No timing is
asserted: a test only checks that results agree."""

import copy
import mmap
import os

import pytest
import torch
import torch.nn.functional as F

from tinycnn.analysis.bench import alternate, bench_config, parse_assignments, run_bench
from tinycnn.cli import main
from tinycnn.config import TrainConfig
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.models import create_model
from tinycnn.seeds.stats import time_to_accuracy


def _quiet(_):
    pass


# ---------------------------------------------------------------- the benchmark itself


def test_seed_pipeline_against_trainer_runs_and_reports(capsys):
    pytest.importorskip("torchvision")
    args = ["--model", "era-s7-6750", "--images", "128", "--rounds", "2", "--workers", "0", "--device", "cpu"]
    code = main(["bench", *args, "--b", "compile=false"])  # compiling takes longer than the whole test
    assert code == 0
    out = capsys.readouterr().out
    assert "seed pipeline" in out and "tinycnn Trainer" in out and "B/A = " in out and "peak RSS A" in out
    assert out.count("minor page faults per round") == 2
    assert out.count("\n    1 ") == 1 and out.count("\n    2 ") == 1  # one line per round


def test_profile_table_by_operator_and_by_layer(capsys):
    args = ["bench", "--profile", "--model", "era-s7-6750", "--images", "128", "--device", "cpu", "--b", "compile=false"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "aten::convolution_backward" in out and "Self CPU" in out and "Input Shapes" not in out
    assert main([*args, "--by-shape"]) == 0
    out = capsys.readouterr().out
    # rows carry the shapes of their inputs: batches of 128
    assert "Input Shapes" in out and "[[128, " in out


def test_lever_and_eval_modes():
    lines = []
    a, b = run_bench(
        model="era-s7-6750", images=128, rounds=1, device="cpu", a={"sgd": "loop", "compile": False}, b={"channels_last": True, "compile": False}, log=lines.append
    )
    assert len(a.rates) == len(b.rates) == 1 and a.rates[0] > 0 and b.rates[0] > 0
    assert "sgd=loop" in a.label and "channels_last=True" in b.label
    a, b = run_bench(model="era-s7-6750", images=128, rounds=1, device="cpu", measure="eval", a={"eval_batch_size": 500, "compile": False}, b={"compile": False}, log=_quiet)
    assert a.rates[0] > 0 and b.rates[0] > 0
    a, b = run_bench(model="era-s7-6750", images=128, rounds=1, device="cpu", measure="eval", a={"inference": "plain", "compile": False}, b={"inference": "folded", "compile": False}, log=_quiet)
    assert "inference=plain" in a.label and "inference=folded" in b.label and a.rates[0] > 0 and b.rates[0] > 0


class _MapsFreshMemory:
    """A pipeline whose every round maps 64 MiB of fresh memory, writes to it and unmaps it
    (mmap itself, so that no allocator setting of this process can keep it)."""

    name, device, threads = "fresh memory", torch.device("cpu"), 1

    def round(self, images):
        size = 64 * 2**20
        with mmap.mmap(-1, size) as buffer:
            for page in range(0, size, mmap.PAGESIZE):
                buffer[page] = 1
        return images


def test_page_faults_are_counted_per_timed_round():
    a, b = alternate(_MapsFreshMemory(), _MapsFreshMemory(), rounds=2, images=1, log=_quiet)
    assert len(a.page_faults) == len(b.page_faults) == 2  # the warm-up round is not counted
    assert min(a.page_faults + b.page_faults) > 0


def test_stacked_seeds_mode():
    a, b = run_bench(model="era-s7-6750", batch_size=64, images=128, rounds=1, device="cpu", seeds=2, b={"compile": False}, log=_quiet)
    assert "2 separate runs" in a.label and "stacked" in b.label


def test_settings_parse_and_errors():
    assert parse_assignments(["channels_last=true", "threads=1", "interpolation=bilinear", "sgd=fused", "cpp_wrapper=true"]) == {
        "channels_last": True, "threads": 1, "interpolation": "bilinear", "sgd": "fused", "cpp_wrapper": "true",
    }
    with pytest.raises(TinycnnError, match="cpp_wrapper='yes': choose true or false"):
        bench_config({"cpp_wrapper": "yes"}, images=128, device="cpu")
    with pytest.raises(TinycnnError, match="inference='fused': choose folded or plain"):
        bench_config({"inference": "fused"}, images=128, device="cpu")
    with pytest.raises(TinycnnError, match="inference=... changes evaluation only: add --measure eval"):
        run_bench(images=128, rounds=1, device="cpu", a={"inference": "plain"}, b={}, log=_quiet)
    with pytest.raises(TinycnnError, match="random='mt': choose philox or torch"):
        bench_config({"random": "mt"}, images=128, device="cpu")
    with pytest.raises(TinycnnError, match="cpp_wrapper, layout_optimization=... applies to compile=true"):
        run_bench(images=128, rounds=1, device="cpu", a={"compile": False}, b={"compile": False, "cpp_wrapper": "true", "layout_optimization": "false"}, log=_quiet)
    with pytest.raises(TinycnnError, match="KEY=VALUE"):
        parse_assignments(["channels_last"])
    with pytest.raises(TinycnnError, match="unknown key 'chanels_last'"):
        run_bench(images=128, rounds=1, device="cpu", a={}, b={"chanels_last": True}, log=_quiet)
    with pytest.raises(TinycnnError, match="at least one batch"):
        run_bench(images=10, device="cpu", a={}, log=_quiet)


def test_time_to_accuracy_needs_the_target_held_to_the_end():
    rows = [{"test_acc": a, "train_seconds": 10.0, "eval_seconds": 1.0} for a in (98.0, 99.41, 99.3, 99.45, 99.5)]
    r = time_to_accuracy(rows, 99.4)
    assert r["epoch"] == 4 and r["seconds"] == pytest.approx(44.0) and r["final_test_acc"] == 99.5
    assert time_to_accuracy(rows[:3], 99.4) is None
    raw = [{**r, "raw_test_acc": a} for r, a in zip(rows, (97.0, 99.0, 99.42, 99.3, 99.41))]
    assert time_to_accuracy(raw, 99.4, "raw_test_acc")["epoch"] == 5


# ---------------------------------------------------------------- speed settings keep the results


def _curve(tmp_path, name, **kw):
    """Per-epoch train loss and the final weights of a short fixed-seed run."""
    base = dict(model="era-s7-6750", subset=256, epochs=2, batch_size=64, eval_batch_size=256, rotation=10.0, device="cpu", seed=3)
    config = TrainConfig(**{**base, **kw})
    trainer = Trainer(config, tmp_path / name, progress=False, log=_quiet)
    result = trainer.fit()
    return [m["train_loss"] for m in result.metrics], trainer.model.state_dict()


def _close(a, b, loss_tol, weight_tol):
    (la, wa), (lb, wb) = a, b
    assert la == pytest.approx(lb, abs=loss_tol)
    for key in wa:
        torch.testing.assert_close(wa[key].float(), wb[key].float(), rtol=0, atol=weight_tol, msg=key)


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "kw, loss_tol",
    [
        # Float rounding only: another summation order.
        (dict(threads=2), 1e-4),
        # torch's CPU BatchNorm in channels_last computes training statistics less precisely
        # (about 1e-3 off a float64 reference, where NCHW is 1e-6 off): a wider bound.
        (dict(channels_last=True), 5e-3),
    ],
)


def test_fp32_speed_settings_give_the_same_loss_curve(tmp_path, kw, loss_tol):
    plain = _curve(tmp_path, "plain", threads=1)
    fast = _curve(tmp_path, "fast", **{"threads": 1, **kw})
    _close(plain, fast, loss_tol=loss_tol, weight_tol=20 * loss_tol)


@pytest.mark.skipif(not os.environ.get("TINYCNN_TEST_COMPILE"), reason="compiling takes 40 s on 2 cores; set TINYCNN_TEST_COMPILE=1")
def test_compiled_step_gives_the_same_loss_curve(tmp_path):
    # With dropout on: on the CPU the compiled model draws its masks from torch's generator in
    # the same order as eager mode, so only float rounding differs.
    plain = _curve(tmp_path, "plain", threads=1)
    compiled = _curve(tmp_path, "compiled", threads=1, compile=True)
    _close(plain, compiled, loss_tol=1e-4, weight_tol=2e-3)


@pytest.mark.parametrize("kind", ["foreach", "fused"])
def test_sgd_implementations_agree(kind):
    torch.manual_seed(0)
    a = create_model("era-s7-6750")
    b = copy.deepcopy(a)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9, foreach=False)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9, **{kind: True})
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.cross_entropy(model.eval()(x), y).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


def test_time_to_accuracy_trains_the_recipe_with_b_settings(tmp_path, capsys):
    out = tmp_path / "tta"
    code = main(["bench", "--time-to-accuracy", "--recipe", "default", "--device", "cpu", "--out", str(out), "--b", "subset=256", "epochs=1", "threads=1"])
    text = capsys.readouterr().out
    assert code == 1 and "did not reach 99.4%" in text  # one epoch on 256 images
    assert "the trained weights without the average: never held 99.4%" in text  # the default recipe's ema
    saved = (out / "config.toml").read_text()
    assert "subset = 256" in saved and "epochs = 1" in saved
    assert main(["bench", "--time-to-accuracy", "--b", "sgd=fused"]) == 1
    assert "not sgd" in capsys.readouterr().err

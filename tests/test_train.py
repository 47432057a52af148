"""The training engine end to end on small subsets of real MNIST."""

import json
import pickle

import pytest
import torch

from tinycnn.cli import main
from tinycnn.cli.args import parse_seeds
from tinycnn.config import config_from_dict
from tinycnn.engine.checkpoint import load_checkpoint
from tinycnn.engine.rundir import read_config, read_metrics, read_run
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.models import create_model
from tinycnn.recipes import list_recipes, load_recipe
from tinycnn.specs import evaluate_spec, load_spec


def small(**kw):
    base = dict(subset=600, epochs=2, batch_size=64, eval_batch_size=500, device="cpu")
    return load_recipe("default", **{**base, **kw})


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--subset", "2000", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "6,750 parameters" in text and "FAIL" in text and "budget era-s7" in text
    for name in ("config.toml", "metrics.jsonl", "run.json", "last.pt"):
        assert (out / name).exists(), name
    metrics = read_metrics(out)
    assert len(metrics) == 1
    m = metrics[0]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "train_seconds", "images_per_second", "eval_seconds"):
        assert key in m
    assert m["test_acc"] > 20  # learnt something in one epoch of 2,000 images
    run = read_run(out)
    assert run["status"] == "finished" and run["params"] == 6750 and run["torch"] == torch.__version__
    assert not (out / "best.pt").exists()  # no validation split, so no "best" is chosen
    # The check agrees, and says why it fails.
    assert main(["check", str(out)]) == 1
    assert "subset" in capsys.readouterr().out


def test_flags_override_recipe_and_are_saved(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--subset", "300", "--epochs", "1", "--lr", "0.05", "--scheduler", "none", "--rotation", "0", "--out", str(out), "--no-progress"]) == 0
    text = (out / "config.toml").read_text()
    assert 'scheduler = "none"' in text and "lr = 0.05" in text and "rotation = 0.0" in text


def _weights(path):
    return load_checkpoint(path)["model"]


@pytest.mark.parametrize("stop_at", [(0, 3), (1, 0)])
def test_resume_is_exact(tmp_path, stop_at):
    config = small(deterministic=True, val_size=200)
    Trainer(config, tmp_path / "a", progress=False, log=lambda m: None).fit()

    trainer = Trainer(config, tmp_path / "b", progress=False, log=lambda m: None)

    def stop(epoch, batch):
        if (epoch, batch) == stop_at:
            trainer.request_stop()

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(on_batch=stop)
    assert read_run(tmp_path / "b")["status"] == "interrupted"
    Trainer(config, tmp_path / "b", progress=False, log=lambda m: None).fit(resume=True)

    a, b = _weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [m["test_acc"] for m in ma] == [m["test_acc"] for m in mb]
    assert [m["train_loss"] for m in ma] == pytest.approx([m["train_loss"] for m in mb], rel=1e-12)
    best = load_checkpoint(tmp_path / "b" / "best.pt")
    assert best["val_acc"] == max(m["val_acc"] for m in mb)


def test_non_finite_loss_stops_with_one_line_and_keeps_last_good(tmp_path):
    config = small(epochs=3)
    trainer = Trainer(config, tmp_path / "n", progress=False, log=lambda m: None)

    def poison(epoch, batch):
        if (epoch, batch) == (1, 2):
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))

    with pytest.raises(TinycnnError, match=r"not finite in epoch 2, batch 4, at learning rate") as err:
        trainer.fit(on_batch=poison)
    assert "\n" not in str(err.value)
    state = load_checkpoint(tmp_path / "n" / "last.pt")
    assert state["epochs_done"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert len(read_metrics(tmp_path / "n")) == 1


def test_non_finite_loss_after_a_mid_epoch_resume_names_that_batch_and_its_lr(tmp_path):
    config = small(epochs=3)

    def poisoned(trainer):
        def poison(epoch, batch):
            if (epoch, batch) == (1, 2):
                with torch.no_grad():
                    next(trainer.model.parameters()).fill_(float("nan"))
        return poison

    straight = Trainer(config, tmp_path / "a", progress=False, log=lambda m: None)
    with pytest.raises(TinycnnError) as expected:
        straight.fit(on_batch=poisoned(straight))
    cut = Trainer(config, tmp_path / "b", progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(on_batch=lambda epoch, batch: cut.request_stop() if (epoch, batch) == (1, 1) else None)
    resumed = Trainer(config, tmp_path / "b", progress=False, log=lambda m: None)
    with pytest.raises(TinycnnError) as err:
        resumed.fit(resume=True, on_batch=poisoned(resumed))
    # the same batch and learning rate as without the interruption (only the directory differs)
    assert str(err.value).replace(str(tmp_path / "b"), "RUN") == str(expected.value).replace(str(tmp_path / "a"), "RUN")


def test_seeds_summary_and_eval(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["train", "--subset", "300", "--epochs", "1", "--seeds", "0,1", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1] and summary["seeds"] == 2
    assert summary["final_test_acc"]["min"] <= summary["final_test_acc"]["mean"] <= summary["final_test_acc"]["max"]
    assert "of 2 seeds meet era-s7" in capsys.readouterr().out
    # Different seeds, different weights.
    w0, w1 = _weights(out / "seed-0" / "last.pt"), _weights(out / "seed-1" / "last.pt")
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)
    # eval recomputes what training logged.
    assert main(["eval", str(out / "seed-0"), "--device", "cpu"]) == 0
    logged = read_metrics(out / "seed-0")[-1]["test_acc"]
    assert f"test accuracy {logged:.2f}%" in capsys.readouterr().out


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--subset", "200", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    assert main(["train", "--subset", "200", "--epochs", "1", "--out", str(out), "--no-progress"]) == 1
    assert "--resume" in capsys.readouterr().err


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0..3") == [0, 1, 2, 3]
    assert parse_seeds("0..1,7") == [0, 1, 7]
    for bad in ("a", "3..1", "1,1"):
        with pytest.raises(TinycnnError):
            parse_seeds(bad)


# ---------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_parses_and_builds_its_model(name):
    config = load_recipe(name)
    model = create_model(config.model, **({} if config.dropout is None else {"dropout": config.dropout}))
    assert model(torch.zeros(2, 1, 28, 28)).shape[0] == 2
    assert config.spec in ("era-s6", "era-s7")


def test_tiny_5k_recipe_is_the_default_schedule_with_its_own_regularisation():
    tiny, default = load_recipe("tiny-5k"), load_recipe("default")
    assert (tiny.model, tiny.dropout, tiny.rotation) == ("tiny-5k", 0.0, 7.0)
    assert (tiny.epochs, tiny.batch_size, tiny.scheduler, tiny.max_lr) == (default.epochs, default.batch_size, default.scheduler, default.max_lr)


def test_recipe_details_match_the_write_ups():
    s6 = load_recipe("era-s6-19712")
    assert (s6.epochs, s6.batch_size, s6.lr, s6.momentum, s6.rotation, s6.scheduler) == (19, 128, 0.01, 0.9, 10.0, "none")
    s5 = load_recipe("era-s7-step5")
    assert (s5.model, s5.batch_size, s5.scheduler, s5.max_lr, s5.dropout, s5.rotation) == ("era-s7-8172", 64, "onecycle", 0.1, 0.05, 15.0)
    s3 = load_recipe("era-s7-step3")
    assert (s3.model, s3.rotation, s3.epochs, s3.dropout) == ("era-s7-10616-dropout", 6.0, 15, 0.01)
    assert load_recipe("default").model == "era-s7-6750"


def test_the_default_recipe_is_era_s7_step6_with_a_weight_average_and_the_machines_fastest_settings():
    default, step6 = load_recipe("default"), load_recipe("era-s7-step6")
    assert default.changes_from(step6) == {"ema": (0.0, 0.995), "compile": (False, "auto"), "amp": (False, "auto")}
    tiny = load_recipe("tiny-5k")
    assert (tiny.ema, tiny.compile, tiny.amp) == (0.995, "auto", "auto")


@pytest.mark.parametrize(
    "text, message",
    [
        ("modle = 'x'\n", "unknown key 'modle' (did you mean 'model'?)"),
        ("epochs = 'ten'\n", "epochs = 'ten' should be int"),
        ("epochs = 0\n", "epochs must be >= 1"),
        ("optimizer = 'rmsprop'\n", "optimizer = 'rmsprop' is not one of"),
        ("lr = -1\n", "lr must be a positive number"),
        ("epochs = \n", "not valid TOML"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TinycnnError) as err:
        load_recipe(str(path))
    assert message in str(err.value)


def test_unknown_recipe_and_extends_loop(tmp_path, capsys):
    with pytest.raises(TinycnnError, match="did you mean era-s7-step6"):
        load_recipe("era-s7-step66")
    (tmp_path / "a.toml").write_text(f'extends = "{tmp_path / "b.toml"}"\n')
    (tmp_path / "b.toml").write_text(f'extends = "{tmp_path / "a.toml"}"\n')
    with pytest.raises(TinycnnError, match="loops back"):
        load_recipe(str(tmp_path / "a.toml"))
    assert main(["train", "--recipe", "nope", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown recipe" in err[0]


def test_bad_flag_value_is_one_line(capsys):
    assert main(["train", "--epochs", "0", "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == "tinycnn: error: epochs must be >= 1, got 0"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--optimizer", "rmsprop"])
    assert exc.value.code == 2


# ---------------------------------------------------------------- budget check


FACTS = dict(params=6750, epochs=15, full_data=True, has_batchnorm=True, has_dropout=True, has_gap=True, has_linear=False)


def _verdict(spec, acc, k=None, **facts):
    return {c.name: c.passed for c in evaluate_spec(load_spec(spec), {**FACTS, **facts}, acc, k)}


def test_rubric_s7_consistency_and_off_by_one_in_k():
    ok = [99.0] * 12 + [99.41, 99.40, 99.5]
    assert all(_verdict("era-s7", ok).values())
    dip = [99.0] * 12 + [99.39, 99.45, 99.5]  # the third-to-last epoch dips
    assert not _verdict("era-s7", dip)["test accuracy, each of last 3"]
    assert _verdict("era-s7", dip, k=2)["test accuracy, each of last 2"]
    assert not _verdict("era-s7", ok, params=8000)["parameters"]  # < 8,000, so 8,000 fails
    assert _verdict("era-s7", ok, params=7999)["parameters"]
    assert not _verdict("era-s7", ok + [99.5], epochs=16)["epochs"]
    assert not _verdict("era-s7", [99.5, 99.5])["test accuracy, last 3 epochs"]  # too few epochs


def test_rubric_s6_structure():
    acc = [99.0] * 18 + [99.4]
    assert all(_verdict("era-s6", acc, params=19712, epochs=19).values())
    v = _verdict("era-s6", acc, params=19712, epochs=20, has_batchnorm=False, has_gap=False, has_linear=False)
    assert not v["epochs"] and not v["uses BatchNorm"] and not v["GAP or fully connected"]
    assert not _verdict("era-s6", acc, params=20000, epochs=19)["parameters"]
    assert not _verdict("era-s6", acc, epochs=19, full_data=False)["full train and test sets"]


def test_custom_spec_file_and_errors(tmp_path):
    spec = tmp_path / "mine.toml"
    spec.write_text("params_below = 5000\nepochs_at_most = 10\naccuracy_at_least = 99.0\nlast_k = 2\n")
    assert _verdict(str(spec), [99.1, 99.2], params=4000, epochs=2)["test accuracy, each of last 2"]
    spec.write_text("params_below = 5000\nepochs = 3\n")
    with pytest.raises(TinycnnError, match="unknown key 'epochs'"):
        load_spec(str(spec))
    with pytest.raises(TinycnnError, match="unknown spec"):
        load_spec("era-s8")


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        torch.save({"model": Evil()}, f, pickle_module=pickle)
    with pytest.raises(TinycnnError, match="not a loadable tinycnn checkpoint"):
        load_checkpoint(path)
    (tmp_path / "trunc.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(TinycnnError, match="not a loadable"):
        load_checkpoint(tmp_path / "trunc.pt")


def test_config_round_trip():
    from tinycnn.config import read_toml, to_toml

    config = load_recipe("era-s7-step5")
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d) / "c.toml"
        p.write_text(to_toml(config.to_dict()))
        assert config_from_dict(read_toml(p)) == config


def test_unknown_model_fails_before_anything_is_written(tmp_path, capsys):
    assert main(["train", "--model", "era-s7-675", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "did you mean era-s7-6750" in captured.err
    assert not (tmp_path / "r").exists()


def test_resuming_a_finished_run_leaves_it_finished(tmp_path, capsys):
    out = tmp_path / "done"
    assert main(["train", "--subset", "256", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    before = (out / "last.pt").read_bytes()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "already finished (1 epochs)" in capsys.readouterr().out
    assert read_run(out)["status"] == "finished"
    assert (out / "last.pt").read_bytes() == before


def test_execution_flags_reach_the_saved_config(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--subset", "300", "--epochs", "1", "--out", str(out), "--no-progress",
                 "--eval-batch-size", "100", "--no-cuda-graphs", "--no-fast-dropout"])
    assert code == 0
    config = read_config(out)
    assert (config.eval_batch_size, config.cuda_graphs, config.fast_dropout) == (100, False, False)

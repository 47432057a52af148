import pytest

from tinycnn.cli import main
from tinycnn.cli.train import train_recipe
from tinycnn.course.reproduce import CLAIMS, collect, render_markdown


def test_table_from_results_and_update(tmp_path, capsys):
    results = tmp_path / "results"
    train_recipe("era-s7-step6", {"subset": 300, "epochs": 1, "device": "cpu"}, seeds=[0, 1], out=results / "era-s7-step6", progress=False)
    rows = collect(results)
    assert [r["recipe"] for r in rows] == ["era-s7-step6"]
    row = rows[0]
    assert row["seeds"] == 2 and row["params"] == 6750 and row["claim"].best_acc == 99.50
    table = render_markdown(rows)
    assert "| era-s7-step6 |" in table and "ERA Session 7 write-up, step 6" in table and "0 of 2" in table

    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- reproduction-table:begin -->\nold\n<!-- reproduction-table:end -->\noutro\n")
    capsys.readouterr()
    assert main(["reproduce", "--results", str(results), "--update", str(doc)]) == 0
    text = doc.read_text()
    assert "old" not in text and "| era-s7-step6 |" in text and text.startswith("intro") and text.endswith("outro\n")


def test_no_results_is_one_line(tmp_path, capsys):
    assert main(["reproduce", "--results", str(tmp_path)]) == 1
    assert "tinycnn reproduce --train" in capsys.readouterr().err


def test_every_claim_has_a_recipe():
    from tinycnn.recipes import list_recipes

    assert set(CLAIMS) <= set(list_recipes())


def test_unknown_recipe_with_train(tmp_path, capsys):
    assert main(["reproduce", "--train", "--recipes", "tiny-5k", "--results", str(tmp_path)]) == 1
    assert "not a write-up system" in capsys.readouterr().err


def test_train_passes_parallel_on(tmp_path, monkeypatch):
    from tinycnn.cli import train as train_command

    calls = []
    monkeypatch.setattr(train_command, "train_recipe", lambda recipe, overrides, **kw: calls.append((recipe, kw)) or 0)
    main(["reproduce", "--train", "--parallel", "--recipes", "era-s7-step6", "--seeds", "0,1", "--results", str(tmp_path)])
    assert calls == [("era-s7-step6", {"seeds": [0, 1], "out": tmp_path / "era-s7-step6", "progress": False, "parallel": True})]


def _write_finished_run(results, recipe, accs, params):
    import json

    from tinycnn.config import to_toml
    from tinycnn.recipes import load_recipe

    run_dir = results / recipe
    config = load_recipe(recipe)
    (run_dir / "seed-0").mkdir(parents=True)
    (run_dir / "config.toml").write_text(to_toml(config.to_dict()))
    (run_dir / "seed-0" / "config.toml").write_text(to_toml(config.to_dict()))
    lines = [json.dumps({"epoch": i + 1, "train_acc": 99.0, "test_acc": a, "train_seconds": 20.0, "eval_seconds": 1.0}) for i, a in enumerate(accs)]
    (run_dir / "seed-0" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    run = {"seed": 0, "params": params, "status": "finished", "has_batchnorm": True, "has_dropout": True, "has_gap": True, "has_linear": False, "full_data": True}
    (run_dir / "seed-0" / "run.json").write_text(json.dumps(run))
    return run_dir, config


def test_target_column_counts_accuracy_not_the_parameter_budget(tmp_path):
    from tinycnn.config import to_toml

    run_dir, config = _write_finished_run(tmp_path, "era-s7-step5", [99.0] * 12 + [99.41, 99.5, 99.45], 8172)
    (row,) = collect(tmp_path)
    assert row["passing"] == 1 and row["min_last3"] == 99.41  # 8,172 >= 8,000 fails the budget, not the accuracy target
    assert "| 21 |" in render_markdown([row])  # eager epochs: no mark

    config.compile = True
    (run_dir / "config.toml").write_text(to_toml(config.to_dict()))
    assert "| 21 (compiled) |" in render_markdown(collect(tmp_path))


@pytest.mark.parametrize("last3, passing", [([99.2, 99.3, 99.41], 1), ([99.5, 99.45, 99.39], 0)])
def test_session6_target_is_the_final_epoch_while_the_column_shows_the_last_3(tmp_path, last3, passing):
    _write_finished_run(tmp_path, "era-s6-19712", [99.0] * 16 + last3, 19712)
    (row,) = collect(tmp_path)
    assert row["passing"] == passing and row["min_last3"] == min(last3)


@pytest.mark.parametrize("document", ["README.md", "docs/reproduction.md"])
def test_the_shipped_table_is_the_one_the_shipped_results_give(document):
    """The reproduction table in README and docs is rebuilt, cell for cell, from results/reproduction/."""
    from pathlib import Path

    from tinycnn.cli.reproduce import MARK_BEGIN, MARK_END

    repo = Path(__file__).resolve().parents[2]
    text = (repo / document).read_text()
    shipped = text.split(MARK_BEGIN, 1)[1].split(MARK_END, 1)[0].strip()
    rows = collect(repo / "results" / "reproduction")
    assert len(rows) == len(CLAIMS)
    assert render_markdown(rows).strip() == shipped

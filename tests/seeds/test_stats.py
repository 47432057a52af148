"""Per-seed outcomes and their summary, from run files."""

import json

from tinycnn.seeds.stats import render_summary, summarize_seeds

FACTS = {"params": 6750, "full_data": True, "has_batchnorm": True, "has_dropout": True, "has_gap": True, "has_linear": False}


def _run(path, seed, accs, stacked=None):
    path.mkdir(parents=True)
    info = {"seed": seed, "status": "finished", **FACTS, **({"stacked_seeds": stacked} if stacked else {})}
    (path / "run.json").write_text(json.dumps(info))
    rows = [{"epoch": i + 1, "train_acc": 99.0, "test_acc": a, "train_seconds": 20.0, "eval_seconds": 2.0} for i, a in enumerate(accs)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "config.toml").write_text(f"epochs = {len(accs)}\nseed = {seed}\n")  # what it set out to do
    return path


def test_summary_says_from_when_each_seed_held_the_target(tmp_path):
    held = _run(tmp_path / "a", 0, [99.0, 99.41, 99.2, 99.45, 99.5])  # 99.4% for good from epoch 4
    never = _run(tmp_path / "b", 1, [99.0, 99.5, 99.3])
    summary = summarize_seeds([held, never], "era-s7")
    first, second = summary["runs"]
    assert first["target_held_from_epoch"] == 4 and first["seconds_to_target"] == 88.0 and not first["stacked"]
    assert second["target_held_from_epoch"] is None and second["seconds_to_target"] is None
    assert summary["target"] == 99.4 and summary["seconds_to_target"]["mean"] == 88.0
    text = render_summary(summary)
    assert "held 99.4% from" in text and "epoch 4 (88 s)" in text
    assert text.splitlines()[2].split()[4] == "-"  # seed 1 never held it
    assert "trained stacked" not in text


def test_stacked_seeds_say_their_time_is_shared(tmp_path):
    runs = [_run(tmp_path / f"s{s}", s, [99.5, 99.5, 99.5], stacked=[0, 1]) for s in (0, 1)]
    summary = summarize_seeds(runs, "era-s7")
    assert all(r["stacked"] for r in summary["runs"])
    assert "each time is that of all of them" in render_summary(summary)

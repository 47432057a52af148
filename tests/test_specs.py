"""The budget specs: each criterion, the last-K rule, and spec files of the user's."""

import pytest

from tinycnn.errors import TinycnnError
from tinycnn.specs import evaluate_spec, load_spec

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

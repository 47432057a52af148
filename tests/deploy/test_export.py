"""Export end to end on a briefly trained network: ONNX checked against torch, int8 by
onnxruntime, C compiled with cc and held to the int8 model's predictions, and every layer C
cannot hold named in one line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinycnn.cli import main
from tinycnn.data import datasets
from tinycnn.deploy.c_export import c_predictions
from tinycnn.deploy.onnx_export import onnx_logits
from tinycnn.engine.trainer import Trainer
from tinycnn.recipes import load_recipe

COURSE_NET = Path(__file__).resolve().parents[1] / "fixtures" / "course_net.py"
IMAGES = 2000  # test images the C is held to


def train(out: Path, **kw) -> Path:
    config = load_recipe("default", **{"subset": 6000, "epochs": 2, "device": "cpu", "compile": False, "amp": False, **kw})
    Trainer(config, out, progress=False, log=lambda m: None).fit()
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The default recipe's network, trained on 6,000 images: good enough to disagree about."""
    return train(tmp_path_factory.mktemp("trained") / "run")


def test_onnx_matches_torch_and_int8_keeps_the_accuracy(run, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", str(run), "--int8", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "onnxruntime's logits are within" in said and "int8 test accuracy" in said
    test = datasets.load("mnist", "test")
    pixels = (test.images.astype(np.float32) / 255)[:, None]
    fp32 = onnx_logits(out, pixels)
    int8 = onnx_logits(out.with_name("model.int8.onnx"), pixels)
    import torch

    from tinycnn.deploy.network import load_deployable

    with torch.no_grad():
        reference = load_deployable(run).network(torch.from_numpy(pixels)).numpy()
    assert np.abs(fp32 - reference).max() < 1e-4
    accuracy = lambda logits: 100 * (logits.argmax(1) == test.labels).mean()  # noqa: E731
    assert abs(accuracy(fp32) - accuracy(reference)) <= 0.01
    assert accuracy(int8) > accuracy(fp32) - 1.0  # the budget models' loss is measured in docs/deploy.md
    assert out.with_name("model.int8.onnx").stat().st_size < out.stat().st_size / 2


@pytest.mark.skipif(shutil.which("cc") is None, reason="compiling the C needs a C compiler (cc)")
def test_the_c_agrees_with_the_int8_model(run, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["export", str(run), "--format", "c", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "flash" in said and "RAM" in said
    header = (out / "model.h").read_text()
    assert "int tinycnn_predict(const unsigned char pixels[784]);" in header
    import re

    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", (out / "model.c").read_text(), flags=re.S)
    assert not re.search(r"\b(malloc|calloc|float|double)\b", code)  # integers only, fixed buffers
    test = datasets.load("mnist", "test")
    images, labels = test.images[:IMAGES], test.labels[:IMAGES]
    theirs = onnx_logits(out / "model.int8.onnx", (images.astype(np.float32) / 255)[:, None]).argmax(1)
    mine = c_predictions(out, images)
    assert (mine == theirs).mean() >= 0.999
    assert (mine == labels).mean() > 0.9


@pytest.mark.skipif(shutil.which("cc") is None, reason="compiling the C needs a C compiler (cc)")
def test_a_course_style_network_of_the_users_exports_to_c(tmp_path, capsys):
    """BatchNorm after ReLU (not foldable), AvgPool2d as GAP, x.view and log_softmax."""
    net = tmp_path / "net.py"
    shutil.copy(COURSE_NET, net)
    run = train(tmp_path / "run", model=f"{net}:Net", subset=3000)
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 0
    test = datasets.load("mnist", "test")
    images = test.images[:IMAGES]
    theirs = onnx_logits(tmp_path / "c" / "model.int8.onnx", (images.astype(np.float32) / 255)[:, None]).argmax(1)
    assert (c_predictions(tmp_path / "c", images) == theirs).mean() >= 0.999


def test_a_layer_c_cannot_hold_is_named_in_one_line(tmp_path, capsys):
    net = tmp_path / "gelu.py"
    net.write_text("import torch.nn as nn\n\ndef Net():\n    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.GELU(), "
                   "nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))\n")
    run = train(tmp_path / "run", model=f"{net}:Net", subset=256, epochs=1)
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot hold the layer 1 (GELU)" in err[0]
    assert not (tmp_path / "c").exists()
    assert main(["export", str(run), "--out", str(tmp_path / "gelu.onnx")]) == 0  # ONNX takes it


def test_export_mistakes_are_one_line(run, tmp_path, capsys):
    assert main(["export", str(run), "--out", str(tmp_path / "model.txt")]) == 1
    assert "ends in .onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "a-file")]) == 1
    assert "is a file" in capsys.readouterr().err


def test_the_json_of_predict_reads_back(run, tmp_path, capsys):
    from PIL import Image

    test = datasets.load("mnist", "test")
    Image.fromarray(test.images[0]).save(tmp_path / "digit.png")
    assert main(["predict", str(run), str(tmp_path / "digit.png"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["file"] == str(tmp_path / "digit.png") and len(record["probabilities"]) == 10
    assert record["digit"] == int(np.argmax(record["probabilities"]))
    assert sum(record["probabilities"]) == pytest.approx(1.0, abs=1e-4)

"""Reading digits from images as people make them: MNIST test digits drawn larger, inverted,
off-centre on a wider sheet, with noise, as PNG and JPEG files; read back through the
preprocessing, by a run's network and by its ONNX export."""

import json
from pathlib import Path

import numpy as np
import pytest
from drawn import draw  # tests/deploy/drawn.py
from PIL import Image

from tinycnn.cli import main
from tinycnn.data import datasets
from tinycnn.deploy.predict import Reader
from tinycnn.deploy.preprocess import read_image, to_mnist
from tinycnn.engine.trainer import Trainer
from tinycnn.recipes import load_recipe

DRAWN = 200  # test digits drawn by hand, as it were


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = load_recipe("default", subset=6000, epochs=2, device="cpu", compile=False, amp=False)
    out = tmp_path_factory.mktemp("predict") / "run"
    Trainer(config, out, progress=False, log=lambda m: None).fit()
    return out


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """DRAWN test digits as photos: three in four dark ink on light paper, one in three a JPEG."""
    test = datasets.load("mnist", "test")
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("drawn")
    paths = [draw(test.images[i], rng, inverted=i % 4 != 3, jpeg=i % 3 == 0, path=folder / f"digit-{i:03d}") for i in range(DRAWN)]
    return paths, test.images[:DRAWN], test.labels[:DRAWN]


def test_the_preprocessing_gives_back_the_mnist_digit(drawn):
    paths, originals, _ = drawn
    seen = np.stack([to_mnist(read_image(p)) for p in paths]).astype(np.float64)
    correlation = [np.corrcoef(a.ravel(), b.ravel().astype(np.float64))[0, 1] for a, b in zip(seen, originals)]
    assert np.median(correlation) > 0.75  # the same digit, within a pixel of where MNIST put it
    mass = seen.sum((1, 2))
    rows, cols = np.indices((28, 28))
    centre = np.stack([(seen * rows).sum((1, 2)) / mass, (seen * cols).sum((1, 2)) / mass], 1)
    assert np.abs(centre - 13.5).max() < 1.0  # centred by mass
    assert all(a.max() >= 200 for a in seen)  # the ink bright


def test_drawn_digits_read_as_well_as_the_test_set(run, drawn):
    paths, originals, labels = drawn
    reader = Reader(run)
    drawn_accuracy = np.mean([p.digit for p in reader.read(paths)] == labels)
    plain_accuracy = np.mean(reader.logits((originals.astype(np.float32) / 255)[:, None]).argmax(1) == labels)
    assert drawn_accuracy >= plain_accuracy - 0.03  # docs/deploy.md has the trained networks' figures


def test_an_onnx_model_reads_what_the_run_reads(run, drawn, tmp_path, capsys):
    paths = [str(p) for p in drawn[0][:20]]
    assert main(["export", str(run), "--out", str(tmp_path / "model.onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), *paths, "--json"]) == 0
    by_run = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(tmp_path / "model.onnx"), *paths, "--json"]) == 0
    by_onnx = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["digit"] for r in by_run] == [r["digit"] for r in by_onnx]
    assert np.allclose([r["probabilities"] for r in by_run], [r["probabilities"] for r in by_onnx], atol=1e-4)


def test_show_writes_what_the_network_saw(run, drawn, tmp_path, capsys):
    path = drawn[0][0]
    assert main(["predict", str(run), str(path), "--show", str(tmp_path / "seen")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: ") and "probability" in out
    sheet = Image.open(tmp_path / "seen" / f"{Path(path).stem}.seen.png")
    assert sheet.height >= 112 and sheet.width > 112


def test_bad_images_are_one_line(run, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("L", (64, 64), 230).save(tmp_path / "blank.png")
    for path, message in ((tmp_path / "missing.png", "no such image"), (tmp_path / "notes.png", "not an image tinycnn can read"),
                          (tmp_path / "blank.png", "the image is blank")):
        assert main(["predict", str(run), str(path)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and message in err[0]
    assert main(["predict", str(tmp_path / "nope.onnx"), str(tmp_path / "blank.png")]) == 1
    assert "no such ONNX model" in capsys.readouterr().err

"""The deployed network as ONNX, checked on the test set against torch; and its int8 twin,
statically quantised by onnxruntime (per-channel weights, activations calibrated on training
images), in the QOperator form that deploy/c_export.py turns into C.

    pixels  float32 (N, 1, 28, 28), MNIST's bytes / 255; the normalisation is in the graph
    logits  float32 (N, classes)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tinycnn.deploy.network import Deployable
from tinycnn.errors import TinycnnError

CALIBRATION_IMAGES = 1000  # training images the int8 activations' ranges are measured on
CALIBRATION_SEED = 0
ACCURACY_TOLERANCE = 0.01  # pp: the ONNX graph must classify the test set as torch does


@dataclass
class Exported:
    path: Path
    bytes: int
    accuracy: float  # % on the test set, by onnxruntime
    torch_accuracy: float | None = None  # fp32 only: the same network in torch
    max_difference: float | None = None  # fp32 only: the largest |logit difference| from torch


def test_pixels(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The test split as float32 pixels in [0, 1] (N, 1, 28, 28) and int64 labels."""
    from tinycnn.data import datasets

    split = datasets.load(dataset, "test")
    return (split.images.astype(np.float32) / 255.0)[:, None], split.labels.astype(np.int64)


def calibration_pixels(dataset: str, n: int = CALIBRATION_IMAGES) -> np.ndarray:
    """n training images, a fixed draw, as float32 pixels."""
    from tinycnn.data import datasets

    images = datasets.load(dataset, "train").images
    pick = np.sort(np.random.default_rng(CALIBRATION_SEED).permutation(len(images))[:n])
    return (images[pick].astype(np.float32) / 255.0)[:, None]


def onnx_logits(path: Path, pixels: np.ndarray, batch: int = 1000) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"pixels": pixels[i:i + batch]})[0] for i in range(0, len(pixels), batch)])


def export_fp32(deployable: Deployable, path: Path, *, log=print) -> Exported:
    """Export, then check on the test set: onnxruntime against torch, logits and accuracy."""
    network = deployable.network
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-export-") as tmp:
        draft = Path(tmp) / "model.onnx"
        _export(network, draft)
        pixels, labels = test_pixels(deployable.config.dataset)
        with torch.no_grad():
            reference = torch.cat([network(torch.from_numpy(pixels[i:i + 1000])) for i in range(0, len(pixels), 1000)]).numpy()
        logits = onnx_logits(draft, pixels)
        difference = float(np.abs(logits - reference).max())
        ours, theirs = _accuracy(logits, labels), _accuracy(reference, labels)
        if abs(ours - theirs) > ACCURACY_TOLERANCE:
            raise TinycnnError(f"the ONNX graph classifies the test set differently from torch ({ours:.2f}% against "
                               f"{theirs:.2f}%, logits up to {difference:.3g} apart); nothing was written")
        os.replace(draft, path)
    return Exported(path, path.stat().st_size, ours, theirs, difference)


def export_int8(fp32: Path, path: Path, dataset: str) -> Exported:
    """Static int8 quantisation by onnxruntime (QOperator: QLinearConv and friends), weights
    per channel, activations calibrated on training images; its test accuracy."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = calibration_pixels(dataset)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"pixels": calibration[i:i + 100]} for i in range(0, len(calibration), 100)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-int8-") as tmp, _quiet():
        prepared, draft = Path(tmp) / "prepared.onnx", Path(tmp) / "model.onnx"
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(str(prepared), str(draft), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        pixels, labels = test_pixels(dataset)
        accuracy = _accuracy(onnx_logits(draft, pixels), labels)
        os.replace(draft, path)
    return Exported(path, path.stat().st_size, accuracy)


def _export(network: torch.nn.Module, path: Path) -> None:
    sample = torch.rand(2, 1, 28, 28)
    errors = []
    for dynamo in (True, False):  # torch.export's exporter first, the tracing one where it cannot
        try:
            with _quiet():
                kwargs = ({"dynamic_shapes": ({0: torch.export.Dim("batch")},), "external_data": False} if dynamo
                          else {"dynamic_axes": {"pixels": {0: "batch"}, "logits": {0: "batch"}}})
                torch.onnx.export(network, (sample,), str(path), input_names=["pixels"], output_names=["logits"],
                                  dynamo=dynamo, **kwargs)
            return
        except Exception as exc:  # the exporters raise many kinds
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            errors.append(lines[0][:300] if lines else type(exc).__name__)
    raise TinycnnError(f"torch could not export the network to ONNX ({errors[-1]})")


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float((logits.argmax(1) == labels).mean())


@contextlib.contextmanager
def _quiet():
    """The exporters and the quantiser talk on stdout, stderr and logging; a command says
    what matters itself."""
    import warnings

    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)

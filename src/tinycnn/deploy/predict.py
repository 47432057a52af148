"""Digits read from images by a run's network (torch) or an exported ONNX model (onnxruntime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinycnn.errors import TinycnnError


@dataclass
class Prediction:
    file: str
    digit: int
    probabilities: list[float]
    seen: np.ndarray  # the 28x28 uint8 image the network saw


class Reader:
    """The network behind `target`: a run directory or checkpoint, or a .onnx file."""

    def __init__(self, target: str | Path, model: str | None = None):
        target = Path(target)
        if target.suffix == ".onnx":
            if not target.is_file():
                raise TinycnnError(f"{target}: no such ONNX model")
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise TinycnnError(f"{target}: not an ONNX model onnxruntime can run ({str(exc).splitlines()[0][:200]})") from None
            self.logits = lambda pixels: session.run(None, {session.get_inputs()[0].name: pixels})[0]
        else:
            import torch

            from tinycnn.deploy.network import load_deployable

            network = load_deployable(target, model).network

            def logits(pixels):
                with torch.no_grad():
                    return network(torch.from_numpy(pixels)).numpy()

            self.logits = logits

    def read(self, paths: list[str | Path]) -> list[Prediction]:
        from tinycnn.deploy.preprocess import read_image, to_mnist

        seen = []
        for path in paths:
            try:
                seen.append(to_mnist(read_image(path)))
            except TinycnnError as exc:
                text = str(exc)
                raise TinycnnError(text if text.startswith(str(path)) else f"{path}: {text}") from None
        if not seen:
            return []
        pixels = (np.stack(seen).astype(np.float32) / 255.0)[:, None]
        logits = self.logits(pixels).astype(np.float64)
        shifted = np.exp(logits - logits.max(1, keepdims=True))
        probabilities = shifted / shifted.sum(1, keepdims=True)
        return [Prediction(str(path), int(p.argmax()), [round(float(v), 6) for v in p], image)
                for path, p, image in zip(paths, probabilities, seen)]


def show(prediction: Prediction, image_path: str | Path, out_dir: Path) -> Path:
    """The input beside the 28x28 image the network saw (drawn 4x), as one PNG in out_dir."""
    from PIL import Image, ImageOps

    from tinycnn.atomic import atomic_write_bytes
    from tinycnn.deploy.preprocess import read_image

    original = ImageOps.contain(read_image(image_path).convert("L"), (224, 224))
    seen = Image.fromarray(prediction.seen).resize((112, 112), Image.NEAREST)
    sheet = Image.new("L", (original.width + 16 + 112, max(original.height, 112)), 128)
    sheet.paste(original, (0, 0))
    sheet.paste(seen, (original.width + 16, 0))
    import io

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    path = out_dir / f"{Path(image_path).stem}.seen.png"
    atomic_write_bytes(path, buffer.getvalue())
    return path

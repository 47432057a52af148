"""MNIST test digits rendered the way people make them: larger, dark ink on light paper (or
light on dark), off-centre on a wider sheet, with the paper's noise; as PNG or JPEG files."""

from pathlib import Path

import numpy as np
from PIL import Image


def draw(digit: np.ndarray, rng: np.random.Generator, *, inverted: bool = True, jpeg: bool = False, path: Path) -> Path:
    """One 28x28 MNIST digit as a photo of paper would show it."""
    scale = int(rng.integers(4, 9))  # 112 to 224 pixels a side
    big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.BICUBIC), dtype=np.float64)
    height, width = int(28 * scale * rng.uniform(1.3, 1.8)), int(28 * scale * rng.uniform(1.5, 2.5))
    sheet = np.zeros((height, width))
    top, left = int(rng.integers(0, height - big.shape[0])), int(rng.integers(0, width - big.shape[1]))
    sheet[top:top + big.shape[0], left:left + big.shape[1]] = big
    if inverted:  # dark ink on light, unevenly lit paper
        light = 215 + 25 * np.linspace(0, 1, width)[None, :] * rng.uniform(0.3, 1.0)
        sheet = light - sheet * (light - 40) / 255
    sheet += rng.normal(0, 6, sheet.shape)  # the paper's grain, the camera's noise
    image = Image.fromarray(np.clip(sheet, 0, 255).astype(np.uint8))
    path = path.with_suffix(".jpg" if jpeg else ".png")
    image.save(path, quality=85) if jpeg else image.save(path)
    return path

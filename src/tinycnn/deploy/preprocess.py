"""A photo, a scan or a drawing of a digit, made into an MNIST input the way MNIST itself was
made: grey, the ink bright on black, cropped to the digit, scaled to fit 20x20 keeping its
aspect (anti-aliased), and centred by its centre of mass in 28x28."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinycnn.errors import TinycnnError

BOX = 20  # MNIST's digits fit a 20x20 box ...
SIDE = 28  # ... centred by mass in 28x28
MASS_KEPT = 0.995  # the crop keeps this share of the ink, so that specks of noise far off do not widen it


def read_image(path: str | Path):
    """The image at `path` as PIL would give it; one line if it is missing or not an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise TinycnnError(f"{path}: no such image")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise TinycnnError(f"{path}: not an image tinycnn can read ({exc.__class__.__name__}); give a PNG or a JPEG") from None


def grey(image) -> np.ndarray:
    """Float grey levels in [0, 255]; a transparent background counts as white paper."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float64)


def ink(levels: np.ndarray) -> np.ndarray:
    """The ink made bright on a black background, in [0, 1]: the paper's level (the median of
    the border) subtracted, whichever way round the image is."""
    border = np.concatenate([levels[0], levels[-1], levels[:, 0], levels[:, -1]])
    paper = float(np.median(border))
    amount = paper - levels if paper > 127 else levels - paper  # dark ink on light paper, or the other way
    amount = np.clip(amount, 0, None)
    top = float(np.percentile(amount, 99.9))
    if top <= 0:
        raise TinycnnError("the image is blank: no ink stands out from the paper")
    return np.clip(amount / top, 0, 1)


def otsu(values: np.ndarray) -> float:
    """The threshold that best splits `values` (in [0, 1]) into two groups (Otsu's method)."""
    counts, edges = np.histogram(values, bins=64, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    total, total_mean = weight[-1], mean[-1]
    between = np.zeros_like(centres)
    valid = (weight > 0) & (weight < total)
    w0, w1 = weight[valid], total - weight[valid]
    m0, m1 = mean[valid] / w0, (total_mean - mean[valid]) / w1
    between[valid] = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between))])


def crop(amount: np.ndarray) -> np.ndarray:
    """The digit's box: the rows and columns that hold all but the outermost specks of the ink
    above Otsu's threshold; the paper's faint noise inside it set to 0."""
    threshold = otsu(amount)
    strokes = np.where(amount > threshold, amount, 0.0)
    if not strokes.any():
        raise TinycnnError("the image is blank: no ink stands out from the paper")

    def span(mass: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(mass) / mass.sum()
        lo = int(np.searchsorted(cumulative, (1 - MASS_KEPT) / 2))
        hi = int(np.searchsorted(cumulative, 1 - (1 - MASS_KEPT) / 2))
        return lo, max(hi, lo) + 1

    top, bottom = span(strokes.sum(1))
    left, right = span(strokes.sum(0))
    box = amount[top:bottom, left:right]
    return np.where(box > threshold / 2, box, 0.0)  # the ink and its anti-aliased edge, not the paper's grain


def to_mnist(image) -> np.ndarray:
    """A PIL image of a digit as MNIST's 28x28 uint8 (0 background ... 255 ink)."""
    from PIL import Image

    digit = crop(ink(grey(image)))
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = Image.fromarray((digit * 255).astype(np.uint8)).resize(size, Image.LANCZOS)
    box = np.asarray(small, dtype=np.float64)
    mass = box.sum()
    rows, cols = np.indices(box.shape)
    cy, cx = (rows * box).sum() / mass, (cols * box).sum() / mass
    top, left = int(round(SIDE / 2 - 0.5 - cy)), int(round(SIDE / 2 - 0.5 - cx))
    top, left = min(max(top, 0), SIDE - box.shape[0]), min(max(left, 0), SIDE - box.shape[1])
    canvas = np.zeros((SIDE, SIDE))
    canvas[top:top + box.shape[0], left:left + box.shape[1]] = box
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

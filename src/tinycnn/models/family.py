"""A parametric family of compact MNIST networks: the Session 7 design, every choice an
argument, so that a search can walk it and whatever it picks is an ordinary zoo model.

    create_model("family", widths=(8, 12, 10, 10, 12, 12), pool_after=2, transition=8)
    tinycnn summary family --args '{"widths": [8, 12, 10, 10, 12, 12], "transition": 8}'

Layout: conv-BN-ReLU[-Dropout] blocks of 3x3 convolutions; the first `padded` keep the map's
size, the others shrink it by 2; a 2x2 max-pool after the first `pool_after` convolutions,
then an optional 1x1 `transition` (conv-BN-ReLU) to fewer channels; then the head: "gap"
(global average pool, then a bias-free 1x1 convolution to 10) or "fc" (flatten, then a
Linear layer to 10).
"""

from __future__ import annotations

from torch import nn

from tinycnn.errors import TinycnnError
from tinycnn.models.layers import cbr, conv, seq
from tinycnn.models.registry import register_model


def family_shape(widths, pool_after: int, padded: int, size: int = 28) -> list[tuple[int, int]]:
    """(channels, map side) after each convolution, the pool counted in; one line if the
    design does not fit a 28x28 image."""
    if not widths or any(int(w) < 1 for w in widths):
        raise TinycnnError(f"family: widths must be positive channel counts, got {list(widths)}")
    if not 0 <= pool_after <= len(widths) or not 0 <= padded <= len(widths):
        raise TinycnnError(f"family: pool_after and padded must be in [0, {len(widths)}], got {pool_after} and {padded}")
    shapes = []
    for i, width in enumerate(widths):
        if i == pool_after and pool_after:
            size //= 2
        size = size if i < padded else size - 2
        if size < 1:
            raise TinycnnError(f"family: the map vanishes at convolution {i + 1} of {len(widths)}; use fewer unpadded "
                               "convolutions or pad more")
        shapes.append((int(width), size))
    if pool_after == len(widths):
        size //= 2
        shapes[-1] = (shapes[-1][0], size)
    return shapes


@register_model(
    "family",
    description="parametric: conv-BN-ReLU widths, max-pool position, 1x1 transition, padding, GAP or FC head",
    origin="tinycnn (the search space of tinycnn search)",
)
def family(widths: tuple = (8, 12, 10, 10, 12, 12), pool_after: int = 2, transition: int = 8, padded: int = 2,
           head: str = "gap", dropout: float = 0.05) -> nn.Sequential:
    widths = [int(w) for w in widths]
    shapes = family_shape(widths, pool_after, padded)
    if head not in ("gap", "fc"):
        raise TinycnnError(f"family: head must be 'gap' or 'fc', got {head!r}")
    layers: dict[str, nn.Module] = {}
    channels, d = 1, (dropout or None)
    for i, width in enumerate(widths):
        if i == pool_after and pool_after:
            layers["pool"] = nn.MaxPool2d(2)
            if transition:
                layers["t1"] = nn.Sequential(conv(channels, transition, 1), nn.BatchNorm2d(transition), nn.ReLU())
                channels = transition
        layers[f"c{i + 1}"] = cbr(channels, width, 1 if i < padded else 0, d)
        channels = width
    if pool_after == len(widths):
        layers["pool"] = nn.MaxPool2d(2)
    if head == "gap":
        layers.update(gap=nn.AdaptiveAvgPool2d(1), head=conv(channels, 10, 1), flatten=nn.Flatten())
    else:
        layers.update(flatten=nn.Flatten(), fc=nn.Linear(channels * shapes[-1][1] ** 2, 10))
    return seq(**layers)

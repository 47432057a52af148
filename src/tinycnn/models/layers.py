"""The building blocks the zoo's networks are written with."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def seq(**layers: nn.Module) -> nn.Sequential:
    """nn.Sequential with readable layer names (keyword order is layer order)."""
    return nn.Sequential(OrderedDict(layers))


def conv(cin: int, cout: int, k: int = 3, p: int = 0, s: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)


def cbr(cin: int, cout: int, p: int = 0, dropout: float | None = None) -> nn.Sequential:
    """3x3 conv -> BatchNorm -> ReLU [-> Dropout]: the Session 7 block."""
    layers = [conv(cin, cout, 3, p), nn.BatchNorm2d(cout), nn.ReLU()]
    if dropout is not None:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def crb(cin: int, cout: int, p: int = 0, dropout: float | None = None, k: int = 3) -> nn.Sequential:
    """conv -> ReLU -> BatchNorm [-> Dropout]: the Session 6 order."""
    layers = [conv(cin, cout, k, p), nn.ReLU(), nn.BatchNorm2d(cout)]
    if dropout is not None:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)

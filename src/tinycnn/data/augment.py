"""Augmentation of a whole batch at once on its device: random affine warps (rotation,
translation, scale, shear) by affine_grid / grid_sample and random erasing, each sample with
its own parameters drawn from the epoch's generator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tinycnn.config import TrainConfig
from tinycnn.errors import TinycnnError


@dataclass(frozen=True)
class Augment:
    """Random affine transform and erasing, each sample its own parameters.

    rotation: degrees, uniform in [-rotation, rotation] (torchvision RandomRotation).
    translate: fraction of the image size, uniform in [-t, t] along each axis.
    scale: (lo, hi) zoom factor, uniform; (1, 1) for none.
    shear: degrees of x-shear, uniform in [-shear, shear].
    erasing: probability of blanking one random rectangle (RandomErasing, value 0).
    interpolation: "bilinear", or "nearest" as torchvision's RandomRotation default.
    """

    rotation: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0
    erasing: float = 0.0
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.rotation < 0 or self.translate < 0 or self.shear < 0:
            raise TinycnnError("augmentation strengths (rotation, translate, shear) must be >= 0")
        if not (0 <= self.erasing <= 1):
            raise TinycnnError(f"erasing is a probability in [0, 1], got {self.erasing}")
        lo, hi = self.scale
        if not (0 < lo <= hi):
            raise TinycnnError(f"scale must be (lo, hi) with 0 < lo <= hi, got {self.scale}")
        if self.interpolation not in ("bilinear", "nearest"):
            raise TinycnnError(f"interpolation must be 'bilinear' or 'nearest', got {self.interpolation!r}")

    @property
    def warps(self) -> bool:
        return bool(self.rotation or self.translate or self.shear or self.scale != (1.0, 1.0))

    @property
    def active(self) -> bool:
        return self.warps or self.erasing > 0

    def theta(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        """(n, 2, 3) matrices mapping output to input coordinates, as F.affine_grid wants."""

        def uniform(lo, hi):
            return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)

        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180)
        shear = uniform(-self.shear, self.shear) * (math.pi / 180)
        scale = uniform(*self.scale)
        tx = uniform(-self.translate, self.translate) * 2  # [-1, 1] spans the image
        ty = uniform(-self.translate, self.translate) * 2
        cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
        # rotation @ shear, then divided by the zoom (sampling a smaller area enlarges).
        a, b = cos / scale, (cos * tan - sin) / scale
        c, d = sin / scale, (sin * tan + cos) / scale
        return torch.stack([torch.stack([a, b, tx], 1), torch.stack([c, d, ty], 1)], 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x: (B, 1, H, W) float in [0, 1]; background 0 fills what comes into view."""
        if self.warps:
            theta = self.theta(x.shape[0], generator, x.device).to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode=self.interpolation, padding_mode="zeros", align_corners=False)
        if self.erasing > 0:
            x = self._erase(x, generator)
        return x

    def _erase(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # RandomErasing's defaults: area in [0.02, 0.33] of the image, aspect in [0.3, 3.3].
        n, _, h, w = x.shape
        dev = x.device

        def rand():
            return torch.rand(n, generator=generator, device=dev)

        area = (0.02 + 0.31 * rand()) * h * w
        log_aspect = math.log(0.3) + (math.log(3.3) - math.log(0.3)) * rand()
        aspect = torch.exp(log_aspect)
        eh = torch.sqrt(area * aspect).clamp(1, h)
        ew = torch.sqrt(area / aspect).clamp(1, w)
        y0 = rand() * (h - eh)
        x0 = rand() * (w - ew)
        apply = rand() < self.erasing
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        inside = (
            (rows >= y0.view(n, 1, 1).floor())
            & (rows < (y0 + eh).view(n, 1, 1).floor())
            & (cols >= x0.view(n, 1, 1).floor())
            & (cols < (x0 + ew).view(n, 1, 1).floor())
            & apply.view(n, 1, 1)
        )
        return x.masked_fill(inside.unsqueeze(1), 0.0)


def build_augment(config: TrainConfig) -> Augment:
    """The batched augmentation a configuration asks for."""
    return Augment(
        rotation=config.rotation, translate=config.translate, scale=tuple(config.scale), shear=config.shear,
        erasing=config.erasing, interpolation=config.interpolation,
    )

"""The in-memory loader: a split is one uint8 tensor on the training device.

A batch is an index gather from a per-epoch permutation; conversion to float, the
augmentation and the normalisation happen on the whole batch at once, on the device.
Compared with a torchvision DataLoader this makes no PIL image and no worker process.

    from tinycnn.loader import Augment, BatchLoader, load_splits
    splits = load_splits("mnist", val_size=5000, device="cpu")
    train = BatchLoader(*splits["train"], batch_size=128, shuffle=True, seed=0,
                        augment=Augment(rotation=15))
    for x, y in train.epoch(0): ...

Every random choice (order, augmentation) is drawn from a generator seeded by
(seed, epoch), so the same seed gives the same batches, and a run resumed at epoch k
sees exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from tinycnn.errors import TinycnnError

# Per-dataset pixel statistics on [0, 1] of the training split (`tinycnn data info`).
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}

# The validation split is drawn with its own fixed seed, so that every training seed
# is judged on the same held-out images.
VAL_SPLIT_SEED = 12345


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


def epoch_generator(seed: int, epoch: int, device) -> torch.Generator:
    """The generator for one epoch: a pure function of (seed, epoch), so resuming is exact."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed) * 1_000_003 + int(epoch))
    return g


class BatchLoader:
    """Batches of (normalised float images (B, 1, 28, 28), int64 labels) from tensors on one device."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
        mean: float = NORMALIZATION["mnist"][0],
        std: float = NORMALIZATION["mnist"][1],
        drop_last: bool = False,
        channels_last: bool = False,
        whole_epoch: bool | None = None,
    ):
        if images.dtype != torch.uint8 or images.dim() != 3:
            raise ValueError(f"images must be a (N, H, W) uint8 tensor, got {tuple(images.shape)} {images.dtype}")
        if batch_size < 1:
            raise TinycnnError(f"batch size must be >= 1, got {batch_size}")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle, self.seed = shuffle, seed
        self.augment = augment if augment is not None and augment.active else None
        self.mean, self.std = mean, std
        self.drop_last = drop_last
        self.channels_last = channels_last
        # Prepare each epoch at once (a different order of random draws than batch by batch,
        # the same distribution): the default on a GPU, where memory is plenty and launches dear.
        self.whole_epoch = images.device.type == "cuda" if whole_epoch is None else whole_epoch

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.images.shape[0]
        g = epoch_generator(self.seed, epoch, self.device)
        order = torch.randperm(n, generator=g, device=self.device) if self.shuffle else None
        if self.whole_epoch:
            yield from self._whole_epoch(order, g)
            return
        for b in range(len(self)):
            start = b * self.batch_size
            if order is None:
                idx = slice(start, start + self.batch_size)
                xb, yb = self.images[idx], self.labels[idx]
            else:
                idx = order[start : start + self.batch_size]
                xb, yb = self.images[idx], self.labels[idx]
            yield self.prepare(xb, g), yb

    __iter__ = epoch

    def _whole_epoch(self, order, g):
        # One gather and one augmentation of all images, then views: on a GPU, a batch at a
        # time costs 0.8 ms of kernel launches (docs/benchmarks.md), a whole epoch 5 ms.
        images, labels = (self.images, self.labels) if order is None else (self.images[order], self.labels[order])
        x = self.prepare(images, g)
        for b in range(len(self)):
            idx = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield x[idx], labels[idx]

    def prepare(self, xb: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (B, H, W) -> augmented, normalised float (B, 1, H, W)."""
        x = xb.unsqueeze(1).float().div_(255.0)
        if self.augment is not None:
            x = self.augment(x, g)
        x = x.sub_(self.mean).div_(self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def load_splits(
    dataset: str = "mnist",
    *,
    val_size: int = 0,
    subset: int | None = None,
    device="cpu",
    data_dir=None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train", "test"[, "val"]} -> (uint8 images, int64 labels) on `device`.

    val_size images are carved from the 60,000 training images (a fixed random draw),
    so choices can be made without looking at the test set. subset keeps the first N
    training images and at most N test images, to run the whole path in seconds.
    """
    from tinycnn import data

    train = data.load(dataset, "train", data_dir)
    test = data.load(dataset, "test", data_dir)
    n_train = train.images.shape[0]
    if not (0 <= val_size < n_train):
        raise TinycnnError(f"--val-size must be in [0, {n_train - 1}], got {val_size}")
    if subset is not None and subset < 1:
        raise TinycnnError(f"--subset must be >= 1, got {subset}")

    images = torch.from_numpy(train.images.copy())
    labels = torch.from_numpy(train.labels.copy())
    splits = {}
    if val_size:
        g = torch.Generator().manual_seed(VAL_SPLIT_SEED)
        perm = torch.randperm(n_train, generator=g)
        val_idx, train_idx = perm[:val_size].sort().values, perm[val_size:].sort().values
        splits["val"] = (images[val_idx], labels[val_idx])
        images, labels = images[train_idx], labels[train_idx]
    splits["train"] = (images, labels)
    splits["test"] = (torch.from_numpy(test.images.copy()), torch.from_numpy(test.labels.copy()))
    if subset is not None:
        splits = {k: (x[:subset], y[:subset]) for k, (x, y) in splits.items()}
    return {k: (x.to(device), y.to(device)) for k, (x, y) in splits.items()}

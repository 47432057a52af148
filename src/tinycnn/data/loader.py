"""The in-memory loader: a split is one uint8 tensor on the training device.

A batch is an index gather from a per-epoch permutation; conversion to float, the
augmentation and the normalisation happen on the whole batch at once, on the device.
Compared with a torchvision DataLoader this makes no PIL image and no worker process.

    from tinycnn.data.loader import BatchLoader, load_splits
    from tinycnn.data.augment import Augment
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
from typing import Iterator

import torch

from tinycnn.data.augment import Augment
from tinycnn.errors import TinycnnError

# Per-dataset pixel statistics on [0, 1] of the training split (`tinycnn data info`).
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}

# The validation split is drawn with its own fixed seed, so that every training seed
# is judged on the same held-out images.
VAL_SPLIT_SEED = 12345


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
        # One gather and one augmentation of all images, then views: on a GPU a batch at a
        # time is mostly kernel launches (docs/performance.md, "GPU").
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
    test: bool = True,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train", "test"[, "val"]} -> (uint8 images, int64 labels) on `device`.

    val_size images are carved from the 60,000 training images (a fixed random draw),
    so choices can be made without looking at the test set. subset keeps the first N
    training images and at most N test images, to run the whole path in seconds. test=False
    leaves the test split unread (a search chooses without it).
    """
    from tinycnn.data import datasets

    train = datasets.load(dataset, "train", data_dir)
    test_split = datasets.load(dataset, "test", data_dir) if test else None
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
    if test_split is not None:
        splits["test"] = (torch.from_numpy(test_split.images.copy()), torch.from_numpy(test_split.labels.copy()))
    if subset is not None:
        splits = {k: (x[:subset], y[:subset]) for k, (x, y) in splits.items()}
    return {k: (x.to(device), y.to(device)) for k, (x, y) in splits.items()}

import math

import pytest
import torch
import torch.nn.functional as F

from tinycnn.data.augment import Augment
from tinycnn.data.loader import BatchLoader, load_splits
from tinycnn.errors import TinycnnError


def _digits(n=16):
    """n copies of one off-centre bar: any warp moves pixels, so differences show."""
    img = torch.zeros(n, 28, 28, dtype=torch.uint8)
    img[:, 6:22, 9:12] = 255
    img[:, 6:9, 9:20] = 180
    return img, torch.arange(n) % 10


def test_identity_at_zero_strength():
    images, labels = _digits()
    loader = BatchLoader(images, labels, 8, augment=Augment(), mean=0.0, std=1.0)
    x, y = next(iter(loader.epoch(0)))
    torch.testing.assert_close(x, images[:8].unsqueeze(1).float() / 255, rtol=0, atol=0)
    assert torch.equal(y, labels[:8])


def test_warp_path_is_identity_for_identity_matrix():
    # The affine_grid + grid_sample path itself maps pixel centres onto themselves.
    x = torch.rand(4, 1, 28, 28)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(4, 2, 3)
    out = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_each_sample_gets_its_own_transform_and_labels_are_kept():
    images, labels = _digits(32)
    loader = BatchLoader(images, labels, 32, augment=Augment(rotation=15, translate=0.1, scale=(0.9, 1.1), shear=10))
    x, y = next(iter(loader.epoch(0)))
    assert torch.equal(y, labels)
    flat = x.flatten(1)
    distinct = {tuple(row.round(decimals=4).tolist()) for row in flat}
    assert len(distinct) == 32  # identical inputs, 32 different outputs
    assert x.shape == (32, 1, 28, 28) and torch.isfinite(x).all()


def test_rotation_matches_a_known_angle():
    # A 90-degree rotation matrix through the same path turns the image by 90 degrees exactly.
    x = torch.rand(1, 1, 28, 28)
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    theta = torch.tensor([[[c, -s, 0.0], [s, c, 0.0]]])
    out = F.grid_sample(x, F.affine_grid(theta, [1, 1, 28, 28], align_corners=False), align_corners=False)
    candidates = [torch.rot90(x, k, dims=(2, 3)) for k in (1, 3)]
    assert min((out - r).abs().max().item() for r in candidates) < 1e-4


def test_same_seed_same_batches_other_seed_other_batches():
    images, labels = _digits(64)
    aug = Augment(rotation=15, erasing=0.5)

    def batches(seed, epoch):
        loader = BatchLoader(images, labels, 16, shuffle=True, seed=seed, augment=aug)
        return [(x.clone(), y.clone()) for x, y in loader.epoch(epoch)]

    a, b, c, d = batches(0, 0), batches(0, 0), batches(1, 0), batches(0, 1)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    assert not torch.equal(a[0][0], d[0][0])


def test_epoch_covers_every_sample_once():
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1).expand(50, 28, 28).contiguous()
    labels = torch.arange(50)
    loader = BatchLoader(images, labels, 16, shuffle=True, seed=3, mean=0, std=1)
    seen = torch.cat([y for _, y in loader.epoch(0)])
    assert len(loader) == 4 and sorted(seen.tolist()) == list(range(50))
    assert seen.tolist() != list(range(50))
    assert len(BatchLoader(images, labels, 16, drop_last=True)) == 3


def test_erasing_blanks_a_rectangle_in_some_samples():
    images = torch.full((64, 28, 28), 255, dtype=torch.uint8)
    loader = BatchLoader(images, torch.zeros(64, dtype=torch.long), 64, augment=Augment(erasing=0.5), mean=0, std=1)
    x, _ = next(iter(loader.epoch(0)))
    erased = (x == 0).flatten(1).sum(1)
    assert 10 < (erased > 0).sum() < 54  # about half the samples
    assert erased.max() <= 0.33 * 28 * 28 + 60


def test_channels_last_output():
    images, labels = _digits(4)
    x, _ = next(iter(BatchLoader(images, labels, 4, channels_last=True).epoch(0)))
    assert x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kwargs", [dict(rotation=-1), dict(erasing=2), dict(scale=(1.2, 1.0)), dict(interpolation="cubic")])
def test_bad_augment_values(kwargs):
    with pytest.raises(TinycnnError):
        Augment(**kwargs)


def test_real_splits_and_validation_carve(mnist_splits):
    assert mnist_splits["train"][0].shape == (60000, 28, 28)
    assert mnist_splits["test"][0].shape == (10000, 28, 28)
    s = load_splits("mnist", val_size=5000)
    assert s["val"][0].shape[0] == 5000 and s["train"][0].shape[0] == 55000
    # The carve is a partition of the original training set, and the same every time.
    again = load_splits("mnist", val_size=5000)
    assert torch.equal(s["val"][1], again["val"][1])
    full = mnist_splits["train"][0].flatten(1).float() @ torch.linspace(0, 1, 784)
    parts = torch.cat([s["val"][0], s["train"][0]]).flatten(1).float() @ torch.linspace(0, 1, 784)
    torch.testing.assert_close(full.sort().values, parts.sort().values)
    sub = load_splits("mnist", subset=2000)
    assert sub["train"][0].shape[0] == 2000 and sub["test"][0].shape[0] == 2000
    with pytest.raises(TinycnnError, match="val-size"):
        load_splits("mnist", val_size=60000)


def test_whole_epoch_mode_gives_the_batches_of_batch_by_batch_mode():
    # The order is the first draw in both modes, so without augmentation the batches are equal.
    images, labels = _digits(50)
    images = images + torch.arange(50, dtype=torch.uint8).view(50, 1, 1)  # tell the images apart
    one = BatchLoader(images, labels, 16, shuffle=True, seed=3, whole_epoch=False)
    whole = BatchLoader(images, labels, 16, shuffle=True, seed=3, whole_epoch=True)
    a, b = list(one.epoch(2)), list(whole.epoch(2))
    assert [x.shape[0] for x, _ in b] == [16, 16, 16, 2]
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_whole_epoch_mode_with_augmentation_is_a_function_of_seed_and_epoch():
    images, labels = _digits(40)
    aug = Augment(rotation=15, erasing=0.5)

    def batches(seed, epoch):
        loader = BatchLoader(images, labels, 16, shuffle=True, seed=seed, augment=aug, whole_epoch=True)
        return torch.cat([x for x, _ in loader.epoch(epoch)])

    assert torch.equal(batches(1, 0), batches(1, 0))
    assert not torch.equal(batches(1, 0), batches(1, 1))
    assert not torch.equal(batches(1, 0), batches(2, 0))
    # every image is warped on its own, as batch by batch
    x = batches(1, 0)
    assert len({tuple(row.tolist()) for row in (x.flatten(1) > 0).float().sum(1).view(-1, 1)}) > 5


def test_whole_epoch_mode_is_the_default_on_a_gpu_only():
    images, labels = _digits(8)
    assert BatchLoader(images, labels, 4).whole_epoch is False

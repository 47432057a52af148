"""Dropout whose mask is cheap to draw on the CPU.

On the CPU, `aten::bernoulli_` draws one 32-bit number per element through a slow
generator, a large part of a whole training step of these networks. Here the mask comes
from random int64 words viewed as 16-bit integers, four
lanes per word. The keep probability is rounded to a multiple of 1/65536 (0.95 becomes
0.949997), the same distribution for any purpose.

On the CPU the words come from numpy's SFC64 generator, seeded for each mask with one
draw from torch's generator (a faster generator than torch's mt19937), and numpy compares
their lanes too: the mask enters the step as uint8, in the order in which the step lays out
the activation (channels-last in a compiled step). torch.compile's CPU kernels compared the
lanes themselves far more slowly, and read a bool mask slowly (what this gives:
docs/performance.md). On other devices the
words come from torch's generator of that device and torch compares them. Either way
torch's generator is the only state, so seeding, checkpointing and exact resume work as
before, and an eager and a compiled step draw the same masks. Dropout2d (whole channels)
draws few numbers and is left alone.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from torch import nn

# An operator of its own, so that torch.compile calls it as one opaque kernel (the numpy
# call could not be traced), and, tagged as random, saves its mask for the backward instead
# of drawing it again (torch before 2.7 takes no tags: there the backward may draw the same
# words again from the same seed, which costs time but gives the same mask).
_RANDOM_OP = ({"tags": (torch.Tag.nondeterministic_seeded,)}
              if "tags" in inspect.signature(torch.library.custom_op).parameters else {})


def _sfc64_lanes(n: int, seed: torch.Tensor) -> np.ndarray:
    """The first n 16-bit lanes (int16) of the words SFC64 seeded with `seed` draws."""
    return np.random.SFC64(int(seed.item())).random_raw((n + 3) // 4).view(np.int16)[:n]


@torch.library.custom_op("tinycnn::sfc64_words", mutates_args=(), **_RANDOM_OP)
def sfc64_words(n: int, seed: torch.Tensor) -> torch.Tensor:
    """n random int64 words from numpy's SFC64 generator seeded with `seed` (one int64, on the CPU)."""
    return torch.from_numpy(_sfc64_lanes(4 * n, seed).view(np.int64))


@sfc64_words.register_fake
def _(n, seed):
    return torch.empty(n, dtype=torch.int64)


@torch.library.custom_op("tinycnn::sfc64_keep_mask", mutates_args=(), **_RANDOM_OP)
def sfc64_keep_mask(shape: list[int], threshold: int, seed: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A uint8 0/1 mask of `shape`: 1 where a 16-bit lane of the words sfc64_words(.., seed)
    draws, read as int16, is below `threshold`. A 4-d mask takes the lanes in (N, H, W, C)
    order, and is laid out channels-last when `channels_last`, else contiguous; any other
    mask takes them in its own order."""
    lanes = _sfc64_lanes(math.prod(shape), seed)
    if len(shape) != 4:
        return torch.from_numpy((lanes < threshold).view(np.uint8)).view(shape)
    b, c, h, w = shape
    lanes = lanes.reshape(b, h, w, c)
    if channels_last:
        return torch.from_numpy((lanes < threshold).view(np.uint8)).permute(0, 3, 1, 2)
    keep = np.empty(shape, dtype=np.bool_)
    np.less(lanes.transpose(0, 3, 1, 2), threshold, out=keep)
    return torch.from_numpy(keep.view(np.uint8))


@sfc64_keep_mask.register_fake
def _(shape, threshold, seed, channels_last):
    mask = torch.empty(shape, dtype=torch.uint8)
    return mask.contiguous(memory_format=torch.channels_last) if channels_last and len(shape) == 4 else mask


def lays_out_channels_last(x: torch.Tensor) -> bool:
    """Whether the step at hand keeps 4-d `x` in channels-last order: torch.compile on the CPU
    gives convolution outputs that layout (inductor's layout optimization); an eager step
    keeps x's own."""
    if x.dim() != 4:
        return False
    if torch.compiler.is_compiling():
        return x.device.type == "cpu"
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _seed(generator: torch.Generator | None) -> torch.Tensor:
    # randint, not random_: torch.compile traces randint into the graph, and breaks it at random_.
    return torch.randint(0, 2**62, (1,), dtype=torch.int64, generator=generator)


def random_words(n: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """n uniformly random int64 words on `device`, drawn from `generator` (torch's default
    generator of that device when None): on the CPU through one 62-bit seed for SFC64."""
    if torch.device(device).type == "cpu":
        return sfc64_words(n, _seed(generator))
    if generator is None:
        return torch.randint(-(2**63), 2**63 - 1, (n,), dtype=torch.int64, device=device)
    # With a generator, randint fails under torch.compile for a batch size it treats as
    # symbolic (an epoch's smaller last batch); random_ draws the same words.
    return torch.empty(n, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1, generator=generator)


def lane_threshold(keep: float) -> int:
    """The int16 value below which a 16-bit lane keeps its element: round(keep * 65536) of
    the 65536 values, which run from -32768 to 32767."""
    return round(keep * 65536) - 32768


def keep_scale(keep: float) -> float:
    """Inverted dropout's scale for the keep probability a 16-bit lane really has."""
    return 65536 / round(keep * 65536)


def uniform16_mask(shape, keep: float, device, generator: torch.Generator | None = None,
                   channels_last: bool = False) -> torch.Tensor:
    """A 0/1 tensor of `shape`, each element 1 with probability round(keep * 65536) / 65536:
    where a 16-bit lane of random_words, read as int16, is below a threshold.

    On the CPU the comparison is made by numpy with the words (sfc64_keep_mask), and the mask
    is uint8, its lanes in channels-last order if 4-d, laid out channels-last if
    `channels_last`: torch.compile's CPU kernels walk convolution outputs in that order, and
    read such a mask much faster than they compare the lanes themselves or read a bool mask.
    The lanes' order does not depend on the layout, so an eager and a
    compiled step draw the same masks. Elsewhere the mask is bool, torch's comparison of the
    lanes in the shape's order, which the compiled kernels fuse."""
    threshold = lane_threshold(keep)
    if torch.device(device).type == "cpu":
        return sfc64_keep_mask(list(shape), threshold, _seed(generator), channels_last)
    n = math.prod(shape)
    u16 = random_words((n + 3) // 4, device, generator).view(torch.int16)[:n].view(shape)
    return u16 < threshold


class FastDropout(nn.Dropout):
    """nn.Dropout with the cheap mask above; identical in eval mode (the identity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return torch.zeros_like(x)
        keep = 1.0 - self.p
        mask = uniform16_mask(x.shape, keep, x.device, channels_last=lays_out_channels_last(x))
        if x.dtype in (torch.float32, torch.float64) and not torch.compiler.is_compiling():
            return ScaledMaskProduct.apply(x, mask, keep_scale(keep))
        # Compiled, inductor fuses this into the neighbouring kernels. In bf16 the scale must
        # stay a Python float: a bf16 copy of it would round it.
        return x * mask.to(x.dtype) * keep_scale(keep)


class ScaledMaskProduct(torch.autograd.Function):
    """x * mask * scale for an eager step: the 0/1 mask scaled into x's dtype once and saved
    for the backward, three passes over the activation's size where the expression takes
    five (the mask's conversion, two products forward and two backward). The same values as
    the expression, bit for bit, in float32 and float64 (mask * scale is 0 or the scale
    rounded to x's dtype, as the expression's scalar product rounds it)."""

    @staticmethod
    def forward(ctx, x, mask, scale):
        # uint8 times a 0-dim float tensor: the product takes the float's dtype, in one pass.
        scaled = torch.mul(mask, torch.tensor(scale, dtype=x.dtype))
        ctx.save_for_backward(scaled)
        return x * scaled

    @staticmethod
    def backward(ctx, grad):
        (scaled,) = ctx.saved_tensors
        return grad * scaled, None, None


def use_fast_dropout(model: nn.Module) -> int:
    """Swap every element-wise nn.Dropout in `model` for FastDropout, in place; return how many."""
    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p, child.inplace))
                swapped += 1
    return swapped

"""Other ways to compute parts of a compiled bf16 training step on the CPU.

    PYTHONPATH=src python3 benchmarks/cpu_step_variants.py VARIANT [--rounds 5] [--images 5120]
    PYTHONPATH=src python3 benchmarks/cpu_step_variants.py inductor --option cpp.simdlen=256
    PYTHONPATH=src python3 benchmarks/cpu_step_variants.py words-in-graph --eager
    PYTHONPATH=src python3 benchmarks/cpu_step_variants.py mask-product --eager --fp32
    PYTHONPATH=src python3 benchmarks/cpu_step_variants.py conv-cl-large --eager --fp32 --model era-s7-6750

A is the Trainer as `tinycnn bench --b amp=true` runs it (era-s7-8172, batch 128, rotation
15 nearest, compile, bf16; with --eager, both sides without compile; with --fp32, both in
float32); B is the same
Trainer with one part of the step computed another way:

- pool-gather: max-pool's backward as an element-wise comparison of each input position
  with the saved index of its window's maximum (the same gradient, ties included), where
  inductor turns aten's backward into index arithmetic and a scatter;
- pool-compare: max-pool with no indices at all: the maximum of the window's four
  strided quarters, and a backward that sends the gradient to the first position (in
  the window's row-major order) equal to that maximum, as aten's max-pool does;
- conv-matmul: every 3x3 convolution as one matrix product of its nine shifted slices
  (im2col written with slices, so that inductor fuses it) with the weights;
- first-conv-matmul: the same for the convolutions of one input channel only (the first
  layer, whose weight gradient oneDNN computes slowly);
- conv-native: the same network with oneDNN turned off, so that convolutions run on
  torch's own CPU kernels;
- words-in-graph: the dropout masks as FastDropout made them before it computed whole
  masks outside the graph: int64 words from numpy's SFC64 (an opaque operator), whose
  16-bit lanes the compiled graph compares (a bool mask, in NCHW order); B/A below 1 is what
  the uint8 masks save (other masks, same distribution; so for all the mask variants);
- masks-nhwc: as words-in-graph, the words laid out in channels-last order, the order in
  which inductor's kernels walk the activations;
- torch-words: as words-in-graph, the words from torch's mt19937, as FastDropout drew
  them before it took numpy's SFC64;
- mask-bf16: FastDropout's mask as bf16 0/1 instead of uint8 0/1 (the same masks);
- mask-nchw: FastDropout's uint8 mask with its lanes in NCHW order, contiguous, where
  FastDropout lays them out as the step lays out the activation (channels-last for a
  compiled step on the CPU);
- mask-product: FastDropout as `x * mask * scale` in an eager float32 step, where it
  multiplies by the scaled mask in an autograd function of its own (ScaledMaskProduct; the
  same masks, the same values bit for bit): B/A above 1 is what that function saves;
- conv-cl-large: every convolution over an input of 24x24 pixels or more (and more than one
  channel) computed in channels_last, its input and output in the default layout;
- conv-cl-all: the same for every convolution of more than one input channel;
- inductor: the model compiled again with the inductor options given by --option.

Each is the same function of the weights (float rounding aside) or draws masks of the
same distribution; the results are in docs/benchmarks.md, "One lever at a time".
"""
import argparse
import ast
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinycnn.analysis import bench
from tinycnn.engine.step import compile_model
from tinycnn.speed.fast_dropout import (
    FastDropout,
    keep_scale,
    lane_threshold,
    lays_out_channels_last,
    sfc64_keep_mask,
    sfc64_words,
    uniform16_mask,
)
from tinycnn.speed.host_memory import keep_freed_memory


class GatherMaxPoolFn(torch.autograd.Function):
    """2x2 max-pool, stride 2, whose backward compares positions instead of scattering."""

    @staticmethod
    def forward(ctx, x):
        out, idx = F.max_pool2d(x, 2, 2, return_indices=True)
        ctx.save_for_backward(idx)
        ctx.hw = x.shape[-2:]
        return out

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        h, w = ctx.hw
        n, c, ho, wo = grad.shape
        position = torch.arange(h * w, device=grad.device).view(h, w)  # aten's index: y * w + x

        def up(t):  # each window's value on its 2x2 input positions
            return t.view(n, c, ho, 1, wo, 1).expand(n, c, ho, 2, wo, 2).reshape(n, c, h, w)

        return torch.where(up(idx) == position, up(grad), torch.zeros((), dtype=grad.dtype))


class GatherMaxPool(nn.Module):
    def forward(self, x):
        return GatherMaxPoolFn.apply(x)


def quarters(x):
    """The four positions of each 2x2 window, in row-major order, as strided views."""
    return x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]


class CompareMaxPoolFn(torch.autograd.Function):
    """2x2 max-pool, stride 2, with no indices: the gradient goes to the first position of
    the window that equals its maximum."""

    @staticmethod
    def forward(ctx, x):
        a, b, c, d = quarters(x)
        out = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        a, b, c, d = quarters(x)
        first_a = a == out
        first_b = (b == out) & ~first_a
        first_c = (c == out) & ~(first_a | first_b)
        first_d = ~(first_a | first_b | first_c)
        zero = torch.zeros((), dtype=grad.dtype)
        ga, gb, gc, gd = (torch.where(first, grad, zero) for first in (first_a, first_b, first_c, first_d))
        n, ch, ho, wo = grad.shape
        top = torch.stack([ga, gb], dim=-1).view(n, ch, ho, 1, 2 * wo)
        bottom = torch.stack([gc, gd], dim=-1).view(n, ch, ho, 1, 2 * wo)
        return torch.cat([top, bottom], dim=3).view(n, ch, 2 * ho, 2 * wo)


class CompareMaxPool(nn.Module):
    def forward(self, x):
        return CompareMaxPoolFn.apply(x)


@torch.library.custom_op("tinycnn_bench::bf16_mask", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
def bf16_mask(n: int, threshold: int, seed: torch.Tensor) -> torch.Tensor:
    """sfc64_keep_mask's n values (flat) as bf16 0/1 instead of uint8 0/1."""
    bits = sfc64_keep_mask([n], threshold, seed, False).numpy().astype(np.int16)
    bits *= np.int16(0x3F80)  # bf16's 1.0
    return torch.from_numpy(bits).view(torch.bfloat16)


@bf16_mask.register_fake
def _(n, threshold, seed):
    return torch.empty(n, dtype=torch.bfloat16)


class OtherMaskDropout(FastDropout):
    """FastDropout (on 4-d activations) with its 0/1 mask from `mask(x, threshold, seed)`,
    threshold on int16 lanes, seed one draw from torch's generator."""

    def forward(self, x):
        if not self.training or self.p == 0 or x.dim() != 4:
            return super().forward(x)
        keep = 1.0 - self.p
        seed = torch.randint(0, 2**62, (1,), dtype=torch.int64)
        return x * self.mask(x, lane_threshold(keep), seed).to(x.dtype) * keep_scale(keep)


class MaskProductDropout(FastDropout):
    """FastDropout as the expression x * mask * scale, in every step (the same masks)."""

    def forward(self, x):
        if not self.training or self.p == 0:
            return super().forward(x)
        keep = 1.0 - self.p
        mask = uniform16_mask(x.shape, keep, x.device, channels_last=lays_out_channels_last(x))
        return x * mask.to(x.dtype) * keep_scale(keep)


def lanes_below(words, threshold, shape):
    n = math.prod(shape)
    return words.view(torch.int16)[:n].view(shape) < threshold


class WordsInGraphDropout(OtherMaskDropout):
    """The words from SFC64 (sfc64_words), compared in the compiled graph (a bool mask in
    NCHW order): FastDropout before it computed whole masks outside the graph."""

    def mask(self, x, threshold, seed):
        return lanes_below(sfc64_words((x.numel() + 3) // 4, seed), threshold, x.shape)


class NHWCWordsDropout(OtherMaskDropout):
    """As WordsInGraphDropout, the words laid out in channels-last order."""

    def mask(self, x, threshold, seed):
        n, c, h, w = x.shape
        return lanes_below(sfc64_words((x.numel() + 3) // 4, seed), threshold, (n, h, w, c)).permute(0, 3, 1, 2)


class TorchWordsDropout(OtherMaskDropout):
    """As WordsInGraphDropout, the words from torch's mt19937 (FastDropout before SFC64)."""

    def mask(self, x, threshold, seed):
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        return lanes_below(words, threshold, x.shape)


class NCHWMaskDropout(OtherMaskDropout):
    """FastDropout's uint8 mask with its lanes in NCHW order (contiguous)."""

    def mask(self, x, threshold, seed):
        return sfc64_keep_mask([x.numel()], threshold, seed, False).view(x.shape)


class Bf16MaskDropout(OtherMaskDropout):
    """FastDropout's mask (channels-last) as bf16 0/1."""

    def mask(self, x, threshold, seed):
        n, c, h, w = x.shape
        return bf16_mask(x.numel(), threshold, seed).view(n, h, w, c).permute(0, 3, 1, 2)


class MatmulConv2d(nn.Conv2d):
    """A stride-1 convolution as one matrix product of the input's shifted slices."""

    def forward(self, x):
        kh, kw = self.kernel_size
        ph, pw = self.padding
        x = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
        n, c, h, w = x.shape
        ho, wo = h - kh + 1, w - kw + 1
        pixels = x.permute(0, 2, 3, 1)  # N H W C
        columns = torch.cat([pixels[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)], dim=-1)
        weights = self.weight.permute(2, 3, 1, 0).reshape(kh * kw * c, -1)
        out = columns.reshape(-1, kh * kw * c) @ weights
        if self.bias is not None:
            out = out + self.bias
        return out.view(n, ho, wo, -1).permute(0, 3, 1, 2)


class ChannelsLastConv2d(nn.Conv2d):
    """A convolution computed in channels_last, its input and output in the default layout,
    for inputs of at least `min_pixels` pixels and more than one channel."""

    min_pixels = 0

    def forward(self, x):
        if self.in_channels == 1 or x.shape[-2] * x.shape[-1] < self.min_pixels:
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


def channels_last_conv(min_pixels: int):
    def replace(child):
        if type(child) is not nn.Conv2d:
            return None
        new = ChannelsLastConv2d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                                 padding=child.padding, dilation=child.dilation, groups=child.groups, bias=child.bias is not None)
        new.load_state_dict(child.state_dict())
        new.min_pixels = min_pixels
        return new
    return replace


def swap_modules(model: nn.Module, replace) -> int:
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            new = replace(child)
            if new is not None:
                setattr(module, name, new)
                swapped += 1
    return swapped


def is_pool_2x2(child) -> bool:
    return type(child) is nn.MaxPool2d and child.kernel_size in (2, (2, 2)) and child.stride in (2, (2, 2)) and not child.padding


def gather_pool(child):
    return GatherMaxPool() if is_pool_2x2(child) else None


def compare_pool(child):
    return CompareMaxPool() if is_pool_2x2(child) else None


def matmul_conv(child):
    if type(child) is nn.Conv2d and child.stride == (1, 1) and child.dilation == (1, 1) and child.groups == 1:
        new = MatmulConv2d(child.in_channels, child.out_channels, child.kernel_size, padding=child.padding,
                           bias=child.bias is not None)
        new.load_state_dict(child.state_dict())
        return new
    return None


def first_conv_matmul(child):
    return matmul_conv(child) if type(child) is nn.Conv2d and child.in_channels == 1 else None


def dropout_as(cls):
    def replace(child):
        return cls(child.p) if type(child) is FastDropout else None
    return replace


class WithoutOneDNN:
    """The Trainer's step with oneDNN off, compile included (its first call compiles)."""

    def __init__(self, step):
        self.inner = step

    def __call__(self, x, y):
        with torch.backends.mkldnn.flags(enabled=False):
            return self.inner(x, y)


def recompiled(replace, inductor: dict | None = None):
    def tweak(trainer):
        count = swap_modules(trainer.model, replace) if replace is not None else None
        if count == 0:
            raise SystemExit("this variant changes nothing in this model")
        if trainer.config.compile:
            trainer.step.model = compile_model(trainer.model, trainer.device, inductor=inductor)
    return tweak


def no_onednn(trainer):
    trainer.step = WithoutOneDNN(trainer.step)


VARIANTS = {
    "pool-gather": recompiled(gather_pool),
    "pool-compare": recompiled(compare_pool),
    "conv-matmul": recompiled(matmul_conv),
    "first-conv-matmul": recompiled(first_conv_matmul),
    "conv-native": no_onednn,
    "words-in-graph": recompiled(dropout_as(WordsInGraphDropout)),
    "masks-nhwc": recompiled(dropout_as(NHWCWordsDropout)),
    "torch-words": recompiled(dropout_as(TorchWordsDropout)),
    "mask-bf16": recompiled(dropout_as(Bf16MaskDropout)),
    "mask-nchw": recompiled(dropout_as(NCHWMaskDropout)),
    "mask-product": recompiled(dropout_as(MaskProductDropout)),
    "conv-cl-large": recompiled(channels_last_conv(24 * 24)),
    "conv-cl-all": recompiled(channels_last_conv(0)),
    "inductor": None,  # built from --option
}


def bench_b_values() -> dict:
    """B of `tinycnn bench --b amp=true`: its network, batch and rotation, the CPU's best settings, bf16."""
    d = bench.DEFAULTS
    return {"model": d["model"], "batch_size": d["batch_size"], "rotation": d["rotation"],
            **bench.best_settings(torch.device("cpu")), "amp": True}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=5120)
    parser.add_argument("--eager", action="store_true", help="both sides without torch.compile")
    parser.add_argument("--fp32", action="store_true", help="both sides in float32 (no bf16 autocast)")
    parser.add_argument("--model", default=None, help="another network than tinycnn bench's")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="inductor option for the inductor variant (a Python literal), e.g. cpp.simdlen=256")
    args = parser.parse_args()
    tweak, label = VARIANTS[args.variant], args.variant
    if args.variant == "inductor":
        if not args.option:
            parser.error("the inductor variant needs at least one --option KEY=VALUE")
        options = {}
        for item in args.option:
            key, _, value = item.partition("=")
            options[key.strip()] = ast.literal_eval(value.strip())
        tweak, label = recompiled(None, options), f"inductor {args.option}"
        if args.eager:
            parser.error("the inductor variant needs torch.compile")
    elif args.option:
        parser.error("--option applies to the inductor variant only")
    # Both sides share this process: freed memory kept mapped for both, as in a training run
    # on the CPU (host_memory.py), so that page faults add no noise to eager steps.
    keep_freed_memory()
    values = {**bench_b_values(), "compile": not args.eager, "amp": not args.fp32}
    if args.model:
        values["model"] = args.model
    config, _ = bench.bench_config(values, images=args.images, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        how = f"{'eager' if args.eager else 'compile'}, {'fp32' if args.fp32 else 'bf16'}"
        a = bench.TrainerPipeline(f"Trainer ({how})", config, Path(tmp))
        b = bench.TrainerPipeline(f"the same, {label}", config, Path(tmp), tweak)
        sa, sb = bench.alternate(a, b, args.rounds, args.images)
        print(bench.report(sa, sb))


if __name__ == "__main__":
    main()

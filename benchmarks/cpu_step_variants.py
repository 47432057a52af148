"""Other ways to compute a compiled bf16 step's max-pool and convolutions on the CPU.

    PYTHONPATH=src python3 benchmarks/cpu_step_variants.py VARIANT [--rounds 5] [--images 5120]

A is the Trainer as `tinycnn bench --b amp=true` runs it (compile, bf16); B is the same
Trainer with one part of the step computed another way:

- pool-gather: max-pool's backward as an element-wise comparison of each input position
  with the saved index of its window's maximum (the same gradient, ties included), where
  inductor turns aten's backward into index arithmetic and a scatter;
- conv-matmul: every 3x3 convolution as one matrix product of its nine shifted slices
  (im2col written with slices, so that inductor fuses it) with the weights;
- conv-native: the same network with oneDNN turned off, so that convolutions run on
  torch's own CPU kernels.

Each is the same function of the weights (float rounding aside); they were levers to try,
and none was kept (docs/benchmarks.md, "One lever at a time").
"""
import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tinycnn import bench
from tinycnn.train import compile_model


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


def swap_modules(model: nn.Module, replace) -> int:
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            new = replace(child)
            if new is not None:
                setattr(module, name, new)
                swapped += 1
    return swapped


def gather_pool(child):
    if type(child) is nn.MaxPool2d and child.kernel_size in (2, (2, 2)) and child.stride in (2, (2, 2)) and not child.padding:
        return GatherMaxPool()
    return None


def matmul_conv(child):
    if type(child) is nn.Conv2d and child.stride == (1, 1) and child.dilation == (1, 1) and child.groups == 1:
        new = MatmulConv2d(child.in_channels, child.out_channels, child.kernel_size, padding=child.padding,
                           bias=child.bias is not None)
        new.load_state_dict(child.state_dict())
        return new
    return None


class WithoutOneDNN:
    """The Trainer's step with oneDNN off, compile included (its first call compiles)."""

    def __init__(self, step):
        self.inner = step

    def __call__(self, x, y):
        with torch.backends.mkldnn.flags(enabled=False):
            return self.inner(x, y)


def recompiled(replace):
    def tweak(trainer):
        count = swap_modules(trainer.model, replace)
        if not count:
            raise SystemExit("this variant changes nothing in this model")
        trainer.step.model = compile_model(trainer.model, trainer.device)
    return tweak


def no_onednn(trainer):
    trainer.step = WithoutOneDNN(trainer.step)


VARIANTS = {"pool-gather": recompiled(gather_pool), "conv-matmul": recompiled(matmul_conv), "conv-native": no_onednn}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=5120)
    args = parser.parse_args()
    config, _ = bench.bench_config({"compile": True, "amp": True}, images=args.images, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        a = bench.TrainerPipeline("Trainer (compile, bf16)", config, Path(tmp))
        b = bench.TrainerPipeline(f"the same, {args.variant}", config, Path(tmp), VARIANTS[args.variant])
        sa, sb = bench.alternate(a, b, args.rounds, args.images)
        print(bench.report(sa, sb))


if __name__ == "__main__":
    main()

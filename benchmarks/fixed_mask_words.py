"""What drawing the dropout masks still costs a compiled bf16 step on the CPU.

    PYTHONPATH=src python3 benchmarks/fixed_mask_words.py [--fixed mask|words]

A is the Trainer as `tinycnn bench --b amp=true` runs it (compile, bf16); B is the same
with every FastDropout reading its uint8 mask from a buffer filled once, in the layout
FastDropout draws it in a compiled step (channels-last), so that the step draws nothing:
the most that drawing the masks ahead of time (say on another thread) could save. With
`--fixed words`, B reads fixed int64 words instead and compares their lanes in the graph,
as FastDropout's masks were made before they were computed outside it. B trains with the
same mask every step, so it is a measurement, not a lever.
"""
import argparse
import tempfile
from functools import partial
from pathlib import Path

import torch
from cpu_step_variants import bench_b_values, lanes_below

from tinycnn.analysis import bench
from tinycnn.engine.step import compile_model
from tinycnn.speed.fast_dropout import (
    FastDropout,
    keep_scale,
    lane_threshold,
    uniform16_mask,
)


class FixedMask(FastDropout):
    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        if getattr(self, "mask", None) is None or self.mask.shape != x.shape:
            mask = uniform16_mask(x.shape, keep, x.device, channels_last=x.dim() == 4)
            self.register_buffer("mask", mask, persistent=False)
        return x * self.mask.to(x.dtype) * keep_scale(keep)


class FixedWords(FastDropout):
    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        n = x.numel()
        if not hasattr(self, "words") or self.words.numel() * 4 < n:
            self.register_buffer("words", torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64), persistent=False)
        mask = lanes_below(self.words, lane_threshold(keep), x.shape)
        return x * mask.to(x.dtype) * keep_scale(keep)


def fixed(trainer, cls):
    for module in trainer.model.modules():
        for name, child in module.named_children():
            if type(child) is FastDropout:
                setattr(module, name, cls(child.p))
    # one eager batch fills the buffers, then the model is compiled again
    trainer.model.train()
    x = torch.randn(128, 1, 28, 28)
    trainer.model(x)
    trainer.step.model = compile_model(trainer.model, trainer.device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed", choices=("mask", "words"), default="mask")
    args = parser.parse_args()
    cls = FixedMask if args.fixed == "mask" else FixedWords
    config, _ = bench.bench_config(bench_b_values(), images=5120, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        a = bench.TrainerPipeline("drawn masks", config, Path(tmp))
        b = bench.TrainerPipeline(f"fixed {args.fixed} (no drawing)", config, Path(tmp), partial(fixed, cls=cls))
        sa, sb = bench.alternate(a, b, 5, 5120)
        print(bench.report(sa, sb))


if __name__ == "__main__":
    main()

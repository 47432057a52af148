"""Choosing a learning rate: the range test (lr-find) and short constant-rate runs (lr-sweep).

    tinycnn lr-find --recipe era-s7-step6 --start 1e-5 --end 1 --steps 200
    tinycnn lr-sweep --recipe era-s7-step6 --lrs 0.1,0.2,0.5,0.8,1.0,2.0 --epochs 1

The range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017) trains
for `steps` batches while the learning rate grows exponentially from `start` to `end`:
lr_i = start * (end / start) ** (i / (steps - 1)). The loss is smoothed exponentially,
s_i = f * loss_i + (1 - f) * s_(i-1) with s_0 = loss_0, and the test stops once s_i is
more than `diverge` times the best s so far. Two readings of the curve are given:
the rate of steepest descent of s (the most negative slope against log lr, leaving out
the first 10 and last 5 points, which are mostly noise and blow-up): the suggestion;
and the rate at the lowest s divided by 10 (the "min/10" rule), printed beside it.
Afterwards the model, the optimizer and torch's random generators are exactly as before.

Why not the torch-lr-finder package (0.2.2)? Its LRFinder.range_test accepts only a
torch DataLoader or a subclass of its TrainDataLoaderIter; our BatchLoader is rejected
("`train_loader` has unsupported type"), and that rejection comes after it has attached its
scheduler, leaving `initial_lr` in the optimizer's param groups so that the next call on
the same optimizer fails with "Optimizer already has a scheduler attached to it". Wrapped in
TrainDataLoaderIter it runs and matches the semantics above (its smooth_f and diverge_th),
but it prints through tqdm.autonotebook and print(), imports matplotlib.pyplot on import,
restores the weights only when reset() is called (not the random generators), and suggests
only the steepest point. range_test() below does the same test on our loader with none of
that; tests/test_lr_find.py checks them against the package when it is installed.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F

from tinycnn.errors import TinycnnError

SKIP_START, SKIP_END = 10, 5  # points left out when looking for the steepest descent


@dataclass
class RangeTest:
    lrs: list[float] = field(default_factory=list)  # the rate of each batch run
    losses: list[float] = field(default_factory=list)  # its raw loss
    smoothed: list[float] = field(default_factory=list)
    stopped: str = "reached the end rate"  # or why it stopped early


def lr_ramp(start: float, end: float, steps: int) -> list[float]:
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def cycle(loader, start_epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches, epoch after epoch, without end."""
    epoch = start_epoch
    while True:
        yield from loader.epoch(epoch)
        epoch += 1


def check_range(start: float, end: float, steps: int, smooth: float, diverge: float) -> None:
    if not (0 < start < end) or steps < 2 or not (0 <= smooth < 1) or diverge <= 1:
        raise TinycnnError(f"lr range test needs 0 < start < end, steps >= 2, 0 <= smooth < 1 and diverge > 1; got --start {start:g} --end {end:g} --steps {steps} --smooth {smooth:g} --diverge {diverge:g}")


def range_test(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator, *, start: float = 1e-5,
               end: float = 1.0, steps: int = 200, smooth: float = 0.05, diverge: float = 4.0) -> RangeTest:
    """Run the test on `model` with `optimizer`; both are restored before returning."""
    check_range(start, end, steps, smooth, diverge)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_rng = torch.get_rng_state()
    saved_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    result, best = RangeTest(), math.inf
    try:
        model.train()
        for lr in lr_ramp(start, end, steps):
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(batches)
            loss = F.cross_entropy(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not math.isfinite(value):
                result.stopped = f"loss not finite at lr {lr:.3g}"
                break
            s = value if not result.smoothed else smooth * value + (1 - smooth) * result.smoothed[-1]
            result.lrs.append(lr)
            result.losses.append(value)
            result.smoothed.append(s)
            best = min(best, s)
            if s > diverge * best:
                result.stopped = f"diverged at lr {lr:.3g} (smoothed loss {s:.3g} > {diverge:g} x best {best:.3g})"
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        torch.set_rng_state(saved_rng)
        if saved_cuda is not None:
            torch.cuda.set_rng_state_all(saved_cuda)
        model.train(was_training)
    return result


def suggest(result: RangeTest) -> dict[str, float]:
    """{'steepest': lr, 'min/10': lr}; steepest is absent when the curve is too short to judge."""
    out = {}
    s = result.smoothed
    if s:
        out["min/10"] = result.lrs[min(range(len(s)), key=s.__getitem__)] / 10
    lo, hi = SKIP_START, len(s) - SKIP_END
    if hi - lo >= 3:
        logs = [math.log10(lr) for lr in result.lrs]
        # central differences of s against log10(lr) (np.gradient), inside the window
        slope = {i: (s[i + 1] - s[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(max(lo, 1), min(hi, len(s) - 1))}
        if slope:
            out["steepest"] = result.lrs[min(slope, key=slope.get)]
    return out


# ---------------------------------------------------------------------- on a recipe


def data_loaders(config, device):
    """The training batches (shuffled, augmented) and the test split of a configuration."""
    from tinycnn.data.augment import build_augment
    from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits

    splits = load_splits(config.dataset, val_size=config.val_size, subset=config.subset, device=device)
    mean, std = NORMALIZATION[config.dataset]
    augment = build_augment(config)
    train = BatchLoader(*splits["train"], config.batch_size, shuffle=True, seed=config.seed, augment=augment, mean=mean, std=std)
    test = BatchLoader(*splits["test"], config.eval_batch_size, mean=mean, std=std)
    return train, test


def find_lr(config, *, start: float, end: float, steps: int, smooth: float, diverge: float, log=print) -> RangeTest:
    """The range test on a configuration's freshly initialised model and its training batches."""
    from tinycnn.device import select_device
    from tinycnn.engine.optim import build_optimizer
    from tinycnn.models.build import build_model

    check_range(start, end, steps, smooth, diverge)
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = build_optimizer(config, model)
    train, _ = data_loaders(config, device)
    log(f"lr range test: recipe {config.name}, model {config.model}, {config.optimizer} (momentum {config.momentum:g}), "
        f"batch {config.batch_size}, {steps} batches from {start:g} to {end:g} ({len(train)} batches per epoch)")
    result = range_test(model, optimizer, cycle(train), start=start, end=end, steps=steps, smooth=smooth, diverge=diverge)
    if not result.lrs:
        raise TinycnnError(f"the range test stopped at its first batch ({result.stopped}); try a smaller --start")
    return result


def sweep(config, lrs: list[float], *, log=print) -> tuple[list[dict], int]:
    """One run per learning rate from the same initial weights and batches; constant rate.

    Returns ([{"lr", "losses", "diverged_at", "test_acc", "seconds"}], batches per epoch).
    """
    from tinycnn.config import config_from_dict
    from tinycnn.device import select_device
    from tinycnn.engine.evaluate import evaluate
    from tinycnn.engine.optim import build_optimizer
    from tinycnn.models.build import build_model

    device = select_device(config.device)
    train, test = data_loaders(config, device)
    curves = []
    for lr in lrs:
        c = config_from_dict({**config.to_dict(), "lr": lr, "scheduler": "none"}).validate()
        torch.manual_seed(c.seed)
        model = build_model(c).to(device)
        optimizer = build_optimizer(c, model)
        losses, diverged, t0 = [], None, time.perf_counter()
        model.train()
        for epoch in range(c.epochs):
            for x, y in train.epoch(epoch):
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=c.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                if not math.isfinite(losses[-1]):
                    diverged = len(losses)
                    break
            if diverged:
                break
        acc = None if diverged else evaluate(model, test)["acc"]
        seconds = time.perf_counter() - t0
        curves.append({"lr": lr, "losses": losses, "diverged_at": diverged, "test_acc": acc, "seconds": seconds})
        tail = losses[-min(20, len(losses)):]
        log(f"lr {lr:<6g} " + (f"diverged at batch {diverged}" if diverged else f"final loss {sum(tail) / len(tail):.4f} (mean of last {len(tail)} batches), test {acc:.2f}%") + f"  {seconds:.1f}s")
    return curves, len(train)

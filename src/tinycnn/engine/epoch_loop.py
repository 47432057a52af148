"""The batches of one training epoch, for one run (train.Trainer) and for seeds stacked in
one network (multiseed.StackedRun): step, optimizer, schedule, and the running sums of loss
and accuracy, one per seed, kept on the device."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from tinycnn.errors import TinycnnError

# The host reads the device's running sums (and checks the loss) every SYNC_EVERY batches:
# a read waits for the device, and on a GPU a wait at every batch costs more than the step.
SYNC_EVERY = 25


@dataclass
class EpochSums:
    """The running sums of an epoch in progress, one entry per seed (one for a single run):
    what a mid-epoch checkpoint keeps, to resume at batch `batch`."""

    batch: int = 0
    loss_sum: list = field(default_factory=lambda: [0.0])
    correct: list = field(default_factory=lambda: [0])
    seen: int = 0  # images, per seed
    seconds: float = 0.0
    lrs: list = field(default_factory=list)

    @classmethod
    def fresh(cls, seeds: int = 1) -> "EpochSums":
        return cls(loss_sum=[0.0] * seeds, correct=[0] * seeds)

    def seed_state(self, i: int = 0) -> dict:
        """Seed i's sums in the layout of a single run's checkpoint (scalars)."""
        return {"batch": self.batch, "loss_sum": self.loss_sum[i], "correct": self.correct[i], "seen": self.seen,
                "seconds": self.seconds, "lrs": list(self.lrs)}

    @classmethod
    def from_seed_state(cls, state: dict) -> "EpochSums":
        return cls(state["batch"], [state["loss_sum"]], [state["correct"]], state["seen"], state["seconds"], list(state["lrs"]))


def run_batches(step, optimizer, scheduler, per_batch: bool, batches: Iterator, n_batches: int, sums: EpochSums, *,
                epoch: int, not_finite: Callable[[int, int, float], str], bar=None,
                on_batch: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                after_step: Callable[[], None] | None = None) -> tuple[EpochSums, bool]:
    """Train batches sums.batch .. n_batches - 1, taken from `batches` (already past the done
    ones); the schedule steps per batch or, after the last batch, per epoch.

    `step(x, y)` returns (loss, logits): a scalar loss and (B, K) logits for y of shape (B,),
    or one loss per seed and (B, S * K) logits for y of shape (B, S). A loss that is not
    finite stops the epoch with TinycnnError(not_finite(seed index, batch, lr)).
    `after_step()` runs after each optimizer step (the weight average's update).
    Returns the sums after the last batch run, and True when should_stop() ended the epoch
    before its last batch."""
    seeds = len(sums.loss_sum)
    device = optimizer.param_groups[0]["params"][0].device
    loss_sum = torch.tensor(sums.loss_sum, device=device)
    correct = torch.tensor(sums.correct, device=device, dtype=torch.long)
    first_bad = torch.full((seeds,), -1, device=device, dtype=torch.long)
    seen, lrs = sums.seen, list(sums.lrs)
    start = time.perf_counter()

    def now(batch: int) -> EpochSums:
        return EpochSums(batch, loss_sum.tolist(), correct.tolist(), seen, sums.seconds + time.perf_counter() - start, lrs)

    for b in range(sums.batch, n_batches):
        x, y = next(batches)
        lrs.append(optimizer.param_groups[0]["lr"])
        loss, logits = step(x, y)
        optimizer.step()
        if after_step is not None:
            after_step()
        if per_batch:
            scheduler.step()
        n = y.shape[0]
        loss_sum += loss * n
        correct += (logits.view(n, seeds, -1).argmax(2) == y.view(n, seeds)).sum(0)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), b, first_bad)
        seen += n
        last = b == n_batches - 1
        if (b + 1) % SYNC_EVERY == 0 or last:
            for i, bad in enumerate(first_bad.tolist()):
                if bad >= 0:
                    raise TinycnnError(not_finite(i, bad, lrs[bad]))  # lrs holds the done batches too
            if bar is not None:
                bar.update((b + 1) - bar.n)
                bar.set_postfix_str(f"loss={loss.mean().item():.4f} acc={100.0 * correct.sum().item() / (seen * seeds):.2f}%")
        if on_batch is not None:
            on_batch(epoch, b)
        if should_stop is not None and not last and should_stop():
            return now(b + 1), True
    if not per_batch and scheduler is not None:
        scheduler.step()
    return now(n_batches), False

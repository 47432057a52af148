"""Loss and accuracy of a network over a whole split, in eval mode."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tinycnn.data.loader import BatchLoader
from tinycnn.engine.step import autocast
from tinycnn.speed.inference import inference_copy, quiet_copies


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: BatchLoader, amp: bool = False, folded: bool = True) -> dict:
    """Mean cross-entropy and accuracy (%) over the whole split, in eval mode: through
    inference.inference_copy (BatchNorm folded, channels_last on the CPU), or with
    folded=False the model itself (the reference, and the bench's other side)."""
    was_training = model.training
    model.eval()
    net = None
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    for x, y in loader.epoch(0):
        if net is None:
            net = inference_copy(model, x) if folded else model
        with autocast(loader.device, amp), quiet_copies():
            logits = net(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = loader.images.shape[0]
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct.item() / n, "correct": int(correct.item()), "n": n}

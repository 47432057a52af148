"""Several seeds of one model trained as one network: S copies stacked along the channel axis.

    from tinycnn.seeds.stacked import stack_models, unstack_state
    stacked = stack_models([model_seed0, model_seed1])     # same architecture, own weights
    logits = stacked(torch.cat([x0, x1], dim=1))           # (B, 2 * n_logits)
    weights_of_seed1 = unstack_state(stacked.state_dict(), 2, 1)

Seed s owns channel group s of every layer: a Conv2d becomes one grouped convolution
(groups multiplied by S), a BatchNorm has S times the channels (statistics are per channel,
so each seed's are exactly its own), a Linear becomes a batched matrix product, and
element-wise or per-channel layers (ReLU, pooling, Flatten, dropout) are shared as they
are. Each seed's images go in its own input channel, so every seed keeps its own batch order
and augmentation. Dropout draws one mask over all seeds from torch's generator: each seed's
mask has a separate run's distribution (not its values), and a whole step stays one CUDA
graph. The optimiser works element by element (SGD, Adam), so one optimiser over the stacked
parameters is S optimisers.

Equivalence with separate runs is checked in tests/seeds/test_stacked.py; the speed is in
docs/performance.md.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from tinycnn.engine.epoch_loop import EpochSums, run_batches
from tinycnn.engine.weight_average import WeightAverage
from tinycnn.errors import TinycnnError
from tinycnn.speed.auto_settings import resolve_auto
from tinycnn.speed.fast_dropout import FastDropout

# Layers that act on each channel (or element) alone: shared as they are.
PER_CHANNEL = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity,
    nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d,
)
# Dropout keeps each element (or channel) independently: one mask over all seeds gives each
# seed a mask of its own distribution.
DROPOUT = (FastDropout, nn.Dropout, nn.Dropout2d)


class StackedLinear(nn.Module):
    """S Linear layers on (B, S * in) -> (B, S * out); weight (S * out, in) so that seed s's
    rows are a contiguous block, like a convolution's output channels."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.s, self.out_features, self.in_features = len(layers), layers[0].out_features, layers[0].in_features
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in layers]))
        self.bias = nn.Parameter(torch.cat([m.bias.detach() for m in layers])) if layers[0].bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        w = self.weight.view(self.s, self.out_features, self.in_features)
        y = torch.bmm(x.reshape(b, self.s, self.in_features).transpose(0, 1), w.transpose(1, 2))  # (S, B, out)
        if self.bias is not None:
            y = y + self.bias.view(self.s, 1, self.out_features)
        return y.transpose(0, 1).reshape(b, self.s * self.out_features)


def _stack_leaf(layers: list[nn.Module]) -> nn.Module:
    first, s = layers[0], len(layers)
    if type(first) is nn.Conv2d:
        if first.padding_mode != "zeros":
            raise TinycnnError(f"cannot stack {first}: padding_mode {first.padding_mode!r}")
        conv = nn.Conv2d(
            first.in_channels * s, first.out_channels * s, first.kernel_size, stride=first.stride,
            padding=first.padding, dilation=first.dilation, groups=first.groups * s, bias=first.bias is not None,
            device=first.weight.device, dtype=first.weight.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(torch.cat([m.weight for m in layers]))
            if conv.bias is not None:
                conv.bias.copy_(torch.cat([m.bias for m in layers]))
        return conv
    if type(first) in (nn.BatchNorm2d, nn.BatchNorm1d):
        like = next(iter(first.state_dict().values()))
        bn = type(first)(first.num_features * s, eps=first.eps, momentum=first.momentum, affine=first.affine,
                         track_running_stats=first.track_running_stats, device=like.device, dtype=first.weight.dtype if first.affine else like.dtype)
        states = [m.state_dict() for m in layers]
        bn.load_state_dict({k: (v if v.dim() == 0 else torch.cat([st[k] for st in states])) for k, v in states[0].items()})
        return bn
    if type(first) is nn.Linear:
        return StackedLinear(layers)
    if type(first) is nn.Flatten:
        if first.start_dim != 1 or first.end_dim != -1:
            raise TinycnnError(f"cannot stack {first}: only Flatten(1, -1)")
        return copy.deepcopy(first)
    if isinstance(first, PER_CHANNEL) or type(first) in DROPOUT:
        return copy.deepcopy(first)
    raise TinycnnError(f"cannot train seeds stacked: no stacked form of {type(first).__name__}")


def stack_models(models: list[nn.Module]) -> nn.Module:
    """One network holding the S models (same architecture) as channel groups. The module
    names are those of the models, so state-dict keys match theirs."""
    if not models:
        raise TinycnnError("nothing to stack")
    return _stack(models)


def _stack(models: list[nn.Module]) -> nn.Module:
    first = models[0]
    children = [dict(m.named_children()) for m in models]
    if not children[0]:
        return _stack_leaf(models)
    if type(first) is not nn.Sequential:
        raise TinycnnError(f"cannot train seeds stacked: {type(first).__name__} is not an nn.Sequential of layers")
    if any(c.keys() != children[0].keys() for c in children):
        raise TinycnnError("stacked models must have the same architecture")
    out = nn.Sequential()
    for name in children[0]:
        out.add_module(name, _stack([c[name] for c in children]))
    out.train(first.training)
    return out


def why_not_stackable(model: nn.Module) -> str | None:
    """None if S copies of `model` can be stacked into one network; else why not, in a line."""
    try:
        stack_models([model, copy.deepcopy(model)])
    except TinycnnError as exc:
        return str(exc)
    return None


def unstack_tensor(value: torch.Tensor, s: int, i: int) -> torch.Tensor:
    """Seed i's part of a stacked tensor (a 0-d tensor, such as a BN counter, is shared)."""
    if value.dim() == 0:
        return value.clone()
    return value.chunk(s, dim=0)[i].clone()


def unstack_state(state: dict, s: int, i: int) -> dict:
    """Seed i's state dict, in the layout of the original model."""
    return {k: unstack_tensor(v, s, i) for k, v in state.items()}


def stacked_input(batches: list[torch.Tensor]) -> torch.Tensor:
    """S batches of (B, 1, H, W) -> (B, S, H, W): seed s's images in channel s."""
    return torch.cat(batches, dim=1)


def per_seed_loss(logits: torch.Tensor, y: torch.Tensor, s: int, label_smoothing: float = 0.0) -> torch.Tensor:
    """logits (B, S * K), y (B, S) -> (S,): each seed's mean cross-entropy over its batch."""
    b = logits.shape[0]
    k = logits.shape[1] // s
    if logits.dtype not in (torch.float32, torch.float64):  # autocast: the loss in float32, as Trainer
        logits = logits.float()
    losses = F.cross_entropy(logits.view(b * s, k), y.reshape(b * s), reduction="none", label_smoothing=label_smoothing)
    return losses.view(b, s).mean(0)


class StackedRun:
    """S seeds of one TrainConfig trained together, set up as S Trainers would be.

    Seed s's model is built after torch.manual_seed(s), as Trainer does; its batches come
    from its own BatchLoader (order and augmentation seeded by (s, epoch)). `epoch(e)` runs the Trainer's step on the stacked
    network; `evaluate(loader)` scores every seed on one split; `state(i)` is seed i's
    model state dict in the original layout. The files of a run are stacked_trainer.py's.
    """

    def __init__(self, config, seeds: list[int], model=None):
        from tinycnn.data.augment import build_augment
        from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
        from tinycnn.device import (
            TORCH_DEFAULT_THREADS,
            select_device,
            use_deterministic_algorithms,
        )
        from tinycnn.engine.optim import build_optimizer, build_scheduler
        from tinycnn.engine.step import TrainStep
        from tinycnn.engine.trainer import model_facts
        from tinycnn.models.build import build_model
        from tinycnn.speed.fast_dropout import use_fast_dropout

        c = self.config = resolve_auto(config).validate()
        if len(set(seeds)) != len(seeds) or not seeds:
            raise TinycnnError("a stacked run needs distinct seeds")
        if c.deterministic:
            use_deterministic_algorithms()
        self.seeds, self.device = list(seeds), select_device(c.device)
        torch.set_num_threads(c.threads or TORCH_DEFAULT_THREADS)
        splits = load_splits(c.dataset, val_size=c.val_size, subset=c.subset, device=self.device)
        mean, std = NORMALIZATION[c.dataset]
        augment = build_augment(c)
        self.loaders = [BatchLoader(*splits["train"], c.batch_size, shuffle=True, seed=s, augment=augment, mean=mean, std=std) for s in seeds]
        self.eval_loaders = {name: BatchLoader(*splits[name], c.eval_batch_size, mean=mean, std=std) for name in ("val", "test") if name in splits}
        models, factory = [], model  # a class or function of the user's, or None: the configuration's network
        for s in seeds:
            torch.manual_seed(s)
            model = build_model(c) if factory is None else factory()
            if c.fast_dropout:
                use_fast_dropout(model)
            models.append(model.to(self.device))
        self.facts = model_facts(models[0])
        self.model = stack_models(models)
        if c.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.average = WeightAverage(self.model, c.ema) if c.ema else None  # element-wise: each seed's own average
        self.step = TrainStep(self.model, c, self.device, lambda logits, y: per_seed_loss(logits, y, len(seeds), c.label_smoothing))
        self.optimizer = build_optimizer(c, self.model)
        self.scheduler, self.per_batch = build_scheduler(c, self.optimizer, len(self.loaders[0]))

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.config.channels_last else x

    def epoch(self, epoch: int, max_batches: int | None = None, partial: EpochSums | None = None,
              should_stop=None, bar=None, on_batch=None) -> dict:
        """One epoch (or its first max_batches) of every seed, from `partial` when resuming.

        Returns per-seed lists train_loss and train_acc, with images (all seeds), lrs and
        seconds; or, when should_stop() turned true before the last batch, {"partial": ...}."""
        s = len(self.seeds)
        partial = partial or EpochSums.fresh(s)
        self.model.train()
        streams = [loader.epoch(epoch) for loader in self.loaders]
        for stream in streams:  # resuming mid-epoch: replay the draws of the done batches
            for _ in range(partial.batch):
                next(stream)
        n = len(self.loaders[0]) if max_batches is None else min(max_batches, len(self.loaders[0]))

        def batches():
            while True:
                pairs = [next(stream) for stream in streams]
                yield self._input(stacked_input([p[0] for p in pairs])), torch.stack([p[1] for p in pairs], 1)  # y: (B, S)

        def not_finite(i: int, batch: int, lr: float) -> str:
            return (f"loss is not finite for seed {self.seeds[i]} in epoch {epoch + 1}, batch {batch + 1}, at learning rate "
                    f"{lr:.4g}; stopped, keeping the last good checkpoint ({epoch} epochs done). Try a lower --lr (or max_lr)")

        sums, stopped = run_batches(
            self.step, self.optimizer, self.scheduler, self.per_batch, batches(), n, partial, epoch=epoch,
            not_finite=not_finite, bar=bar, on_batch=on_batch, should_stop=should_stop,
            after_step=self.average.update if self.average else None,
        )
        if stopped:
            return {"partial": sums}
        return {
            "train_loss": [loss / sums.seen for loss in sums.loss_sum],
            "train_acc": [100.0 * right / sums.seen for right in sums.correct],
            "images": (sums.seen - partial.seen) * s,
            "lrs": sums.lrs,
            "seconds": sums.seconds,
            "images_per_second": (sums.seen - partial.seen) / max(sums.seconds - partial.seconds, 1e-9),  # per seed
        }

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """The stacked network that is evaluated and kept: the weight average, or the model."""
        return self.model if self.average is None else self.average.model

    @torch.no_grad()
    def evaluate(self, loader, raw: bool = False) -> list[dict]:
        """Each seed's mean cross-entropy and accuracy (%) over one split (train.evaluate, per
        seed, through the same folded copy of the network), of the evaluated network or, with
        `raw`, of the trained weights themselves."""
        from tinycnn.engine.step import autocast
        from tinycnn.speed.inference import inference_copy, quiet_copies

        s = len(self.seeds)
        model = self.model if raw else self.evaluated_model
        was_training = model.training
        model.eval()
        net = None
        loss_sum = torch.zeros(s, device=self.device)
        correct = torch.zeros(s, device=self.device, dtype=torch.long)
        for x, y in loader.epoch(0):
            b = y.shape[0]
            x = self._input(x.expand(b, s, *x.shape[2:]))
            if net is None:
                net = inference_copy(model, x)
            with autocast(self.device, self.config.amp), quiet_copies():
                logits = net(x)
            logits = logits.float().view(b, s, -1)
            losses = F.cross_entropy(logits.reshape(b * s, -1), y.repeat_interleave(s), reduction="none")
            loss_sum += losses.view(b, s).sum(0)
            correct += (logits.argmax(2) == y[:, None]).sum(0)
        model.train(was_training)
        n = loader.images.shape[0]
        return [{"loss": loss_sum[i].item() / n, "acc": 100.0 * correct[i].item() / n, "n": n} for i in range(s)]

    def state(self, i: int, model: torch.nn.Module | None = None) -> dict:
        """Seed i's state dict of `model` (default: the trained one), in the layout of the
        original model."""
        return unstack_state((self.model if model is None else model).state_dict(), len(self.seeds), i)

    def average_state(self, i: int) -> dict | None:
        """Seed i's weight average, as a Trainer of that seed alone would save it."""
        if self.average is None:
            return None
        return {**self.average.state_dict(), "model": self.state(i, self.average.model)}

    def optimizer_state(self, i: int) -> dict:
        """Seed i's optimizer state dict, as a Trainer of that seed alone would hold it.

        The stacked parameters come in the original model's order, and every state tensor
        (momentum, Adam's moments) has its parameter's stacked shape; Adam's step counters
        are 0-d and shared."""
        state = self.optimizer.state_dict()
        return {
            "state": {k: {name: unstack_tensor(v, len(self.seeds), i) if torch.is_tensor(v) else v for name, v in st.items()}
                      for k, st in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"]),
        }

    def resume_state(self) -> dict:
        """Everything a resumed stacked run needs besides the files of each seed."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "average": self.average.state_dict() if self.average is not None else None,
            "rng_cpu": torch.get_rng_state(),
            **({"rng_cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
        }

    def load_resume_state(self, state: dict) -> None:
        from tinycnn.engine.checkpoint import restore_training

        restore_training(state, self.model, self.optimizer, self.scheduler, self.average, self.device)

"""Layer table of a model: output shape, parameters, receptive field, jump and multiply-adds per layer.

    tinycnn summary era-s7-6750
    python -c "from tinycnn.models import create_model; from tinycnn.summary import summarize; \
print(summarize(create_model('tiny-4k')).render())"

How it is measured: one forward pass of a single zero image in eval mode (so BatchNorm works at
batch size 1 and nothing is trained), with a forward hook on every leaf module. The hooks see the
layers in the order they run, with their real input and output shapes.

- Parameters come from `model.parameters()`, so a layer defined in __init__ but never called in
  forward still counts (torchsummary-style tables hide it). Such layers are listed in `unused`.
- Multiply-adds follow torchinfo's "Total mult-adds" so the two can be compared: a convolution
  counts (weight + bias elements) x output pixels; every other layer with parameters (Linear,
  BatchNorm) counts its parameter count once per image; layers without parameters count 0.
- Receptive field and jump (effective stride) follow Araujo, Norris & Sim, "Computing Receptive
  Fields of Convolutional Neural Networks", Distill 2019: for a layer with kernel k, stride s
  and dilation d, r += (k - 1) * d * j, then j *= s. Padding moves the field, not its size.
  Global average pooling is a kernel as large as its input map, so afterwards the field covers
  the whole input (the formula may then exceed the image size, e.g. 32 on a 28 px image); so is
  a Linear layer applied to a flattened map. The layers are followed as one chain in execution
  order, which is exact for sequential networks like every model in the zoo and an overestimate
  for networks with parallel branches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.pooling import _MaxPoolNd

FP32_BYTES = 4


@dataclass(frozen=True)
class LayerRow:
    """One call of one leaf module, in execution order."""

    name: str  # dotted path in the model, e.g. "c1.0"
    type: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # per image (no batch dimension)
    params: int  # parameters held by this layer
    receptive_field: int  # input pixels one output position sees (larger axis)
    jump: int  # input pixels between neighbouring output positions (effective stride)
    macs: int  # multiply-accumulates per image, torchinfo convention


@dataclass(frozen=True)
class UnusedModule:
    """A leaf module (or a module holding parameters) that forward never called."""

    name: str
    type: str
    params: int


@dataclass(repr=False)
class ModelSummary:
    """The layer table (`rows`) and the totals; str() is the table `tinycnn summary` prints."""

    input_size: tuple[int, ...]  # per image, e.g. (1, 28, 28)
    rows: list[LayerRow]
    total_params: int  # sum(p.numel() for p in model.parameters()), used or not
    trainable_params: int
    non_trainable_params: int
    macs: int  # per image
    activation_bytes: int  # all leaf outputs of one image, fp32
    param_bytes: int  # parameter storage at their dtype
    receptive_field: int  # at the output
    n_logits: int  # output elements per image
    has_batchnorm: bool  # any BatchNorm layer runs
    has_dropout: bool  # any nn.Dropout* layer with p > 0 runs
    has_gap: bool  # an average pool reduces a map larger than 1x1 to 1x1
    has_linear: bool  # any nn.Linear runs
    n_maxpool: int  # MaxPool calls
    unused: list[UnusedModule] = field(default_factory=list)

    @property
    def params(self) -> int:
        return self.total_params

    def render(self, title: str | None = None) -> str:
        return render(self, title)

    def __str__(self) -> str:
        return render(self)

    def __repr__(self) -> str:
        return (f"ModelSummary(params={self.total_params:,}, macs={self.macs:,}, receptive_field={self.receptive_field}, "
                f"rows={len(self.rows)})")


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _spatial(shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    return (shape[-2], shape[-1]) if shape is not None and len(shape) == 4 else None


def _window(module: nn.Module, in_hw, out_hw):
    """(kernel, stride, dilation) per axis for layers that change the receptive field, else None."""
    if isinstance(module, nn.Conv2d):
        return _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(module.kernel_size)
        s = _pair(module.stride) if module.stride else k
        return k, s, _pair(getattr(module, "dilation", 1))
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and in_hw and out_hw:
        s = tuple(i // o for i, o in zip(in_hw, out_hw))
        k = tuple(i - (o - 1) * st for i, o, st in zip(in_hw, out_hw, s))
        return k, s, (1, 1)
    return None


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _first_tensor(item)
            if t is not None:
                return t
    if isinstance(x, dict):
        return _first_tensor(list(x.values()))
    return None


def _shape(x) -> tuple[int, ...] | None:
    t = _first_tensor(x)
    return tuple(t.shape) if t is not None else None


def summarize(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> ModelSummary:
    """Run one image of `input_size` (C, H, W) through `model` and describe every layer that ran."""
    units = [
        (name or type(m).__name__, m)
        for name, m in model.named_modules()
        if next(m.children(), None) is None or next(m.parameters(recurse=False), None) is not None
    ]
    calls: list[tuple[str, nn.Module, tuple | None, tuple | None]] = []

    def hook_for(name):
        def hook(module, inputs, output):
            calls.append((name, module, _shape(inputs), _shape(output)))

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in units]
    first = next(model.parameters(), None)
    x = torch.zeros(
        (1, *input_size),
        device=first.device if first is not None else "cpu",
        dtype=first.dtype if first is not None and first.is_floating_point() else torch.float32,
    )
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    rows: list[LayerRow] = []
    r, j = [1, 1], [1, 1]  # receptive field and jump per axis (height, width)
    flat_hw = None  # spatial size of a map flattened into vectors, until a Linear mixes it
    has_gap = False
    for name, m, in_shape, out_shape in calls:
        in_hw, out_hw = _spatial(in_shape), _spatial(out_shape)
        if isinstance(m, nn.Flatten) and in_hw:
            flat_hw = in_hw
        window = _window(m, in_hw, out_hw)
        if isinstance(m, nn.Linear) and flat_hw:
            window, flat_hw = (flat_hw, (1, 1), (1, 1)), None
        if window:
            k, s, d = window
            for a in (0, 1):
                r[a] += (k[a] - 1) * d[a] * j[a]
                j[a] *= s[a]
        if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)) and in_hw and out_hw == (1, 1):
            has_gap = has_gap or in_hw != (1, 1)

        own = list(m.named_parameters(recurse=False))
        per_pixel = math.prod(out_shape[2:]) if out_shape and "Conv" in type(m).__name__ else 1
        macs = sum(p.numel() * per_pixel for _, p in own)
        rows.append(
            LayerRow(
                name=name,
                type=type(m).__name__,
                output_shape=tuple(out_shape[1:]) if out_shape else (),
                params=sum(p.numel() for _, p in own),
                receptive_field=max(r),
                jump=max(j),
                macs=macs,
            )
        )

    called = {id(m) for _, m, _, _ in calls}
    unused = [
        UnusedModule(name, type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False)))
        for name, m in units
        if id(m) not in called
    ]
    ran = [m for _, m, _, _ in calls]
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    out_t = _first_tensor(out)
    return ModelSummary(
        input_size=tuple(input_size),
        rows=rows,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        macs=sum(row.macs for row in rows),
        activation_bytes=sum(math.prod(row.output_shape) for row in rows) * FP32_BYTES,
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        receptive_field=max(r),
        n_logits=out_t[0].numel() if out_t is not None and out_t.dim() > 0 else 0,
        has_batchnorm=any(isinstance(m, _BatchNorm) for m in ran),
        has_dropout=any(isinstance(m, (_DropoutNd, nn.AlphaDropout)) and m.p > 0 for m in ran),
        has_gap=has_gap,
        has_linear=any(isinstance(m, nn.Linear) for m in ran),
        n_maxpool=sum(isinstance(m, _MaxPoolNd) for m in ran),
        unused=unused,
    )


def _bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render(s: ModelSummary, title: str | None = None) -> str:
    """The summary as a plain-text table followed by totals and structural facts."""
    shape = "x".join(map(str, s.input_size))
    header = ("layer", "type", "output", "params", "RF", "jump", "MACs")
    body = [
        (
            row.name,
            row.type,
            "x".join(map(str, row.output_shape)),
            f"{row.params:,}",
            str(row.receptive_field),
            str(row.jump),
            f"{row.macs:,}",
        )
        for row in s.rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    left = (True, True, True, False, False, False, False)

    def fmt(line):
        cells = [c.ljust(w) if lj else c.rjust(w) for c, w, lj in zip(line, widths, left)]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(header))
    side = s.input_size[-1] if s.input_size else 0
    cover = " (covers the whole input)" if s.receptive_field >= side else ""
    lines = [f"{title + ': ' if title else ''}input {shape}", rule, fmt(header), rule]
    lines += [fmt(line) for line in body]
    lines += [
        rule,
        f"parameters        {s.total_params:,} (trainable {s.trainable_params:,}, "
        f"non-trainable {s.non_trainable_params:,}), {_bytes(s.param_bytes)}",
        f"multiply-adds     {s.macs:,} per image (torchinfo convention)",
        f"activations       {_bytes(s.activation_bytes)} per image (every layer output, fp32)",
        f"receptive field   {s.receptive_field} px at the output{cover}",
        f"structure         BatchNorm {_yes(s.has_batchnorm)}, Dropout {_yes(s.has_dropout)}, "
        f"GAP {_yes(s.has_gap)}, Linear {_yes(s.has_linear)}, MaxPool x{s.n_maxpool}, "
        f"{s.n_logits} logits",
    ]
    for u in s.unused:
        lines.append(
            f"never run         {u.name} ({u.type}, {u.params:,} parameters): defined but not "
            f"called in forward, still counted in the parameters above"
        )
    return "\n".join(lines)

"""Our own compact designs for the Session 7 budget (99.4% in at most 15 epochs, under 8k params).

    tinycnn summary tiny-4k
    tinycnn train --recipe tiny-5k

The design is the Session 7 one with less waste: conv -> BN -> ReLU -> Dropout blocks, one
MaxPool once the receptive field reaches 6, narrow 3x3 convs without padding after it, global
average pooling, then a bias-free 1x1 conv to 10 logits on the pooled vector (no FC bias, and
far fewer multiply-adds than the same 1x1 applied to the map before the pool). How they do
over seeds: docs/models.md.
"""

from __future__ import annotations

from torch import nn

from tinycnn.models.family import family
from tinycnn.models.layers import cbr, conv, seq
from tinycnn.models.registry import register_model

ORIGIN = "tinycnn (our design; docs/models.md)"


def _head(cin: int) -> dict[str, nn.Module]:
    return dict(gap=nn.AdaptiveAvgPool2d(1), head=conv(cin, 10, 1), flatten=nn.Flatten())


@register_model(
    "tiny-5k",
    description="1->8->12 padded, MaxPool, 1x1 12->8, 3x3 8-10-10-12-12, GAP, 1x1 12->10",
    origin=ORIGIN,
)
def tiny_5k(dropout: float = 0.05) -> nn.Sequential:
    d = dropout
    return seq(
        c1=cbr(1, 8, 1, d), c2=cbr(8, 12, 1, d), pool=nn.MaxPool2d(2),  # 14x14, RF 6
        t1=nn.Sequential(conv(12, 8, 1), nn.BatchNorm2d(8), nn.ReLU()),  # 1x1 transition
        c3=cbr(8, 10, 0, d), c4=cbr(10, 10, 0, d), c5=cbr(10, 12, 0, d), c6=cbr(12, 12, 0, d),  # 6x6, RF 22
        **_head(12),
    )


@register_model(
    "tiny-4k",
    description="8-ch padded pair, MaxPool, four 3x3 at 10 ch, GAP, 1x1 10->10",
    origin=ORIGIN,
)
def tiny_4k(dropout: float = 0.05) -> nn.Sequential:
    d = dropout
    return seq(
        c1=cbr(1, 8, 1, d), c2=cbr(8, 8, 1, d), pool=nn.MaxPool2d(2),  # 14x14, RF 6
        c3=cbr(8, 10, 0, d), c4=cbr(10, 10, 0, d), c5=cbr(10, 10, 0, d), c6=cbr(10, 10, 0, d),  # 6x6, RF 22
        **_head(10),
    )


@register_model(
    "tiny-3k",
    description="8 channels throughout: padded pair, MaxPool, four 3x3, GAP, 1x1 8->10",
    origin=ORIGIN,
)
def tiny_3k(dropout: float = 0.05) -> nn.Sequential:
    d = dropout
    return seq(
        c1=cbr(1, 8, 1, d), c2=cbr(8, 8, 1, d), pool=nn.MaxPool2d(2),  # 14x14, RF 6
        c3=cbr(8, 8, 0, d), c4=cbr(8, 8, 0, d), c5=cbr(8, 8, 0, d), c6=cbr(8, 8, 0, d),  # 6x6, RF 22
        **_head(8),
    )


def _searched(name: str, description: str, search: str, **design) -> None:
    """Register a design `tinycnn search` found as the family network itself, so that its
    recipe repeats the searched runs value for value."""

    def build(dropout: float = 0.05) -> nn.Sequential:
        return family(**design, transition=0, head="gap", dropout=dropout)

    register_model(name, description=f"found by tinycnn search: {description}",
                   origin=f"tinycnn search (results/search/{search}; docs/models.md)")(build)


_searched("tiny-3924", "8-10 padded, MaxPool, 3x3 8-8-8-14, GAP, 1x1 14->10", "under-4k-settings",
          widths=(8, 10, 8, 8, 8, 14), pool_after=2, padded=2)
_searched("tiny-3888", "three padded 3x3 at 8, MaxPool, 3x3 8-8-8-10, GAP, 1x1 10->10", "under-4k-designs",
          widths=(8, 8, 8, 8, 8, 8, 10), pool_after=3, padded=3)
_searched("tiny-7812", "three padded 3x3 8-10-12, MaxPool, 3x3 12-12-12-16, GAP, 1x1 16->10", "under-8k-designs",
          widths=(8, 10, 12, 12, 12, 12, 16), pool_after=3, padded=3)

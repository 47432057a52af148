import torch
from torch import nn

from tinycnn.fast_dropout import FastDropout, uniform16_mask, use_fast_dropout
from tinycnn.models import create_model


def test_keep_rate_and_scale_match_dropout():
    torch.manual_seed(0)
    x = torch.ones(400_000)
    for p in (0.05, 0.1, 0.25, 0.5):
        d = FastDropout(p).train()
        y = d(x)
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 4 * (p * (1 - p) / x.numel()) ** 0.5 + 1e-4
        assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout keeps the mean
        assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 65536 / round((1 - p) * 65536)))


def test_mask_is_uncorrelated_between_neighbours():
    torch.manual_seed(1)
    m = uniform16_mask((200_000,), 0.5, "cpu").float()
    corr = torch.corrcoef(torch.stack([m[:-1], m[1:]]))[0, 1].item()
    assert abs(corr) < 0.01


def test_eval_mode_is_identity_and_gradient_is_masked():
    x = torch.randn(64, 8, requires_grad=True)
    d = FastDropout(0.3)
    assert torch.equal(d.eval()(x), x)
    d.train()
    torch.manual_seed(2)
    y = d(x)
    y.sum().backward()
    kept = y.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 65536 / round(0.7 * 65536)))
    assert torch.all(x.grad[~kept] == 0)


def test_seeded_and_swapped_in_models():
    model = create_model("era-s7-6750")
    n = use_fast_dropout(model)
    assert n == sum(isinstance(m, FastDropout) for m in model.modules()) > 0
    assert not any(type(m) is nn.Dropout for m in model.modules())
    model.train()
    x = torch.randn(4, 1, 28, 28)
    torch.manual_seed(3)
    a = model(x)
    torch.manual_seed(3)
    b = model(x)
    assert torch.equal(a, b)

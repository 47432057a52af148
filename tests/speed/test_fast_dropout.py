import math

import pytest
import torch
from torch import nn

from tinycnn.models import create_model
from tinycnn.speed.fast_dropout import (
    FastDropout,
    ScaledMaskProduct,
    keep_scale,
    random_words,
    uniform16_mask,
    use_fast_dropout,
)


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


def test_cpu_words_follow_torchs_generator_with_one_draw_each():
    # The words come from SFC64, seeded by one draw from torch's generator: seeding torch
    # replays them, and torch's generator moves on by exactly that one draw.
    torch.manual_seed(4)
    a = random_words(1000, "cpu")
    after = torch.get_rng_state()
    torch.manual_seed(4)
    b = random_words(1000, "cpu")
    assert torch.equal(a, b) and a.dtype == torch.int64 and a.shape == (1000,)
    assert torch.equal(torch.get_rng_state(), after)
    torch.manual_seed(4)
    torch.empty(1, dtype=torch.int64).random_(0, 2**62)
    assert torch.equal(torch.get_rng_state(), after)
    assert not torch.equal(random_words(1000, "cpu"), a)  # the next call: another seed


def test_cpu_words_from_a_given_generator_leave_the_default_one_alone():
    state = torch.get_rng_state()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(random_words(64, "cpu", g1), random_words(64, "cpu", g2))
    assert torch.equal(torch.get_rng_state(), state)


def test_cpu_words_have_uniform_bits():
    # Every one of the 64 bit positions is set half the time: the 16-bit lanes (and so the
    # keep probability) are uniform.
    torch.manual_seed(6)
    words = random_words(200_000, "cpu")
    bits = ((words.view(-1, 1) >> torch.arange(64)) & 1).float().mean(0)
    assert (bits - 0.5).abs().max().item() < 0.006  # 5 sigma for 200,000 draws


def test_cpu_mask_compares_the_words_lanes_in_channels_last_order():
    # The same seed draws the same words; a 4-d mask takes their lanes in (N, H, W, C)
    # order whatever its layout, other masks in their own order. uint8, which compiled
    # kernels read fast.
    keep = 0.9
    threshold = round(keep * 65536) - 32768
    for shape in [(3, 5, 4, 7), (6, 35), (101,)]:
        n = math.prod(shape)
        torch.manual_seed(8)
        lanes = random_words((n + 3) // 4, "cpu").view(torch.int16)[:n]
        expected = ((lanes.view(3, 4, 7, 5) < threshold).permute(0, 3, 1, 2) if len(shape) == 4
                    else (lanes < threshold).view(shape)).to(torch.uint8)
        for channels_last in (False, True):
            torch.manual_seed(8)
            mask = uniform16_mask(shape, keep, "cpu", channels_last=channels_last)
            assert mask.dtype == torch.uint8 and mask.shape == shape
            assert torch.equal(mask, expected)
            cl = channels_last and len(shape) == 4
            assert mask.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def test_fast_dropout_draws_the_same_mask_in_either_layout():
    x = torch.randn(4, 6, 5, 5)
    d = FastDropout(0.3).train()
    torch.manual_seed(9)
    a = d(x)
    torch.manual_seed(9)
    b = d(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_eager_product_equals_the_expression_bit_for_bit(dtype, channels_last):
    # FastDropout's eager float32/float64 path (ScaledMaskProduct) against the expression
    # x * mask * scale, which the compiled and bf16 steps use: output and input gradient.
    x = torch.randn(8, 6, 7, 7, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    keep = 0.9
    torch.manual_seed(4)
    mask = uniform16_mask(x.shape, keep, "cpu", channels_last=channels_last)
    expected_x = x.clone().requires_grad_()
    expected = expected_x * mask.to(dtype) * keep_scale(keep)
    got_x = x.clone().requires_grad_()
    torch.manual_seed(4)
    got = FastDropout(1 - keep).train()(got_x)
    grad = torch.randn_like(expected)
    expected.backward(grad)
    got.backward(grad)
    bits = {torch.bfloat16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    assert torch.equal(got.detach().view(bits), expected.detach().view(bits))  # signed zeros included
    assert torch.equal(got_x.grad, expected_x.grad)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_eager_product_takes_the_gpus_bool_mask_too():
    # off the CPU uniform16_mask gives a bool mask; an eager float step multiplies by it alike
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    mask = torch.rand(4, 3, 5, 5) < 0.9
    got = ScaledMaskProduct.apply(x, mask, keep_scale(0.9))
    assert got.dtype == torch.float32 and torch.equal(got, x * mask.to(x.dtype) * keep_scale(0.9))


def test_torch_compile_traces_a_model_with_fast_dropout_as_one_graph():
    # A graph break at each mask (as Tensor.random_ causes) made compiled steps 1.5-2x
    # slower; tracing alone is quick (no kernels are built).
    import torch._dynamo

    model = create_model("era-s7-8172")
    use_fast_dropout(model)
    model.train()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(torch.randn(4, 1, 28, 28))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


@pytest.mark.parametrize("layer", [FastDropout(0.3), torch.nn.Dropout2d(0.3)])
def test_dropout_traces_with_a_symbolic_batch_size(layer):
    """torch.compile treats the batch size as symbolic once an epoch's last, smaller batch
    comes; the masks must trace there too, and draw what eager mode draws."""
    traced = torch.compile(layer, backend="eager", dynamic=True)
    for batch in (64, 32):
        x = torch.randn(batch, 8, 6, 6)
        state = torch.get_rng_state()
        eager = layer(x)
        torch.set_rng_state(state)
        assert torch.equal(traced(x), eager)


class UsersNet(nn.Module):
    """Dropout where users put it: an attribute of a custom module, in place, on a 3-d and a
    2-d tensor, next to a functional dropout and a Dropout2d."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.drop2d = nn.Dropout2d(0.2)
        self.drop_seq = nn.Dropout(0.3, inplace=True)
        self.fc = nn.Linear(4 * 26, 10)
        self.drop_fc = nn.Dropout(0.5)

    def forward(self, x):
        x = self.drop2d(torch.relu(self.conv(x)))  # (N, 4, 26, 26)
        x = self.drop_seq(x.mean(3))  # (N, 4, 26)
        x = torch.nn.functional.dropout(x.flatten(1), 0.1, self.training)
        return self.fc(self.drop_fc(x))


def test_any_network_keeps_its_weights_and_its_dropout_rates_when_swapped():
    net = UsersNet()
    keys = net.state_dict().keys()
    assert use_fast_dropout(net) == 2  # nn.Dropout only: Dropout2d and F.dropout are left alone
    assert net.state_dict().keys() == keys
    assert isinstance(net.drop_seq, FastDropout) and net.drop_seq.p == 0.3 and type(net.drop2d) is nn.Dropout2d
    torch.manual_seed(4)
    ones = torch.ones(2000, 4, 26)
    assert (net.drop_seq(ones.clone()) == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert (net.drop_fc(torch.ones(2000, 104)) == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)
    x = torch.randn(8, 1, 28, 28)
    assert net.train()(x).shape == (8, 10)
    net.eval()
    assert torch.equal(net(x), net(x))

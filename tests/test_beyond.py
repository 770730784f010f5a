"""The claims of "Beyond the classics", checked independently at small size, and its exercise check."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp
from lessonlib.exercises import check_init
from lessonlib.exercises.beyond import CHECK_CASES, check_stream_growth, stream_growth
from lessonlib.models import ResidualMLP, norm_mlp
from lessonlib.probes import Probe


def test_pytorch_default_is_kaiming_uniform_with_a_sqrt5():
    torch.manual_seed(0)
    w = nn.Linear(500, 300).weight.detach()
    assert math.isclose(nn.init.calculate_gain("leaky_relu", math.sqrt(5)), math.sqrt(1 / 3), rel_tol=1e-9)
    assert float(w.abs().max()) <= 1 / math.sqrt(500)
    assert float(w.std()) * math.sqrt(3 * 500) == pytest.approx(1.0, abs=0.01)   # 150,000 draws: ~0.2%
    ours = make_scheme("pytorch_default")(torch.empty(300, 500))
    assert float(ours.std()) * math.sqrt(3 * 500) == pytest.approx(1.0, abs=0.01)


def _std_drop(scheme, seeds=range(4), width=128, depth=10):
    x = torch.randn(128, width, generator=torch.Generator().manual_seed(1000))
    drops = []
    for seed in seeds:
        net = init_model(mlp([width] * (depth + 1)), scheme, seed=seed)
        with torch.no_grad(), Probe(net) as probe:
            net(x)
        s = probe.stats("outputs", "std")
        drops.append(s[-1] / s[0])
    return float(np.mean(drops))


def test_default_shrinks_relu_signal_by_sqrt6_per_layer_lecun_by_sqrt2_he_not():
    assert _std_drop("pytorch_default") == pytest.approx(6 ** (-9 / 2), rel=0.3)
    assert _std_drop("lecun_normal") == pytest.approx(2 ** (-9 / 2), rel=0.3)
    assert _std_drop("kaiming_normal") == pytest.approx(1.0, rel=0.3)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
def test_residual_stream_grows_as_one_plus_two_alpha_squared(alpha):
    n_blocks, ratios = 8, []
    x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1000))
    for seed in range(4):
        net = init_model(ResidualMLP(64, 128, n_blocks), "kaiming_normal", seed=seed)
        with torch.no_grad():
            for layer in net.branch_outputs():
                layer.weight.mul_(alpha)
            _, stream = net(x, return_stream=True)
        ratios.append(float(stream[-1].pow(2).mean() / stream[0].pow(2).mean()))
    assert np.mean(ratios) == pytest.approx(stream_growth(n_blocks, alpha), rel=0.25)


def test_batchnorm_hidden_layers_are_scale_invariant():
    data = digits()
    model = init_model(norm_mlp([64, 32, 32, 10], "batch"), "kaiming_normal", seed=0).train()
    with torch.no_grad():
        before = model(data.X_train)
        for layer in (model[0], model[3]):
            layer.weight.mul_(100)
        after = model(data.X_train)
    assert float((after - before).abs().max()) < 1e-3


def test_he_digits_net_has_no_dead_hidden_units_at_init():
    data = digits()
    for seed in range(3):
        model = init_model(DigitNN(), "kaiming_normal", seed=seed)
        with torch.no_grad(), Probe(model) as probe:
            model(data.X_train)
        assert probe.dead_units()[:2].max() == 0.0


def test_clipping_keeps_huge_init_sgd_finite():
    data = digits()

    def run(seed, clip):
        model = init_model(DigitNN(), make_scheme("normal", std=1.0), seed=seed)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        for _ in range(50):
            loss = nn.functional.cross_entropy(model(data.X_train), data.y_train)
            if not math.isfinite(loss.item()):
                return False
            opt.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        return True

    assert all(run(seed, clip=True) for seed in range(3))
    assert not all(run(seed, clip=False) for seed in range(3))


def test_check_stream_growth_accepts_the_formula_and_names_slips(capsys):
    assert check_stream_growth(lambda L, a: (1 + 2 * a**2) ** L)
    assert "✓ Correct" in capsys.readouterr().out
    for wrong, words in [(lambda L, a: (1 + a**2) ** L, "(1 + alpha^2)^L"),
                         (lambda L, a: (1 + 2 * a) ** L, "alpha where alpha^2 belongs"),
                         (lambda L, a: 1 + 2 * a**2 * L, "added block after block"),
                         (lambda L, a: (2 * a**2) ** L, "stream's own term"),
                         (lambda L, a: 2.0 ** L, "Hint")]:
        assert not check_stream_growth(wrong)
        assert words in capsys.readouterr().out
    assert not check_stream_growth(lambda L, a: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs a function"):
        check_stream_growth(3.0)
    assert (8, 0.0) in CHECK_CASES


def test_check_init_on_the_default_exercise(capsys):
    def right(w):
        b = 1 / math.sqrt(w.shape[1])
        return w.uniform_(-b, b)

    def he_bound(w):
        b = math.sqrt(6 / w.shape[1])
        return w.uniform_(-b, b)

    assert check_init(right, "pytorch_default")
    assert not check_init(he_bound, "pytorch_default")
    assert "sqrt(6/fan_in)" in capsys.readouterr().out


def test_he_branch_doubles_the_second_moment_and_the_cross_term_averages_out():
    # F(h) = W2 relu(W1 h) with He weights: W1 doubles E[h^2], the ReLU halves it, W2 doubles it:
    # E[F^2] = 2 E[h^2]. The cross term 2 E[h F] / E[h^2] scatters from block to block around 0.
    x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1000))
    ratios, cross = [], []
    for seed in range(4):
        net = init_model(ResidualMLP(64, 128, 8), "kaiming_normal", seed=seed)
        with torch.no_grad():
            h = net.stem(x).double()
            for block in net.blocks:
                f = block(h.float()).double()
                q = float(h.pow(2).mean())
                ratios.append(float(f.pow(2).mean()) / q)
                cross.append(2 * float((h * f).mean()) / q)
                h = h + f
    assert np.mean(ratios) == pytest.approx(2.0, rel=0.1)
    assert abs(np.mean(cross)) < 0.15
    assert 2.7 < np.mean(ratios) + 1 + np.mean(cross) < 3.3          # the block multiplies q by ~3

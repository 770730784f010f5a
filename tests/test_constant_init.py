"""Numeric claims of the constant-initialization chapter, checked independently of the notebook."""

import numpy as np
import pytest
import torch

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, train
from lessonlib.probes import Probe
from lessonlib.symmetry import unit_spreads


@pytest.fixture(scope="module")
def data():
    return digits()


def _rank(layer):
    return int(torch.linalg.matrix_rank(layer.weight.detach()))


@pytest.mark.parametrize("value", [1.0, 0.01])
def test_constant_init_keeps_units_identical_and_rank_one(data, value):
    model = init_model(DigitNN(), make_scheme("constant", value=value), bias="zeros", seed=42)
    train(model, data, epochs=20)
    assert max(unit_spreads(model, data.X_train).values()) == 0.0
    assert _rank(model.fc1) == 1 and _rank(model.fc2) == 1
    for layer in (model.fc1, model.fc2):               # all rows equal, exactly
        w = layer.weight.detach()
        assert torch.equal(w, w[:1].expand_as(w))
    w3 = model.fc3.weight.detach()                     # output layer: equal columns
    assert torch.equal(w3, w3[:, :1].expand_as(w3))


def test_random_init_is_full_rank_and_units_differ(data):
    model = init_model(DigitNN(), make_scheme("kaiming_normal"), bias="zeros", seed=42)
    train(model, data, epochs=5)
    assert _rank(model.fc1) == 64 and _rank(model.fc2) == 64
    assert min(unit_spreads(model, data.X_train).values()) > 0


@pytest.mark.parametrize("c", [0.005, 1 / 64, 0.05, 1.0])
def test_relu_scale_grows_like_nc_per_layer(data, c):
    n = 64
    model = init_model(mlp([64] + [n] * 10 + [10], "relu"), make_scheme("constant", value=c),
                       bias="zeros", seed=0)
    with torch.no_grad(), Probe(model) as probe:
        model(data.X_train)
    q = probe.stats("outputs", "second_moment")
    s = data.X_train.double().sum(dim=1)
    layers = np.arange(1, len(q) + 1)
    predicted = float(c**2 * (s.clamp(min=0) ** 2).mean()) * (n * c) ** (2.0 * (layers - 1))
    predicted[0] = float(c**2 * (s**2).mean())
    np.testing.assert_allclose(q, predicted, rtol=1e-4)
    np.testing.assert_allclose(q[2:] / q[1:-1], (n * c) ** 2, rtol=1e-4)


def test_a_constant_needs_one_over_n_and_random_weights_one_over_sqrt_n():
    """n equal terms add coherently (c = 1/n keeps the sum), n random-sign terms incoherently
    (sigma = 1/sqrt(n) keeps it): from n = 64 to 4096 the other scaling is off by sqrt(64) = 8."""
    torch.manual_seed(0)
    rms = lambda z: float(z.pow(2).mean().sqrt())
    out = {}
    for n in (64, 4096):
        a = torch.randn(500, n, dtype=torch.float64).abs()
        w = torch.randn(n, 256, dtype=torch.float64)
        out[n] = np.array([rms(a.sum(1) / n), rms(a.sum(1) / n**0.5), rms(a @ w / n**0.5), rms(a @ w / n)])
    growth = out[4096] / out[64]
    assert growth[0] == pytest.approx(1, rel=0.02) and growth[2] == pytest.approx(1, rel=0.1)
    assert growth[1] == pytest.approx(8, rel=0.02) and growth[3] == pytest.approx(1 / 8, rel=0.1)


def test_scale_exercise_widths_and_per_layer_constants(data):
    """mlp([64, 128, 256, 32, 10]) with c = 1/64: layers 3 and 4 at 16 and 4 times layer 2's
    second moment; c_l = 1/n_(l-1) keeps it; the units stay copies either way."""
    for values, expected in (([1 / 64] * 4, [1, 16, 4]), ([1 / 64, 1 / 64, 1 / 256, 1 / 32], [1, 1, 1])):
        model = mlp([64, 128, 256, 32, 10], "relu")
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for layer, c in zip(linears, values):
                layer.weight.fill_(c)
                layer.bias.zero_()
            with Probe(model) as probe:
                model(data.X_train)
        q = probe.stats("outputs", "second_moment")
        np.testing.assert_allclose(q[1:] / q[1], expected, rtol=1e-4)
        assert max(unit_spreads(model, data.X_train, relative=True).values()) < 0.01

"""Claims of the depth lesson, checked independently of its notebook.

Signal propagation through 50 layers of width 256 (float64, averaged over a few networks), the
three regimes of a repeated random matrix product, and the check of the dead-unit exercise.
"""

import math

import numpy as np
import pytest
import torch

from lessonlib import init_model, mlp
from lessonlib.exercises.depth import CASES, MISTAKES, check_dead_fraction
from lessonlib.probes import Probe, dead_fraction
from lessonlib.theory import predict_forward

WIDTH, DEPTH = 256, 50


def forward_second_moments(activation, scheme, seeds, batch=32):
    """E[z_l^2] per layer (rows) and network (columns) of a DEPTH-layer net of width WIDTH."""
    x = torch.randn(batch, WIDTH, generator=torch.Generator().manual_seed(1000), dtype=torch.float64)
    columns = []
    for seed in seeds:
        net = init_model(mlp([WIDTH] * (DEPTH + 1), activation), scheme, seed=seed).double()
        with torch.no_grad(), Probe(net) as probe:
            net(x)
        columns.append(probe.stats("outputs", "second_moment"))
    return np.array(columns).T, float(x.pow(2).mean())


def test_relu_he_keeps_the_second_moment_over_50_layers():
    moments, x_moment = forward_second_moments("relu", "kaiming_normal", range(6))
    predicted = predict_forward([WIDTH] * (DEPTH + 1), 2 / WIDTH, "relu", input_second_moment=x_moment)
    assert np.allclose(predicted, predicted[0])        # theory: constant, 2 E[x^2]
    ratio = moments.mean(axis=1) / predicted
    # the mean over 6 networks stays within a factor 2 of the constant prediction in every layer
    assert ratio.min() > 0.5 and ratio.max() < 2.0, ratio


def test_relu_xavier_halves_the_second_moment_per_layer():
    moments, _ = forward_second_moments("relu", "xavier_normal", range(3))
    mean = moments.mean(axis=1)
    per_layer = (mean[-1] / mean[0]) ** (1 / (DEPTH - 1))
    assert 0.45 < per_layer < 0.55
    assert mean[-1] < 1e-12


def test_tanh_xavier_decays_slowly_like_one_over_2l():
    moments, _ = forward_second_moments("tanh", "xavier_normal", range(3))
    mean = moments.mean(axis=1)
    assert np.all(np.diff(mean) < 0)                   # decays at every layer
    assert mean[-1] < mean[9] / 3                      # layer 50 well below layer 10
    assert 0.3 < DEPTH * mean[-1] < 0.7                # ~ 1/(2l): polynomial, not exponential


def test_sigmoid_second_moment_settles_at_a_nonzero_constant():
    moments, _ = forward_second_moments("sigmoid", "xavier_normal", range(3))
    mean = moments.mean(axis=1)
    assert abs(mean[-1] / mean[-10] - 1) < 0.05 and mean[-1] > 0.2


def repeated_products(scale, steps=100, n=256):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, generator=torch.Generator().manual_seed(0))
    norms = [float(x.norm())]
    for _ in range(steps):
        x = scale * torch.randn(n, n, generator=generator) @ x
        norms.append(float(x.norm()))
    return np.array(norms)


def test_matrix_product_explodes_vanishes_or_holds():
    explodes = repeated_products(1.0)
    vanishes = repeated_products(0.01)
    holds = repeated_products(1 / 16)
    first_inf = int(np.flatnonzero(~np.isfinite(explodes))[0])
    first_zero = int(np.flatnonzero(vanishes == 0)[0])
    # a factor of about sqrt(256) = 16 per step: float32's 3.4e38 is passed within 12-20 steps
    assert 12 <= first_inf <= 20
    growth = (explodes[first_inf - 1] / explodes[0]) ** (1 / (first_inf - 1))
    assert 13 < growth < 19
    # a factor of about 0.16 per step: below float32's smallest subnormal 1.4e-45 within 25-40 steps
    assert 25 <= first_zero <= 40
    assert np.all(np.isfinite(holds)) and np.all(holds > 0)
    assert 0.1 < holds[-1] / holds[0] < 10


def test_dead_fraction_and_probe_on_hand_built_cases():
    z = torch.tensor([[-3.0, 0.5, 2.2, -0.1], [-1.0, 0.2, 1.0, -2.5], [-0.2, -4.0, 0.3, 0.0]])
    assert dead_fraction(z) == 0.5                     # units 0 and 3 (0.0 counts as dead)
    assert dead_fraction(torch.ones(2, 3)) == 0.0
    # a net whose first layer maps every input to -1 in unit 0 and to the input in unit 1
    net = mlp([1, 2, 1], "relu")
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([-1.0, 0.0]))
    with torch.no_grad(), Probe(net) as probe:
        net(torch.tensor([[1.0], [2.0]]))
    assert probe.dead_units()[0] == 0.5


def test_check_dead_fraction_accepts_the_right_answer_and_names_the_slips(capsys):
    assert check_dead_fraction(lambda z: float((z <= 0).all(dim=0).double().mean()))
    for description, slip in MISTAKES.items():
        assert not check_dead_fraction(slip), description
        assert description in capsys.readouterr().out
    assert not check_dead_fraction(lambda z: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs a function"):
        check_dead_fraction(0.5)
    assert len(CASES) >= 3 and math.isclose(dead_fraction(CASES[1][1]), 0.5)

"""Claims of the depth lesson, checked independently of its notebook.

Signal propagation through 50 layers of width 256 (float64, averaged over a few networks), leaky
ReLU beside ReLU (the same second moments, but no unit without a gradient), the three regimes of a
repeated random matrix product, and the checks of the dead-unit and leaky-slope exercises.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lessonlib import init_model, make_scheme, mlp
from lessonlib.exercises.depth import (CASES, MISTAKES, SLOPE_CASES, SLOPE_MISTAKES, check_dead_fraction,
                                       check_leaky_slope, leaky_slope)
from lessonlib.probes import Probe, dead_fraction
from lessonlib.theory import layer_factor, predict_forward

WIDTH, DEPTH = 256, 50


def deep_net(activation, scheme, seed, negative_slope=0.01):
    net = init_model(mlp([WIDTH] * (DEPTH + 1), activation), scheme, seed=seed).double()
    for module in net:
        if isinstance(module, nn.LeakyReLU):
            module.negative_slope = negative_slope
    return net


def forward_second_moments(activation, scheme, seeds, batch=32, negative_slope=0.01):
    """E[z_l^2] per layer (rows) and network (columns) of a DEPTH-layer net of width WIDTH."""
    x = torch.randn(batch, WIDTH, generator=torch.Generator().manual_seed(1000), dtype=torch.float64)
    columns = []
    for seed in seeds:
        net = deep_net(activation, scheme, seed, negative_slope)
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


HE_LEAKY = make_scheme("kaiming_normal", a=0.01, nonlinearity="leaky_relu")


def test_leaky_relu_he_with_the_leaky_gain_keeps_the_second_moment_over_50_layers():
    moments, x_moment = forward_second_moments("leaky_relu", HE_LEAKY, range(6))
    chi = 2 / (1 + 0.01**2)                              # the leaky gain squared
    predicted = predict_forward([WIDTH] * (DEPTH + 1), chi / WIDTH, "leaky_relu", input_second_moment=x_moment)
    assert np.allclose(predicted, predicted[0])        # theory: chi (1 + a^2) / 2 = 1 per layer
    ratio = moments.mean(axis=1) / predicted
    assert ratio.min() > 0.5 and ratio.max() < 2.0, ratio
    # at a = 0.01 leaky ReLU and ReLU are the same to the variance argument: 1.0001^49 apart under Xavier
    leaky, _ = forward_second_moments("leaky_relu", "xavier_normal", range(3))
    relu, _ = forward_second_moments("relu", "xavier_normal", range(3))
    assert abs(leaky.mean(axis=1)[-1] / relu.mean(axis=1)[-1] - 1) < 0.05
    assert layer_factor("leaky_relu", 1.0, 0.01) ** (DEPTH - 1) / 0.5 ** (DEPTH - 1) == pytest.approx(1.0049, abs=1e-4)


def test_relu_units_below_zero_get_no_gradient_and_leaky_ones_do():
    x = torch.randn(64, WIDTH, generator=torch.Generator().manual_seed(1000), dtype=torch.float64)
    upstream = torch.randn(64, WIDTH, generator=torch.Generator().manual_seed(1001), dtype=torch.float64)
    shares = {}
    for activation, scheme in (("relu", "kaiming_normal"), ("leaky_relu", HE_LEAKY)):
        negative, no_gradient = [], []
        for seed in range(2):
            net = deep_net(activation, scheme, seed)
            with Probe(net) as probe:
                (net(x) * upstream).sum().backward()
            negative.append(probe.dead_units()[:-1])
            no_gradient.append([float((layer.weight.grad == 0).all(dim=1).double().mean())
                                for _, layer in probe.layers[:-1]])
        shares[activation] = float(np.mean(negative)), float(np.mean(no_gradient))
    relu_negative, relu_no_gradient = shares["relu"]
    leaky_negative, leaky_no_gradient = shares["leaky_relu"]
    assert 0.1 < relu_negative < 0.5 and 0.1 < leaky_negative < 0.5   # deep inputs point alike
    assert relu_no_gradient == pytest.approx(relu_negative)           # a ReLU unit <= 0 everywhere is dead
    assert leaky_no_gradient == 0.0                                     # a leaky one still gets a * gradient


def test_the_slopes_of_the_leaky_exercise_give_the_drift_asked_for():
    assert leaky_slope(0.1, 50, 1.0) == pytest.approx(0.953, abs=1e-3)
    assert leaky_slope(10.0, 50, 2.0) == pytest.approx(0.219, abs=1e-3)
    for ratio, layers, chi in SLOPE_CASES:
        q = predict_forward([100] * (layers + 1), chi / 100, "leaky_relu",
                            negative_slope=leaky_slope(ratio, layers, chi))
        assert q[-1] / q[0] == pytest.approx(ratio)
    # measured: Xavier with a = 0.953 loses about a factor 10 over 50 layers (mean of 6 networks)
    moments, _ = forward_second_moments("leaky_relu", "xavier_normal", range(6),
                                        negative_slope=leaky_slope(0.1, DEPTH, 1.0))
    mean = moments.mean(axis=1)
    assert 0.05 < mean[-1] / mean[0] < 0.2, mean[-1] / mean[0]


def test_check_leaky_slope_accepts_the_right_answer_and_names_the_slips(capsys):
    assert check_leaky_slope(lambda r, L, chi: math.sqrt(2 * r ** (1 / (L - 1)) / chi - 1))
    assert "Correct" in capsys.readouterr().out
    for description, slip in SLOPE_MISTAKES.items():
        assert not check_leaky_slope(slip), description
        out = capsys.readouterr().out
        assert description in out and "q_L/q_1 =" in out
    assert not check_leaky_slope(lambda r, L, chi: -leaky_slope(r, L, chi))
    assert "non-negative root" in capsys.readouterr().out
    assert not check_leaky_slope(lambda r, L, chi: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs a function"):
        check_leaky_slope(0.5)
    with pytest.raises(ValueError, match="No slope a >= 0"):
        leaky_slope(0.1, 50, 2.0)                      # even ReLU keeps q with chi = 2
    with pytest.raises(ValueError, match="'layers' must be an int >= 2"):
        leaky_slope(0.1, 1, 1.0)


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
    """x_0, ..., x_steps (float32) for x <- W x, W with i.i.d. entries scale * N(0, 1), as in the lesson."""
    generator = torch.Generator().manual_seed(1)
    xs = [torch.randn(n, generator=torch.Generator().manual_seed(0))]
    for _ in range(steps):
        xs.append(scale * torch.randn(n, n, generator=generator) @ xs[-1])
    return xs


def first(flags):
    return int(np.flatnonzero(flags)[0])


def test_matrix_product_entries_leave_float32_later_than_the_norm_does():
    explodes, vanishes, holds = repeated_products(1.0), repeated_products(0.01), repeated_products(1 / 16)
    entry_inf = first([not bool(torch.isfinite(x).all()) for x in explodes])
    entries_zero = first([bool((x == 0).all()) for x in vanishes])
    norm_inf = first([not np.isfinite(float(x.norm())) for x in explodes])
    norm_zero = first([float(x.norm()) == 0 for x in vanishes])
    # entries start near 1 and change by sqrt(256) * scale per step: log(3.4e38) / log(16) = 32 steps up,
    # log(1.4e-45) / log(0.16) = 56 steps down
    assert 30 <= entry_inf <= 34 and 54 <= entries_zero <= 60
    # the float32 norm squares the entries: it gives up about twice as early, while every entry is
    # still finite and nonzero
    assert 14 <= norm_inf <= 17 and 27 <= norm_zero <= 30
    assert bool(torch.isfinite(explodes[norm_inf]).all()) and bool((vanishes[norm_zero] != 0).all())
    assert bool(torch.isnan(explodes[entry_inf + 1]).any())             # inf - inf in the next sums
    exact = np.array([float(x.double().norm()) for x in explodes[:entry_inf]])
    growth = (exact[-1] / exact[0]) ** (1 / (entry_inf - 1))
    assert 13 < growth < 19
    held = [float(x.double().norm()) for x in holds]
    assert all(np.isfinite(held)) and min(held) > 0 and 0.1 < held[-1] / held[0] < 10


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


def backward_second_moments(activation, scheme, seeds, batch=32):
    """E[(dL/dz_l)^2] per layer (rows) and network (columns), for a random upstream gradient."""
    x = torch.randn(batch, WIDTH, generator=torch.Generator().manual_seed(1000), dtype=torch.float64)
    upstream = torch.randn(batch, WIDTH, generator=torch.Generator().manual_seed(1001), dtype=torch.float64)
    columns = []
    for seed in seeds:
        net = deep_net(activation, scheme, seed)
        with Probe(net) as probe:
            (net(x) * upstream).sum().backward()
        columns.append(probe.stats("grads", "second_moment"))
    return np.array(columns).T


def test_tanh_he_holds_the_signal_and_grows_the_gradient():
    # the lesson's "He" is kaiming_normal_ with the ReLU gain (chi = 2) for tanh too
    forward, _ = forward_second_moments("tanh", "kaiming_normal", range(3))
    mean = forward.mean(axis=1)
    assert 0.8 < mean[-1] / mean[9] < 1.25                          # settled at a fixed point
    backward = backward_second_moments("tanh", "kaiming_normal", range(3)).mean(axis=1)
    assert backward[0] / backward[-1] > 10                          # grows on the way back
    xavier = backward_second_moments("tanh", "xavier_normal", range(3)).mean(axis=1)
    assert xavier[0] / xavier[-1] < 1                               # Xavier's fades


def test_sigmoid_gradients_vanish_for_every_scheme_and_the_signal_settles():
    for scheme in (make_scheme("normal", std=0.01), "xavier_normal", "kaiming_normal"):
        backward = backward_second_moments("sigmoid", scheme, range(2)).mean(axis=1)
        assert backward[0] / backward[-1] < 1e-20, scheme
        forward, _ = forward_second_moments("sigmoid", scheme, range(2))
        mean = forward.mean(axis=1)
        settled, earlier = mean[-10:].mean(), mean[-30:-20].mean()      # layers 41-50 against 21-30
        assert abs(settled / earlier - 1) < 0.1 and settled > 1e-3, scheme


def test_off_axis_helpers_keep_the_comparison_in_view():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lessonlib.overflow import focus_log_axis, mark_off_axis

    fig, ax = plt.subplots()
    layers = np.arange(1, 51)
    ax.set_yscale("log")
    assert focus_log_axis(ax, [np.ones(50), 0.9**layers]) == pytest.approx((0.9**50 / 10, 10.0))
    assert mark_off_axis(ax, layers, 0.5**layers, "r", "small") == 11       # 0.5^11 < 0.9^50 / 10
    assert mark_off_axis(ax, layers, 64.0 ** (51 - layers), "b", "big", from_end=True) == 50
    assert mark_off_axis(ax, layers, np.ones(50), "g", "held") is None
    texts = [t.get_text() for t in ax.texts]
    assert "small: off the axis from layer 11 on (1e-15 at layer 50)" in texts
    assert "big: off the axis from layer 50 down (1e90 at layer 1)" in texts
    with pytest.raises(ValueError, match="no finite positive value"):
        focus_log_axis(ax, [np.zeros(3)])
    plt.close(fig)

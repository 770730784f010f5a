"""The variance recursion matches closed forms and, for wide layers, the measurement."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lessonlib import init_model, make_scheme, mlp
from lessonlib.probes import Probe
from lessonlib.theory import gaussian_expectation, layer_factor, predict_backward, predict_forward


def test_closed_forms():
    assert gaussian_expectation(lambda z: np.maximum(z, 0) ** 2, 3.0) == pytest.approx(1.5)
    assert gaussian_expectation(lambda z: z ** 4, 2.0) == pytest.approx(3 * 4.0)
    # He for ReLU keeps q constant; Xavier (1/n for square layers) halves it every layer
    assert np.allclose(predict_forward([100] * 6, 2 / 100, "relu"), 2.0)
    assert np.allclose(predict_forward([100] * 6, 1 / 100, "relu"), [1, 0.5, 0.25, 0.125, 0.0625])
    assert np.allclose(predict_forward([100] * 4, 1 / 100, "linear"), 1.0)
    assert np.allclose(predict_backward([100] * 6, 2 / 100, "relu"), 1.0)


@pytest.mark.parametrize("a", [0.0, 0.01, 0.2, 0.5, 1.0])
def test_leaky_relu_factor(a):
    keep = (1 + a**2) / 2                                      # E[f(z)^2] / q = E[f'(z)^2]
    assert layer_factor("leaky_relu", 1.0, a) == pytest.approx(keep)
    assert layer_factor("leaky_relu", 2 / (1 + a**2), a) == pytest.approx(1.0)   # He's leaky gain holds
    assert layer_factor("leaky_relu", 2.0, a) == pytest.approx(1 + a**2)         # the plain ReLU gain grows
    leaky = lambda z: np.where(z > 0, z, a * z)
    assert gaussian_expectation(lambda z: leaky(z) ** 2, 3.0) == pytest.approx(keep * 3.0)
    # the recursion multiplies both directions by chi (1 + a^2) / 2 per layer
    for chi in (1.0, 2.0, 2 / (1 + a**2)):
        q = predict_forward([100] * 11, chi / 100, "leaky_relu", negative_slope=a)
        g = predict_backward([100] * 11, chi / 100, "leaky_relu", negative_slope=a)
        factor = layer_factor("leaky_relu", chi, a)
        assert np.allclose(q, chi * factor ** np.arange(10))
        assert np.allclose(g, factor ** np.arange(9, -1, -1))


def test_layer_factor_of_relu_and_linear_and_its_errors():
    assert layer_factor("relu", 2.0) == 1.0 and layer_factor("relu") == 0.5
    assert layer_factor("linear", 1.0) == 1.0
    assert layer_factor("leaky_relu", 1.0) == pytest.approx(0.50005)   # nn.LeakyReLU()'s slope 0.01
    assert layer_factor("leaky_relu", 1.0, 0.0) == layer_factor("relu", 1.0)
    assert layer_factor("leaky_relu", 1.0, 1.0) == layer_factor("linear", 1.0)
    with pytest.raises(ValueError, match="for tanh and sigmoid use predict_forward"):
        layer_factor("tanh", 1.0)
    with pytest.raises(ValueError, match="'chi' parameter must be a float in the range"):
        layer_factor("relu", -1.0)


def measured_second_moments(widths, activation, scheme, seeds=range(10), backward=False):
    """Mean over seeds (networks) of each layer's second moment, for Gaussian inputs.

    A single finite-width network scatters around the prediction (by tens of percent after
    ten layers of width 256); the prediction is about the average over networks.
    """
    runs = []
    for seed in seeds:
        model = init_model(mlp(widths, activation), scheme, seed=seed)
        with Probe(model) as probe:
            out = model(torch.randn(500, widths[0]))
            if backward:
                (out * torch.randn_like(out)).sum().backward()  # unit second moment at the output
        runs.append(probe.stats("grads" if backward else "outputs", "second_moment"))
    return np.mean(runs, axis=0)


@pytest.mark.parametrize("activation, scheme, weight_var", [
    ("relu", make_scheme("kaiming_normal"), 2 / 256),
    ("tanh", make_scheme("xavier_normal", gain=5 / 3), (5 / 3) ** 2 / 256),
    ("tanh", make_scheme("xavier_normal"), 1 / 256),
    ("sigmoid", make_scheme("xavier_normal"), 1 / 256),
    ("leaky_relu", make_scheme("kaiming_normal", a=0.01, nonlinearity="leaky_relu"), 2 / (1.0001 * 256)),
    ("leaky_relu", make_scheme("xavier_normal"), 1 / 256),
])
def test_prediction_matches_the_mean_measurement(activation, scheme, weight_var):
    widths = [256] * 11
    measured = measured_second_moments(widths, activation, scheme)
    predicted = predict_forward(widths, weight_var, activation)
    assert np.allclose(measured, predicted, rtol=0.15), (measured, predicted)


def test_he_keeps_relu_second_moment_over_20_layers_and_xavier_halves_it():
    widths = [256] * 21
    he = measured_second_moments(widths, "relu", make_scheme("kaiming_normal"), seeds=range(20))
    assert np.all(np.abs(he / 2.0 - 1) < 0.25), he
    xavier = measured_second_moments(widths, "relu", make_scheme("xavier_normal"), seeds=range(20))
    assert np.allclose(xavier, 2.0 ** -np.arange(20), rtol=0.3), xavier  # 1/fan_in keeps half


def test_backward_prediction_matches_measurement():
    widths = [256] * 9
    measured = measured_second_moments(widths, "relu", make_scheme("kaiming_normal"), backward=True)
    assert np.allclose(measured, predict_backward(widths, 2 / 256, "relu"), rtol=0.15), measured


def test_clear_errors():
    with pytest.raises(ValueError, match="No prediction for activation 'softmax'"):
        predict_forward([3, 3], 1.0, "softmax")
    with pytest.raises(ValueError, match="one variance per layer"):
        predict_forward([3, 3, 3], [1.0], "relu")
    with pytest.raises(ValueError, match="must be >= 0"):
        predict_forward([3, 3], -1.0, "relu")


def test_sigmoid_fixed_point_and_gradient_factor_under_uniform_pm1():
    """U(-1, 1) at width 128: chi = 128/3. The sigmoid's slope alone (at most 1/4) would let the
    gradient's RMS grow by sqrt(chi/16) ~ 1.63 per layer; the units saturate at q* ~ 17.6 and
    the factor is ~ 0.81."""
    from lessonlib.theory import fixed_point, gradient_factor
    chi = 128 / 3
    q = fixed_point("sigmoid", chi)
    assert q == pytest.approx(17.6, abs=0.05)
    assert q == pytest.approx(chi * gaussian_expectation(lambda z: (1 / (1 + np.exp(-z))) ** 2, q), rel=1e-9)
    assert math.sqrt(gradient_factor("sigmoid", chi, q)) == pytest.approx(0.808, abs=0.002)
    assert math.sqrt(chi / 16) > 1.6                                   # the slope bound alone: growth
    assert gradient_factor("sigmoid", chi, 0.0) == pytest.approx(chi / 16)
    assert math.sqrt(fixed_point("tanh", chi)) == pytest.approx(6.04, abs=0.01)
    assert fixed_point("tanh", 0.5) < 1e-6                             # chi < 1: the tanh signal dies


def test_sigmoid_gradient_factor_matches_a_deep_float64_network():
    from lessonlib.theory import fixed_point, gradient_factor
    torch.manual_seed(0)
    x, g = torch.randn(64, 128, dtype=torch.float64), torch.randn(64, 128, dtype=torch.float64)
    logs = []
    for seed in range(3):
        model = init_model(mlp([128] * 61, "sigmoid"), make_scheme("uniform", a=-1, b=1), seed=seed).double()
        with Probe(model) as probe:
            (model(x) * g).sum().backward()
        rms = np.sqrt(probe.stats("grads", "second_moment"))
        logs.append(np.log(rms[10] / rms[50]) / 40)                  # per layer, away from both ends
    measured = math.exp(np.mean(logs))
    chi = 128 / 3
    assert measured == pytest.approx(math.sqrt(gradient_factor("sigmoid", chi, fixed_point("sigmoid", chi))), rel=0.04)


def test_fixed_point_and_gradient_factor_errors():
    from lessonlib.theory import fixed_point, gradient_factor
    with pytest.raises(ValueError, match="bounded units"):
        fixed_point("relu", 2.0)
    with pytest.raises(ValueError, match="'chi' parameter must be a float in the range \\(0, inf\\)"):
        fixed_point("tanh", 0.0)
    with pytest.raises(ValueError, match="'q' parameter"):
        gradient_factor("sigmoid", 1.0, -1.0)
    assert gradient_factor("relu", 2.0, 5.0) == pytest.approx(1.0)

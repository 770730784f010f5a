"""The variance recursion matches closed forms and, for wide layers, the measurement."""

import math

import mpmath
import numpy as np
import pytest
import scipy.special
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


VARIANCES = [float(q) for q in np.logspace(-4, 4, 9)]          # every q the course uses lies in this range
ERF_SLOPE = lambda z: 2 / math.sqrt(math.pi) * np.exp(-z ** 2)


@pytest.mark.parametrize("q", VARIANCES)
def test_gaussian_expectation_against_closed_forms(q):
    closed = {                                                  # E[fn(z)], z ~ N(0, q)
        "z^2": (lambda z: z ** 2, q),
        "relu^2": (lambda z: np.maximum(z, 0) ** 2, q / 2),
        "erf^2": (lambda z: scipy.special.erf(z) ** 2, 2 / math.pi * math.asin(2 * q / (1 + 2 * q))),
        "erf'^2": (lambda z: ERF_SLOPE(z) ** 2, 4 / math.pi / math.sqrt(1 + 4 * q)),
        "exp(-z^2/2)": (lambda z: np.exp(-z ** 2 / 2), 1 / math.sqrt(1 + q)),
    }
    for name, (fn, exact) in closed.items():
        assert gaussian_expectation(fn, q) == pytest.approx(exact, rel=1e-4, abs=1e-10), name


def _high_precision_mp(f, q):
    """E[f(z)], z ~ N(0, q), as an mpmath number at 30 digits, split where the integrand changes
    scale (at 0, at |z| = 1 where tanh and the sigmoid bend, at one standard deviation)."""
    mpmath.mp.dps = 30
    q = mpmath.mpf(q)
    s = mpmath.sqrt(q)
    density = lambda u: f(u) * mpmath.exp(-u * u / (2 * q)) / mpmath.sqrt(2 * mpmath.pi * q)
    points = sorted({-40 * s, -s, -1, 0, 1, s, 40 * s} if q > 1 else {-40 * s, -s, 0, s, 40 * s})
    return mpmath.quad(density, points)


def _high_precision(f, q):
    return float(_high_precision_mp(f, q))


SMOOTH_UNITS = {
    "tanh^2": (lambda z: np.tanh(z) ** 2, lambda u: mpmath.tanh(u) ** 2),
    "tanh'^2": (lambda z: (1 - np.tanh(z) ** 2) ** 2, lambda u: (1 - mpmath.tanh(u) ** 2) ** 2),
    "sigmoid^2": (lambda z: (0.5 * (1 + np.tanh(z / 2))) ** 2, lambda u: 1 / (1 + mpmath.exp(-u)) ** 2),
    "sigmoid'^2": (lambda z: (0.25 * (1 - np.tanh(z / 2) ** 2)) ** 2, lambda u: (0.25 / mpmath.cosh(u / 2) ** 2) ** 2),
}


@pytest.mark.parametrize("q", [1e-4, 0.1, 1.0, 17.6, 512.0, 1e4])
def test_gaussian_expectation_of_the_smooth_units_against_high_precision(q):
    for name, (fn, exact) in SMOOTH_UNITS.items():
        assert gaussian_expectation(fn, q) == pytest.approx(_high_precision(exact, q), rel=1e-4), name


def test_gaussian_expectation_resolves_the_narrow_centre_of_saturated_units():
    # a fixed Gauss-Hermite rule gave 0.876 and 0.124 here
    assert gaussian_expectation(lambda z: np.tanh(z) ** 2, 512.0) == pytest.approx(0.9648, abs=1e-4)
    assert gaussian_expectation(lambda z: (1 - np.tanh(z) ** 2) ** 2, 512.0) == pytest.approx(0.02350, abs=1e-5)
    assert gaussian_expectation(np.cos, 0.0) == 1.0
    assert gaussian_expectation(lambda z: z ** 2, np.int64(3)) == pytest.approx(3.0)     # any real number
    assert gaussian_expectation(lambda z: z ** 2, np.float32(3)) == pytest.approx(3.0)
    for bad in (-1.0, -1e-300, math.nan, math.inf, -math.inf, True, "1.0", None):
        with pytest.raises(ValueError, match=r"'q' parameter must be a variance: a float in the range \[0, inf\)"):
            gaussian_expectation(np.tanh, bad)


EXACT_UNITS = {                                              # f(u)^2 and f'(u)^2 for mpmath
    "tanh": (lambda u: mpmath.tanh(u) ** 2, lambda u: mpmath.sech(u) ** 4),
    "sigmoid": (lambda u: 1 / (1 + mpmath.exp(-u)) ** 2, lambda u: (mpmath.sech(u / 2) ** 2 / 4) ** 2),
}


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_predictions_for_saturated_units_agree_with_a_high_precision_recursion(activation):
    # 10 layers of width 500 from N(0, 1): chi = 500, deep in saturation (the lab's predicted tanh
    # gradient was 10^7 times the measurement when the quadrature missed the centre of tanh')
    square, slope_square = EXACT_UNITS[activation]
    widths, var = [500] * 11, 1.0
    q, exact_q, moment = predict_forward(widths, var, activation), [], 1.0
    for _ in range(10):
        exact_q.append(500 * var * moment)
        moment = _high_precision(square, exact_q[-1])
    assert q == pytest.approx(exact_q, rel=1e-4)
    g, exact_g = predict_backward(widths, var, activation), [1.0]
    for layer in range(9, 0, -1):
        slope = _high_precision(slope_square, exact_q[layer - 1])
        exact_g.insert(0, slope * 500 * var * exact_g[0])
    assert g == pytest.approx(exact_g, rel=1e-4)


def _exact_fixed_point(activation, chi):
    """q* = chi E[f(z)^2], z ~ N(0, q*), solved with mpmath at 30 digits."""
    square, _ = EXACT_UNITS[activation]
    mpmath.mp.dps = 30
    chi = mpmath.mpf(chi)
    return mpmath.findroot(lambda q: q - chi * _high_precision_mp(square, q), 0.9 * chi, tol=1e-24)


@pytest.mark.parametrize("activation, width, weight_var, printed_q, printed_std, printed_factor", [
    ("tanh", 128, 1 / 3, "37.1", "6.09", "1.93"),     # chapter 4: U(-1, 1) at width 128, chi = 128/3
    ("tanh", 256, 1.0, "243", "15.6", "2.95"),        # chapter 10: N(0, 1) at width 256 (its "predicted 15.6";
                                                      # the fixed Gauss-Hermite rule gave 15)
    ("sigmoid", 128, 1 / 3, "17.6", "4.19", "0.81"),  # chapter 4: the sigmoid under U(-1, 1)
])
def test_fixed_point_and_gradient_factor_against_high_precision(activation, width, weight_var, printed_q, printed_std,
                                                                printed_factor):
    from lessonlib.theory import fixed_point, gradient_factor
    _, slope_square = EXACT_UNITS[activation]
    chi = width * weight_var
    exact = _exact_fixed_point(activation, chi)
    q = fixed_point(activation, chi)
    assert q == pytest.approx(float(exact), rel=1e-9)
    assert (f"{q:.3g}", f"{math.sqrt(q):.3g}") == (printed_q, printed_std)            # as the chapters print them
    exact_factor = float(chi * _high_precision_mp(slope_square, exact))
    assert gradient_factor(activation, chi, q) == pytest.approx(exact_factor, rel=1e-8)
    assert f"{math.sqrt(gradient_factor(activation, chi, q)):.2f}" == printed_factor   # the RMS factor per layer
    # a deep stack of such layers settles there: what the lab predicts for layers 10 to 50
    settled = np.sqrt(predict_forward([width] * 52, weight_var, activation))[9:50]
    assert settled == pytest.approx(math.sqrt(float(exact)), rel=1e-8)


@pytest.mark.parametrize("q", [0.5, 17.6, 512.0, 1e4])
def test_gradient_factor_of_saturated_units_against_high_precision(q):
    from lessonlib.theory import gradient_factor
    for activation, (_, slope_square) in EXACT_UNITS.items():
        assert gradient_factor(activation, 2.0, q) == pytest.approx(2.0 * _high_precision(slope_square, q), rel=1e-6)
    assert gradient_factor("tanh", 3.0, 0.0) == pytest.approx(3.0)           # tanh'(0) = 1


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
    assert math.sqrt(fixed_point("tanh", chi)) == pytest.approx(6.094, abs=0.002)
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

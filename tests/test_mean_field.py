"""The mean-field maps match closed forms, their own derivatives and wide random networks."""

import math

import numpy as np
import pytest
import scipy.special
import torch

from lessonlib import mean_field as mf
from lessonlib.theory import gaussian_expectation


@pytest.mark.parametrize("q", [0.1, 1.0, 4.0, 16.0])
@pytest.mark.parametrize("c", [-0.9, 0.0, 0.5, 0.99, 1.0])
def test_pair_expectation_against_closed_forms(q, c):
    erf = scipy.special.erf          # E[erf(u1) erf(u2)] = (2/pi) arcsin(2qc / (1 + 2q))
    assert mf.pair_expectation(erf, erf, q, c) == pytest.approx(2 / math.pi * math.asin(2 * q * c / (1 + 2 * q)),
                                                                abs=1e-10)
    relu = lambda z: np.maximum(z, 0.0)  # the kink makes the trapezoid rule second order: looser
    theta = math.acos(c)
    arc_cosine = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * c)
    assert mf.pair_expectation(relu, relu, q, c) == pytest.approx(arc_cosine, rel=5e-3, abs=1e-4)


def test_at_c_1_the_pair_expectation_is_the_single_one():
    for q in (0.3, 2.0, 9.0):
        single = gaussian_expectation(lambda z: np.tanh(z) ** 2, q)
        assert mf.pair_expectation(np.tanh, np.tanh, q, 1.0) == pytest.approx(single, rel=1e-9)


def test_relu_maps_are_the_arc_cosine_kernel():
    # He's sigma_w^2 = 2, no bias: q is kept; the correlation map is (sin t + (pi - t) cos t) / pi
    for c in (0.0, 0.3, 0.8):
        t = math.acos(c)
        assert mf.correlation_map("relu", c, 2.0, 0.0, q=1.0) == pytest.approx((math.sin(t) + (math.pi - t) * c) / math.pi)
    assert mf.chi_1("relu", 2.0) == pytest.approx(1.0)
    assert mf.critical_sigma_w2("relu") == 2.0
    assert mf.fixed_length("relu", 1.0, 0.5) == pytest.approx(1.0)       # 0.5 / (1 - 1/2)


@pytest.mark.parametrize("sigma_w2,sigma_b2", [(1.5, 0.05), (2.5, 0.05), (1.2, 0.0)])
def test_chi_1_is_the_slope_of_the_correlation_map_at_1(sigma_w2, sigma_b2):
    q = mf.fixed_length("tanh", sigma_w2, sigma_b2)
    h = 1e-4
    slope = (1 - mf.correlation_map("tanh", 1 - h, sigma_w2, sigma_b2, q)) / h
    assert slope == pytest.approx(mf.chi_1("tanh", sigma_w2, sigma_b2), rel=2e-3)


def test_the_edge_of_chaos_of_tanh():
    # Schoenholz et al. (2017), fig. 1: with sigma_b^2 = 0.05 the critical sigma_w^2 is about 1.76
    critical = mf.critical_sigma_w2("tanh", 0.05)
    assert critical == pytest.approx(1.76, abs=0.01)
    assert mf.chi_1("tanh", critical, 0.05) == pytest.approx(1.0, abs=1e-8)
    assert mf.critical_sigma_w2("tanh", 0.0) == 1.0
    below, above = critical * 0.9, critical * 1.1
    assert mf.fixed_correlation("tanh", below, 0.05) == 1.0
    assert mf.fixed_correlation("tanh", above, 0.05) < 1.0
    assert mf.depth_scale("tanh", below, 0.05) < mf.depth_scale("tanh", critical * 0.99, 0.05)
    assert mf.depth_scale("tanh", above, 0.05) < mf.depth_scale("tanh", critical * 1.01, 0.05)


@pytest.mark.parametrize("sigma_w2", [1.2, 3.0])
def test_correlations_approach_their_fixed_point_at_the_depth_scale(sigma_w2):
    c = mf.correlations("tanh", 0.2, 60, sigma_w2, 0.05)
    star, xi = mf.fixed_correlation("tanh", sigma_w2, 0.05), mf.depth_scale("tanh", sigma_w2, 0.05)
    gap = np.abs(c - star)
    rate = gap[31] / gap[30]                    # late layers, near the fixed point
    assert rate == pytest.approx(math.exp(-1 / xi), rel=1e-2)


@pytest.mark.parametrize("activation,sigma_w2,sigma_b2", [("tanh", 1.2, 0.05), ("tanh", 3.0, 0.05), ("relu", 2.0, 0.0)])
def test_wide_random_networks_follow_the_maps(activation, sigma_w2, sigma_b2):
    """Two inputs of length q* and correlation 0.5 through 12 layers of width 2000."""
    width, layers = 2000, 12
    gen = torch.Generator().manual_seed(0)
    q = mf.fixed_length(activation, sigma_w2, sigma_b2) if activation == "tanh" else 1.0
    x = torch.randn(width, generator=gen, dtype=torch.float64)
    y = 0.5 * x + math.sqrt(0.75) * torch.randn(width, generator=gen, dtype=torch.float64)
    z = torch.stack([x, y]) * math.sqrt(q)
    phi = torch.tanh if activation == "tanh" else torch.relu
    measured = []
    for _ in range(layers):
        W = torch.randn(width, width, generator=gen, dtype=torch.float64) * math.sqrt(sigma_w2 / width)
        b = torch.randn(width, generator=gen, dtype=torch.float64) * math.sqrt(sigma_b2)
        z = phi(z) @ W.T + b
        q1, q2, q12 = (z[0] @ z[0]) / width, (z[1] @ z[1]) / width, (z[0] @ z[1]) / width
        measured.append(float(q12 / math.sqrt(q1 * q2)))
        if activation == "tanh":     # q* attracts; ReLU's length is a random walk at finite width
            assert float(q1) == pytest.approx(q, rel=0.1)
    predicted = mf.correlations(activation, 0.5, layers, sigma_w2, sigma_b2)[1:]
    assert np.abs(np.array(measured) - predicted).max() < 0.05


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'tanh', 'relu'.*'sigmoid'"):
        mf.chi_1("sigmoid", 1.0)
    with pytest.raises(ValueError, match="'sigma_b2' parameter must be a float in the range"):
        mf.length_map("tanh", 1.0, 1.0, -0.1)
    with pytest.raises(ValueError, match="'c' parameter must be a correlation"):
        mf.correlation_map("tanh", 1.5, 1.0, 0.1)
    with pytest.raises(ValueError, match="no finite fixed length"):
        mf.fixed_length("relu", 3.0, 0.0)
    with pytest.raises(ValueError, match="no edge of chaos"):
        mf.critical_sigma_w2("relu", 0.1)

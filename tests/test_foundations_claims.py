"""Claims that chapters 1 and 2 make in words, recomputed small and fast.

Chapter 1: on the one-neuron surface most descent steps creep along a valley floor, and the
step-size exercise's story (the limits 2/lambda of the two minima, where each run ends with
lr = 10, 20, 40). Chapter 2: the zero-initialized ReLU network is dead because ReLU(0) = 0 and
the last weight matrix is 0, whatever slope ReLU is given at 0.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn

from lessonlib import DigitNN, digits, init_model, train
from lessonlib.surface import descend, find_minimum, plateau
from lessonlib.symmetry import EpochLog, record_pass

A, B = (-1.5, 0.5), (-1.5, 3.5)  # chapter 1's two starting points


@pytest.fixture(scope="module")
def problem():
    return plateau()


@pytest.fixture(scope="module")
def minima(problem):
    """Minimum 1 (where A ends, the rising edge) and minimum 2 (where B ends, the falling edge)."""
    return [find_minimum(problem, descend(problem, start)[-1])[:2] for start in (A, B)]


def largest_curvature(problem, w, b, h=1e-4):
    """The largest eigenvalue of the Hessian of L at (w, b), by central differences."""
    f = problem.loss
    hww = (f(w + h, b) - 2 * f(w, b) + f(w - h, b)) / h**2
    hbb = (f(w, b + h) - 2 * f(w, b) + f(w, b - h)) / h**2
    hwb = (f(w + h, b + h) - f(w + h, b - h) - f(w - h, b + h) + f(w - h, b - h)) / (4 * h**2)
    return np.linalg.eigvalsh([[hww, hwb], [hwb, hbb]]).max()


# ---------------------------------------------------------------------------------------------
# chapter 1


def test_most_steps_creep_along_the_valley_floor(problem, minima):
    """'most steps are spent creeping along the flat floor of a valley': each run makes 99% of
    its drop in loss in less than half the steps it needs to come within 0.1 of its minimum, and
    that takes more than 1,000 steps (so the dots of every 1,000th step lie on the way)."""
    for start, (w, b) in zip((A, B), minima):
        path = descend(problem, start)
        drop = problem.loss(path[:, 0], path[:, 1]) - problem.loss(w, b)
        fast = int(np.argmax(drop <= 0.01 * drop[0]))
        near = int(np.argmax(np.hypot(path[:, 0] - w, path[:, 1] - b) <= 0.1))
        assert 0 < fast < near / 2, (start, fast, near)
        assert near > 1000, (start, near)


def test_step_size_limits_order_as_the_exercise_says(problem, minima):
    """2/lambda: above 10 at both minima, below 20 at minimum 2 (narrower), between 20 and 40 at
    minimum 1."""
    limit1, limit2 = (2 / largest_curvature(problem, *point) for point in minima)
    assert 10 < limit2 < 20 < limit1 < 40, (limit1, limit2)


def test_larger_steps_end_where_the_exercise_says(problem, minima):
    minimum1, minimum2 = np.array(minima[0]), np.array(minima[1])
    ends = {}
    for lr in (10, 20, 40):
        for name, start in (("A", A), ("B", B)):
            path = descend(problem, start, lr=lr, steps=10_000)
            losses = problem.loss(path[:, 0], path[:, 1])
            ends[lr, name] = path
            if lr == 10:  # the loss goes up at some steps, but each run still ends in its own minimum
                assert (np.diff(losses) > 0).any(), name
                assert np.allclose(path[-1], minimum1 if name == "A" else minimum2, atol=0.01), name
            if lr == 20:  # B is thrown out of minimum 2 and ends in minimum 1, as A does
                assert np.allclose(path[-1], minimum1, atol=0.01), name
    # lr = 40: both end in one and the same 2-cycle beside minimum 1, without reaching it
    a, b = ends[40, "A"], ends[40, "B"]
    for path in (a, b):
        assert np.allclose(path[-1], path[-3], atol=1e-6)
        assert np.hypot(*(path[-1] - path[-2])) > 0.1
        for point in (path[-1], path[-2]):
            assert np.hypot(*(point - minimum1)) > 0.1
            assert point[0] > 0  # beside minimum 1, in the w > 0 valley
    assert np.allclose(sorted(map(tuple, a[-2:])), sorted(map(tuple, b[-2:])), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# chapter 2


class ReLUSlopeOneAtZero(nn.Module):
    """ReLU forward; backward with slope 1 at z = 0."""

    def forward(self, z):
        return z.clamp(min=0).detach() + (z - z.detach()) * (z >= 0)


def test_the_slope_one_relu_is_relu_with_slope_one_at_zero():
    z = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    out = ReLUSlopeOneAtZero()(z)
    out.sum().backward()
    assert torch.equal(out.detach(), torch.relu(z.detach()))
    assert z.grad.tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("activation", [nn.ReLU, ReLUSlopeOneAtZero], ids=["slope 0 at 0", "slope 1 at 0"])
def test_zero_init_relu_network_is_dead_whatever_the_slope_at_zero(activation):
    """With W3 = 0 no delta reaches the hidden layers, and with ReLU(0) = 0 the gradient of W3 is 0:
    every hidden activation and every gradient but the output bias's stays 0, at every epoch."""
    data = digits()
    model = nn.Sequential(nn.Linear(64, 128), activation(), nn.Linear(128, 64), activation(), nn.Linear(64, 10))
    init_model(model, "zeros", bias="same", seed=42)
    log = EpochLog(lambda m: record_pass(m, data.X_train, data.y_train).max_abs())
    train(model, data, epochs=5, on_epoch=log)
    alive = {"4 z", "4.bias grad"}
    for key in log.keys():
        if key not in alive:
            assert (log[key] == 0).all(), key
    assert (log["4.bias grad"] > 0).all()
    # the same as the chapter's DigitNN with PyTorch's ReLU
    reference = init_model(DigitNN(), "zeros", bias="same", seed=42)
    train(reference, data, epochs=5)
    assert torch.equal(reference.fc3.bias, model[4].bias)

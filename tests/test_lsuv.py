"""LSUV: unit output std per layer within the tolerance, and clear errors on bad input."""

import pytest
import torch

from lessonlib import init_model, mlp
from lessonlib.lsuv import lsuv_init
from lessonlib.probes import Probe


def batch(n=256, d=32, seed=1000):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_every_layer_has_unit_std_on_the_batch(activation):
    model = mlp([32] + [48] * 12 + [10], activation)
    x = batch()
    report = lsuv_init(model, x, tol=0.01, seed=0)
    with torch.no_grad(), Probe(model) as probe:
        model(x)
    stds = probe.stats("outputs", "std")
    assert len(stds) == len(report.std_after) == 13
    assert all(abs(s - 1) <= 0.01 + 1e-6 for s in stds), stds
    assert all(abs(s - 1) <= 0.01 for s in report.std_after)


def test_orthogonal_start_without_rescaling_shrinks_for_relu():
    model = mlp([32] + [48] * 12 + [10], "relu")
    report = lsuv_init(model, batch(), seed=0)
    assert report.std_before[-1] < report.std_before[0]  # the rescalings were needed


def test_include_last_false_leaves_output_layer_orthogonal():
    model = mlp([32, 48, 48, 10], "relu")
    report = lsuv_init(model, batch(), seed=0, include_last=False)
    assert len(report.names) == 2
    w = model[-1].weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(10), atol=1e-5)


def test_same_seed_same_weights():
    a, b = mlp([32, 48, 10]), mlp([32, 48, 10])
    lsuv_init(a, batch(), seed=3)
    lsuv_init(b, batch(), seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kwargs, message", [
    ({"x": [[1.0, 2.0]]}, "'x' must be a batch tensor"),
    ({"x": torch.ones(1, 32)}, "at least 2 examples"),
    ({"tol": 0}, "'tol' parameter must be a float in the range \\(0, 1\\)"),
    ({"tol": 1.5}, "'tol'"),
    ({"max_iter": 0}, "'max_iter' parameter must be an int >= 1"),
    ({"max_iter": 2.5}, "'max_iter'"),
])
def test_bad_input_errors(kwargs, message):
    args = {"x": batch()} | kwargs
    x = args.pop("x")
    with pytest.raises(ValueError, match=message):
        lsuv_init(mlp([32, 48, 10]), x, **args)


def test_model_without_weights_errors():
    with pytest.raises(ValueError, match="no layer with a weight matrix"):
        lsuv_init(torch.nn.ReLU(), batch())


def test_constant_output_errors():
    with pytest.raises(ValueError, match="outputs a constant"):
        lsuv_init(mlp([32, 48, 10]), torch.zeros(8, 32))


def test_on_tanh_lsuv_multiplies_each_hidden_layer_by_about_1_6():
    # the exercise's answer: behind a tanh layer of unit-std inputs the orthogonal weights give an
    # output std of sqrt(E[tanh(z)^2]) ~ 0.63 for z ~ N(0, 1), so LSUV divides by ~0.63 (multiplies
    # by ~1.6, close to PyTorch's tanh gain 5/3)
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = float(torch.tanh(z).pow(2).mean().sqrt())
    assert 0.62 < expected < 0.64
    report = lsuv_init(mlp([32] + [48] * 12 + [10], "tanh"), batch(1024), seed=0)
    inner = report.std_before[1:-1]
    assert all(abs(s - expected) < 0.06 for s in inner), inner
    assert all(n == 1 for n in report.iterations)          # z is linear in W: one division suffices


def test_on_tanh_xavier_lets_the_spread_shrink_where_lsuv_holds_it():
    x = batch(1024)
    stds = {}
    for name in ("lsuv", "xavier"):
        model = mlp([32] + [48] * 12 + [10], "tanh")
        if name == "lsuv":
            lsuv_init(model, x, seed=0)
        else:
            init_model(model, "xavier_normal", seed=0)
        with torch.no_grad(), Probe(model) as probe:
            model(x)
        stds[name] = probe.stats("outputs", "std")
    assert all(abs(s - 1) <= 0.01 + 1e-6 for s in stds["lsuv"])
    assert stds["xavier"][-1] < 0.5 * stds["xavier"][1]

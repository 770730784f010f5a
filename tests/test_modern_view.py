"""The modern-view lesson's helpers: Jacobian spectra, lazy training, CKA, the smaller digits, the checks."""

import math

import numpy as np
import pytest
import torch

from lessonlib import digits, mlp
from lessonlib.exercises.modern import (check_edge_of_chaos, check_linear_cka, check_relu_correlation_map,
                                        relu_correlation)
from lessonlib.isometry import init_deep, jacobian_singular_values, share_within
from lessonlib.lazy import linear_cka, train_scaled
from lessonlib import mean_field as mf


def test_init_deep_draws_the_asked_variances():
    net = init_deep(mlp([400, 400, 400], "tanh"), 1.5, 0.04, seed=1)
    w, b = net[0].weight.detach(), net[0].bias.detach()
    assert float(w.var() * 400) == pytest.approx(1.5, rel=0.02)
    assert float(b.var()) == pytest.approx(0.04, rel=0.3)
    ortho = init_deep(mlp([50, 50], "relu"), 2.0, 0.0, "orthogonal", seed=1)[0].weight.detach().double()
    assert torch.allclose(ortho @ ortho.T, 2.0 * torch.eye(50, dtype=torch.float64), atol=1e-5)
    with pytest.raises(ValueError, match="'weights' parameter must be one of"):
        init_deep(mlp([3, 3]), 1.0, weights="uniform")
    with pytest.raises(ValueError, match="'sigma_b2' parameter"):
        init_deep(mlp([3, 3]), 1.0, -1.0)


def test_jacobian_of_a_linear_network_is_its_weight_product():
    net = init_deep(mlp([20, 20, 20], "linear").double(), 1.0, 0.0, seed=3)
    product = net[2].weight @ net[0].weight
    expected = torch.linalg.svdvals(product.detach()).numpy()
    assert np.allclose(jacobian_singular_values(net, torch.randn(20, dtype=torch.float64)), expected)
    with pytest.raises(ValueError, match="one input, a 1-D tensor"):
        jacobian_singular_values(net, torch.randn(2, 20, dtype=torch.float64))


def test_orthogonal_linear_networks_are_isometries_and_gaussian_ones_are_not():
    x = torch.randn(64, dtype=torch.float64)
    ortho = init_deep(mlp([64] * 17, "linear").double(), 1.0, 0.0, "orthogonal", seed=0)
    gauss = init_deep(mlp([64] * 17, "linear").double(), 1.0, 0.0, "gaussian", seed=0)
    assert share_within(jacobian_singular_values(ortho, x), 1.0001) == 1.0
    assert share_within(jacobian_singular_values(gauss, x), 2.0) < 0.5
    # the mean squared singular value is chi_1^L = 1 on average for both
    assert np.mean(jacobian_singular_values(gauss, x) ** 2) == pytest.approx(1.0, abs=0.6)


def test_linear_cka():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=gen)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen))
    assert linear_cka(X, 3 * X @ q + 2) == pytest.approx(1.0)
    assert linear_cka(X, torch.randn(40, 5, generator=gen)) < 0.5
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(X, X[:10])


def test_lazy_training_moves_the_weights_like_one_over_alpha():
    data = digits().first(200, 50)
    runs = {alpha: train_scaled(init_deep(mlp([64, 32, 10], "relu"), 2.0, 0.0, seed=0), data, alpha, steps=30, lr=0.005)
            for alpha in (10.0, 100.0)}
    ratio = runs[10.0]["weight_change"][0] / runs[100.0]["weight_change"][0]
    assert ratio == pytest.approx(10.0, rel=0.05)
    assert runs[10.0]["loss"][-1] == pytest.approx(runs[100.0]["loss"][-1], rel=1e-2)   # the same function
    assert runs[10.0]["loss"][0] == pytest.approx(0.5)                                    # h starts at 0
    with pytest.raises(ValueError, match="'alpha' parameter"):
        train_scaled(mlp([64, 10]), data, 0.0, steps=1, lr=0.1)


def test_first_keeps_the_first_examples():
    full = digits()
    small = full.first(100, 20)
    assert torch.equal(small.X_train, full.X_train[:100]) and len(small.y_test) == 20
    with pytest.raises(ValueError, match="'n_train' parameter must be an int in the range"):
        full.first(5000)


def test_exercise_checks_accept_the_answer_and_name_the_slips(capsys):
    assert check_relu_correlation_map(relu_correlation)
    assert check_relu_correlation_map(lambda c: mf.correlation_map("relu", c, 2.0, 0.0, q=1.0))
    assert not check_relu_correlation_map(lambda c: relu_correlation(c) / 2)
    assert "sigma_w^2 = 2 left out" in capsys.readouterr().out
    assert check_edge_of_chaos(lambda b: mf.critical_sigma_w2("tanh", b))
    assert not check_edge_of_chaos(lambda b: math.sqrt(mf.critical_sigma_w2("tanh", b)))
    assert "sigma_w (the square root)" in capsys.readouterr().out
    assert check_linear_cka(linear_cka)
    assert not check_linear_cka(lambda X, Y: float((Y.T @ X).norm() ** 2 / ((X.T @ X).norm() * (Y.T @ Y).norm())))
    assert "uncentred" in capsys.readouterr().out
    assert not check_edge_of_chaos(lambda b: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_mup_and_sp_are_the_same_network_at_the_base_width_and_differ_when_wider():
    from lessonlib.width import final_loss, mlp_at_width
    sp, sp_groups = mlp_at_width(64, 32, 10, "sp", 32, seed=0)
    mup, mup_groups = mlp_at_width(64, 32, 10, "mup", 32, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(sp.parameters(), mup.parameters()))
    assert [g["lr_scale"] for g in mup_groups] == [1.0, 1.0]
    wide, groups = mlp_at_width(64, 512, 10, "mup", 32, seed=0)
    assert [g["lr_scale"] for g in groups] == [1.0, 1 / 16]
    assert float(wide[4].weight.detach().std()) == pytest.approx(math.sqrt(1 / (512 * 16)), rel=0.05)
    assert float(wide[2].weight.detach().std()) == pytest.approx(math.sqrt(2 / 512), rel=0.02)
    data = digits().first(64, 10)
    assert final_loss(data, 32, "sp", 32, 1e-3, steps=5) == final_loss(data, 32, "mup", 32, 1e-3, steps=5)
    assert math.isfinite(final_loss(data, 64, "mup", 32, 1e-3, steps=5))
    with pytest.raises(ValueError, match="'parameterization' parameter must be one of"):
        mlp_at_width(64, 32, 10, "ntk", 32)

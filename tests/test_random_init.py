"""The random-initialization lesson's claims, measured independently of the notebook, and its checks."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, train
from lessonlib.exercises.random_init import (
    check_depth_preserving_std, check_mean_prediction, measured_depth_ratio, preactivation_mean, relu_factor)
from lessonlib.probes import Probe


@pytest.fixture(scope="module")
def data():
    return digits()


# ---------------------------------------------------------------------------------------------
# article 000's random runs


@pytest.mark.parametrize("mean, std, accuracy", [(5.0, 3.0, 41.11), (0.2, 0.05, 91.94)])
def test_article_000_random_runs_give_the_articles_accuracy(data, mean, std, accuracy):
    model = init_model(DigitNN(), make_scheme("normal", mean=mean, std=std), bias="same", seed=42)
    assert round(100 * train(model, data).final_test_acc, 2) == accuracy


def test_low_init_has_large_preactivations_that_the_mean_term_predicts(data):
    """N(0.2, 0.05): E[z_l] = n mu E[a_(l-1)] + mu_b layer by layer; layer 2 is never clipped."""
    model = init_model(DigitNN(), make_scheme("normal", mean=0.2, std=0.05), bias="same", seed=42)
    with torch.no_grad(), Probe(model) as probe:
        model(data.X_train)
    for l, n in ((1, 128), (2, 64)):
        predicted = preactivation_mean(n, 0.2, float(probe.inputs[l].mean()), 0.2)
        assert float(probe.outputs[l].mean()) == pytest.approx(predicted, rel=0.03)
    assert float(probe.outputs[1].mean()) > 10                  # 'low' weights, large pre-activations
    assert float(probe.outputs[2].mean()) > 100
    assert bool((probe.outputs[1] > 0).all())                   # every layer-2 unit active on every image
    # the units move together: the common part dwarfs the spread between units
    assert float(probe.outputs[1].mean()) > 10 * float(probe.outputs[1].var(dim=1).mean().sqrt())


def test_high_init_moves_each_weight_by_well_under_its_size(data):
    """Adam's steps are about the learning rate: 100 of them cannot undo weights of size ~5.8."""
    model = init_model(DigitNN(), make_scheme("normal", mean=5, std=3), bias="same", seed=42)
    history = train(model, data, snapshot_epochs=(0, 100))
    first, last = history.snapshots[0], history.snapshots[100]
    largest = max(float((last[k] - first[k]).abs().max()) for k in first)
    assert largest < 1.0
    assert all(float(first[k].pow(2).mean().sqrt()) > 5 for k in first)


# ---------------------------------------------------------------------------------------------
# small normal


def test_small_normal_trains_digitnn_but_not_ten_hidden_layers(data):
    small = make_scheme("normal", std=0.01)
    assert round(100 * train(init_model(DigitNN(), small, seed=42), data).final_test_acc, 2) == 96.67
    deep = train(init_model(mlp([64] + [64] * 10 + [10]), small, seed=42), data)
    assert deep.loss[-1] == pytest.approx(math.log(10), abs=0.01)   # still at chance after 100 epochs
    assert deep.final_test_acc < 0.15


# ---------------------------------------------------------------------------------------------
# U(-1, 1) through a deep network


def _per_layer_factor(activation, scheme, width=128, depth=30, seeds=range(4)):
    """Geometric mean over seeds of the per-layer growth of the pre-activations' RMS (float64)."""
    torch.manual_seed(0)
    x = torch.randn(64, width, dtype=torch.float64)
    logs = []
    for seed in seeds:
        model = init_model(mlp([width] * (depth + 1), activation), scheme, seed=seed).double()
        with torch.no_grad(), Probe(model) as probe:
            model(x)
        rms = np.sqrt(probe.stats("outputs", "second_moment"))
        logs.append(np.log(rms[-1] / rms[0]) / (depth - 1))
    return float(np.exp(np.mean(logs)))


@pytest.mark.parametrize("activation, keep", [("linear", 1.0), ("relu", 0.5)])
def test_uniform_pm1_explodes_by_the_predicted_factor(activation, keep):
    """Var(U(-1, 1)) = 1/3: each layer multiplies the RMS by sqrt(n/3 * keep), 6.53 or 4.62 at n = 128."""
    factor = _per_layer_factor(activation, make_scheme("uniform", a=-1, b=1))
    assert factor == pytest.approx(math.sqrt(128 / 3 * keep), rel=0.02)
    assert factor > 4                                                # explodes, it does not vanish


@pytest.mark.parametrize("activation, keep", [("linear", 1.0), ("relu", 0.5)])
def test_pytorch_default_vanishes_by_the_predicted_factor(activation, keep):
    """U(-1/sqrt(n), 1/sqrt(n)) has variance 1/(3n): the RMS shrinks by sqrt(keep/3) per layer."""
    factor = _per_layer_factor(activation, make_scheme("pytorch_default"))
    assert factor == pytest.approx(math.sqrt(keep / 3), rel=0.02)


def test_uniform_pm1_saturates_tanh_instead_of_shrinking_the_signal():
    torch.manual_seed(0)
    x = torch.randn(64, 128)
    model = init_model(mlp([128] * 51, "tanh"), make_scheme("uniform", a=-1, b=1), seed=0)
    with torch.no_grad(), Probe(model) as probe:
        model(x)
    rms = np.sqrt(probe.stats("outputs", "second_moment"))
    assert rms[10:].min() > 5                                        # sqrt(128/3 * E[tanh^2]) ~ 6
    assert float(probe.inputs[49].abs().gt(0.99).double().mean()) > 0.5


# ---------------------------------------------------------------------------------------------
# the sweep, reduced


def test_sweep_too_large_is_far_worse_than_too_small_and_sgd_stalls_when_too_small(data):
    """Adam: 300 times below 1/sqrt(n) loses a few points, 100 times above tens of points.
    SGD (lr 0.1): from a tiny scale the gradients, and so the steps, are tiny: it stays near chance."""
    sigmas = [3e-4, 1e-1, 10.0]
    acc = {opt: [train(init_model(DigitNN(), make_scheme("normal", std=s), seed=0), data, optimizer=opt, lr=lr)
                 .final_test_acc for s in sigmas] for opt, lr in (("adam", 0.005), ("sgd", 0.1))}
    adam, sgd = acc["adam"], acc["sgd"]
    assert adam[0] > adam[1] - 0.03                                  # far too small: a little worse
    assert adam[2] < adam[1] - 0.5                                   # far too large: tens of points lost
    assert sgd[0] < 0.2 < sgd[1] - 0.5                              # SGD stalls from the tiny scale


def test_ten_layer_small_normal_is_the_dead_network(data):
    """Ten hidden layers of N(0, 0.01^2): after 100 epochs every test image gets the same scores,
    so one class (the most frequent training digit, as chapter 2's dead network) is predicted.
    Adam does move biases and late weights (it rescales small gradients), but only as constants."""
    model = init_model(mlp([64] + [64] * 10 + [10]), make_scheme("normal", std=0.01), seed=42)
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    train(model, data)
    with torch.no_grad():
        scores = model(data.X_test)
    assert scores.argmax(1).unique().tolist() == [int(torch.bincount(data.y_train).argmax())]
    assert float(scores.std(0).max()) < 1e-6 * float(scores.abs().max())
    moved = {k: float((v.detach() - start[k]).abs().max()) for k, v in model.named_parameters()}
    assert moved["0.weight"] < 1e-3 < moved["20.bias"]                 # first layer barely, output bias clearly


# ---------------------------------------------------------------------------------------------
# the exercise checks


def test_mean_check_accepts_the_formula(capsys):
    assert check_mean_prediction(lambda n, mw, ma, mb: n * mw * ma + mb)
    assert "✓ Correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, mw, ma, mb: n * mw * ma, "left out the bias"),
    (lambda n, mw, ma, mb: mw * ma + mb, "left out the fan-in"),
    (lambda n, mw, ma, mb: math.sqrt(n) * mw * ma + mb, "sqrt(fan_in)"),
    (lambda n, mw, ma, mb: mb, "centred inputs"),
    (lambda n, mw, ma, mb: n * mw ** 2 * ma + mb, "squared the weight mean"),
    (lambda n, mw, ma, mb: n * mw * ma + 2 * mb, "expected"),
])
def test_mean_check_names_common_mistakes(capsys, wrong, hint):
    assert not check_mean_prediction(wrong)
    out = capsys.readouterr().out
    assert "✗ Not yet" in out and hint in out


def test_mean_check_reports_a_crash_and_rejects_non_functions(capsys):
    assert not check_mean_prediction(lambda n, mw, ma, mb: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not check_mean_prediction(lambda n, mw, ma, mb: "big")
    assert "returned str" in capsys.readouterr().out
    with pytest.raises(ValueError, match="must be a function"):
        check_mean_prediction(0.2)


def test_depth_check_accepts_he(capsys):
    assert check_depth_preserving_std(lambda n: math.sqrt(2 / n))
    assert "✓ Correct" in capsys.readouterr().out


def test_depth_check_explains_lecun_and_constant_answers(capsys):
    assert not check_depth_preserving_std(lambda n: 1 / math.sqrt(n))
    out = capsys.readouterr().out
    assert "sqrt(1/fan_in)" in out and "fades" in out and "sqrt(2/fan_in)" in out
    assert not check_depth_preserving_std(lambda n: 0.177)             # right for n = 64 only
    out = capsys.readouterr().out
    assert "fan_in=256" in out and "does not depend on fan_in" in out and "grows" in out
    assert not check_depth_preserving_std(lambda n: -0.1)
    assert "positive" in capsys.readouterr().out
    with pytest.raises(ValueError, match="function of the fan-in"):
        check_depth_preserving_std(0.177)


def test_measured_depth_ratio_follows_the_relu_factor():
    assert relu_factor(64, 1 / 8) == pytest.approx(0.5)
    assert 0.5 < measured_depth_ratio(64, math.sqrt(2 / 64)) < 2
    assert measured_depth_ratio(64, 1 / 8) == pytest.approx(0.5 ** 19, rel=2)

"""Written-out backpropagation for many seeds at once equals autograd on each seed alone."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lessonlib import DigitNN, digits, init_model, mlp
from lessonlib.experiments import run_experiment
from lessonlib.models import DigitCNN, ResidualMLP, norm_mlp
from lessonlib.stacked import Activation, linear_chain, train_stacked
from lessonlib.train import OPTIMIZERS


@pytest.fixture(scope="module")
def data():
    return digits()


class LeakyByFunction(nn.Module):
    def __init__(self, slope):
        super().__init__()
        self.slope = slope
        self.first, self.second = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        return self.second(F.leaky_relu(self.first(x), self.slope))


def layers_of(model):
    chain = linear_chain(model)
    return None if chain is None else [(linear.in_features, linear.out_features, act and act.name)
                                       for linear, act in chain]


def test_chains_are_recognized():
    assert layers_of(DigitNN()) == [(64, 128, "relu"), (128, 64, "relu"), (64, 10, None)]
    assert layers_of(mlp([2, 8, 8, 2], "tanh")) == [(2, 8, "tanh"), (8, 8, "tanh"), (8, 2, None)]
    assert layers_of(mlp([64, 10])) == [(64, 10, None)]
    assert layers_of(mlp([2, 8, 2], "linear")) == [(2, 8, "linear"), (8, 2, None)]
    assert linear_chain(LeakyByFunction(0.2))[0][1] == Activation("leaky_relu", 0.2)
    assert linear_chain(mlp([2, 8, 2], "leaky_relu"))[0][1] == Activation("leaky_relu", 0.01)


@pytest.mark.parametrize("model", [
    ResidualMLP(n_blocks=1), norm_mlp([64, 8, 10], "layer"), DigitCNN(), LeakyByFunction(-0.1),
    nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 2)),
    nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU()),
    nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.ReLU(), nn.Linear(3, 2)),
    nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2)),
    nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 2)),
], ids=["residual", "layernorm", "cnn", "negative-slope", "no-bias", "trailing-relu", "two-activations",
        "no-activation", "gelu"])
def test_other_networks_are_not_chains(model):
    assert linear_chain(model) is None


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "linear"])
def test_one_update_equals_autograd_for_each_activation(data, activation):
    """Before and after one SGD step, every seed's training and test losses equal those of autograd
    on that seed alone (the stacked weights stay inside the engine, so the losses are compared)."""
    seeds = [0, 1, 2]
    models = [init_model(mlp([64, 32, 16, 10], activation), "xavier_normal", seed=s) for s in seeds]
    alone = [init_model(mlp([64, 32, 16, 10], activation), "xavier_normal", seed=s) for s in seeds]
    records, diverged, _ = train_stacked(models, data, 1, 0.5, OPTIMIZERS["sgd"])
    for seed, model in enumerate(alone):
        loss = F.cross_entropy(model(data.X_train), data.y_train)
        loss.backward()
        assert records["loss"][seed, 0] == pytest.approx(loss.item(), rel=1e-6)
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
            after = F.cross_entropy(model(data.X_train), data.y_train).item()
            test_after = F.cross_entropy(model(data.X_test), data.y_test).item()
        assert records["loss"][seed, 1] == pytest.approx(after, rel=1e-5)
        assert records["test_loss"][seed, 1] == pytest.approx(test_after, rel=1e-5)
    assert (diverged == -1).all()


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "leaky_relu"])
def test_engine_agrees_with_one_by_one_for_each_activation(data, activation):
    make = lambda: mlp([64, 32, 32, 10], activation)
    kwargs = dict(epochs=30, lr=0.01, progress=False)
    one = run_experiment(make, ["xavier_normal", "kaiming_normal"], [0, 1], data, batched=False, **kwargs)
    many = run_experiment(make, ["xavier_normal", "kaiming_normal"], [0, 1], data, batched=True, **kwargs)
    assert np.allclose(one.loss, many.loss, rtol=1e-4)
    assert np.allclose(one.test_loss, many.test_loss, rtol=1e-4)
    assert np.array_equal(np.round(100 * one.test_acc, 2), np.round(100 * many.test_acc, 2))
    assert np.array_equal(one.train_acc, many.train_acc)


def test_softmax_regression_has_no_hidden_layer(data):
    kwargs = dict(epochs=20, lr=0.05, progress=False)
    one = run_experiment(lambda: mlp([64, 10]), ["zeros", "lecun_normal"], [0, 1], data, batched=False, **kwargs)
    many = run_experiment(lambda: mlp([64, 10]), ["zeros", "lecun_normal"], [0, 1], data, batched=True, **kwargs)
    assert np.allclose(one.loss, many.loss, rtol=1e-5)
    # zero weights score every class equally: argmax ties go to class 0 both ways
    assert np.array_equal(one.train_acc[:, :, 0], many.train_acc[:, :, 0])


def test_networks_that_are_no_chain_still_train_batched(data):
    make = lambda: ResidualMLP(width=16, n_blocks=2)
    kwargs = dict(epochs=10, lr=0.005, progress=False)
    one = run_experiment(make, ["kaiming_normal"], [0, 1], data, batched=False, **kwargs)
    many = run_experiment(make, ["kaiming_normal"], [0, 1], data, batched=True, **kwargs)
    assert np.allclose(one.loss, many.loss, rtol=1e-4)


def test_the_engine_takes_the_written_out_path_for_chains_only(data, monkeypatch):
    import lessonlib.experiments as experiments
    calls = []
    monkeypatch.setattr(experiments, "train_stacked", lambda *args: calls.append(args) or train_stacked(*args))
    run_experiment(DigitNN, ["kaiming_normal"], [0, 1], data, epochs=2, progress=False)
    run_experiment(lambda: ResidualMLP(width=8, n_blocks=1), ["kaiming_normal"], [0, 1], data, epochs=2,
                   progress=False)
    assert len(calls) == 1


def test_a_diverging_seed_leaves_the_others_alone(data):
    """One batch, two seeds that blow up (unit-variance weights, SGD at lr 1) beside two that do not:
    the stable ones follow exactly the path they follow in a batch of their own."""
    make = lambda: mlp([64, 64, 64, 10], "linear")
    wild = [init_model(make(), "normal", seed=s) for s in (0, 1)]
    for model in wild:
        for p in model.parameters():
            torch.nn.init.normal_(p, std=1.0)
    calm = lambda: [init_model(make(), "lecun_normal", seed=s) for s in (2, 3)]
    mixed, diverged, _ = train_stacked(wild + calm(), data, 30, 1.0, OPTIMIZERS["sgd"])
    alone, calm_diverged, _ = train_stacked(calm(), data, 30, 1.0, OPTIMIZERS["sgd"])
    assert (diverged[:2] > 0).all() and (diverged[2:] == -1).all() and (calm_diverged == -1).all()
    for metric in mixed:
        assert np.array_equal(mixed[metric][2:], alone[metric])

"""The multi-seed engine: batched training is the same experiment as one model at a time."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.func import stack_module_state

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, train, two_moons
from lessonlib.experiments import Results, confidence_interval, run_experiment


@pytest.fixture(scope="module")
def data():
    return digits()


def test_each_seeds_initial_weights_equal_training_that_seed_alone():
    seeds = [3, 11, 42]
    models = [init_model(DigitNN(), "xavier_normal", seed=s) for s in seeds]
    stacked, _ = stack_module_state(models)
    for i, seed in enumerate(seeds):
        alone = init_model(DigitNN(), "xavier_normal", seed=seed)
        for name, param in alone.named_parameters():
            assert torch.equal(stacked[name][i], param)


def test_batched_and_one_by_one_agree_to_the_reported_precision(data):
    schemes = [make_scheme("kaiming_normal"), make_scheme("xavier_normal")]
    one = run_experiment(DigitNN, schemes, [0, 1, 2], data, epochs=40, batched=False, progress=False)
    many = run_experiment(DigitNN, schemes, [0, 1, 2], data, epochs=40, batched=True, progress=False)
    # accuracies are reported to 2 decimals of a percent; losses to 3 significant digits
    assert np.array_equal(np.round(100 * one.test_acc, 2), np.round(100 * many.test_acc, 2))
    assert np.allclose(one.loss, many.loss, rtol=1e-3)
    # and one_by_one is exactly lessonlib.train, seed by seed
    history = train(init_model(DigitNN(), schemes[1], bias="zeros", seed=2), data, epochs=40)
    assert list(one.test_acc[1, 2]) == history.test_acc and list(one.loss[1, 2]) == history.loss


def test_a_chaotic_run_starts_on_the_same_path_both_ways(data):
    """N(0.2, 0.05) weights make a chaotic run: rounding differences (the order of a sum, which
    also changes with the thread count or the CPU) grow until single test points flip, so only its
    first epochs can agree closely. That they do shows both ways compute the same updates."""
    low = make_scheme("normal", mean=0.2, std=0.05)
    one = run_experiment(DigitNN, [low], [0, 1, 2], data, epochs=5, batched=False, progress=False)
    many = run_experiment(DigitNN, [low], [0, 1, 2], data, epochs=5, batched=True, progress=False)
    assert np.allclose(one.loss, many.loss, rtol=1e-4)
    # and one_by_one is exactly lessonlib.train, seed by seed
    history = train(init_model(DigitNN(), low, bias="zeros", seed=2), data, epochs=5)
    assert list(one.test_acc[0, 2]) == history.test_acc and list(one.loss[0, 2]) == history.loss


def test_two_moons_study_setup_agrees_too():
    moons = two_moons()
    make = lambda: mlp([2, 64, 64, 64, 2], "relu")
    kwargs = dict(epochs=60, lr=0.001, progress=False)
    one = run_experiment(make, ["normal", "xavier_normal"], range(4), moons, batched=False, **kwargs)
    many = run_experiment(make, ["normal", "xavier_normal"], range(4), moons, batched=True, **kwargs)
    assert np.array_equal(np.round(100 * one.final(), 2), np.round(100 * many.final(), 2))


def test_divergence_is_recorded_per_seed(data):
    # plain SGD at lr 1 on a linear net with unit-variance weights blows up; the others do not
    make = lambda: mlp([64, 64, 64, 10], "linear")
    results = run_experiment(make, [make_scheme("normal", std=1.0), "lecun_normal"], [0, 1], data,
                             epochs=30, lr=1.0, optimizer="sgd", progress=False)
    assert (results.diverged_at[0] > 0).all()
    first = results.diverged_at[0, 0]
    assert np.isnan(results.loss[0, 0, first:]).all() and np.isfinite(results.loss[0, 0, :first]).all()
    assert results.summary()[results.schemes[0]]["diverged"] == 2
    alone = run_experiment(make, [make_scheme("normal", std=1.0)], [0], data, epochs=30, lr=1.0,
                           optimizer="sgd", batched=False, progress=False)
    assert alone.diverged_at[0, 0] == first


def test_summaries():
    acc = np.array([[[0.1, 0.5, 0.9], [0.1, 0.6, 0.7]]])
    r = Results([make_scheme("zeros")], [0, 1], loss=acc, train_acc=acc, test_loss=acc, test_acc=acc,
                diverged_at=np.array([[-1, -1]]))
    assert np.allclose(r.final(), [[0.9, 0.7]])
    assert np.array_equal(r.epochs_to(0.55), [[2.0, 1.0]])
    assert np.isnan(r.epochs_to(0.95)).all()
    s = r.summary()[make_scheme("zeros")]
    assert s["mean"] == pytest.approx(0.8) and s["std"] == pytest.approx(math.sqrt(0.02))
    low, high = confidence_interval([0.9, 0.7])
    assert low < 0.8 < high and high - 0.8 == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2), rel=1e-3)
    with pytest.raises(ValueError, match="Unknown metric"):
        r.final("accuracy")


def test_bad_input(data):
    with pytest.raises(ValueError, match="distinct"):
        run_experiment(DigitNN, ["zeros"], [1, 1], data, progress=False)
    with pytest.raises(ValueError, match="Unknown initialization scheme"):
        run_experiment(DigitNN, ["he"], [1], data, progress=False)
    with pytest.raises(ValueError, match="expects 2 input features"):
        run_experiment(lambda: mlp([2, 4, 2]), ["zeros"], [1], data, progress=False)
    bn = lambda: torch.nn.Sequential(torch.nn.Linear(64, 10), torch.nn.BatchNorm1d(10))
    with pytest.raises(ValueError, match="batched=False"):
        run_experiment(bn, ["zeros"], [1], data, progress=False)


def test_double_precision_runs_of_both_engines_agree_far_below_a_printed_digit():
    moons = two_moons(n_samples=200).to(torch.float64)
    assert moons.X_train.dtype == torch.float64 and moons.y_train.dtype == torch.long
    make = lambda: mlp([2, 16, 16, 2], "relu")
    runs = {batched: run_experiment(make, ["kaiming_normal"], [0, 1], moons, epochs=30, lr=0.01,
                                    batched=batched, progress=False) for batched in (True, False)}
    # in double precision the two engines' different summation orders agree to ~1e-12
    np.testing.assert_allclose(runs[True].loss, runs[False].loss, rtol=0, atol=1e-10)


def test_data_and_model_of_different_precision_are_refused_by_name():
    with pytest.raises(ValueError, match="float32.*float64"):
        train(mlp([2, 8, 2], "relu"), two_moons(n_samples=40).to(torch.float64), epochs=1)
    with pytest.raises(ValueError, match="floating-point torch.dtype"):
        two_moons(n_samples=40).to(torch.long)


@pytest.mark.parametrize("make, batched", [(lambda: mlp([2, 16, 16, 2], "relu"), True),
                                           (lambda: mlp([2, 16, 16, 2], "relu"), False),
                                           (lambda: nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)), True)])
def test_kept_states_are_the_runs_own_parameters_at_that_epoch(make, batched):
    moons = two_moons(n_samples=200).to(torch.float64)
    results = run_experiment(make, ["xavier_normal", "kaiming_normal"], [3, 4], moons, epochs=12, lr=0.01,
                             batched=batched, progress=False, states_at=(0, 7))
    assert sorted(results.states) == [0, 7]
    for i, scheme in enumerate(results.schemes):
        for j, seed in enumerate(results.seeds):
            start = results.states[0][i][j]
            fresh = init_model(make().to(torch.float64), scheme, bias="zeros", seed=seed)
            assert set(start) == set(fresh.state_dict())
            for name, value in fresh.state_dict().items():
                assert torch.equal(start[name], value), name
            # the state kept at epoch 7 gives back the recorded training loss of epoch 7
            model = make().to(torch.float64)
            model.load_state_dict(results.states[7][i][j])
            loss = nn.functional.cross_entropy(model(moons.X_train), moons.y_train).item()
            assert loss == pytest.approx(results.loss[i, j, 7], rel=1e-9)


def test_states_outside_the_run_are_refused():
    with pytest.raises(ValueError, match="states_at"):
        run_experiment(lambda: mlp([2, 4, 2], "relu"), ["kaiming_normal"], [0], two_moons(n_samples=40),
                       epochs=5, progress=False, states_at=(6,))

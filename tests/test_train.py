"""The trainer: repeatable, honest about divergence, strict about its inputs."""

import math

import matplotlib
import pytest
import torch
import torch.nn as nn

matplotlib.use("Agg")

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, plot_learning_curves, set_seed, train
from lessonlib.data import two_moons
from lessonlib.models import DigitCNN


@pytest.fixture(scope="module")
def data():
    return digits()


def test_digits_split_is_the_article_split(data):
    assert (len(data.X_train), len(data.X_test), data.n_features, data.n_classes) == (1437, 360, 64, 10)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.long
    # StandardScaler was fitted on all 1797 images: every pixel has mean 0 over the whole set
    everything = torch.cat([data.X_train, data.X_test]).double()
    assert everything.mean(0).abs().max() < 1e-6


def test_two_moons_split():
    moons = two_moons()
    assert (len(moons.X_train), len(moons.X_test), moons.n_features, moons.n_classes) == (900, 300, 2, 2)
    assert torch.equal(moons.X_train, two_moons().X_train)
    with pytest.raises(ValueError, match="'noise' parameter must be a float in the range"):
        two_moons(noise=-0.1)
    with pytest.raises(ValueError, match="'test_size' parameter"):
        two_moons(test_size=1.5)


def test_history_records_every_state(data):
    history = train(init_model(DigitNN(), "kaiming_normal", seed=0), data, epochs=5)
    assert len(history.loss) == len(history.test_acc) == len(history.train_acc) == len(history.test_loss) == 6
    assert list(history.epochs) == [0, 1, 2, 3, 4, 5]
    assert history.loss[-1] < history.loss[0]
    assert not history.diverged
    # the state at epoch 0 is the initialization itself: about ln(10) for a near-uniform guess
    assert 1.0 < history.loss[0] < 10.0


def test_same_seed_same_history(data):
    a = train(init_model(DigitNN(), "xavier_normal", seed=1), data, epochs=10)
    b = train(init_model(DigitNN(), "xavier_normal", seed=1), data, epochs=10)
    c = train(init_model(DigitNN(), "xavier_normal", seed=2), data, epochs=10)
    assert a.loss == b.loss and a.test_acc == b.test_acc
    assert a.loss != c.loss


def test_article_000_accuracies_are_reproduced(data):
    """The five test accuracies article 000's own code gives with torch 2.13 CPU."""
    runs = [(make_scheme("zeros"), "same", 28), (make_scheme("normal", mean=5, std=3), "same", 148),
            (make_scheme("normal", mean=0.2, std=0.05), "same", 331),
            (make_scheme("kaiming_normal"), "zeros", 350), (make_scheme("xavier_normal"), "zeros", 352)]
    for scheme, bias, correct in runs:
        history = train(init_model(DigitNN(), scheme, bias=bias, seed=42), data)
        assert history.final_test_acc == correct / 360, scheme


def test_divergence_is_recorded_not_raised(data):
    # a linear network with unit-variance weights and plain SGD at lr 1 blows up within a few steps
    model = init_model(mlp([64, 64, 64, 10], "linear"), make_scheme("normal", std=1.0), seed=0)
    history = train(model, data, epochs=50, lr=1.0, optimizer="sgd")
    assert history.diverged and 1 <= history.diverged_at < 50
    assert len(history.loss) == history.diverged_at
    assert all(math.isfinite(v) for v in history.loss)
    assert "diverged at epoch" in repr(history)
    fig = plot_learning_curves({make_scheme("normal", std=1.0): history})
    assert "diverged at epoch" in fig.axes[-1].get_legend().get_texts()[0].get_text()


def test_on_epoch_sees_every_state(data):
    seen = []
    train(init_model(DigitNN(), "zeros", bias="same"), data, epochs=3, on_epoch=lambda e, m: seen.append(e))
    assert seen == [0, 1, 2, 3]


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": -1}, "'epochs' parameter must be an int >= 0"),
    ({"epochs": 2.5}, "'epochs' parameter must be an int >= 0"),
    ({"lr": 0.0}, r"'lr' parameter must be a float in the range \(0, inf\)"),
    ({"lr": float("inf")}, "'lr' parameter"),
    ({"optimizer": "rmsprop"}, r"'optimizer' parameter must be one of \['adam', 'sgd'\]"),
])
def test_bad_training_arguments(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(DigitNN(), data, **kwargs)


def test_data_that_does_not_fit_the_model(data):
    with pytest.raises(ValueError, match="expects 2 input features .* but the digits data has 64"):
        train(mlp([2, 8, 2]), data, epochs=1)
    with pytest.raises(ValueError, match="outputs 2 scores .* but the digits data has 10 classes"):
        train(mlp([64, 8, 2]), data, epochs=1)


def test_data_that_does_not_fit_a_first_layer_other_than_linear(data):
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    with pytest.raises(ValueError, match=r"The digits data \(shape \(1437, 64\), torch.float32\) does not fit the "
                                         r"model: its first layer '0' is Conv2d\(3, 8, .* expects 3 input channels"):
        train(conv, data, epochs=1)
    embedding = nn.Sequential(nn.Embedding(17, 4), nn.Flatten(), nn.Linear(64 * 4, 10))
    with pytest.raises(ValueError, match=r"its first layer '0' is Embedding\(17, 4\) and expects integer ids"):
        train(embedding, data, epochs=1)
    assert len(train(DigitCNN(), data, epochs=1).loss) == 2     # a CNN that takes the flat rows trains


def test_models_and_seed_validate_their_input():
    with pytest.raises(ValueError, match="'activation' parameter must be one of"):
        mlp([2, 3], "softmax")
    with pytest.raises(ValueError, match="'sizes' parameter must list at least two positive ints"):
        mlp([2])
    with pytest.raises(ValueError, match="'seed' parameter must be a non-negative int"):
        set_seed(-1)


def test_snapshots_keep_the_weights_of_the_asked_epochs(data):
    model = init_model(DigitNN(), "kaiming_normal", seed=0)
    initial = model.fc2.weight.detach().clone()
    history = train(model, data, epochs=4, snapshot_epochs=(0, 4))
    assert sorted(history.snapshots) == [0, 4]
    assert sorted(history.snapshots[0]) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert torch.equal(history.snapshots[0]["fc2.weight"], initial)
    assert torch.equal(history.snapshots[4]["fc2.weight"], model.fc2.weight)
    assert not torch.equal(history.snapshots[4]["fc2.weight"], initial)


def test_figures_of_snapshots_bands_and_layer_stats(data):
    import numpy as np
    from lessonlib.plots import plot_band, plot_layer_stats, plot_weight_histograms
    import matplotlib.pyplot as plt

    history = train(init_model(DigitNN(), "kaiming_normal", seed=0), data, epochs=2, snapshot_epochs=(0, 2))
    fig = plot_weight_histograms(history.snapshots)
    assert len(fig.axes) == 2 * 3
    with pytest.raises(ValueError, match="No snapshots"):
        plot_weight_histograms({})
    _, ax = plt.subplots()
    plot_band(ax, [1, 2], [[0.5, 0.7], [np.nan, np.nan]], "k", "run")
    line = ax.get_lines()[0]
    assert list(line.get_ydata()) == [0.6] and "2 diverged runs left out" in line.get_label()
    with pytest.raises(ValueError, match="shape"):
        plot_band(ax, [1, 2, 3], [[0.5, 0.7]], "k", "run")
    ax = plot_layer_stats({make_scheme("kaiming_normal"): [1.0, 1.1, 0.9]}, "second moment",
                          theory={make_scheme("kaiming_normal"): [1.0, 1.0, 1.0]})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["He normal", "theory"]
    plt.close("all")

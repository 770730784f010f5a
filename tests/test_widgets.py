"""The interactive lab: the pure propagation function against theory, the explorer's callbacks and
cache without a browser, and clear errors for bad values."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lessonlib.widgets import (InitExplorer, plot_propagation, propagate,  # noqa: E402
                               weight_variance)

WIDTH = 128


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def mean_over_seeds(what, *args, seeds=range(3), **kwargs):
    return np.mean([getattr(propagate(*args, seed=s, **kwargs), what) for s in seeds], axis=0)


def test_first_layer_matches_theory_for_every_scheme():
    # z_1 = W x: its second moment is n v E[x^2] for every scheme, to within sampling error
    for scheme in ("normal", "xavier_normal", "kaiming_uniform", "lecun_normal", "lecun_gain", "orthogonal",
                   "pytorch_default"):
        result = propagate(scheme, 0.5, "relu", depth=3, width=WIDTH)
        assert result.z_second_moment[0] == pytest.approx(result.theory_z_second_moment[0], rel=0.1), scheme


def test_relu_xavier_halves_and_he_holds_the_second_moment():
    xavier = mean_over_seeds("z_second_moment", "xavier_normal", 1.0, "relu", 20, WIDTH)
    theory = propagate("xavier_normal", 1.0, "relu", 20, WIDTH).theory_z_second_moment
    assert theory[10] / theory[0] == pytest.approx(2.0**-10)
    assert xavier[10] == pytest.approx(theory[10], rel=0.5)
    he = mean_over_seeds("z_second_moment", "kaiming_normal", 1.0, "relu", 20, WIDTH)
    assert he[10] == pytest.approx(2.0, rel=0.5)


def test_tanh_under_a_unit_normal_saturates_at_every_depth():
    result = propagate("normal", 1.0, "tanh", depth=50, width=WIDTH)
    assert result.z_std[0] == pytest.approx(math.sqrt(WIDTH), rel=0.05)
    assert (result.saturated > 0.8).all()
    assert result.activation_std[-1] > 0.9
    assert np.isnan(result.dead).all()


def test_deep_relu_network_maps_inputs_to_one_direction():
    result = propagate("kaiming_normal", 1.0, "relu", depth=50, width=WIDTH)
    assert result.similarity[-1] > 0.9 > result.similarity[0]
    assert result.dead[-1] > 0.2


def test_he_normal_in_the_lab_draws_what_the_registry_draws_for_every_activation():
    # one label, one meaning: the lab's "He normal" is make_scheme("kaiming_normal") (ReLU gain)
    import torch

    from lessonlib import init_model, make_scheme, mlp
    from lessonlib.widgets import initialize, label

    for activation in ("tanh", "sigmoid", "relu", "leaky_relu"):
        lab = initialize(mlp([16, 16, 16], activation), "kaiming_normal", 1.0, activation, seed=3)
        book = init_model(mlp([16, 16, 16], activation), make_scheme("kaiming_normal"), seed=3)
        assert torch.equal(lab[0].weight, book[0].weight), activation
    assert label("kaiming_normal", 1.0) == make_scheme("kaiming_normal").label == "He normal"
    assert label("lecun_gain", 1.0) == "LeCun × activation gain"
    tanh = initialize(mlp([16, 16, 16], "tanh"), "lecun_gain", 1.0, "tanh", seed=3)
    assert torch.equal(tanh[0].weight, init_model(mlp([16, 16, 16], "tanh"),
                                                  make_scheme("kaiming_normal", nonlinearity="tanh"), seed=3)[0].weight)


def test_sigmoid_gradient_vanishes_as_predicted():
    # He (chi = 2): at most 2 / 16 = 1/8 per layer, so below 8^-20 ~ 9e-19 after 20 layers
    result = propagate("kaiming_normal", 1.0, "sigmoid", depth=20, width=WIDTH)
    assert result.grad_second_moment[0] < 8.0**-20
    # the activation's own gain (1 for the sigmoid): at most 1/16 per layer
    assert propagate("lecun_gain", 1.0, "sigmoid", depth=20, width=WIDTH).grad_second_moment[0] < 16.0**-20
    # N(0, 1) weights (n v = 128) make up for the small slope: no vanishing
    unit = propagate("normal", 1.0, "sigmoid", depth=20, width=WIDTH)
    assert unit.grad_second_moment[0] > 0.1 * unit.grad_second_moment[-1]
    ratio = result.grad_second_moment[0] / result.theory_grad_second_moment[0]
    assert 0.1 < ratio < 10


def test_propagation_runs_on_one_thread_and_restores_the_thread_count():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        propagate("xavier_normal", 1.0, "tanh", depth=2, width=16)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_weight_variance_formulas():
    assert weight_variance("normal", 0.3, "tanh", 100, 50) == pytest.approx(0.09)
    assert weight_variance("xavier_uniform", 2.0, "tanh", 100, 50) == pytest.approx(4 * 2 / 150)
    assert weight_variance("kaiming_normal", 1.0, "relu", 100, 50) == pytest.approx(2 / 100)
    # "He normal" is kaiming_normal_ with the ReLU gain whatever the activation, as in the rest of the book
    assert weight_variance("kaiming_normal", 1.0, "tanh", 100, 50) == pytest.approx(2 / 100)
    assert weight_variance("kaiming_uniform", 1.0, "sigmoid", 100, 50) == pytest.approx(2 / 100)
    # the activation's own gain is a scheme of its own: LeCun x activation gain
    assert weight_variance("lecun_gain", 1.0, "tanh", 100, 50) == pytest.approx((5 / 3) ** 2 / 100)
    assert weight_variance("lecun_gain", 1.0, "sigmoid", 100, 50) == pytest.approx(1 / 100)
    assert weight_variance("lecun_gain", 1.0, "relu", 100, 50) == pytest.approx(2 / 100)
    assert weight_variance("lecun_gain", 1.0, "leaky_relu", 100, 50) == pytest.approx(2 / (1 + 0.01**2) / 100)
    assert weight_variance("pytorch_default", 1.0, "relu", 100, 50) == pytest.approx(1 / 300)


def test_explorer_recomputes_only_when_the_network_changes():
    lab = InitExplorer(scheme="xavier_normal", activation="tanh", depth=10, width=64)
    assert lab.computations == 1
    first = lab.result
    assert len(first.z_std) == 11
    lab.depth.value = 20
    assert lab.computations == 2
    assert len(lab.result.z_std) == 21 and lab.result.depth == 20
    # display options redraw from the cache
    lab.show.value = "gradients"
    lab.log_counts.value = True
    assert lab.computations == 2
    # going back to a setting already seen uses the cache too
    lab.depth.value = 10
    assert lab.computations == 2 and lab.result is first


def test_explorer_statistics_follow_the_controls():
    lab = InitExplorer(scheme="kaiming_normal", activation="relu", depth=10, width=64)
    held = lab.result.z_std[-2]
    lab.scheme.value = "xavier_normal"
    assert lab.result.z_std[-2] < held / 5  # Xavier loses sqrt(2) per layer under ReLU
    lab.scheme.value = "normal"
    lab.scale.value = 1.0
    assert lab.result.z_std[0] == pytest.approx(8.0, rel=0.1)  # sqrt(64) for N(0, 1) weights
    lab.activation.value = "tanh"
    assert lab.result.saturated[0] > 0.5
    assert "layer 10" in lab.status.value


def test_explorer_training_curve_is_cached():
    lab = InitExplorer(scheme="kaiming_normal", activation="relu", depth=2, width=16)
    lab.train.value = True
    assert len(lab.curves) == 1 and len(lab.figures) == 2
    lab.show.value = "gradients"
    assert len(lab.curves) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"scheme": "zeros"}, "'scheme' parameter must be one of"),
    ({"scale": 0.0}, "'scale' parameter must be a float in the range [0.01, 10.0]"),
    ({"scale": float("nan")}, "'scale' parameter"),
    ({"activation": "selu"}, "'activation' parameter must be one of"),
    ({"depth": 51}, "'depth' parameter must be an int in the range [1, 50]"),
    ({"depth": 2.5}, "'depth' parameter"),
    ({"width": 1024}, "'width' parameter must be an int in the range [1, 512]"),
    ({"seed": -1}, "'seed' parameter must be a non-negative int"),
])
def test_bad_values_raise_clear_errors(kwargs, message):
    args = dict(scheme="xavier_normal", scale=1.0, activation="tanh", depth=3, width=16, seed=0) | kwargs
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        propagate(**args)
    with pytest.raises(ValueError, match="parameter"):
        InitExplorer(**args)


def test_plot_rejects_layers_outside_the_network():
    result = propagate("xavier_normal", 1.0, "tanh", depth=5, width=16)
    plot_propagation(result, "gradients", layers=[1, 5])
    with pytest.raises(ValueError, match=r"hidden layers in the range \[1, 5\]"):
        plot_propagation(result, layers=[6])
    with pytest.raises(ValueError, match="'activations' or 'gradients'"):
        plot_propagation(result, show="weights")


def test_narrow_networks_wander_from_the_prediction_and_wide_ones_do_not():
    # the lab's width figure: He + ReLU, std of z_50 of 5 networks at width 16 and the grid's 3 at width 128
    spread = {}
    for width, seeds in ((16, range(5)), (128, range(3))):
        z50 = [propagate("kaiming_normal", 1.0, "relu", 50, width, seed=s).z_std[49] for s in seeds]
        spread[width] = max(z50) / min(z50)
    assert spread[16] > 100 and spread[128] < 5 and spread[16] > 50 * spread[128]


def test_tanh_under_a_unit_normal_grows_the_gradient_by_decades():
    grads = mean_over_seeds("grad_second_moment", "normal", 1.0, "tanh", 50, WIDTH)
    assert grads[0] / grads[-1] > 1e30
    theory = propagate("normal", 1.0, "tanh", 50, WIDTH).theory_grad_second_moment
    assert theory[0] / theory[-1] > grads[0] / grads[-1]          # the recursion's mean lies above


def test_deep_relu_training_starts_at_ln2_from_xavier_and_above_it_from_he():
    from lessonlib.widgets import training_curve

    for seed in range(3):
        xavier = training_curve("xavier_normal", 1.0, "relu", 20, 64, seed=seed, epochs=1).loss[0]
        he = training_curve("kaiming_normal", 1.0, "relu", 20, 64, seed=seed, epochs=1).loss[0]
        assert abs(xavier - math.log(2)) < 1e-3 and he > math.log(2) + 0.01

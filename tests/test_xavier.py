"""The Xavier/Glorot lesson's claims, measured independently of the notebook, and its exercise check."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, train
from lessonlib.exercises import check_init
from lessonlib.exercises.xavier import RULES, check_linear_forward, linear_forward_variances
from lessonlib.probes import Probe
from lessonlib.theory import gaussian_expectation, predict_backward, predict_forward

ALTERNATING = [128] + [512, 128] * 8  # 16 linear layers, fan_out = 4 fan_in and back
FAN_IN = make_scheme("lecun_normal")
FAN_OUT = make_scheme("kaiming_normal", mode="fan_out", nonlinearity="linear")
XAVIER = make_scheme("xavier_normal")
XAVIER_VARS = [2 / (a + b) for a, b in zip(ALTERNATING[:-1], ALTERNATING[1:])]


@pytest.fixture(scope="module")
def data():
    return digits()


def mean_moments(sizes, activation, scheme, x, loss_of, seeds):
    """Mean over seeds of each layer's second moment of z_l and of dL/dz_l."""
    forward, backward = [], []
    for seed in seeds:
        model = init_model(mlp(sizes, activation), scheme, seed=seed)
        with Probe(model) as probe:
            loss_of(model(x)).backward()
        forward.append(probe.stats("outputs", "second_moment"))
        backward.append(probe.stats("grads", "second_moment"))
    return np.mean(forward, axis=0), np.mean(backward, axis=0)


@pytest.fixture(scope="module")
def linear_moments():
    torch.manual_seed(0)
    x = torch.randn(256, ALTERNATING[0])
    unit_gradient = lambda out: (out * torch.randn_like(out)).sum()
    return {s: mean_moments(ALTERNATING, "linear", s, x, unit_gradient, range(6)) for s in (FAN_IN, FAN_OUT, XAVIER)}


def test_one_over_fan_in_keeps_the_forward_variance_over_mixed_widths(linear_moments):
    forward, backward = linear_moments[FAN_IN]
    assert np.all(np.abs(forward - 1) < 0.12), forward
    # ... and gets the gradient wrong only by the width ratio n_L / n_l (1/4 after each wide layer)
    assert np.allclose(backward, [0.25, 1.0] * 8, rtol=0.12), backward


def test_one_over_fan_out_keeps_the_gradient_variance(linear_moments):
    forward, backward = linear_moments[FAN_OUT]
    assert np.all(np.abs(backward - 1) < 0.12), backward
    assert np.allclose(forward, linear_forward_variances(ALTERNATING, "fan_out"), rtol=0.12), forward
    assert np.allclose(linear_forward_variances(ALTERNATING, "fan_out"), [0.25, 1.0] * 8)


def test_xavier_compromise_loses_4ab_over_a_plus_b_squared_per_pair_both_ways(linear_moments):
    forward, backward = linear_moments[XAVIER]
    per_pair = 4 * 128 * 512 / (128 + 512) ** 2
    assert per_pair == pytest.approx(0.64)
    assert forward[-1] == pytest.approx(per_pair**8, rel=0.15)
    assert np.allclose(forward, predict_forward(ALTERNATING, XAVIER_VARS, "linear"), rtol=0.15)
    assert np.allclose(backward, predict_backward(ALTERNATING, XAVIER_VARS, "linear"), rtol=0.15)
    # it decays far below both one-sided rules, which stay within the width ratio 1/4
    assert forward[-1] < 0.05 and backward[0] < 0.05


def test_article_000_xavier_accuracy_is_exact(data):
    history = train(init_model(DigitNN(), make_scheme("xavier_normal"), bias="zeros", seed=42), data)
    assert round(100 * history.final_test_acc, 2) == 97.78


def test_xavier_halves_the_second_moment_at_every_relu_layer_and_he_keeps_it(data):
    sizes = [64] + [64] * 20 + [10]
    cross_entropy = lambda out: F.cross_entropy(out, data.y_train)
    xavier_fwd, xavier_bwd = mean_moments(sizes, "relu", XAVIER, data.X_train, cross_entropy, range(8))
    he_fwd, _ = mean_moments(sizes, "relu", make_scheme("kaiming_normal"), data.X_train, cross_entropy, range(8))
    per_layer = (xavier_fwd[19] / xavier_fwd[0]) ** (1 / 19)
    assert 0.45 < per_layer < 0.56, per_layer
    assert 0.5 < he_fwd[19] / he_fwd[0] < 2.0
    backward_per_layer = (xavier_bwd[0] / xavier_bwd[19]) ** (1 / 19)
    assert 0.45 < backward_per_layer < 0.56, backward_per_layer


def test_tanh_gain_claims():
    tanh_sq = lambda z: np.tanh(z) ** 2
    assert gaussian_expectation(tanh_sq, 1.0) == pytest.approx(0.394, abs=1e-3)
    q = 1.0
    for _ in range(1000):
        q = (5 / 3) ** 2 * gaussian_expectation(tanh_sq, q)
    assert 1.1 < q < 1.25 and math.sqrt(gaussian_expectation(tanh_sq, q)) == pytest.approx(0.65, abs=0.01)
    chi = (5 / 3) ** 2 * gaussian_expectation(lambda z: (1 - np.tanh(z) ** 2) ** 2, q)
    assert chi > 1.15  # gradients grow on the way back at the fixed point
    fading = predict_forward([64] * 11, 1 / 64, "tanh")
    assert np.all(np.diff(fading) < 0) and fading[-1] < 0.07  # gain 1: q_l falls like 1/(2l)


def test_sigmoid_gradients_shrink_by_at_most_one_sixteenth_per_layer():
    g = predict_backward([256] * 11, 1 / 256, "sigmoid")
    assert (g[0] / g[-1]) ** (1 / 9) < 1 / 16


def test_tanh_saturation_large_normal_versus_xavier(data):
    sizes = [64] + [64] * 10 + [10]

    def saturation(scheme):
        model = init_model(mlp(sizes, "tanh"), scheme, seed=0)
        with Probe(model) as probe, torch.no_grad():
            model(data.X_train)
        return np.array([float((probe.inputs[l].abs() > 0.97).float().mean()) for l in range(1, 11)])

    assert saturation(make_scheme("normal", std=1.0)).min() > 0.7
    assert saturation(make_scheme("xavier_normal", gain=5 / 3)).max() < 0.2


# ---------------------------------------------------------------------------------------------
# the exercise checks


def test_closed_forms_of_the_linear_network():
    widths = [1024, 512, 256, 128, 64]
    assert np.allclose(linear_forward_variances(widths, "fan_in"), 1.0)
    assert np.allclose(linear_forward_variances(widths, "fan_out"), [2, 4, 8, 16])
    assert np.allclose(linear_forward_variances(widths, "geometric"), np.sqrt([2, 4, 8, 16]))
    assert np.allclose(linear_forward_variances([128, 512, 128], "xavier"), [0.4, 0.64])
    with pytest.raises(ValueError, match="'rule' parameter must be one of"):
        linear_forward_variances(widths, "he")
    with pytest.raises(ValueError, match="positive ints"):
        linear_forward_variances([128], "fan_in")


CORRECT = {
    "fan_in": lambda w: [1.0] * (len(w) - 1),
    "fan_out": lambda w: [w[0] / n for n in w[1:]],
    "xavier": lambda w: np.cumprod([2 * a / (a + b) for a, b in zip(w[:-1], w[1:])]),
    "geometric": lambda w: [math.sqrt(w[0] / n) for n in w[1:]],
}


@pytest.mark.parametrize("rule", RULES)
def test_correct_predictions_pass(rule, capsys):
    assert check_linear_forward(CORRECT[rule], rule)
    assert capsys.readouterr().out.startswith("✓ Correct")


MISTAKES = [
    ("fan_out", CORRECT["fan_in"], "what Var(W) = 1/fan_in gives"),
    ("fan_out", lambda w: [n / w[0] for n in w[1:]], "upside down"),
    ("fan_out", lambda w: [w[0] / n for n in w], "the first one is the input"),
    ("fan_out", lambda w: [a / b for a, b in zip(w[:-1], w[1:])], "take the running product"),
    ("fan_out", lambda w: [1.0], "expected 4, one per layer"),
    ("fan_out", lambda w: [w[0] / n + 0.1 for n in w[1:]], "layer 1: you predicted 0.35, expected 0.25"),
    ("fan_out", lambda w: 1 / 0, "raised ZeroDivisionError"),
    ("fan_out", lambda w: "variance", "returned str"),
    ("fan_out", lambda w: [float("nan")] * (len(w) - 1), "inf or NaN"),
    ("geometric", CORRECT["fan_out"], "what Var(W) = 1/fan_out gives"),
]


@pytest.mark.parametrize("rule, candidate, message", MISTAKES, ids=[m[2][:30] for m in MISTAKES])
def test_common_mistakes_are_named(rule, candidate, message, capsys):
    assert not check_linear_forward(candidate, rule)
    out = capsys.readouterr().out
    assert out.startswith("✗ Not yet") and message in out, out


def test_check_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'rule' parameter must be one of"):
        check_linear_forward(CORRECT["fan_in"], "fan_avg")
    with pytest.raises(ValueError, match="must be a function of the widths"):
        check_linear_forward([1.0, 1.0], "fan_in")


def test_hand_written_xavier_uniform_and_the_chapters_wrong_bound(capsys):
    def mine(weight):
        fan_out, fan_in = weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        with torch.no_grad():
            return weight.uniform_(-bound, bound)

    def lecun_bound(weight):
        bound = math.sqrt(3 / weight.shape[1])
        return weight.uniform_(-bound, bound)

    assert check_init(mine, "xavier_uniform")
    assert not check_init(lecun_bound, "xavier_uniform")
    assert "your bound is sqrt(3/fan_in)" in capsys.readouterr().out


# --- the deep tanh network: the standard initialization, the distributions, SGD beside Adam ------

TANH_SIZES = [64] + [64] * 10 + [10]
STANDARD = make_scheme("pytorch_default")   # U(±1/sqrt(n_in)), Glorot & Bengio's "standard"


def tanh_hidden_values(scheme, data, seed=0):
    model = init_model(mlp(TANH_SIZES, "tanh"), scheme, seed=seed)
    with Probe(model) as probe:
        F.cross_entropy(model(data.X_train), data.y_train).backward()
    return [probe.inputs[l] for l in range(1, 11)], [probe.grads[l] for l in range(10)]


def test_pytorch_idiom_draws_what_init_model_draws():
    """nn.init.xavier_uniform_ through model.apply after the seed = init_model(..., seed)."""
    def init_weights(module):
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(module.weight)
            torch.nn.init.zeros_(module.bias)

    plain = DigitNN()
    torch.manual_seed(0)
    plain.apply(init_weights)
    ours = init_model(DigitNN(), make_scheme("xavier_uniform"), seed=0)
    with torch.no_grad():
        assert max(float((p - q).abs().max()) for p, q in zip(plain.parameters(), ours.parameters())) < 1e-7


def test_tanh_chi_reaches_one_only_as_q_goes_to_zero():
    slope_sq = lambda z: (1 - np.tanh(z) ** 2) ** 2
    assert gaussian_expectation(slope_sq, 1.0) < 0.5               # far below 1 at q = 1
    assert gaussian_expectation(slope_sq, 1e-3) > 0.99             # near 1 only for a faded signal
    g = predict_backward([256] * 11, 1 / 256, "tanh")
    assert 10 < g[-1] / g[0] < 16                                  # layer 1 gets about 1/13 of layer 10


def test_standard_init_squeezes_the_deep_tanh_distributions_and_xavier_does_not(data):
    from lessonlib.histograms import within
    ratio = {}
    for scheme in (STANDARD, XAVIER, make_scheme("xavier_normal", gain=5 / 3)):
        activations, grads = tanh_hidden_values(scheme, data)
        ratio[scheme] = (within(activations[-1], 0.05),
                         float(grads[0].double().pow(2).mean() / grads[-1].double().pow(2).mean()))
    assert ratio[STANDARD][0] > 0.9 and ratio[XAVIER][0] < 0.4     # layer 10's activations near 0
    assert ratio[STANDARD][1] < 1e-3                               # the gradient collapses on the way back
    assert 0.02 < ratio[XAVIER][1] < 0.5                           # fades: gain 1
    assert ratio[make_scheme("xavier_normal", gain=5 / 3)][1] > 1  # grows: gain 5/3


def test_sgd_stalls_from_the_standard_weights_and_trains_from_xavier(data):
    """Plain SGD at 0.1: the standard weights stay at ln 10, Xavier's train (the chapter's SGD row)."""
    final = {s: train(init_model(mlp(TANH_SIZES, "tanh"), s, seed=0), data, optimizer="sgd", lr=0.1).loss[-1]
             for s in (STANDARD, XAVIER)}
    assert final[STANDARD] > 0.99 * math.log(10)
    assert final[XAVIER] < 0.5


def test_sgd_stalls_on_the_deep_relu_network_from_xavier_and_learns_from_he(data):
    sizes = [64] + [64] * 20 + [10]
    final = {s: train(init_model(mlp(sizes, "relu"), make_scheme(s), seed=0), data, optimizer="sgd", lr=0.01).loss
             for s in ("xavier_normal", "kaiming_normal")}
    assert final["xavier_normal"][-1] > 0.995 * math.log(10)
    assert final["kaiming_normal"][-1] < 0.8 * math.log(10)

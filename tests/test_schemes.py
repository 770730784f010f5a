"""Each scheme samples what its formula says, draws exactly what torch.nn.init draws, and
rejects bad parameters with a message that says what is allowed."""

import math

import pytest
import torch
import torch.nn as nn

from lessonlib import DigitNN, fans, gain, init_model, make_scheme, mlp
from lessonlib.schemes import SCHEMES

FAN_OUT, FAN_IN = 600, 900  # a large layer: 540,000 weights


def big_weight():
    return torch.empty(FAN_OUT, FAN_IN)


def _uniform_std(bound):
    return bound / math.sqrt(3)


# name, params, expected mean, expected std, bound of the support (None: unbounded)
FORMULAS = [
    ("zeros", {}, 0.0, 0.0, 0.0),
    ("constant", {"value": 0.3}, 0.3, 0.0, 0.3),
    ("normal", {"mean": 5.0, "std": 3.0}, 5.0, 3.0, None),
    ("uniform", {"a": -1.0, "b": 3.0}, 1.0, 4 / math.sqrt(12), 3.0),
    ("xavier_uniform", {}, 0.0, math.sqrt(2 / (FAN_IN + FAN_OUT)), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", {"gain": 5 / 3}, 0.0, 5 / 3 * math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    ("kaiming_uniform", {}, 0.0, math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    ("kaiming_normal", {}, 0.0, math.sqrt(2 / FAN_IN), None),
    ("kaiming_normal", {"mode": "fan_out"}, 0.0, math.sqrt(2 / FAN_OUT), None),
    ("kaiming_normal", {"a": 0.2, "nonlinearity": "leaky_relu"}, 0.0,
     math.sqrt(2 / (1 + 0.04)) / math.sqrt(FAN_IN), None),
    ("lecun_uniform", {}, 0.0, math.sqrt(1 / FAN_IN), math.sqrt(3 / FAN_IN)),
    ("lecun_normal", {}, 0.0, math.sqrt(1 / FAN_IN), None),
    ("pytorch_default", {}, 0.0, _uniform_std(1 / math.sqrt(FAN_IN)), 1 / math.sqrt(FAN_IN)),
]


@pytest.mark.parametrize("name, params, mean, std, bound", FORMULAS,
                         ids=[f"{f[0]}{f[1] or ''}" for f in FORMULAS])
def test_sample_statistics_match_the_formula(name, params, mean, std, bound):
    torch.manual_seed(0)
    w = make_scheme(name, **params)(big_weight()).double()
    n = w.numel()
    # The sample mean is off by about std/sqrt(n); the sample std by about std/sqrt(2n).
    assert abs(w.mean().item() - mean) <= 6 * std / math.sqrt(n) + 1e-7
    assert abs(w.std().item() - std) <= 6 * std / math.sqrt(2 * n) + 1e-7
    if bound is not None:
        assert w.abs().max().item() <= abs(bound) + 1e-7
        if std > 0:  # the sample reaches close to the edge of its support
            assert w.abs().max().item() >= 0.99 * abs(bound)


def test_orthogonal_gives_orthonormal_rows():
    w = make_scheme("orthogonal", gain=2.0)(torch.empty(64, 128))
    assert torch.allclose(w @ w.T, 4 * torch.eye(64), atol=1e-4)


TORCH_EQUIVALENTS = [
    ("zeros", {}, lambda w: nn.init.zeros_(w)),
    ("constant", {"value": 1.0}, lambda w: nn.init.constant_(w, 1.0)),
    ("normal", {"mean": 0.2, "std": 0.05}, lambda w: nn.init.normal_(w, 0.2, 0.05)),
    ("uniform", {"a": 0.0, "b": 1.0}, lambda w: nn.init.uniform_(w, 0.0, 1.0)),
    ("xavier_uniform", {}, nn.init.xavier_uniform_),
    ("xavier_normal", {}, nn.init.xavier_normal_),
    ("xavier_uniform", {"gain": 5 / 3}, lambda w: nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))),
    ("kaiming_uniform", {}, lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu")),
    ("kaiming_normal", {}, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    ("kaiming_normal", {"mode": "fan_out"}, lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")),
    ("kaiming_uniform", {"a": 0.1, "nonlinearity": "leaky_relu"}, lambda w: nn.init.kaiming_uniform_(w, a=0.1)),
    ("orthogonal", {}, nn.init.orthogonal_),
    ("pytorch_default", {}, lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5))),
]


@pytest.mark.parametrize("name, params, reference", TORCH_EQUIVALENTS,
                         ids=[f"{t[0]}{t[1] or ''}" for t in TORCH_EQUIVALENTS])
def test_same_draws_as_torch_nn_init(name, params, reference):
    torch.manual_seed(7)
    ours = make_scheme(name, **params)(torch.empty(50, 30, 3))
    torch.manual_seed(7)
    theirs = reference(torch.empty(50, 30, 3))
    assert torch.equal(ours, theirs)


def test_fans_of_linear_and_conv_weights():
    assert fans(nn.Linear(64, 128).weight) == (64, 128)
    assert fans(nn.Conv2d(3, 16, kernel_size=5).weight) == (3 * 25, 16 * 25)


@pytest.mark.parametrize("nonlinearity, param", [("linear", None), ("sigmoid", None), ("tanh", None),
                                                 ("relu", None), ("leaky_relu", 0.2), ("selu", None)])
def test_gain_matches_torch(nonlinearity, param):
    ours = gain(nonlinearity) if param is None else gain(nonlinearity, param)
    assert ours == pytest.approx(nn.init.calculate_gain(nonlinearity, param))


def test_article_loop_is_reproduced_by_init_model():
    """init_model(seed=42) draws exactly what set_seed(42) + article 000's loop draws."""
    ours = init_model(DigitNN(), make_scheme("normal", mean=5, std=3), bias="same", seed=42)
    theirs = DigitNN()
    torch.manual_seed(42)
    for param in theirs.parameters():
        nn.init.normal_(param, mean=5.0, std=3.0)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_bias_policies():
    model = init_model(mlp([4, 8, 2]), "kaiming_normal", bias="zeros", seed=0)
    assert all(torch.count_nonzero(m.bias) == 0 for m in model if isinstance(m, nn.Linear))
    model = init_model(mlp([4, 8, 2]), make_scheme("constant", value=0.5), bias="same", seed=0)
    assert all(torch.all(m.bias == 0.5) for m in model if isinstance(m, nn.Linear))
    torch.manual_seed(1)
    model = mlp([4, 8, 2])
    before = model[0].bias.clone()
    init_model(model, "xavier_uniform", bias="keep", seed=0)
    assert torch.equal(model[0].bias, before)


def test_normalization_layers_are_left_alone():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    init_model(model, "zeros", bias="same")
    assert torch.all(model[1].weight == 1) and torch.all(model[0].weight == 0)


def test_same_seed_same_weights_and_different_seed_different_weights():
    a = init_model(DigitNN(), "kaiming_normal", seed=3)
    b = init_model(DigitNN(), "kaiming_normal", seed=3)
    c = init_model(DigitNN(), "kaiming_normal", seed=4)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_aliases_and_labels():
    assert make_scheme("he_normal") == make_scheme("kaiming_normal")
    assert make_scheme("glorot_uniform").name == "xavier_uniform"
    assert make_scheme("normal", mean=5, std=3).label == "N(μ=5, σ=3)"
    assert make_scheme("kaiming_normal").label == "He normal"
    assert make_scheme("kaiming_normal", mode="fan_out").label == "He normal (fan_out)"
    # the slope a is read only with leaky_relu: a label names it there and nowhere else
    assert make_scheme("kaiming_normal", a=0.1).label == "He normal"
    assert make_scheme("kaiming_normal", a=0.1, nonlinearity="leaky_relu").label == "He normal (0.1, leaky_relu)"
    assert str(make_scheme("uniform", a=-1, b=1)) == "uniform(a=-1.0, b=1.0)"
    assert list(SCHEMES)[0] == "zeros"


# --- clear errors --------------------------------------------------------------------------

def test_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown initialization scheme 'xavier'") as err:
        make_scheme("xavier")
    for name in SCHEMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name, params, message", [
    ("normal", {"std": -1.0}, r"'std' parameter of the 'normal' scheme must be a float in the range \[0, inf\)\. Got -1.0"),
    ("normal", {"mean": float("nan")}, "'mean' parameter of the 'normal' scheme must be a finite float"),
    ("normal", {"std": "0.1"}, "'std' parameter of the 'normal' scheme must be a finite float. Got '0.1'"),
    ("uniform", {"a": 2.0, "b": 1.0}, "needs a <= b. Got a=2.0 > b=1.0"),
    ("xavier_normal", {"gain": 0.0}, r"'gain' parameter .* range \(0, inf\)"),
    ("kaiming_normal", {"nonlinearity": "softmax"}, "'nonlinearity' parameter .* must be one of"),
    ("kaiming_normal", {"mode": "fan_avg"}, "'fan_in' or 'fan_out'"),
    ("kaiming_uniform", {"a": -0.1, "nonlinearity": "leaky_relu"}, "leaky ReLU slope"),
    ("normal", {"sd": 1.0}, "has no parameter 'sd'. Its parameters: mean, std"),
    ("zeros", {"value": 1.0}, "Its parameters: none"),
])
def test_bad_parameters_are_named(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_scheme(name, **params)


def test_gain_of_unknown_activation():
    with pytest.raises(ValueError, match="No gain is defined for nonlinearity 'softmax'. Choose one of"):
        gain("softmax")


def test_bad_bias_policy_and_fan_based_bias():
    with pytest.raises(ValueError, match="'bias' parameter must be one of"):
        init_model(DigitNN(), "zeros", bias="random")
    with pytest.raises(ValueError, match="bias='same' cannot be used with 'kaiming_normal'"):
        init_model(DigitNN(), "kaiming_normal", bias="same")


def test_model_without_weight_matrix():
    with pytest.raises(ValueError, match="no layer with a weight matrix"):
        init_model(nn.ReLU(), "zeros")


def test_fans_of_a_bias_is_an_error():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans(torch.empty(10))

"""Each scheme samples what its formula says, draws exactly what torch.nn.init draws, and
rejects bad parameters with a message that says what is allowed."""

import math
import re

import pytest
import torch
import torch.nn as nn
from scipy import stats

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
    ("kaiming_normal", {"a": 0.2}, 0.0, math.sqrt(2 / (1 + 0.04)) / math.sqrt(FAN_IN), None),  # leaky_relu by default
    ("kaiming_uniform", {"a": 0.5}, 0.0, math.sqrt(2 / (1 + 0.25)) / math.sqrt(FAN_IN),
     math.sqrt(6 / ((1 + 0.25) * FAN_IN))),
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
    ("kaiming_uniform", {"a": 0.1}, lambda w: nn.init.kaiming_uniform_(w, a=0.1)),
    ("kaiming_normal", {"a": 0.5, "mode": "fan_out"}, lambda w: nn.init.kaiming_normal_(w, a=0.5, mode="fan_out")),
    ("kaiming_normal", {}, nn.init.kaiming_normal_),
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


def test_kaiming_has_the_signature_and_defaults_of_torch():
    import inspect

    for ours, theirs in ((SCHEMES["kaiming_uniform"], nn.init.kaiming_uniform_),
                         (SCHEMES["kaiming_normal"], nn.init.kaiming_normal_)):
        ours, theirs = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
        assert list(ours)[1:] == list(theirs)[1:] == ["a", "mode", "nonlinearity", "generator"]
        assert all(ours[p].default == theirs[p].default for p in ("a", "mode", "nonlinearity", "generator"))


def test_the_default_he_draws_the_relu_he_of_the_lessons():
    """leaky_relu with a = 0 has the ReLU gain sqrt(2): the default draws what nonlinearity="relu" draws."""
    for name in ("kaiming_uniform", "kaiming_normal"):
        torch.manual_seed(5)
        default = make_scheme(name)(torch.empty(40, 30))
        torch.manual_seed(5)
        relu = make_scheme(name, nonlinearity="relu")(torch.empty(40, 30))
        assert torch.equal(default, relu)


# As PyTorch's test/nn/test_init.py tests kaiming_uniform_ and kaiming_normal_: draw with a and mode
# only (the default nonlinearity), then a Kolmogorov-Smirnov test against the intended distribution,
# std sqrt(2 / ((1 + a^2) n)) with n the fan of the mode.
@pytest.mark.parametrize("shape", [(60, 50), (24, 20, 3, 3)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("a", [0.0, 0.5, 1.5])
@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_kaiming_passes_torchs_kolmogorov_smirnov_test(kind, a, mode, shape):
    torch.manual_seed(2015)
    w = SCHEMES[f"kaiming_{kind}"](torch.empty(shape), a=a, mode=mode)
    fan_in, fan_out = fans(w)
    std = math.sqrt(2.0 / ((1 + a**2) * (fan_in if mode == "fan_in" else fan_out)))
    if kind == "uniform":
        bound = math.sqrt(3.0) * std
        p_value = stats.kstest(w.flatten().tolist(), "uniform", args=(-bound, 2 * bound)).pvalue
    else:
        p_value = stats.kstest(w.flatten().tolist(), "norm", args=(0.0, std)).pvalue
    assert p_value > 0.0001


GENERATOR_EQUIVALENTS = [
    ("normal", {"mean": 0.2, "std": 0.05}, lambda w, g: nn.init.normal_(w, 0.2, 0.05, generator=g)),
    ("uniform", {"a": -1.0, "b": 2.0}, lambda w, g: nn.init.uniform_(w, -1.0, 2.0, generator=g)),
    ("xavier_uniform", {}, lambda w, g: nn.init.xavier_uniform_(w, generator=g)),
    ("xavier_normal", {"gain": 5 / 3}, lambda w, g: nn.init.xavier_normal_(w, gain=5 / 3, generator=g)),
    ("kaiming_uniform", {}, lambda w, g: nn.init.kaiming_uniform_(w, generator=g)),
    ("kaiming_normal", {"a": 0.2, "mode": "fan_out"},
     lambda w, g: nn.init.kaiming_normal_(w, a=0.2, mode="fan_out", generator=g)),
    ("lecun_uniform", {}, lambda w, g: nn.init.kaiming_uniform_(w, nonlinearity="linear", generator=g)),
    ("lecun_normal", {}, lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g)),
    ("orthogonal", {"gain": 2.0}, lambda w, g: nn.init.orthogonal_(w, gain=2.0, generator=g)),
    ("pytorch_default", {}, lambda w, g: nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)),
]


@pytest.mark.parametrize("name, params, reference", GENERATOR_EQUIVALENTS,
                         ids=[f"{t[0]}{t[1] or ''}" for t in GENERATOR_EQUIVALENTS])
def test_same_generator_same_draws_as_torch_nn_init(name, params, reference):
    global_state = torch.get_rng_state()
    theirs = reference(torch.empty(50, 30, 3), torch.Generator().manual_seed(11))
    ours = SCHEMES[name](torch.empty(50, 30, 3), **params, generator=torch.Generator().manual_seed(11))
    through_scheme = make_scheme(name, **params)(torch.empty(50, 30, 3), generator=torch.Generator().manual_seed(11))
    assert torch.equal(ours, theirs) and torch.equal(through_scheme, theirs)
    assert torch.equal(torch.get_rng_state(), global_state)   # the global generator was not touched
    other = SCHEMES[name](torch.empty(50, 30, 3), **params, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(other, theirs)


def test_a_scheme_takes_its_generator_when_it_draws():
    with pytest.raises(ValueError, match=re.escape("give it when drawing: make_scheme('normal')(weight, generator=g)")):
        make_scheme("normal", generator=torch.Generator())
    g = torch.Generator().manual_seed(0)
    assert torch.equal(make_scheme("constant", value=0.5)(torch.empty(3, 2), generator=g), torch.full((3, 2), 0.5))


@pytest.mark.parametrize("name", list(SCHEMES))
def test_a_zero_element_tensor_warns_as_torch_does_and_is_left_alone(name):
    w = torch.empty(0, 5)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert SCHEMES[name](w) is w
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        make_scheme(name)(torch.empty(4, 0, 3))


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
    # ReLU's gain sqrt(2), with relu or with leaky_relu and a = 0 (the default), is plain He
    assert make_scheme("kaiming_normal", nonlinearity="relu").label == "He normal"
    assert make_scheme("kaiming_uniform", nonlinearity="leaky_relu", a=0).label == "He uniform"
    # the slope a is read only with leaky_relu (the default): a label names it there and nowhere else
    assert make_scheme("kaiming_normal", a=0.1).label == "He normal (0.1, leaky_relu)"
    assert make_scheme("kaiming_normal", a=0.1, nonlinearity="leaky_relu").label == "He normal (0.1, leaky_relu)"
    assert make_scheme("kaiming_normal", a=0.1, nonlinearity="relu").label == "He normal"
    assert make_scheme("kaiming_uniform", a=0.1, nonlinearity="tanh").label == "He uniform (tanh)"
    assert make_scheme("kaiming_normal", a=0.2, mode="fan_out").label == "He normal (0.2, fan_out, leaky_relu)"
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
    ("kaiming_normal", {"a": True}, r"'a' parameter of the 'kaiming_normal' scheme must be a leaky ReLU slope: "
                                    r"a finite float in the range \[0, inf\), not a bool. Got True instead"),
    ("kaiming_uniform", {"a": False}, "'a' parameter of the 'kaiming_uniform' scheme .* not a bool. Got False"),
    ("normal", {"sd": 1.0}, "has no parameter 'sd'. Its parameters: mean, std"),
    ("zeros", {"value": 1.0}, "Its parameters: none"),
])
def test_bad_parameters_are_named(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_scheme(name, **params)


@pytest.mark.parametrize("name", ["kaiming_uniform", "kaiming_normal"])
def test_the_he_functions_check_their_own_arguments(name):
    fill = SCHEMES[name]
    for a in (True, False):
        with pytest.raises(ValueError, match=r"The 'a' parameter must be a leaky ReLU slope: a finite float in "
                                             rf"the range \[0, inf\), not a bool. Got {a} instead"):
            fill(torch.empty(4, 3), a=a)
    with pytest.raises(ValueError, match="'a' parameter must be a leaky ReLU slope.* Got -0.5"):
        fill(torch.empty(4, 3), a=-0.5)
    with pytest.raises(ValueError, match="The 'mode' parameter must be 'fan_in' or 'fan_out'. Got 'fan_avg'"):
        fill(torch.empty(4, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="No gain is defined for nonlinearity 'softmax'"):
        fill(torch.empty(4, 3), nonlinearity="softmax")


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


def test_init_model_help_names_the_schemes():
    doc = init_model.__doc__
    for name in SCHEMES:
        assert re.search(rf"\b{name}\b", doc), name
    assert "make_scheme" in doc and "SCHEMES" in doc


def test_init_model_sends_scheme_parameters_to_make_scheme():
    with pytest.raises(TypeError, match=re.escape("init_model takes model, scheme, bias and seed, not std=0.1. "
                                                  "Give a scheme its parameters with make_scheme: "
                                                  "init_model(model, make_scheme('normal', std=0.1))")):
        init_model(DigitNN(), "normal", std=0.1)
    with pytest.raises(TypeError, match=re.escape("make_scheme('kaiming_normal', a=0.2, mode='fan_out')")):
        init_model(DigitNN(), "kaiming_normal", a=0.2, mode="fan_out")

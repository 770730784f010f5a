"""The He/Kaiming lesson's claims, measured independently of the notebook, and its exercise check."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lessonlib import DigitNN, digits, fans, gain, init_model, make_scheme, mlp, train, two_moons
from lessonlib.exercises import check_init
from lessonlib.exercises.he import CHECK_SLOPES, check_leaky_gain, leaky_relu_gain
from lessonlib.probes import Probe
from lessonlib.theory import predict_backward, predict_forward


def inputs(shape, seed=1000):
    """Standard normal inputs from a generator seeded apart from every network's seed."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def forward_moments(make_net, scheme, x, seeds):
    """Second moment of each layer's pre-activations, shape (layers, networks)."""
    columns = []
    for seed in seeds:
        net = init_model(make_net(), scheme, seed=seed)
        with torch.no_grad(), Probe(net) as probe:
            net(x)
        columns.append(probe.stats("outputs", "second_moment"))
    return np.array(columns).T


# --- ReLU halves the second moment --------------------------------------------------------------

@pytest.mark.parametrize("draw", [
    lambda g: torch.randn(400_000, generator=g, dtype=torch.float64),
    lambda g: 2 * torch.rand(400_000, generator=g, dtype=torch.float64) - 1,
    lambda g: torch.distributions.Laplace(0.0, 1.0).sample((400_000,)).double(),
], ids=["normal", "uniform", "laplace"])
def test_relu_keeps_half_of_the_second_moment_of_any_symmetric_input(draw):
    torch.manual_seed(0)
    z = draw(torch.Generator().manual_seed(0))
    kept = torch.relu(z).pow(2).mean() / z.pow(2).mean()
    assert abs(float(kept) - 0.5) < 0.005


def test_relu_does_not_halve_the_variance():
    z = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = torch.relu(z)
    assert float(a.var() / z.var()) == pytest.approx(0.5 - 1 / (2 * math.pi), abs=0.005)
    assert float(a.mean()) == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.005)


# --- deep ReLU networks: 2/fan_in holds, 1/fan_in halves, 4/fan_in doubles ---------------------------

WIDTH, DEPTH = 256, 20
SIZES = [WIDTH] * (DEPTH + 1)


def test_he_holds_the_second_moment_over_20_layers_on_average():
    x = inputs((64, WIDTH))
    q = forward_moments(lambda: mlp(SIZES, "relu"), make_scheme("kaiming_normal"), x, range(24)).mean(axis=1)
    predicted = predict_forward(SIZES, 2 / WIDTH, "relu", input_second_moment=float(x.pow(2).mean()))
    assert np.allclose(predicted, predicted[0])                      # theory: constant
    assert np.all(np.abs(q / predicted - 1) < 0.25), q / predicted    # measured, mean over 24 networks


@pytest.mark.parametrize("scheme, factor", [
    (make_scheme("xavier_normal"), 0.5),                         # 1/fan_in in square layers
    (make_scheme("normal", std=math.sqrt(4 / WIDTH)), 2.0),      # 4/fan_in
])
def test_other_variances_shrink_or_grow_by_c_over_2_per_layer(scheme, factor):
    q = forward_moments(lambda: mlp(SIZES, "relu"), scheme, inputs((64, WIDTH)), range(8)).mean(axis=1)
    per_layer = (q[-1] / q[0]) ** (1 / (DEPTH - 1))
    assert per_layer == pytest.approx(factor, rel=0.05)


def test_single_networks_scatter_but_their_mean_follows_theory():
    sizes = [WIDTH] * 31
    q = forward_moments(lambda: mlp(sizes, "relu"), make_scheme("kaiming_normal"), inputs((64, WIDTH)), range(40))
    last = q[-1] / predict_forward(sizes, 2 / WIDTH, "relu", input_second_moment=1.0)[-1]
    assert abs(last.mean() - 1) < 0.2                 # the mean over 40 networks
    assert 0.3 < last.std() / last.mean() < 1.0       # one network: tens of percent off
    assert np.median(last) < last.mean()              # the typical network ends below the mean
    assert last.max() / last.min() > 5


def test_inputs_drawn_with_a_networks_seed_copy_its_first_weights():
    """The lesson draws its inputs with seed 1000 because seed 1 would reproduce network 1's weights."""
    net = init_model(mlp([WIDTH, WIDTH], "relu"), make_scheme("kaiming_normal"), seed=1)
    x = inputs((WIDTH, WIDTH), seed=1)
    assert torch.allclose(net[0].weight / math.sqrt(2 / WIDTH), x)


# --- fan_in vs fan_out ------------------------------------------------------------------------

FUNNEL = [1024, 512, 256, 128, 64]


def funnel_moments(mode, seeds=range(16)):
    x, upstream = inputs((128, FUNNEL[0]), 1001), inputs((128, FUNNEL[-1]), 1002)
    forward, backward = [], []
    for seed in seeds:
        net = init_model(mlp(FUNNEL, "relu"), make_scheme("kaiming_normal", mode=mode), seed=seed)
        with Probe(net) as probe:
            (net(x) * upstream).sum().backward()
        forward.append(probe.stats("outputs", "second_moment"))
        backward.append(probe.stats("grads", "second_moment"))
    return np.mean(forward, axis=0), np.mean(backward, axis=0)


def test_fan_in_mode_holds_the_forward_signal_and_the_gradient_shrinks_by_the_width_ratio():
    forward, backward = funnel_moments("fan_in")
    weight_vars = [2 / n_in for n_in in FUNNEL[:-1]]
    assert np.all(np.abs(forward / predict_forward(FUNNEL, weight_vars, "relu") - 1) < 0.1)
    assert np.allclose(predict_backward(FUNNEL, weight_vars, "relu"), [1 / 8, 1 / 4, 1 / 2, 1])
    assert backward[0] / backward[-1] == pytest.approx(1 / 8, rel=0.1)


def test_fan_out_mode_holds_the_gradient_and_the_signal_grows_by_the_width_ratio():
    forward, backward = funnel_moments("fan_out")
    weight_vars = [2 / n_out for n_out in FUNNEL[1:]]
    assert np.all(np.abs(backward / predict_backward(FUNNEL, weight_vars, "relu") - 1) < 0.1)
    assert forward[-1] / forward[0] == pytest.approx(8, rel=0.1)


# --- leaky ReLU ---------------------------------------------------------------------------------

@pytest.mark.parametrize("slope", CHECK_SLOPES)
def test_leaky_gain_agrees_with_torch(slope):
    assert gain("leaky_relu", slope) == pytest.approx(nn.init.calculate_gain("leaky_relu", slope), rel=1e-12)
    assert leaky_relu_gain(slope) == pytest.approx(math.sqrt(2 / (1 + slope**2)), rel=1e-12)


def test_kaiming_normal_defaults_to_the_relu_gain():
    import inspect
    params = inspect.signature(nn.init.kaiming_normal_).parameters
    assert params["a"].default == 0 and params["nonlinearity"].default == "leaky_relu"
    assert nn.init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))


def leaky_net(width, depth, slope):
    layers = []
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.LeakyReLU(slope)]
    return nn.Sequential(*layers, nn.Linear(width, width))


def test_relu_gain_on_leaky_02_grows_by_exactly_1_04_per_layer_against_the_matched_gain():
    """Same seed, weights scaled: a positively homogeneous network scales its layers exactly."""
    x = inputs((64, 128))
    relu_gain = forward_moments(lambda: leaky_net(128, 30, 0.2), make_scheme("kaiming_normal"), x, [0])[:, 0]
    matched = forward_moments(lambda: leaky_net(128, 30, 0.2),
                              make_scheme("kaiming_normal", a=0.2, nonlinearity="leaky_relu"), x, [0])[:, 0]
    assert (relu_gain[-1] / relu_gain[0]) / (matched[-1] / matched[0]) == pytest.approx(1.04**29, rel=1e-3)


def test_matched_leaky_gain_holds_the_second_moment_on_average():
    x = inputs((64, WIDTH))
    scheme = make_scheme("kaiming_normal", a=0.2, nonlinearity="leaky_relu")
    q = forward_moments(lambda: leaky_net(WIDTH, DEPTH, 0.2), scheme, x, range(20)).mean(axis=1)
    predicted = predict_forward(SIZES, gain("leaky_relu", 0.2) ** 2 / WIDTH, "leaky_relu",
                                input_second_moment=float(x.pow(2).mean()), negative_slope=0.2)
    assert np.all(np.abs(q / predicted - 1) < 0.25)


def test_uniform_he_has_the_normal_variance():
    w = make_scheme("kaiming_uniform")(torch.empty(300, 500))
    assert float(w.abs().max()) <= math.sqrt(6 / 500)
    assert float(w.std()) == pytest.approx(math.sqrt(2 / 500), rel=0.02)


# --- the article's He run, the two moons' first layer, the deep digits net at initialization -----

def test_article_000_he_run_gives_97_22_percent():
    model = init_model(DigitNN(), make_scheme("kaiming_normal"), bias="zeros", seed=42)
    history = train(model, digits())
    assert round(100 * history.final_test_acc, 2) == 97.22     # 350 of 360 test images


@pytest.mark.parametrize("name, sigma", [
    ("kaiming_normal", 1.0), ("xavier_normal", math.sqrt(2 / 66)),
])
def test_two_moons_first_layer_scale(name, sigma):
    moons = two_moons()
    nets = [init_model(mlp([2, 64, 64, 64, 2], "relu"), make_scheme(name), seed=seed) for seed in range(5)]
    w = torch.cat([net[0].weight.detach().flatten() for net in nets])
    with torch.no_grad():
        z = torch.cat([net[0](moons.X_train).flatten() for net in nets])
    assert float(w.std()) == pytest.approx(sigma, rel=0.1)
    assert float(z.std()) == pytest.approx(sigma * math.sqrt(float(moons.X_train.pow(2).mean(0).sum())), rel=0.1)


def test_deep_digits_network_pytorch_default_leaves_nothing_of_the_input():
    data = digits()
    sizes = [64] + [48] * 20 + [10]
    medians = {}
    for name in ("kaiming_normal", "pytorch_default"):
        q = []
        for seed in range(10):
            net = init_model(mlp(sizes, "relu"), make_scheme(name), seed=seed)
            with torch.no_grad():
                q.append(float(net(data.X_train).double().pow(2).mean()))
        medians[name] = np.median(q)
    assert medians["kaiming_normal"] > 0.05
    assert medians["pytorch_default"] < 1e-12
    torch.manual_seed(0)
    with torch.no_grad():
        logits = mlp(sizes, "relu")(data.X_train).double()   # nn.Linear's own init, biases included
    assert float(logits.pow(2).mean()) > 1e-4                 # the biases keep the logits alive
    assert float(logits.std(axis=0).max()) < 1e-6             # but they are the same for every image


def test_exercise_numbers():
    assert predict_forward([256] * 31, 1.9 / 256, "relu")[-1] == pytest.approx(1.9 * 0.95**29)
    assert 1.9 * 0.95**29 == pytest.approx(0.429, abs=5e-4)   # the solution's number
    assert fans(nn.Conv2d(16, 32, 3).weight) == (144, 288)


# --- the exercise checks --------------------------------------------------------------------------

def test_check_leaky_gain_accepts_the_gain(capsys):
    assert check_leaky_gain(lambda a: math.sqrt(2 / (1 + a**2)))
    assert check_leaky_gain(lambda a: nn.init.calculate_gain("leaky_relu", a))
    assert check_leaky_gain(lambda a: torch.tensor(math.sqrt(2 / (1 + a**2))))
    assert "✓ Correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, phrase", [
    (lambda a: 2 / (1 + a**2), "without the square root"),
    (lambda a: math.sqrt(2 / (1 + a)), "with a where a^2 belongs"),
    (lambda a: math.sqrt((1 + a**2) / 2), "not its inverse"),
    (lambda a: math.sqrt(2), "whatever the slope"),
    (lambda a: 1.4, "Hint"),
    (lambda a: 1 / a, "ZeroDivisionError"),
    (lambda a: "sqrt(2)", "should return a number"),
])
def test_check_leaky_gain_names_the_mistake(wrong, phrase, capsys):
    assert not check_leaky_gain(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ Not yet") and phrase in out, out


def test_check_leaky_gain_rejects_bad_input():
    with pytest.raises(ValueError, match="needs a function"):
        check_leaky_gain(1.41)
    with pytest.raises(ValueError, match="negative_slope"):
        leaky_relu_gain(-0.1)


@pytest.mark.parametrize("std, phrase", [
    (lambda fan_in, fan_out: 2 / fan_in, "your std is 2/fan_in"),
    (lambda fan_in, fan_out: math.sqrt(2 / fan_out), "your std is sqrt(2/fan_out)"),
])
def test_check_init_explains_the_usual_he_mistakes(std, phrase, capsys):
    def candidate(weight):
        fan_out, fan_in = weight.shape
        return weight.normal_(0, std(fan_in, fan_out))

    assert not check_init(candidate, "kaiming_normal")
    out = capsys.readouterr().out
    assert phrase in out and "expected sqrt(2/fan_in)" in out


def test_check_init_accepts_he_normal_by_hand():
    def my_he_normal(weight):
        fan_out, fan_in = weight.shape
        with torch.no_grad():
            return weight.normal_(0, math.sqrt(2 / fan_in))

    assert check_init(my_he_normal, "kaiming_normal", verbose=False)


def test_pytorch_idiom_kaiming_normal_draws_what_init_model_draws():
    def he_init(module):
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)

    plain = DigitNN()
    torch.manual_seed(42)
    plain.apply(he_init)
    ours = init_model(DigitNN(), make_scheme("kaiming_normal"), bias="zeros", seed=42)
    with torch.no_grad():
        assert max(float((p - q).abs().max()) for p, q in zip(plain.parameters(), ours.parameters())) == 0.0


def test_deep_digits_histograms_narrow_from_xavier_and_keep_their_width_from_he():
    data = digits()
    sizes = [64] + [48] * 20 + [10]
    rms = lambda t: float(t.double().pow(2).mean().sqrt())
    ratios = {}
    for name in ("xavier_normal", "kaiming_normal"):
        net = init_model(mlp(sizes, "relu"), make_scheme(name), seed=0)
        with Probe(net) as probe:
            nn.functional.cross_entropy(net(data.X_train), data.y_train).backward()
        ratios[name] = (rms(probe.outputs[19]) / rms(probe.outputs[0]), rms(probe.grads[0]) / rms(probe.grads[19]))
    assert ratios["xavier_normal"][0] < 0.01 and ratios["xavier_normal"][1] < 0.01     # 2^(-19/2) = 0.0014
    assert 0.1 < ratios["kaiming_normal"][0] < 10 and 0.1 < ratios["kaiming_normal"][1] < 10   # drifts, by order 1
    assert ratios["kaiming_normal"][0] > 100 * ratios["xavier_normal"][0]

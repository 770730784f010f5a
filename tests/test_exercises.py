"""The exercise checks accept correct hand-written schemes and name what is wrong in common mistakes."""

import math

import pytest
import torch
import torch.nn as nn

from lessonlib import make_scheme
from lessonlib.exercises import check_init, expected_spread


def uniform_with_bound(bound_of):
    def init(w):
        fan_out, fan_in = w.shape
        b = bound_of(fan_in, fan_out)
        return w.uniform_(-b, b)
    return init


def normal_with_std(std_of):
    def init(w):
        fan_out, fan_in = w.shape
        return w.normal_(0.0, std_of(fan_in, fan_out))
    return init


CORRECT = [
    ("xavier_uniform", uniform_with_bound(lambda i, o: math.sqrt(6 / (i + o)))),
    ("xavier_normal", normal_with_std(lambda i, o: math.sqrt(2 / (i + o)))),
    ("kaiming_uniform", uniform_with_bound(lambda i, o: math.sqrt(6 / i))),
    ("kaiming_normal", normal_with_std(lambda i, o: math.sqrt(2 / i))),
    ("lecun_normal", normal_with_std(lambda i, o: 1 / math.sqrt(i))),
    ("pytorch_default", uniform_with_bound(lambda i, o: 1 / math.sqrt(i))),
    ("xavier_uniform", nn.init.xavier_uniform_),
    ("kaiming_normal", lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
]


@pytest.mark.parametrize("scheme, candidate", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_implementations_pass(scheme, candidate, capsys):
    assert check_init(candidate, scheme)
    assert capsys.readouterr().out.startswith("✓ Correct")


MISTAKES = [
    ("xavier_uniform", uniform_with_bound(lambda i, o: math.sqrt(3 / i)),
     "your bound is sqrt(3/fan_in) = 0.07746; expected sqrt(6/(fan_in+fan_out))"),
    ("xavier_uniform", normal_with_std(lambda i, o: math.sqrt(2 / (i + o))),
     "look normally distributed"),
    ("xavier_normal", uniform_with_bound(lambda i, o: math.sqrt(6 / (i + o))),
     "look uniformly distributed"),
    ("kaiming_normal", normal_with_std(lambda i, o: 2 / i), "your std is 2/fan_in"),
    ("kaiming_normal", normal_with_std(lambda i, o: math.sqrt(2 / o)),
     "your std is sqrt(2/fan_out) = 0.08165; expected sqrt(2/fan_in)"),
    ("kaiming_normal", normal_with_std(lambda i, o: math.sqrt(1 / i)),
     "your std is sqrt(1/fan_in) = 0.04472; expected sqrt(2/fan_in)"),
    ("kaiming_normal", lambda w: w.fill_(0.05), "all your weights are equal"),
    ("lecun_normal", lambda w: w.normal_(0.2, 0.045), "mean 0.2"),
    ("xavier_normal", lambda w: torch.zeros(3), "shape (3,)"),
    ("xavier_normal", lambda w: 1.0, "returned float"),
    ("xavier_normal", lambda w: w.fill_(float("nan")), "inf or NaN"),
]


@pytest.mark.parametrize("scheme, candidate, message", MISTAKES, ids=[m[2][:30] for m in MISTAKES])
def test_common_mistakes_are_named(scheme, candidate, message, capsys):
    assert not check_init(candidate, scheme)
    out = capsys.readouterr().out
    assert out.startswith("✗ Not yet") and message in out, out


def test_expected_spread_of_leaky_relu_and_gain():
    scheme = make_scheme("kaiming_normal", a=0.2, nonlinearity="leaky_relu")
    distribution, spread, formula = expected_spread(scheme, 500, 300)
    assert distribution == "normal" and spread == pytest.approx(math.sqrt(2 / 1.04 / 500))
    with pytest.raises(ValueError, match="covers the zero-mean fan-based schemes"):
        expected_spread("normal", 500, 300)

r"""Checks for the random-initialization lesson: the mean a layer produces, and the scale that keeps a deep signal.

**The mean of a pre-activation.** For :math:`z_i = \sum_{j=1}^{n} W_{ij} a_j + b_i` with weights
of mean :math:`\mu_w`, biases of mean :math:`\mu_b` and inputs of mean :math:`\mathbb{E}[a]`
(weights independent of the inputs), linearity of the expectation gives

.. math:: \mathbb{E}[z] = n\,\mu_w\,\mathbb{E}[a] + \mu_b .

The spread of the weights does not enter. The term grows with the fan-in :math:`n`, and it
vanishes only when the inputs are centred (:math:`\mathbb{E}[a] = 0`); after a ReLU they never are.
:func:`check_mean_prediction` runs a learner's ``predict(fan_in, weight_mean, input_mean, bias_mean)``
on a few layers and names the mistake it looks like.

**The scale that keeps a deep ReLU signal.** With zero-mean weights of standard deviation
:math:`\sigma` and zero biases, each ReLU layer of fan-in :math:`n` multiplies the second moment of
the pre-activations by :math:`n\sigma^2/2` (the ReLU keeps half of it), so after :math:`L` layers

.. math:: \frac{q_{L}}{q_1} = \left(\frac{n\sigma^2}{2}\right)^{L-1},

which stays 1 only for :math:`\sigma = \sqrt{2/n}` (He et al., 2015).
:func:`check_depth_preserving_std` runs a learner's ``sigma(fan_in)`` on 20-layer ReLU networks of
two widths, measures the signal and says by how much it grows or fades.
"""

import math

import numpy as np
import torch

from ..models import mlp
from ..probes import Probe
from ..schemes import init_model, make_scheme

# ---------------------------------------------------------------------------------------------
# the mean of a pre-activation

MEAN_CASES = (  # (fan_in, weight_mean, input_mean, bias_mean): layers with and without centred inputs
    (64, 0.2, 0.0, 0.2),
    (128, 0.2, 0.8, 0.2),
    (64, 5.0, 22.0, 5.0),
    (100, -0.1, 1.5, 0.0),
    (32, 0.5, 0.25, -0.3),
)
"""The layers :func:`check_mean_prediction` tries."""

_RTOL = 1e-6


def preactivation_mean(fan_in: int, weight_mean: float, input_mean: float, bias_mean: float = 0.0) -> float:
    r""":math:`\mathbb{E}[z] = n\,\mu_w\,\mathbb{E}[a] + \mu_b` for a layer of fan-in :math:`n`."""
    return fan_in * weight_mean * input_mean + bias_mean


_MISTAKES = {  # what a learner may write instead, and what it means
    "you left out the bias: E[z] = n * mu_w * E[a] + mu_b, and the bias adds its mean mu_b":
        lambda n, mw, ma, mb: n * mw * ma,
    "you left out the fan-in: each unit sums n products w_ij * a_j, so their means add up n times":
        lambda n, mw, ma, mb: mw * ma + mb,
    "you scaled by sqrt(fan_in); means add linearly (n terms give n times the mean), "
    "only the standard deviations of independent terms add like sqrt(n)":
        lambda n, mw, ma, mb: math.sqrt(n) * mw * ma + mb,
    "you wrote the answer for centred inputs: E[a] = 0 only for the standardized data, "
    "not after a ReLU":
        lambda n, mw, ma, mb: mb,
    "you squared the weight mean; the mean of a product of independent factors is the product of their means":
        lambda n, mw, ma, mb: n * mw**2 * ma + mb,
}


def _mean_problem(candidate) -> str | None:
    for case in MEAN_CASES:
        n, mw, ma, mb = case
        where = f"fan_in={n}, weight_mean={mw}, input_mean={ma}, bias_mean={mb}"
        try:
            answer = candidate(*case)
        except Exception as error:  # the learner's code failed: say how, do not crash the lesson
            return f"for {where} your function raised {type(error).__name__}: {error}"
        try:
            answer = float(answer)
        except (TypeError, ValueError):
            return f"for {where} your function returned {type(answer).__name__}; it should return one number."
        expected = preactivation_mean(*case)
        if math.isclose(answer, expected, rel_tol=_RTOL, abs_tol=1e-9):
            continue
        for hint, mistake in _MISTAKES.items():
            if math.isclose(answer, mistake(*case), rel_tol=_RTOL, abs_tol=1e-9):
                return f"for {where} you predicted {answer:.4g}, expected {expected:.4g}: {hint}."
        return f"for {where} you predicted {answer:.4g}, expected n * mu_w * E[a] + mu_b = {expected:.4g}."
    return None


def check_mean_prediction(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(fan_in, weight_mean, input_mean, bias_mean)``, a learner's :math:`\mathbb{E}[z]`.

    Tried on every layer of :data:`MEAN_CASES`; prints what it found (naming the mistake when the
    answer matches a common one) and returns True if every prediction is right.
    """
    if not callable(candidate):
        raise ValueError(f"'candidate' must be a function (fan_in, weight_mean, input_mean, bias_mean) -> "
                         f"number. Got {type(candidate).__name__}.")
    problem = _mean_problem(candidate)
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else
              f"✓ Correct: E[z] = n * mu_w * E[a] + mu_b on {len(MEAN_CASES)} layers.")
    return problem is None


# ---------------------------------------------------------------------------------------------
# the scale that keeps a deep ReLU signal

DEPTH = 20
"""Hidden ReLU layers of the networks :func:`check_depth_preserving_std` measures."""

CHECK_WIDTHS = (64, 256)
"""The fan-ins it tries: a rule that ignores the width passes at most one of them."""

_FACTOR_TOLERANCE = 0.03  # per layer: 1.03**19 is less than a factor 1.8 over the whole network


def relu_factor(fan_in: int, sigma: float) -> float:
    r"""The factor :math:`n\sigma^2/2` by which a ReLU layer multiplies the second moment."""
    return fan_in * sigma**2 / 2


def _std_formulas(fan_in: int) -> dict:
    """Standard deviations a learner may try, by the formula they would write."""
    formulas = {f"sqrt({k}/fan_in)": math.sqrt(k / fan_in) for k in (1, 2, 3, 6)}
    formulas.update({f"{k}/fan_in": k / fan_in for k in (1, 2)})
    formulas["1/sqrt(3*fan_in)"] = 1 / math.sqrt(3 * fan_in)
    return formulas


def _formula_of(sigma: float, fan_in: int) -> str:
    formulas = _std_formulas(fan_in)
    best = min(formulas, key=lambda f: abs(formulas[f] / sigma - 1))
    return f"{best} = {sigma:.4g}" if abs(formulas[best] / sigma - 1) < 0.01 else f"{sigma:.4g}"


def measured_depth_ratio(fan_in: int, sigma: float, seeds=range(4), n_samples: int = 256) -> float:
    r""":math:`q_{L}/q_1`, the second moment of the last hidden layer's pre-activations over the
    first's, averaged over ``seeds`` networks ``mlp([fan_in] * (DEPTH + 1), "relu")`` with weights
    :math:`\mathcal{N}(0, \sigma^2)`, zero biases and standard normal inputs (computed in float64,
    so that neither an exploding nor a vanishing signal leaves the range of the numbers)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n_samples, fan_in, generator=generator, dtype=torch.float64)
    scheme = make_scheme("normal", std=float(sigma))
    ratios = []
    for seed in seeds:
        model = init_model(mlp([fan_in] * (DEPTH + 1), "relu"), scheme, seed=seed).double()
        with torch.no_grad(), Probe(model) as probe:
            model(x)
        q = probe.stats("outputs", "second_moment")
        ratios.append(q[DEPTH - 1] / q[0])
    return float(np.mean(ratios))


def _depth_problem(candidate) -> str | None:
    answers = {}
    for fan_in in CHECK_WIDTHS:
        try:
            sigma = candidate(fan_in)
            sigma = float(sigma)
        except Exception as error:  # the learner's code failed: say how, do not crash the lesson
            return f"for fan_in={fan_in} your function raised or returned something that is not a number ({error})."
        if not math.isfinite(sigma) or sigma <= 0:
            return f"for fan_in={fan_in} your sigma is {sigma!r}; a standard deviation must be a positive number."
        answers[fan_in] = sigma
    for fan_in, sigma in answers.items():
        factor = relu_factor(fan_in, sigma)
        if abs(factor - 1) <= _FACTOR_TOLERANCE:
            continue
        ratio = measured_depth_ratio(fan_in, sigma)
        verb = "grows" if factor > 1 else "fades"
        same = " (your sigma does not depend on fan_in, but the right one must)" \
            if len(set(answers.values())) == 1 else ""
        return (f"for fan_in={fan_in} your sigma is {_formula_of(sigma, fan_in)}{same}. Each ReLU layer multiplies "
                f"the second moment by fan_in * sigma^2 / 2 = {factor:.3g}, so the signal {verb}: after "
                f"{DEPTH - 1} more layers it is {factor ** (DEPTH - 1):.3g} times that of layer 1 (measured over "
                f"4 networks: {ratio:.3g}). Expected sigma = sqrt(2/fan_in) = {math.sqrt(2 / fan_in):.4g}.")
    return None


def check_depth_preserving_std(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(fan_in) -> sigma``: the weight std that keeps the signal of a deep ReLU net.

    The check computes the per-layer factor :math:`n\sigma^2/2` for fan-ins 64 and 256 and, when
    it is off by more than 3%, measures the signal of 20-layer networks with that
    :math:`\sigma` and reports it. Prints what it found and returns True if both fan-ins pass.
    """
    if not callable(candidate):
        raise ValueError(f"'candidate' must be a function of the fan-in returning a standard deviation. "
                         f"Got {type(candidate).__name__}.")
    problem = _depth_problem(candidate)
    if verbose:
        if problem:
            print(f"✗ Not yet: {problem}")
        else:
            ratio = measured_depth_ratio(CHECK_WIDTHS[0], candidate(CHECK_WIDTHS[0]))
            print(f"✓ Correct: with your sigma each ReLU layer keeps the second moment (measured over {DEPTH} "
                  f"layers of width {CHECK_WIDTHS[0]}: layer {DEPTH} / layer 1 = {ratio:.2f}).")
    return problem is None

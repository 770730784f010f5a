r"""Checks for the Xavier/Glorot lesson: predicting the variance of a deep linear network.

In a linear network :math:`z_l = W_l z_{l-1}` (:math:`z_0 = x`) with independent zero-mean
weights of variance :math:`v_l` and widths :math:`n_0, n_1, \dots, n_L`, each layer multiplies
the variance by :math:`n_{l-1} v_l`, so

.. math:: \frac{\mathrm{Var}(z_l)}{\mathrm{Var}(x)} = \prod_{k=1}^{l} n_{k-1}\, v_k .

The rules the lesson compares set :math:`v_k` from the fans of layer :math:`k`
(:math:`n_\text{in} = n_{k-1}`, :math:`n_\text{out} = n_k`):

- ``"fan_in"``: :math:`v_k = 1/n_{k-1}`, every factor is 1 and the variance stays 1;
- ``"fan_out"``: :math:`v_k = 1/n_k`, the factors :math:`n_{k-1}/n_k` telescope to :math:`n_0/n_l`;
- ``"xavier"``: :math:`v_k = 2/(n_{k-1}+n_k)`, factors :math:`2n_{k-1}/(n_{k-1}+n_k)` that do not telescope;
- ``"geometric"``: :math:`v_k = 1/\sqrt{n_{k-1} n_k}`, factors :math:`\sqrt{n_{k-1}/n_k}`
  that telescope to :math:`\sqrt{n_0/n_l}`.

:func:`check_linear_forward` runs a learner's ``predict(widths)`` on a few width lists and
says precisely where it departs from this product, and which mistake it looks like.
"""

import math

import numpy as np

RULES = {
    "fan_in": ("1/fan_in", lambda fan_in, fan_out: 1 / fan_in),
    "fan_out": ("1/fan_out", lambda fan_in, fan_out: 1 / fan_out),
    "xavier": ("2/(fan_in+fan_out)", lambda fan_in, fan_out: 2 / (fan_in + fan_out)),
    "geometric": ("1/sqrt(fan_in*fan_out)", lambda fan_in, fan_out: 1 / math.sqrt(fan_in * fan_out)),
}
"""Weight-variance rules by name: (formula, function of the fans)."""

CHECK_WIDTHS = ([128, 512, 128, 512, 128], [784, 256, 64, 10], [64, 128, 64, 10], [10, 40, 160, 20, 300])
"""The width lists the check tries (input width first): layers that widen, narrow and alternate."""

_RTOL = 1e-3


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"The 'rule' parameter must be one of {list(RULES)}. Got {rule!r} instead.")


def linear_forward_variances(widths, rule: str) -> np.ndarray:
    r""":math:`\mathrm{Var}(z_l)/\mathrm{Var}(x) = \prod_{k\le l} n_{k-1} v_k` for
    :math:`l = 1, \dots, L`, with :math:`v_k` given by ``rule`` (see :data:`RULES`)."""
    _check_rule(rule)
    widths = list(widths)
    if len(widths) < 2 or not all(isinstance(n, int) and n > 0 for n in widths):
        raise ValueError(f"'widths' must list at least two positive ints. Got {widths!r} instead.")
    variance_of = RULES[rule][1]
    factors = [fan_in * variance_of(fan_in, fan_out) for fan_in, fan_out in zip(widths[:-1], widths[1:])]
    return np.cumprod(factors)


def _matches(answer, expected) -> bool:
    return len(answer) == len(expected) and np.allclose(answer, expected, rtol=_RTOL, atol=0)


def _as_array(returned, widths):
    """The learner's answer as a float array, or a message saying why it cannot be one."""
    try:
        answer = np.asarray(returned, dtype=float).ravel()
    except (TypeError, ValueError):
        return None, (f"for widths {widths} your function returned {type(returned).__name__}; "
                      f"it should return one number per layer.")
    if not np.all(np.isfinite(answer)):
        return None, f"for widths {widths} your prediction contains inf or NaN: {answer.tolist()}."
    return answer, None


def _diagnose(answer, widths, rule) -> str | None:
    """What is wrong with ``answer`` for ``widths`` under ``rule``, or None."""
    expected = linear_forward_variances(widths, rule)
    if _matches(answer, expected):
        return None
    n_layers = len(widths) - 1
    if len(answer) == n_layers + 1 and _matches(answer[1:], expected):
        return (f"for widths {widths} you returned {len(answer)} values; the first one is the input. "
                f"Return one value per layer, Var(z_1) ... Var(z_{n_layers}), {n_layers} in all.")
    if len(answer) != n_layers:
        return (f"for widths {widths} ({n_layers} layers) you returned {len(answer)} values; "
                f"expected {n_layers}, one per layer.")
    for other in RULES:
        if other != rule and _matches(answer, linear_forward_variances(widths, other)):
            return (f"your numbers are what Var(W) = {RULES[other][0]} gives; the exercise asks for "
                    f"Var(W) = {RULES[rule][0]} (widths {widths}).")
    if _matches(answer, 1 / expected):
        return (f"your prediction is upside down: you have the reciprocal of the variance "
                f"(widths {widths}, expected {_fmt(expected)}).")
    variance_of = RULES[rule][1]
    factors = np.array([a * variance_of(a, b) for a, b in zip(widths[:-1], widths[1:])])
    if _matches(answer, factors):
        return (f"you returned each layer's own factor n_(l-1) Var(W_l) = {_fmt(factors)}; the variance "
                f"is multiplied by every layer it passes, so take the running product "
                f"(expected {_fmt(expected)} for widths {widths}).")
    layer = int(np.argmax(~np.isclose(answer, expected, rtol=_RTOL, atol=0)))
    return (f"for widths {widths}, layer {layer + 1}: you predicted {answer[layer]:.4g}, "
            f"expected {expected[layer]:.4g} (all layers: {_fmt(expected)}).")


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def check_linear_forward(candidate, rule: str = "fan_out", *, verbose: bool = True) -> bool:
    r"""Check ``candidate(widths)``, a learner's prediction of :math:`\mathrm{Var}(z_l)/\mathrm{Var}(x)`.

    ``candidate`` receives the widths :math:`n_0, \dots, n_L` of a linear network (input first)
    whose weights have the variance that ``rule`` prescribes (``"fan_in"``, ``"fan_out"``,
    ``"xavier"`` or ``"geometric"``) and returns the :math:`L` predicted variance ratios, one
    per layer. Tried on every width list of :data:`CHECK_WIDTHS`; prints what it found and
    returns True if every prediction is right to 0.1%.
    """
    _check_rule(rule)
    if not callable(candidate):
        raise ValueError(f"'candidate' must be a function of the widths. Got {type(candidate).__name__}.")
    problem = None
    for widths in CHECK_WIDTHS:
        try:
            returned = candidate(list(widths))
        except Exception as error:  # the learner's code failed: say how, do not crash the lesson
            problem = f"for widths {list(widths)} your function raised {type(error).__name__}: {error}"
            break
        answer, problem = _as_array(returned, list(widths))
        if problem is None:
            problem = _diagnose(answer, list(widths), rule)
        if problem is not None:
            break
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else
              f"✓ Correct: your prediction matches Var(W) = {RULES[rule][0]} on {len(CHECK_WIDTHS)} "
              f"networks.")
    return problem is None

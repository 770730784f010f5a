r"""Checks for the He/Kaiming lesson: the gain of a leaky ReLU.

A leaky ReLU with negative slope :math:`a` maps :math:`z \mapsto z` for :math:`z > 0` and
:math:`z \mapsto a z` for :math:`z < 0`. For :math:`z` symmetric around 0 each half carries half
of the second moment, so

.. math:: \mathbb{E}[f(z)^2] = \tfrac12 \mathbb{E}[z^2] + \tfrac12 a^2 \mathbb{E}[z^2]
          = \frac{1+a^2}{2}\,\mathbb{E}[z^2].

A layer with :math:`\mathrm{Var}(W) = g^2/n_\text{in}` multiplies the second moment of the
pre-activations by :math:`g^2 (1+a^2)/2`; it stays constant for the gain

.. math:: g(a) = \sqrt{\frac{2}{1+a^2}},

:math:`\sqrt 2` for ReLU (:math:`a = 0`) and 1 for the identity (:math:`a = 1`), as
``torch.nn.init.calculate_gain("leaky_relu", a)`` returns.

:func:`check_leaky_gain` runs a learner's ``gain(a)`` on several slopes and, when it is off,
names the formula the answers follow (the usual slips: the variance factor without the square
root, :math:`a` in place of :math:`a^2`, the fraction kept instead of its inverse, the ReLU gain
for every slope).
"""

import math

CHECK_SLOPES = (0.0, 0.01, 0.1, 0.2, 0.5, 1.0, 3.0)
"""The negative slopes the check tries: ReLU, the usual leaky slopes, the identity and a steep one."""

_RTOL = 1e-6


def leaky_relu_gain(negative_slope: float) -> float:
    r"""The exact gain :math:`\sqrt{2/(1+a^2)}` for a leaky ReLU of slope :math:`a \geq 0`."""
    if not isinstance(negative_slope, (int, float)) or isinstance(negative_slope, bool) \
            or not math.isfinite(negative_slope) or negative_slope < 0:
        raise ValueError(f"The 'negative_slope' parameter must be a float in the range [0, inf). "
                         f"Got {negative_slope!r} instead.")
    return math.sqrt(2.0 / (1.0 + negative_slope**2))


MISTAKES = {
    "2/(1+a^2), the variance factor g^2 without the square root": lambda a: 2 / (1 + a**2),
    "sqrt(2/(1+a)), with a where a^2 belongs": lambda a: math.sqrt(2 / (1 + a)),
    "sqrt((1+a^2)/2), the fraction of the second moment kept, not its inverse": lambda a: math.sqrt((1 + a**2) / 2),
    "sqrt(2), the ReLU gain whatever the slope": lambda a: math.sqrt(2),
    "sqrt(2)/(1+a)": lambda a: math.sqrt(2) / (1 + a),
    "sqrt(2/(1-a^2))": lambda a: math.sqrt(2 / (1 - a**2)) if a < 1 else math.nan,
}
"""Formulas a learner may write instead of the gain, by description."""


def _close(x: float, y: float) -> bool:
    return math.isfinite(x) and math.isfinite(y) and abs(x - y) <= _RTOL * max(abs(y), 1e-12)


def check_leaky_gain(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(a)``, a learner's leaky-ReLU gain, against :math:`\sqrt{2/(1+a^2)}`.

    ``candidate`` takes the negative slope ``a`` (a float) and returns the gain (a float). It is
    tried on :data:`CHECK_SLOPES`; the check prints what it found (the first slope where the
    answer is off, and which common slip the answers match) and returns True if every answer is
    right to a relative 1e-6.
    """
    if not callable(candidate):
        raise ValueError(f"check_leaky_gain needs a function gain(a). Got {type(candidate).__name__} instead.")
    problem = _diagnose(candidate)
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else
              "✓ Correct: your gain is sqrt(2/(1+a^2)) for every slope tried "
              f"({', '.join(f'{a:g}' for a in CHECK_SLOPES)}).")
    return problem is None


def _diagnose(candidate) -> str | None:
    answers = {}
    for a in CHECK_SLOPES:
        try:
            value = candidate(a)
        except Exception as error:  # the learner's code: report, do not crash
            return f"gain({a:g}) raised {type(error).__name__}: {error}"
        try:
            answers[a] = float(value)
        except (TypeError, ValueError):
            return f"gain({a:g}) returned {value!r}; it should return a number."
    wrong = [a for a in CHECK_SLOPES if not _close(answers[a], leaky_relu_gain(a))]
    if not wrong:
        return None
    a = wrong[0]
    found = f"gain({a:g}) = {answers[a]:.6g}; expected sqrt(2/(1+{a:g}^2)) = {leaky_relu_gain(a):.6g}"
    for description, formula in MISTAKES.items():
        if all(_close(answers[s], formula(s)) for s in CHECK_SLOPES if math.isfinite(formula(s))):
            return f"{found}. Your answers follow {description}."
    return f"{found}. Hint: a ReLU-like unit keeps (1+a^2)/2 of the second moment of a symmetric input."

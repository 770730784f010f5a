r"""Checks for the depth lesson: counting dead ReLU units, and the slope of a leaky ReLU.

**Dead units.** A layer's pre-activations on a batch form a matrix :math:`z` of shape
``(examples, units)``. Unit :math:`j` is *dead* on the batch when :math:`z_{ij} \le 0` for every
example :math:`i`: its ReLU outputs 0 and has slope 0 everywhere, so it passes nothing forward and
no gradient reaches its weights. The dead fraction is

.. math:: \frac{1}{n}\sum_{j=1}^{n} \mathbb{1}\Big[\max_i z_{ij} \le 0\Big].

:func:`check_dead_fraction` runs a learner's ``dead_fraction(z)`` on hand-built batches and, when
an answer is off, says which usual slip it matches: counting entries instead of units, using
rows (examples) instead of columns (units), ``< 0`` where ``<= 0`` belongs, or a unit that is 0
for *some* example instead of for all of them.

**The slope for a given drift.** A leaky ReLU of slope :math:`a` keeps :math:`(1+a^2)/2` of the
second moment of a symmetric input, so with :math:`\chi = n\,\mathrm{Var}(W)` each layer multiplies
:math:`q_l = \mathbb{E}[z_l^2]` by :math:`\chi(1+a^2)/2` (:func:`lessonlib.theory.layer_factor`).
From :math:`q_1` to :math:`q_L` the signal crosses :math:`L - 1` activations, so
:math:`q_L/q_1 = r` for

.. math:: \Big(\chi\,\frac{1+a^2}{2}\Big)^{L-1} = r
          \quad\Longleftrightarrow\quad
          a = \sqrt{\frac{2\,r^{1/(L-1)}}{\chi} - 1}.

:func:`check_leaky_slope` runs a learner's ``slope(ratio, layers, chi)`` on :data:`SLOPE_CASES`
and names the usual slips: :math:`L` where :math:`L - 1` belongs, :math:`(1+a)/2` where
:math:`(1+a^2)/2` belongs (or the square root left out), :math:`\chi` left out, or the ratio taken
for the standard deviation instead of the second moment.
"""

import math

import torch

from ..probes import dead_fraction
from ..theory import layer_factor

CASES = [
    ("three units, the first negative for both examples",
     torch.tensor([[-1.0, 2.0, 0.5], [-0.5, -1.0, 3.0]])),
    ("a unit that is exactly 0 for every example (dead: relu'(0) = 0 in PyTorch)",
     torch.tensor([[0.0, 1.0], [0.0, -2.0], [0.0, -1.0]])),
    ("four units of which two are negative for all three examples",
     torch.tensor([[-1.0, -2.0, 1.0, -1.0], [-3.0, -1.0, -1.0, 2.0], [-0.1, -5.0, -2.0, -4.0]])),
    ("no dead unit", torch.tensor([[1.0, -1.0], [-1.0, 1.0]])),
]
"""Hand-built batches ``(description, z)`` of shape ``(examples, units)``."""

MISTAKES = {
    "the fraction of entries <= 0 (entries counted, not units)": lambda z: float((z <= 0).double().mean()),
    "the fraction of examples (rows) that are <= 0 for every unit; units are the columns":
        lambda z: float((z <= 0).all(dim=1).double().mean()),
    "'< 0' where '<= 0' belongs (a unit stuck at exactly 0 is dead too)":
        lambda z: float((z < 0).all(dim=0).double().mean()),
    "units <= 0 for SOME example instead of for every example":
        lambda z: float((z <= 0).any(dim=0).double().mean()),
    "the number of dead units, not their fraction": lambda z: float((z <= 0).all(dim=0).sum()),
}
"""Slips a learner may make, by description."""


def check_dead_fraction(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(z)`` against :func:`lessonlib.probes.dead_fraction` on :data:`CASES`.

    ``candidate`` takes a tensor of shape ``(examples, units)`` and returns a float. Prints what
    it found (on the first case that fails: the input, the expected and the returned value, and
    the slip the answers match, if any) and returns True when every case is right to 1e-9.
    """
    if not callable(candidate):
        raise ValueError(f"check_dead_fraction needs a function z -> float. Got {type(candidate).__name__}.")
    for description, z in CASES:
        expected = dead_fraction(z)
        try:
            got = float(candidate(z.clone()))
        except Exception as error:  # the learner's code failed: say where, do not crash the check
            _say(verbose, f"Your function raised {type(error).__name__}: {error} on {description}:\n{z}")
            return False
        if abs(got - expected) > 1e-9:
            message = (f"Not yet. On {description},\nz =\n{z}\nyou returned {got:.4g}; expected "
                       f"{expected:.4g} ({int(round(expected * z.shape[1]))} of {z.shape[1]} units are "
                       f"<= 0 for every example).")
            slips = [name for name, slip in MISTAKES.items()
                     if all(abs(float(candidate(c.clone())) - slip(c)) <= 1e-9 for _, c in CASES)]
            if slips:
                message += f"\nYour answers match {slips[0]}."
            _say(verbose, message)
            return False
    _say(verbose, f"Correct: all {len(CASES)} batches give the right fraction of dead units.")
    return True


def _say(verbose, message):
    if verbose:
        print(message)


# ---------------------------------------------------------------------------------------------
# the slope of a leaky ReLU for a given drift over depth


def leaky_slope(ratio: float, layers: int, chi: float = 1.0) -> float:
    r"""The slope :math:`a \ge 0` for which a deep leaky-ReLU network has :math:`q_L/q_1 =` ``ratio``.

    ``layers`` is :math:`L`, ``chi`` is :math:`\chi = n\,\mathrm{Var}(W)`;
    :math:`a = \sqrt{2\,r^{1/(L-1)}/\chi - 1}` (see the module docstring). Raises a ValueError when
    no slope :math:`\ge 0` gives that ratio: the per-layer factor :math:`\chi(1+a^2)/2` is at least
    :math:`\chi/2` (at :math:`a = 0`), so a ratio :math:`r < (\chi/2)^{L-1}` cannot be reached.
    """
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
               for v in (ratio, chi)):
        raise ValueError(f"'ratio' and 'chi' must be floats in the range (0, inf). Got {ratio!r} and {chi!r} instead.")
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 2:
        raise ValueError(f"'layers' must be an int >= 2. Got {layers!r} instead.")
    square = 2 * ratio ** (1 / (layers - 1)) / chi - 1
    if square < 0:
        raise ValueError(f"No slope a >= 0 gives q_L/q_1 = {ratio:g} over {layers} layers with chi = {chi:g}: "
                         f"even a = 0 (ReLU) multiplies q by chi/2 = {chi / 2:g} per layer, more than "
                         f"ratio**(1/(layers - 1)) = {ratio ** (1 / (layers - 1)):.4g}.")
    return math.sqrt(square)


SLOPE_CASES = [
    (0.1, 50, 1.0),    # Xavier: lose only a factor 10 over 50 layers
    (10.0, 50, 2.0),   # the ReLU gain: grow tenfold over 50 layers
    (1.0, 50, 2.0),    # He holds q: ReLU
    (1.0, 10, 1.0),    # Xavier holds q: the identity
    (0.2, 30, 1.2),
]
"""``(ratio, layers, chi)``: the questions :func:`check_leaky_slope` asks."""


def _root(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


SLOPE_MISTAKES = {
    "'layers' where 'layers - 1' belongs (from q_1 to q_L the signal crosses L - 1 activations)":
        lambda r, L, chi: _root(2 * r ** (1 / L) / chi - 1),
    "(1 + a)/2 where (1 + a^2)/2 belongs, or the square root left out (a^2 returned for a)":
        lambda r, L, chi: 2 * r ** (1 / (L - 1)) / chi - 1,
    "the weight gain chi = n Var(W) left out":
        lambda r, L, chi: _root(2 * r ** (1 / (L - 1)) - 1),
    "the ratio taken for the standard deviation; q is a second moment, so it is the square":
        lambda r, L, chi: _root(2 * r ** (2 / (L - 1)) / chi - 1),
}
"""Slips a learner may make, by description: ``(ratio, layers, chi) -> slope``."""

_SLOPE_TOL = 1e-6


def check_leaky_slope(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(ratio, layers, chi)``, a learner's slope, against :func:`leaky_slope`.

    ``candidate`` returns the slope :math:`a \ge 0` of a leaky ReLU for which a network of ``layers``
    layers with :math:`n\,\mathrm{Var}(W) =` ``chi`` has :math:`q_L/q_1 =` ``ratio``. It is tried on
    :data:`SLOPE_CASES`; the check prints what it found (on the first case that fails: the expected
    slope, and the ratio the learner's slope gives, from :func:`lessonlib.theory.layer_factor`; and
    the slip the answers match, if any) and returns True when every slope is right to 1e-6.
    """
    if not callable(candidate):
        raise ValueError(f"check_leaky_slope needs a function slope(ratio, layers, chi). "
                         f"Got {type(candidate).__name__} instead.")
    for ratio, layers, chi in SLOPE_CASES:
        expected = leaky_slope(ratio, layers, chi)
        case = f"ratio={ratio:g}, layers={layers}, chi={chi:g}"
        try:
            got = float(candidate(ratio, layers, chi))
        except Exception as error:  # the learner's code failed: say where, do not crash the check
            _say(verbose, f"Not yet. Your function raised {type(error).__name__}: {error} for {case}.")
            return False
        if math.isfinite(got) and abs(got - expected) <= _SLOPE_TOL:
            continue
        if math.isfinite(got) and got < 0 and abs(-got - expected) <= _SLOPE_TOL:
            _say(verbose, f"Almost. For {case} you returned {got:.4f}: -a gives the same (1 + a^2), but a "
                          f"leaky ReLU's slope is >= 0; return the non-negative root, {expected:.4f}.")
            return False
        message = f"Not yet. For {case} you returned {got:.4f}; expected {expected:.4f}."
        if math.isfinite(got):
            reached = layer_factor("leaky_relu", chi, got) ** (layers - 1)
            message += (f" With your slope each layer multiplies q by chi (1 + a^2)/2 = "
                        f"{layer_factor('leaky_relu', chi, got):.4f}, so q_L/q_1 = {reached:.4g}, not {ratio:g}.")
        slips = [name for name, slip in SLOPE_MISTAKES.items()
                 if all(_matches(candidate, slip, c) for c in SLOPE_CASES)]
        if slips:
            message += f"\nYour answers match {slips[0]}."
        _say(verbose, message)
        return False
    _say(verbose, f"Correct: all {len(SLOPE_CASES)} slopes give the ratio asked for.")
    return True


def _matches(candidate, slip, case) -> bool:
    try:
        got, wrong = float(candidate(*case)), slip(*case)
    except Exception:
        return False
    return math.isfinite(got) and math.isfinite(wrong) and abs(got - wrong) <= _SLOPE_TOL

r"""Checks for the modern-view lesson: the ReLU correlation map, the edge of chaos, and linear CKA.

**The ReLU correlation map.** For He's :math:`\sigma_w^2 = 2` and no biases the length is kept, and
with :math:`\theta = \arccos c` the correlation of two inputs after one layer is

.. math:: c' = \frac{\sin\theta + (\pi - \theta)\cos\theta}{\pi}
             = \frac{\sqrt{1 - c^2} + (\pi - \arccos c)\,c}{\pi}.

**The edge of chaos.** For a bias variance :math:`\sigma_b^2 > 0` the critical :math:`\sigma_w^2` of
tanh solves :math:`\chi_1(\sigma_w^2, \sigma_b^2) = 1`; :math:`\chi_1` grows with
:math:`\sigma_w^2`, is below 1 at :math:`\sigma_w^2 = 1` and above 1 at 10, so bisection finds it.

**Linear CKA** of two representations :math:`X, Y` of the same examples (rows), columns centred:
:math:`\|Y_c^\top X_c\|_F^2 / (\|X_c^\top X_c\|_F\,\|Y_c^\top Y_c\|_F)`.

Each check runs a learner's function on a few cases, says on the first wrong one what was
expected, names a usual slip when the answers match it, and returns True when all are right.
"""

import math

import numpy as np
import torch

from .. import mean_field
from ..lazy import linear_cka


def _say(verbose, message):
    if verbose:
        print(message)


def _first_wrong(candidate, cases, expected, tol):
    """The first ``(case, got, want)`` where ``candidate`` is off by more than ``tol``, else None;
    an exception is returned as ``(case, error, want)``."""
    for case in cases:
        want = expected(case)
        try:
            got = float(candidate(*case))
        except Exception as error:  # the learner's code failed: report it, do not crash the check
            return case, error, want
        if not (math.isfinite(got) and abs(got - want) <= tol):
            return case, got, want
    return None


def _report(verbose, name, cases, candidate, wrong, slips, tol):
    case, got, want = wrong
    case = ", ".join(f"{value:g}" for value in case)
    if isinstance(got, Exception):
        _say(verbose, f"Not yet. Your function raised {type(got).__name__}: {got} for {name}{case}.")
        return False
    message = f"Not yet. For {name}{case} you returned {got:.6g}; expected {want:.6g}."
    for slip, wrong_fn in slips.items():
        if all(abs(float(candidate(*c)) - wrong_fn(*c)) <= tol for c in cases):
            message += f"\nYour answers match {slip}."
            break
    _say(verbose, message)
    return False


RELU_CASES = [(-0.5,), (0.0,), (0.3,), (0.9,), (1.0,)]


def relu_correlation(c: float) -> float:
    r"""One He ReLU layer's correlation map: :math:`(\sqrt{1-c^2} + (\pi - \arccos c)\,c)/\pi`."""
    return (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi


RELU_SLIPS = {
    "sigma_w^2 = 2 left out: the map is sigma_w^2 E[relu(u1) relu(u2)] / q' = 2 (q / (2 pi)) (...) / q, "
    "which leaves 1/pi": lambda c: relu_correlation(c) / 2,
    "theta where pi - theta belongs": lambda c: (math.sqrt(1 - c * c) + math.acos(c) * c) / math.pi,
}


def check_relu_correlation_map(candidate, *, verbose: bool = True) -> bool:
    """Check ``candidate(c)``, one He ReLU layer's correlation map, on :data:`RELU_CASES`."""
    wrong = _first_wrong(candidate, RELU_CASES, lambda case: relu_correlation(*case), 1e-9)
    if wrong:
        return _report(verbose, "c = ", RELU_CASES, candidate, wrong, RELU_SLIPS, 1e-9)
    _say(verbose, f"Correct: all {len(RELU_CASES)} correlations match the arc-cosine map.")
    return True


EDGE_CASES = [(0.01,), (0.05,), (0.2,)]
_EDGE_TOL = 1e-4


def check_edge_of_chaos(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(sigma_b2)``, the critical :math:`\sigma_w^2` of tanh, against
    :func:`lessonlib.mean_field.critical_sigma_w2` to 1e-4 on :data:`EDGE_CASES`."""
    expected = lambda case: mean_field.critical_sigma_w2("tanh", *case)
    wrong = _first_wrong(candidate, EDGE_CASES, expected, _EDGE_TOL)
    if wrong:
        slips = {"sigma_w (the square root) where sigma_w^2 belongs":
                 lambda b: math.sqrt(mean_field.critical_sigma_w2("tanh", b))}
        return _report(verbose, "sigma_b2 = ", EDGE_CASES, candidate, wrong, slips, _EDGE_TOL)
    _say(verbose, f"Correct: chi_1 = 1 at your sigma_w^2 for all {len(EDGE_CASES)} bias variances.")
    return True


def _cka_cases():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(50, 6, generator=gen, dtype=torch.float64) + 3.0        # columns far from centred
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    return [
        ("X against a rotated, scaled and shifted copy (CKA 1)", X, 2.5 * X @ rotation + 1.0),
        ("X against other features of the same examples", X, torch.randn(50, 4, generator=gen, dtype=torch.float64) + X[:, :4]),
        ("X against its own square", X, X ** 2),
    ]


def check_linear_cka(candidate, *, verbose: bool = True) -> bool:
    """Check ``candidate(X, Y)``, linear CKA, against :func:`lessonlib.lazy.linear_cka`."""
    for description, X, Y in _cka_cases():
        want = linear_cka(X, Y)
        try:
            got = float(candidate(X.clone(), Y.clone()))
        except Exception as error:  # the learner's code failed: report it, do not crash the check
            _say(verbose, f"Not yet. Your function raised {type(error).__name__}: {error} on {description}.")
            return False
        if not (math.isfinite(got) and abs(got - want) <= 1e-9):
            message = f"Not yet. On {description} you returned {got:.6g}; expected {want:.6g}."
            uncentred = float((Y.T @ X).norm() ** 2 / ((X.T @ X).norm() * (Y.T @ Y).norm()))
            if abs(got - uncentred) <= 1e-9:
                message += ("\nYour answer matches the columns left uncentred: a constant shift of the features changes it. "
                            "Subtract each column's mean first.")
            _say(verbose, message)
            return False
    _say(verbose, "Correct: all 3 pairs of representations give the right CKA.")
    return True

r"""Checks for the "Beyond the classics" lesson: how fast a residual stream grows.

In a residual block :math:`h_l = h_{l-1} + \alpha\, W^{(2)} \mathrm{relu}(W^{(1)} h_{l-1})` with He
weights in both layers (:math:`\mathrm{Var}(W) = 2/\text{width}`), the branch maps the second
moment :math:`q = \mathbb{E}[h^2]` to :math:`2\cdot\tfrac12\cdot 2\,q = 2q` before the factor
:math:`\alpha`, so :math:`\alpha^2 \cdot 2q`. The branch's weights are independent of the stream and
have mean 0, so the cross term vanishes and

.. math:: q_l = (1 + 2\alpha^2)\, q_{l-1}, \qquad q_L / q_0 = (1 + 2\alpha^2)^L .

:func:`check_stream_growth` runs a learner's ``growth(n_blocks, alpha)`` against this and names the
usual slips (the ReLU's half and He's factor 2 not cancelling, :math:`\alpha` unsquared, growth
added instead of multiplied, the stream's own term forgotten).
"""

import math

CHECK_CASES = ((1, 1.0), (4, 1.0), (10, 1.0), (10, 0.5), (16, 0.25), (30, 1 / math.sqrt(30)), (8, 0.0))
r"""``(n_blocks, alpha)`` pairs the check tries, among them Fixup's :math:`\alpha = 1/\sqrt{L}` and :math:`\alpha = 0`."""

_RTOL = 1e-6


def stream_growth(n_blocks: int, alpha: float) -> float:
    r"""The exact :math:`q_L/q_0 = (1 + 2\alpha^2)^L` of a stack of He-initialized residual blocks."""
    if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 0:
        raise ValueError(f"The 'n_blocks' parameter must be an int >= 0. Got {n_blocks!r} instead.")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha):
        raise ValueError(f"The 'alpha' parameter must be a finite float. Got {alpha!r} instead.")
    return (1 + 2 * alpha**2) ** n_blocks


MISTAKES = {
    "(1 + alpha^2)^L: the branch's gain taken as 1, but He weights make it 2": lambda L, a: (1 + a**2) ** L,
    "(1 + 2 alpha)^L: alpha where alpha^2 belongs (alpha scales the output, alpha^2 its second moment)":
        lambda L, a: (1 + 2 * a) ** L,
    "1 + 2 alpha^2 L: the growth added block after block instead of multiplied": lambda L, a: 1 + 2 * a**2 * L,
    "(2 alpha^2)^L: the stream's own term h_{l-1} forgotten": lambda L, a: (2 * a**2) ** L,
    "(1 + 4 alpha^2)^L: He's factor 2 counted in both layers without the ReLU's half": lambda L, a: (1 + 4 * a**2) ** L,
}
"""Formulas a learner may write instead of the growth, by description."""


def _close(x: float, y: float) -> bool:
    return math.isfinite(x) and abs(x - y) <= _RTOL * max(abs(y), 1e-12)


def check_stream_growth(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(n_blocks, alpha)`` against :math:`(1 + 2\alpha^2)^L`.

    Prints the first case where the answer is off and which common slip the answers follow;
    returns True if every case is right to a relative 1e-6.
    """
    if not callable(candidate):
        raise ValueError(f"check_stream_growth needs a function growth(n_blocks, alpha). "
                         f"Got {type(candidate).__name__} instead.")
    problem = _diagnose(candidate)
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else
              f"✓ Correct: your growth is (1 + 2 alpha^2)^L in all {len(CHECK_CASES)} cases tried.")
    return problem is None


def _diagnose(candidate):
    answers = {}
    for L, a in CHECK_CASES:
        try:
            answers[L, a] = float(candidate(L, a))
        except Exception as error:  # the learner's code: report, do not crash
            return f"growth({L}, {a:.4g}) raised {type(error).__name__}: {error}"
    wrong = [(L, a) for L, a in CHECK_CASES if not _close(answers[L, a], stream_growth(L, a))]
    if not wrong:
        return None
    L, a = wrong[0]
    found = (f"growth({L}, {a:.4g}) = {answers[L, a]:.6g}; expected (1 + 2*{a:.4g}^2)^{L} = "
             f"{stream_growth(L, a):.6g}")
    for description, formula in MISTAKES.items():
        if all(_close(answers[c], formula(*c)) for c in CHECK_CASES):
            return f"{found}. Your answers follow {description}."
    return f"{found}. Hint: write q_l in terms of q_(l-1); the block adds the branch's second moment to the stream's."

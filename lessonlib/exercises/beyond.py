r"""Checks for the "Beyond the classics" lesson: how fast a residual stream grows, how large a new head should start.

In a residual block :math:`h_l = h_{l-1} + \alpha\, W^{(2)} \mathrm{relu}(W^{(1)} h_{l-1})` with He
weights in both layers (:math:`\mathrm{Var}(W) = 2/\text{width}`), the branch maps the second
moment :math:`q = \mathbb{E}[h^2]` to :math:`2\cdot\tfrac12\cdot 2\,q = 2q` before the factor
:math:`\alpha`, so :math:`\alpha^2 \cdot 2q`. The branch's weights are independent of the stream and
have mean 0, so the cross term vanishes and

.. math:: q_l = (1 + 2\alpha^2)\, q_{l-1}, \qquad q_L / q_0 = (1 + 2\alpha^2)^L .

:func:`check_stream_growth` runs a learner's ``growth(n_blocks, alpha)`` against this and names the
usual slips (the ReLU's half and He's factor 2 not cancelling, :math:`\alpha` unsquared, growth
added instead of multiplied, the stream's own term forgotten).

A new head :math:`z_k = w_k^\top h` on a pretrained body's features :math:`h` spreads its logits
across classes by :math:`\sigma\sqrt{\mathbb{E}_x\lVert h\rVert^2}` when
:math:`w_{kj} \sim \mathcal{N}(0, \sigma^2)`. :func:`check_head_std` runs a learner's
``head_std(features, target)``, the :math:`\sigma` that gives a spread of ``target``, and names the
usual slips (one feature's second moment instead of the sum over ``fan_in``, the mean norm, the
centred variance of ReLU features, a missing square root).
"""

import math

import torch

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


# ---------------------------------------------------------------------------------------------
# transfer learning: the scale of a new head

HEAD_STD_TARGETS = (1.0, 0.1, 2.5)
"""The logit spreads :func:`check_head_std` asks for."""

_HEAD_FAN_INS = (64, 10)


def head_check_features() -> list:
    r"""The features the check feeds to a learner's ``head_std``: ReLU outputs, not standardized.

    Two sets, of 64 and 10 features; each example is scaled by its own factor, so the norms
    :math:`\lVert h \rVert` differ from example to example (the mean norm is then not the root mean
    square norm) and the features have a nonzero mean (their variance is not their second moment).
    """
    sets = []
    for seed, fan_in in enumerate(_HEAD_FAN_INS):
        g = torch.Generator().manual_seed(2000 + seed)
        scale = torch.exp(torch.randn(400, 1, generator=g))
        sets.append(torch.relu(torch.randn(400, fan_in, generator=g) + 0.5) * scale)
    return sets


def head_std(features, target: float = 1.0) -> float:
    r"""The std :math:`\sigma` of :math:`\mathcal{N}(0, \sigma^2)` head weights whose logits spread by ``target``.

    A head's logits :math:`z_k = w_k^\top h` spread across classes by
    :math:`\sigma \sqrt{\mathbb{E}_x \lVert h(x) \rVert^2}` (see :mod:`lessonlib.transfer`), so
    :math:`\sigma = \text{target} / \sqrt{\mathbb{E}_x \lVert h(x) \rVert^2}`: the root mean square of
    the features' *norms*, their uncentred second moment summed over the ``fan_in`` features.
    """
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or len(features) == 0:
        raise ValueError(f"The 'features' parameter must be a 2-D tensor (examples, fan_in). "
                         f"Got {type(features).__name__}"
                         f"{' of shape ' + str(tuple(features.shape)) if isinstance(features, torch.Tensor) else ''}"
                         f" instead.")
    if not isinstance(target, (int, float)) or isinstance(target, bool) or not 0 < target < math.inf:
        raise ValueError(f"The 'target' parameter must be a float in the range (0, inf). Got {target!r} instead.")
    return target / math.sqrt(float(features.double().pow(2).sum(dim=1).mean()))


def _rms(h):
    return math.sqrt(float(h.double().pow(2).mean()))


HEAD_MISTAKES = {
    "target / sqrt(mean of h^2): the second moment of one feature, where the logit sums fan_in of them":
        lambda h, t: t / _rms(h),
    "target / mean(||h||): the mean norm, where the variance needs the mean of the squared norm":
        lambda h, t: t / float(h.double().norm(dim=1).mean()),
    "target / mean(||h||^2): the variance of the logits, not their spread (a square root is missing)":
        lambda h, t: t / float(h.double().pow(2).sum(dim=1).mean()),
    "target * sqrt(mean ||h||^2): upside down; larger features need smaller weights":
        lambda h, t: t * math.sqrt(float(h.double().pow(2).sum(dim=1).mean())),
    "target / sqrt(fan_in * Var(h)): the features' variance, but ReLU features have a mean and "
    "the logits see their second moment": lambda h, t: t / math.sqrt(h.shape[1] * float(h.double().var())),
    "target / sqrt(fan_in): LeCun's scale, right only for features of second moment 1":
        lambda h, t: t / math.sqrt(h.shape[1]),
}
"""Answers a learner may give instead of :func:`head_std`, by description."""


def check_head_std(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(features, target)`` against :math:`\text{target}/\sqrt{\mathbb{E}_x\lVert h\rVert^2}`.

    Tries two feature sets (:func:`head_check_features`) and the targets in
    :data:`HEAD_STD_TARGETS`; prints the first case that is off and which common slip the answers
    follow; returns True if every case is right to a relative 1e-4.
    """
    if not callable(candidate):
        raise ValueError(f"check_head_std needs a function head_std(features, target). "
                         f"Got {type(candidate).__name__} instead.")
    cases = [(h, t) for h in head_check_features() for t in HEAD_STD_TARGETS]
    answers = []
    for h, t in cases:
        try:
            answers.append(float(candidate(h.clone(), t)))
        except Exception as error:  # the learner's code: report, do not crash
            problem = f"head_std(features of shape {tuple(h.shape)}, {t}) raised {type(error).__name__}: {error}"
            break
    else:
        problem = None

        def close(x, y):
            return math.isfinite(x) and abs(x - y) <= 1e-4 * abs(y)

        wrong = [i for i, (h, t) in enumerate(cases) if not close(answers[i], head_std(h, t))]
        if wrong:
            h, t = cases[wrong[0]]
            problem = (f"for features of shape {tuple(h.shape)} and target {t}, your std is "
                       f"{answers[wrong[0]]:.5g}; expected {head_std(h, t):.5g}")
            slip = next((d for d, f in HEAD_MISTAKES.items()
                         if all(close(a, f(h, t)) for a, (h, t) in zip(answers, cases))), None)
            problem += (f". Your answers follow {slip}." if slip else
                        ". Hint: write the variance of z_k = sum_j w_kj h_j for one example, then average over examples.")
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else
              f"✓ Correct: your std gives logits of the target spread in all {len(cases)} cases tried.")
    return problem is None

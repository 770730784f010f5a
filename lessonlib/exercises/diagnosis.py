r"""Checks for the "Diagnose your own network" lesson: a transformer's residual scale, a classifier's output bias.

**Residual projections.** A pre-LN transformer adds each sublayer's output to its residual stream,
:math:`h_{i} = h_{i-1} + F_i(h_{i-1})`. A stack of :math:`L` layers has :math:`N = 2L` such
additions (attention and feed-forward in each layer). If each branch's output has variance
:math:`v`, independent of the stream, the stream's variance grows to :math:`q_0 + N v`. GPT-2
{cite}`radford2019language` draws the last projection of every branch with the standard deviation
:math:`0.02/\sqrt{N}`, so the total added variance stays the same at any depth:
:func:`check_residual_std` runs a learner's ``residual_std(n_layers)`` against
:math:`0.02/\sqrt{2L}` and names the usual slips.

**Output bias.** A classifier with softmax outputs and a bias :math:`b` predicts, before its weights
have learned anything (:math:`Wx \approx 0`), :math:`p_k = e^{b_k}/\sum_j e^{b_j}`. Setting
:math:`b_k = \log \pi_k + c` with the class priors :math:`\pi` (any constant :math:`c`) makes that
prediction the priors, and the loss at step 0 the priors' entropy
:math:`H(\pi) = -\sum_k \pi_k \log \pi_k`, not :math:`\ln C`. :func:`check_prior_bias` runs a
learner's ``log_prior_bias(targets, n_classes)`` and names the usual slips.
"""

import math

import torch

BASE_STD = 0.02
"""GPT-2's standard deviation for every weight matrix and embedding."""

LAYER_CASES = (1, 2, 4, 6, 12, 48)
"""Numbers of transformer layers the residual check tries."""

PRIOR_CASES = ((90, 10), (50, 50), (5, 15, 80), (1, 1, 1, 997), (30, 20, 20, 20, 10))
"""Class counts the output-bias check tries (targets are built with these counts)."""

_RTOL = 1e-6


def residual_std(n_layers: int) -> float:
    r"""GPT-2's standard deviation of a residual projection, :math:`0.02/\sqrt{2L}` for ``n_layers`` = :math:`L`."""
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
        raise ValueError(f"The 'n_layers' parameter must be an int >= 1. Got {n_layers!r} instead.")
    return BASE_STD / math.sqrt(2 * n_layers)


RESIDUAL_MISTAKES = {
    "0.02/sqrt(L): one residual addition per layer counted, but each layer adds two (attention and "
    "feed-forward)": lambda L: BASE_STD / math.sqrt(L),
    "0.02/(2L): the 1/N that belongs to the variance applied to the standard deviation":
        lambda L: BASE_STD / (2 * L),
    "0.02/L: the 1/N of the variance applied to the standard deviation, and one addition per layer":
        lambda L: BASE_STD / L,
    "0.02 * sqrt(2L): multiplied where it should divide": lambda L: BASE_STD * math.sqrt(2 * L),
    "0.02: the residual projections left at the base standard deviation": lambda L: BASE_STD,
}
"""Answers a learner may give instead, by description."""


def _close(x: float, y: float) -> bool:
    return math.isfinite(x) and abs(x - y) <= _RTOL * max(abs(y), 1e-12)


def _follows(answers: dict, formula) -> bool:
    return all(_close(value, formula(case)) for case, value in answers.items())


def _report(problem, success: str, verbose: bool) -> bool:
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else f"✓ Correct: {success}")
    return problem is None


def check_residual_std(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(n_layers)`` against :math:`0.02/\sqrt{2L}` for several depths.

    Prints the first depth where the answer is off and which slip the answers follow; returns True
    if every depth is right to a relative 1e-6.
    """
    if not callable(candidate):
        raise ValueError(f"check_residual_std needs a function residual_std(n_layers). "
                         f"Got {type(candidate).__name__} instead.")
    answers = {}
    for L in LAYER_CASES:
        try:
            answers[L] = float(candidate(L))
        except Exception as error:  # the learner's code: report, do not crash
            return _report(f"residual_std({L}) raised {type(error).__name__}: {error}", "", verbose)
    wrong = [L for L in LAYER_CASES if not _close(answers[L], residual_std(L))]
    problem = None
    if wrong:
        L = wrong[0]
        problem = f"for {L} layers your std is {answers[L]:.4g}; expected 0.02/sqrt(2*{L}) = {residual_std(L):.4g}."
        slip = next((name for name, formula in RESIDUAL_MISTAKES.items() if _follows(answers, formula)), None)
        if slip:
            problem += f" Your answers follow {slip}."
    return _report(problem, f"0.02/sqrt(2L) for all {len(LAYER_CASES)} depths tried.", verbose)


def targets_with_counts(counts) -> torch.Tensor:
    """Integer class labels, ``counts[k]`` of class ``k``, in a fixed shuffled order."""
    if len(counts) < 2 or any(not isinstance(c, int) or c < 1 for c in counts):
        raise ValueError(f"The 'counts' parameter must list at least 2 positive ints. Got {counts!r} instead.")
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


PRIOR_MISTAKES = {
    "the priors themselves, without the log (softmax exponentiates the bias)": lambda p: p,
    "-log of the priors: the sign flipped": lambda p: -p.log(),
    "all zeros: the uniform guess, loss ln C": lambda p: torch.zeros_like(p),
    "log(p / (1 - p)): the logit of each class, which suits one sigmoid per class, not a softmax":
        lambda p: (p / (1 - p)).log(),
}
"""Biases a learner may give instead, by description (``p`` the class priors)."""


def _softmax_gap(bias: torch.Tensor, priors: torch.Tensor) -> float:
    return float((torch.softmax(bias.double(), 0) - priors).abs().max())


def check_prior_bias(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(targets, n_classes)``: the softmax of the bias it returns must be the class priors.

    Any constant added to every class is accepted (softmax does not see it). Prints the first class
    counts where the answer is off and which slip the answers follow; returns True if the softmax of
    every answer matches the priors to 1e-6.
    """
    if not callable(candidate):
        raise ValueError(f"check_prior_bias needs a function log_prior_bias(targets, n_classes). "
                         f"Got {type(candidate).__name__} instead.")
    answers, priors = {}, {}
    for counts in PRIOR_CASES:
        targets = targets_with_counts(counts)
        priors[counts] = torch.tensor(counts, dtype=torch.float64) / sum(counts)
        try:
            bias = torch.as_tensor(candidate(targets, len(counts))).detach().double().flatten()
        except Exception as error:  # the learner's code: report, do not crash
            return _report(f"log_prior_bias for counts {counts} raised {type(error).__name__}: {error}", "", verbose)
        if bias.numel() != len(counts):
            return _report(f"for counts {counts} your bias has {bias.numel()} entries; expected one per "
                           f"class, {len(counts)}.", "", verbose)
        answers[counts] = bias
    wrong = [c for c in PRIOR_CASES if not _softmax_gap(answers[c], priors[c]) < _RTOL]
    problem = None
    if wrong:
        c = wrong[0]
        predicted = torch.softmax(answers[c], 0)
        problem = (f"for class counts {c} softmax(your bias) = "
                   f"[{', '.join(f'{v:.3g}' for v in predicted)}]; it should be the priors "
                   f"[{', '.join(f'{v:.3g}' for v in priors[c])}].")
        slip = next((name for name, formula in PRIOR_MISTAKES.items()
                     if all(torch.allclose(answers[k] - answers[k].mean(),
                                           formula(priors[k]) - formula(priors[k]).mean(), atol=1e-6)
                            for k in PRIOR_CASES)), None)
        if slip:
            problem += f" Your answers follow {slip}."
    return _report(problem, f"softmax(bias) equals the class priors for all {len(PRIOR_CASES)} sets of "
                            f"counts tried.", verbose)


def flagged_models() -> dict:
    """Three networks the doctor flags, by name: the course's bad cases, as :func:`check_doctor_fix` builds them."""
    from ..models import DigitNN, mlp
    from ..schemes import init_model, make_scheme

    return {
        "10 tanh layers, N(0, 1)": init_model(mlp([64] + [128] * 10 + [10], "tanh"),
                                              make_scheme("normal", std=1.0), seed=0),
        "10 ReLU layers, N(0, 0.01)": init_model(mlp([64] + [128] * 10 + [10], "relu"),
                                                 make_scheme("normal", std=0.01), seed=0),
        "DigitNN, zeros": init_model(DigitNN(), "zeros", seed=0),
    }


def check_doctor_fix(fix, *, verbose: bool = True) -> bool:
    """Check ``fix(model)``, which re-initializes a model in place, on the three :func:`flagged_models`.

    Each fixed model must keep its layers and shapes and get no error and no warning from
    :func:`lessonlib.doctor.diagnose` on 256 training digits. Prints, for each model, what the doctor
    still finds; returns True if every model passes.
    """
    from ..data import digits
    from ..doctor import diagnose

    if not callable(fix):
        raise ValueError(f"check_doctor_fix needs a function fix(model) that re-initializes the model in place. "
                         f"Got {type(fix).__name__} instead.")
    data = digits()
    x, y = data.X_train[:256], data.y_train[:256]
    problems = []
    for name, model in flagged_models().items():
        shapes = [tuple(p.shape) for p in model.parameters()]
        try:
            returned = fix(model)
        except Exception as error:  # the learner's code: report, do not crash
            problems.append(f"{name}: fix(model) raised {type(error).__name__}: {error}")
            continue
        if returned is not None and returned is not model:
            problems.append(f"{name}: fix(model) returned another model; change the one it is given in place")
            continue
        if [tuple(p.shape) for p in model.parameters()] != shapes:
            problems.append(f"{name}: the fix changed the model's layers; only their initial values may change")
            continue
        report = diagnose(model, x, y)
        if not report.ok:
            first = next(f for f in report.findings if f.severity in ("error", "warning"))
            problems.append(f"{name}: the doctor still finds [{first.severity}] {first.message}")
    if verbose:
        if problems:
            print("✗ Not yet:\n  " + "\n  ".join(problems))
        else:
            print(f"✓ Correct: the doctor finds nothing to fix in any of the {len(flagged_models())} models.")
    return not problems

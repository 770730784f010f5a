r"""Comparing schemes over seeds: effect sizes with intervals, tests that fit the data, corrections.

Each function takes the final values of one or two groups of independent runs (for example the
validation accuracy, in %, of every seed of a scheme) and returns an **effect size with a
confidence interval** and, where a test is meant, its **p-value**, never a bare verdict:

- the level: the difference of means with Welch's interval (:func:`mean_difference`), and the
  probability that a run of one scheme ends above a run of the other, with the Brunner-Munzel test
  (:func:`brunner_munzel`), which, unlike the Mann-Whitney test, stays valid when the two spreads
  differ;
- the spread: the standard deviation with a bootstrap interval (:func:`bootstrap_std_interval`),
  the ratio of two standard deviations with a bootstrap interval (:func:`std_ratio`), and the
  Brown-Forsythe test of equal spreads (:func:`levene`);
- a ceiling: the share of runs at or above a level, with Wilson's interval and Fisher's exact test
  of equal shares (:func:`compare_shares`);
- equivalence: two one-sided tests against a margin fixed in advance (:func:`tost`);
- several tests at once: Holm's step-down adjustment of the p-values (:func:`holm`).

:func:`format_p` prints a p-value at one significant digit, or as ``"< 0.001"``.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """An effect size, its confidence interval ``(low, high)`` at ``level``, and a p-value (NaN if none)."""

    estimate: float
    low: float
    high: float
    level: float
    pvalue: float = math.nan


def _sample(values, name="values", minimum=2):
    values = np.asarray(values, dtype=float).ravel()
    if len(values) < minimum or not np.isfinite(values).all():
        raise ValueError(f"The '{name}' parameter must hold at least {minimum} finite numbers. "
                         f"Got {len(values)} values, {int((~np.isfinite(values)).sum())} of them not finite.")
    return values


def _level(level):
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be a float in the range (0, 1). Got {level!r} instead.")
    return float(level)


def mean_difference(a, b, level: float = 0.95) -> Estimate:
    r"""The difference of means :math:`\bar a - \bar b` with Welch's interval and two-sided p-value.

    .. math::

        \mathrm{se} = \sqrt{s_a^2/n_a + s_b^2/n_b}, \qquad
        \nu = \frac{\mathrm{se}^4}{(s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)}, \qquad
        \bar a - \bar b \pm t_{(1+\text{level})/2,\,\nu}\,\mathrm{se},

    and :math:`p = 2\,P(T_\nu > |\bar a - \bar b|/\mathrm{se})` for the null hypothesis of equal means
    (Welch's t-test: it does not assume equal spreads). If both groups are constant the interval is
    the point itself and :math:`p` is 1 for equal and 0 for different values.
    """
    a, b, level = _sample(a, "a"), _sample(b, "b"), _level(level)
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(d, d, d, level, 1.0 if d == 0 else 0.0)
    df = se ** 4 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf((1 + level) / 2, df) * se
    return Estimate(d, d - half, d + half, level, float(2 * stats.t.sf(abs(d) / se, df)))


def tost(a, b, margin: float, alpha: float = 0.05) -> Estimate:
    r"""Two one-sided tests (Welch) that :math:`|\mu_a - \mu_b| < \delta`, :math:`\delta` = ``margin``.

    The null hypothesis is *non*-equivalence, :math:`|\mu_a - \mu_b| \ge \delta`; it is rejected at
    level :math:`\alpha` when both :math:`H_0: \mu_a - \mu_b \le -\delta` and
    :math:`H_0: \mu_a - \mu_b \ge \delta` are, i.e. when the :math:`1 - 2\alpha` Welch interval of
    :math:`\bar a - \bar b` lies inside :math:`(-\delta, \delta)`. Returns that interval (``level``
    :math:`1-2\alpha`) and :math:`p = \max(p_-, p_+)`, with
    :math:`p_\pm = P(T_\nu > (\delta \mp (\bar a - \bar b))/\mathrm{se})`. The margin must be fixed
    before looking at the data.
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"The 'margin' parameter must be a float in the range (0, inf). Got {margin!r} instead.")
    if not 0 < alpha < 0.5:
        raise ValueError(f"The 'alpha' parameter must be a float in the range (0, 0.5). Got {alpha!r} instead.")
    interval = mean_difference(a, b, 1 - 2 * alpha)
    a, b = _sample(a, "a"), _sample(b, "b")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se, d = math.sqrt(va + vb), interval.estimate
    if se == 0:
        p = 0.0 if abs(d) < margin else 1.0
    else:
        df = se ** 4 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
        p = float(max(stats.t.sf((margin + d) / se, df), stats.t.sf((margin - d) / se, df)))
    return Estimate(d, interval.low, interval.high, interval.level, p)


def brunner_munzel(a, b, level: float = 0.95) -> Estimate:
    r"""The probability that a run of ``a`` ends above a run of ``b``, with the Brunner-Munzel test.

    The effect size is :math:`\hat p = P(A > B) + \tfrac12 P(A = B)`, estimated over all
    :math:`n_a n_b` pairs (ties count one half): 0.5 means neither group tends to end higher. With
    :math:`R_{k}` the mid-rank of run :math:`k` among all :math:`N = n_a + n_b` runs,
    :math:`R^{(a)}_{k}` its mid-rank within its own group, and :math:`\bar R_a, \bar R_b` the mean ranks,

    .. math::

        \hat p = \frac{\bar R_a - \bar R_b}{N} + \frac12, \qquad
        S_a^2 = \frac{1}{n_a - 1}\sum_{k \in a}\Big(R_k - R^{(a)}_k - \bar R_a + \frac{n_a+1}{2}\Big)^2,

    (the same for :math:`b`), :math:`\mathrm{se}(\hat p) = \sqrt{n_a S_a^2 + n_b S_b^2}/(n_a n_b)`,
    and :math:`W = (\hat p - \tfrac12)/\mathrm{se}` has a t distribution with
    :math:`\nu = (n_a S_a^2 + n_b S_b^2)^2 / \big((n_a S_a^2)^2/(n_a-1) + (n_b S_b^2)^2/(n_b-1)\big)`
    degrees of freedom (Brunner & Munzel 2000). The test of :math:`p = 1/2` does not assume equal
    spreads or shapes, which Mann-Whitney's does; the interval is :math:`\hat p \pm t\,\mathrm{se}`,
    clipped to :math:`[0, 1]`. When :math:`\mathrm{se} = 0` (the groups are completely separated,
    or all runs tie) the t approximation has nothing to work with: the p-value is then the exact
    permutation probability of a separation at least as complete, :math:`2/\binom{N}{n_a}`, or 1 if
    every run ties.
    """
    a, b, level = _sample(a, "a"), _sample(b, "b"), _level(level)
    na, nb = len(a), len(b)
    ranks = stats.rankdata(np.concatenate([a, b]))
    ra, rb = ranks[:na], ranks[na:]
    p_hat = float((ra.mean() - rb.mean()) / (na + nb) + 0.5)
    sa2 = ((ra - stats.rankdata(a) - ra.mean() + (na + 1) / 2) ** 2).sum() / (na - 1)
    sb2 = ((rb - stats.rankdata(b) - rb.mean() + (nb + 1) / 2) ** 2).sum() / (nb - 1)
    var_sum = na * sa2 + nb * sb2
    if var_sum == 0:
        p = 1.0 if p_hat == 0.5 else min(1.0, 2 / math.comb(na + nb, na))
        return Estimate(p_hat, p_hat, p_hat, level, p)
    se = math.sqrt(var_sum) / (na * nb)
    df = var_sum ** 2 / ((na * sa2) ** 2 / (na - 1) + (nb * sb2) ** 2 / (nb - 1))
    half = stats.t.ppf((1 + level) / 2, df) * se
    p = float(2 * stats.t.sf(abs(p_hat - 0.5) / se, df))
    return Estimate(p_hat, max(0.0, p_hat - half), min(1.0, p_hat + half), level, p)


def levene(a, b) -> float:
    r"""p-value of the Brown-Forsythe test of equal spreads (Levene's test centred on the median).

    Each value is replaced by its distance to its group's median, :math:`z = |x - \tilde x|`, and
    the two groups' mean distances are compared by a one-way ANOVA (an F test, 1 and
    :math:`n_a + n_b - 2` degrees of freedom). Robust to the skewed, ceiling-bound distributions of
    accuracies. If both groups are constant (both spreads zero) there is no difference to test, and
    the p-value is 1.
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0
    return float(stats.levene(a, b, center="median").pvalue)


def bootstrap_std_interval(values, level: float = 0.95, n_resamples: int = 2000, seed: int = 0):
    r"""Percentile bootstrap interval of the standard deviation :math:`s` (``ddof=1``) over runs.

    Resample the runs with replacement ``n_resamples`` times (a generator seeded with ``seed``),
    recompute :math:`s` each time, and return the :math:`(1-\text{level})/2` and
    :math:`(1+\text{level})/2` quantiles of those :math:`s^*`.
    """
    values, level = _sample(values), _level(level)
    res = stats.bootstrap((values,), lambda v, axis: np.std(v, ddof=1, axis=axis), n_resamples=n_resamples,
                          confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def std_ratio(a, b, level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Estimate:
    r"""The ratio of standard deviations :math:`s_a / s_b` with a percentile bootstrap interval.

    Each group is resampled with replacement on its own (the runs of two schemes are independent),
    the ratio :math:`s_a^*/s_b^*` recomputed ``n_resamples`` times, and the interval is the
    :math:`(1\mp\text{level})/2` quantiles of the ratios (a resample of ``b`` whose values all tie
    gives :math:`+\infty`, and 1 if both tie). The p-value is Brown-Forsythe's
    (:func:`levene`).
    """
    a, b, level = _sample(a, "a"), _sample(b, "b"), _level(level)
    rng = np.random.default_rng(seed)
    sa = a[rng.integers(0, len(a), (n_resamples, len(a)))].std(axis=1, ddof=1)
    sb = b[rng.integers(0, len(b), (n_resamples, len(b)))].std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(sb > 0, sa / np.where(sb > 0, sb, 1), np.where(sa > 0, np.inf, 1.0))
        ratio = a.std(ddof=1) / b.std(ddof=1) if b.std(ddof=1) > 0 else math.inf if a.std(ddof=1) > 0 else 1.0
    low, high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return Estimate(float(ratio), float(low), float(high), level, levene(a, b))


def wilson_interval(k: int, n: int, level: float = 0.95):
    r"""Wilson's score interval for a share :math:`k/n`:

    .. math::

        \frac{\hat q + z^2/2n \pm z\sqrt{\hat q(1-\hat q)/n + z^2/4n^2}}{1 + z^2/n}, \qquad
        \hat q = k/n,\ z = \Phi^{-1}\big((1+\text{level})/2\big).

    Unlike :math:`\hat q \pm z\sqrt{\hat q(1-\hat q)/n}` it stays inside :math:`[0, 1]` and is not
    empty when :math:`k = 0` or :math:`k = n`.
    """
    if not (isinstance(n, (int, np.integer)) and n > 0 and isinstance(k, (int, np.integer)) and 0 <= k <= n):
        raise ValueError(f"A share needs integers 0 <= k <= n and n > 0. Got k={k!r}, n={n!r}.")
    z, q = stats.norm.ppf((1 + _level(level)) / 2), k / n
    centre = (q + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(q * (1 - q) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def compare_shares(a, b, threshold: float, level: float = 0.95):
    r"""The share of runs of ``a`` and of ``b`` at or above ``threshold``, and Fisher's exact test.

    For data piled against a ceiling (most runs at the same best accuracy) a mean or a rank test
    says little; the share of runs that reach the ceiling says what there is. Returns
    ``(share_a, share_b, p)``: each share as an :class:`Estimate` with Wilson's interval
    (:func:`wilson_interval`), and the two-sided p-value of Fisher's exact test of equal shares on
    the 2x2 table (reached / not reached) x (a / b).
    """
    a, b = _sample(a, "a", 1), _sample(b, "b", 1)
    ka, kb = int((a >= threshold).sum()), int((b >= threshold).sum())
    p = float(stats.fisher_exact([[ka, len(a) - ka], [kb, len(b) - kb]]).pvalue)
    share = [Estimate(k / len(v), *wilson_interval(k, len(v), level), level) for k, v in ((ka, a), (kb, b))]
    return share[0], share[1], p


def holm(pvalues) -> np.ndarray:
    r"""Holm's step-down adjustment of :math:`m` p-values, for a family of tests read together.

    Sort :math:`p_{(1)} \le \dots \le p_{(m)}`; the adjusted values are
    :math:`\tilde p_{(i)} = \max_{j \le i} \min\big(1, (m - j + 1)\,p_{(j)}\big)`, returned in the
    original order. Rejecting every hypothesis with :math:`\tilde p < \alpha` keeps the probability
    of any false rejection in the family below :math:`\alpha` (Holm 1979), and is never less powerful
    than Bonferroni's :math:`m\,p_i`.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or len(p) == 0 or not ((p >= 0) & (p <= 1)).all():
        raise ValueError(f"holm needs a non-empty list of p-values in [0, 1]. Got {pvalues!r}.")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def format_p(p: float) -> str:
    """A p-value at one significant digit (``0.03``, ``0.2``), ``"< 0.001"`` below 0.001, ``"1"`` at 1."""
    if not 0 <= p <= 1:
        raise ValueError(f"A p-value lies in [0, 1]. Got {p!r}.")
    if p < 0.001:
        return "< 0.001"
    text = f"{float(f'{p:.1g}'):g}"
    return text


def verdict(holds) -> str:
    """How the book prints a claim checked against its own runs: ``"holds"`` or ``"does not hold"``."""
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"verdict needs a bool (the claim checked). Got {type(holds).__name__}: {holds!r}.")
    return "holds" if holds else "does not hold"


def say(holds, yes: str, no: str) -> str:
    """A verdict in the words of the sentence that quotes it: ``yes`` if the claim checked against
    the runs holds, else ``no``."""
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"say needs a bool (the claim checked). Got {type(holds).__name__}: {holds!r}.")
    return yes if holds else no


def nearest(x: float, step: float) -> float:
    """``x`` on the grid of multiples of ``step`` (a coarse value that survives small perturbations)."""
    if not step > 0:
        raise ValueError(f"The 'step' parameter must be positive. Got {step!r} instead.")
    value = round(float(x) / step) * step
    digits = max(0, -math.floor(math.log10(step)) + (0 if float(step).is_integer() else 1))
    return round(value, digits)

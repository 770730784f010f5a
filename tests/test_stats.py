"""lessonlib.stats: each statistic on cases whose answer is known (by hand or from SciPy)."""

import math

import numpy as np
import pytest
from scipy import stats as sst

from lessonlib.stats import (bootstrap_std_interval, brunner_munzel, compare_shares, format_p, holm, levene,
                             mean_difference, nearest, std_ratio, tost, verdict, wilson_interval)


def test_mean_difference_is_welch():
    a, b = np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 4, 6, 8, 10, 12])
    d = mean_difference(a, b)
    assert d.estimate == pytest.approx(3 - 7)
    assert d.pvalue == pytest.approx(sst.ttest_ind(a, b, equal_var=False).pvalue)
    ci = sst.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high))


def test_mean_difference_of_constant_groups():
    assert mean_difference([1, 1, 1], [1, 1]).pvalue == 1.0
    d = mean_difference([2, 2, 2], [1, 1])
    assert (d.estimate, d.low, d.high, d.pvalue) == (1, 1, 1, 0.0)


def test_tost_accepts_a_small_difference_and_rejects_a_large_one():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.2, 40), rng.normal(0.05, 0.2, 40)
    near = tost(a, b, margin=0.5)
    assert near.pvalue < 0.001 and -0.5 < near.low < near.high < 0.5 and near.level == pytest.approx(0.9)
    far = tost(a, b + 1, margin=0.5)
    assert far.pvalue > 0.5
    # the TOST p-value is below alpha exactly when the 90% interval lies inside the margin
    for shift in np.linspace(-0.6, 0.6, 13):
        t = tost(a, b + shift, margin=0.3)
        assert (t.pvalue < 0.05) == (-0.3 < t.low and t.high < 0.3)


def test_brunner_munzel_agrees_with_scipy_and_reads_as_a_probability():
    a = np.array([1.0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1])
    b = np.array([3.0, 3, 4, 3, 1, 2, 3, 1, 1, 5, 4])
    bm = brunner_munzel(a, b)
    assert bm.pvalue == pytest.approx(sst.brunnermunzel(a, b).pvalue)
    # p-hat by counting pairs: P(A > B) + P(A = B) / 2
    pairs = a[:, None] - b[None, :]
    assert bm.estimate == pytest.approx(((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size)
    assert bm.low < bm.estimate < bm.high
    swapped = brunner_munzel(b, a)
    assert swapped.estimate == pytest.approx(1 - bm.estimate) and swapped.pvalue == pytest.approx(bm.pvalue)


def test_brunner_munzel_separated_and_tied_groups():
    separated = brunner_munzel([5.0, 6, 7], [1.0, 2, 3])
    assert separated.estimate == 1 and separated.pvalue == pytest.approx(2 / math.comb(6, 3))
    tied = brunner_munzel([1.0, 1, 1], [1.0, 1])
    assert tied.estimate == 0.5 and tied.pvalue == 1


def test_levene_is_brown_forsythe():
    a, b = [1.0, 2, 3, 4, 10], [2.0, 2.1, 2.2, 2.4, 2.3]
    assert levene(a, b) == pytest.approx(sst.levene(a, b, center="median").pvalue)
    assert levene([1.0, 1, 1], [2.0, 2]) == 1.0          # two constant groups: equal (zero) spreads


def test_bootstrap_intervals_cover_the_estimate_and_are_reproducible():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 3, 30), rng.normal(0, 1, 30)
    low, high = bootstrap_std_interval(a)
    assert low < a.std(ddof=1) < high and bootstrap_std_interval(a) == (low, high)
    r = std_ratio(a, b)
    assert r.estimate == pytest.approx(a.std(ddof=1) / b.std(ddof=1))
    assert 1 < r.low < r.estimate < r.high and r.pvalue == pytest.approx(levene(a, b))
    assert std_ratio([1.0, 2, 3], [1.0, 1, 1]).estimate == math.inf
    assert std_ratio([1.0, 1, 1], [2.0, 2, 2]).estimate == 1.0


def test_wilson_interval_known_values():
    # Wilson (1927) / Newcombe (1998) example: 81 of 263 -> (0.2553, 0.3662)
    low, high = wilson_interval(81, 263)
    assert (low, high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0 and wilson_interval(10, 10)[1] == 1
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(11, 10)


def test_compare_shares_counts_and_fisher():
    a, b = [99, 99, 99, 98], [99, 97, 97, 97]
    sa, sb, p = compare_shares(a, b, 99)
    assert (sa.estimate, sb.estimate) == (0.75, 0.25)
    assert p == pytest.approx(sst.fisher_exact([[3, 1], [1, 3]]).pvalue)


def test_holm_known_case():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.2, 0.9]), [0.4, 0.9])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    with pytest.raises(ValueError, match="p-values in \\[0, 1\\]"):
        holm([1.5])


@pytest.mark.parametrize("p, text", [(0.0004, "< 0.001"), (0.0012, "0.001"), (0.034, "0.03"), (0.26, "0.3"),
                                     (0.96, "1"), (1.0, "1")])
def test_format_p(p, text):
    assert format_p(p) == text


def test_verdict():
    assert verdict(True) == "holds" and verdict(np.bool_(False)) == "does not hold"
    with pytest.raises(TypeError, match="needs a bool"):
        verdict(0.3)


def test_nearest_and_errors():
    assert nearest(97.26, 0.5) == 97.5 and nearest(172, 25) == 175 and nearest(0.123, 0.01) == 0.12
    with pytest.raises(ValueError, match="at least 2 finite"):
        mean_difference([1.0], [1.0, 2])
    with pytest.raises(ValueError, match="margin"):
        tost([1.0, 2], [1.0, 2], margin=0)
    with pytest.raises(ValueError, match="level"):
        brunner_munzel([1.0, 2], [1.0, 2], level=1.5)


def test_say_picks_the_words_of_the_verdict_and_needs_a_bool():
    import numpy as np
    import pytest
    from lessonlib.stats import say

    assert say(np.float64(3) > 2, "above", "below") == "above"
    assert say(False, "above", "below") == "below"
    with pytest.raises(TypeError, match="needs a bool"):
        say(np.array([True, False]), "a", "b")

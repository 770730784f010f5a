r"""Checks for the exercises: they run the learner's code and say precisely what is off.

:func:`check_init` tests a hand-written initializer statistically against a scheme of the
registry. It draws a non-square weight (so that ``fan_in`` and ``fan_out`` differ and can be
told apart), measures its mean, its standard deviation and its largest magnitude, and, when
the spread is wrong, names the formula the learner's numbers actually follow, e.g.
"your bound is sqrt(3/fan_in); expected sqrt(6/(fan_in+fan_out))".
"""

import math

import torch

from ..schemes import fans, gain, make_scheme

CHECK_SHAPE = (300, 500)  # (fan_out, fan_in): 150,000 weights
"""The weight shape the checks draw: fan_in 500, fan_out 300."""

_TOLERANCE = 0.02  # relative; the sample std of 150,000 draws is off by about 0.2%


def _spread_formulas(fan_in: int, fan_out: int) -> dict:
    """Common candidates for a std or a bound, by the formula a learner would write."""
    bases = {"fan_in": fan_in, "fan_out": fan_out, "(fan_in+fan_out)": fan_in + fan_out}
    formulas = {}
    for base_name, base in bases.items():
        for k in (1, 2, 3, 6):
            formulas[f"sqrt({k}/{base_name})"] = math.sqrt(k / base)
            formulas[f"{k}/{base_name}"] = k / base
    for k in (1, 2, 3, 6):  # the tanh gain 5/3 times each of the usual forms
        formulas[f"5/3*sqrt({k}/fan_in)"] = 5 / 3 * math.sqrt(k / fan_in)
        formulas[f"5/3*sqrt({k}/(fan_in+fan_out))"] = 5 / 3 * math.sqrt(k / (fan_in + fan_out))
    return formulas


def _name_of(value: float, formulas: dict) -> str | None:
    best = min(formulas, key=lambda f: abs(formulas[f] / value - 1) if value > 0 else math.inf)
    return best if value > 0 and abs(formulas[best] / value - 1) < _TOLERANCE else None


def expected_spread(scheme, fan_in: int, fan_out: int) -> tuple[str, float, str]:
    r"""``(distribution, spread, formula)`` of a zero-mean fan-based scheme.

    For a uniform scheme the spread is the bound :math:`b` of :math:`\mathcal{U}(-b, b)`, for a
    normal scheme the standard deviation; ``formula`` spells it out.
    """
    scheme = make_scheme(scheme)
    p = scheme.params
    g = p.get("gain")
    if scheme.name.startswith("kaiming"):
        g = gain(p["nonlinearity"], p["a"])
        fan_name, fan = (p["mode"], fan_in if p["mode"] == "fan_in" else fan_out)
        g_text = {"relu": "2", "linear": "1", "sigmoid": "1"}.get(p["nonlinearity"], f"{g * g:.4g}")
        if scheme.name == "kaiming_uniform":
            return "uniform", g * math.sqrt(3 / fan), f"sqrt(3*{g_text}/{fan_name})"
        return "normal", g / math.sqrt(fan), f"sqrt({g_text}/{fan_name})"
    prefix = "" if g in (None, 1.0) else f"{g:.4g}*"
    table = {
        "xavier_uniform": ("uniform", math.sqrt(6 / (fan_in + fan_out)), "sqrt(6/(fan_in+fan_out))"),
        "xavier_normal": ("normal", math.sqrt(2 / (fan_in + fan_out)), "sqrt(2/(fan_in+fan_out))"),
        "lecun_uniform": ("uniform", math.sqrt(3 / fan_in), "sqrt(3/fan_in)"),
        "lecun_normal": ("normal", math.sqrt(1 / fan_in), "sqrt(1/fan_in)"),
        "pytorch_default": ("uniform", math.sqrt(1 / fan_in), "sqrt(1/fan_in)"),
    }
    if scheme.name not in table:
        raise ValueError(f"expected_spread covers the zero-mean fan-based schemes "
                         f"(xavier_*, kaiming_*, lecun_*, pytorch_default). Got {scheme.name!r}.")
    distribution, spread, formula = table[scheme.name]
    return distribution, (g or 1.0) * spread, prefix + formula


def _draw(candidate, shape, seed):
    torch.manual_seed(seed)
    weight = torch.empty(shape)
    returned = candidate(weight)
    result = weight if returned is None else returned
    if not isinstance(result, torch.Tensor):
        return None, f"your function returned {type(result).__name__}; it should fill the weight tensor it is given (or return it)."
    if tuple(result.shape) != tuple(shape):
        return None, f"your function returned a tensor of shape {tuple(result.shape)}; expected the weight's shape {tuple(shape)}."
    if not torch.isfinite(result).all():
        return None, "your weights contain inf or NaN."
    return result.double(), None


def check_init(candidate, scheme, *, seed: int = 0, verbose: bool = True) -> bool:
    """Check ``candidate(weight)``, a hand-written initializer, against ``scheme``.

    ``candidate`` receives an empty weight of shape ``CHECK_SHAPE`` (fan_out 300, fan_in 500)
    and fills it in place (or returns a tensor of that shape). The check compares the mean, the
    spread (std for a normal scheme, bound for a uniform one) and the shape of the distribution
    with what ``scheme`` prescribes, prints what it found and returns True if all agree.
    """
    scheme = make_scheme(scheme)
    fan_in, fan_out = fans(torch.empty(CHECK_SHAPE))
    weight, problem = _draw(candidate, CHECK_SHAPE, seed)
    if problem is None:
        problem = _diagnose(weight, scheme, fan_in, fan_out)
    if verbose:
        print(f"✗ Not yet: {problem}" if problem else
              f"✓ Correct: your weights match {scheme.label} (fan_in={fan_in}, fan_out={fan_out}).")
    return problem is None


def _diagnose(w: torch.Tensor, scheme, fan_in: int, fan_out: int) -> str | None:
    """What is wrong with the sample ``w`` for ``scheme``, or None."""
    std, mean, largest = w.std().item(), w.mean().item(), w.abs().max().item()
    distribution, spread, formula = expected_spread(scheme, fan_in, fan_out)
    expected_std = spread / math.sqrt(3) if distribution == "uniform" else spread
    if std == 0:
        return "all your weights are equal; they must be random to break the symmetry."
    if abs(mean) > 0.05 * expected_std:
        return f"your weights have mean {mean:.3g}; {scheme.label} draws them around 0."
    looks_uniform = largest < 2.0 * std  # a uniform sample never exceeds sqrt(3) std
    if distribution == "uniform" and not looks_uniform:
        return (f"your weights look normally distributed (the largest |w| is {largest / std:.1f} std); "
                f"{scheme.label} draws from a uniform distribution U(-b, b).")
    if distribution == "normal" and looks_uniform:
        return (f"your weights look uniformly distributed (none beyond {largest / std:.2f} std); "
                f"{scheme.label} draws from a normal distribution.")
    measured, what = (largest, "bound") if distribution == "uniform" else (std, "std")
    if abs(measured / spread - 1) > _TOLERANCE:
        formulas = _spread_formulas(fan_in, fan_out)
        name = _name_of(measured, formulas)
        yours = f"{name} = {formulas[name]:.4g}" if name else f"{measured:.4g}"
        return (f"your {what} is {yours}; expected {formula} = {spread:.4g} "
                f"(fan_in={fan_in}, fan_out={fan_out}).")
    return None

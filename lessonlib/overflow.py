r"""Values out of range: a log axis kept on the comparison a panel is about, and a runaway curve
marked where it leaves it.

A deep network's per-layer statistics span dozens of decades when one scheme vanishes or explodes
(:math:`10^{-80}` after 50 layers of a too-small normal). Drawn on one log axis with the schemes that
hold, that one curve squeezes the others into a flat line and hides the comparison the panel is
about. :func:`focus_log_axis` sets the axis to the curves that matter; :func:`mark_off_axis` draws a
triangle where a runaway curve leaves the axis and writes where it ends, so the reader still sees
that it runs away, and how far.
"""

import math

import numpy as np


def focus_log_axis(ax, kept, margin: float = 10.0):
    r"""Set the y-limits of a log axis to the finite positive values of ``kept`` (a list of arrays),
    widened by the factor ``margin`` at both ends: :math:`[\min/m, \max \cdot m]`. Returns the limits."""
    if not margin >= 1:
        raise ValueError(f"The 'margin' parameter must be a float >= 1. Got {margin!r} instead.")
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in kept])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        raise ValueError("'kept' holds no finite positive value to put in view.")
    limits = (float(values.min()) / margin, float(values.max()) * margin)
    ax.set_ylim(*limits)
    return limits


def _decade(value: float) -> str:
    """``1e-80``: the power of ten nearest ``value``, for a label (a runaway value has no other digits)."""
    return f"1e{round(math.log10(value)):d}"


def mark_off_axis(ax, x, y, color, name: str, where: str = "layer", from_end: bool = False,
                  text_at=None, fontsize: float = 7.5):
    r"""If the curve ``(x, y)`` leaves the y-limits of ``ax`` (a log axis), draw a triangle at the edge
    where it leaves and write ``name``, that ``x`` and the value at the far end, as a power of ten:
    "σ = 0.01: off the axis from layer 7 on (1e-80 at layer 50)". The curve is followed from its
    first point, or with ``from_end`` from its last (a gradient, which starts at the output):
    "N(0, 1): off the axis from layer 40 down (1e90 at layer 1)". ``text_at``, a point in axes
    fractions, puts the text there with an arrow to the triangle (where the lines leave room).
    Returns the ``x`` where it leaves, or None if the curve stays in view."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    if from_end:
        x, y = x[::-1], y[::-1]
    low, high = ax.get_ylim()
    outside = np.flatnonzero(~((y >= low) & (y <= high)))
    if len(outside) == 0:
        return None
    i = int(outside[0])
    below = not (y[i] > high)
    edge = low if below else high
    ax.plot(x[i], edge, "v" if below else "^", color=color, ms=9, clip_on=False, zorder=5)
    finite = y[np.isfinite(y) & (y > 0)]
    text = f"{name}: off the axis from {where} {x[i]} {'down' if from_end else 'on'}"
    if finite.size and np.isfinite(y[-1]) and y[-1] > 0:
        text += f" ({_decade(y[-1])} at {where} {x[-1]})"
    if text_at is not None:
        ax.annotate(text, (x[i], edge), xytext=text_at, textcoords="axes fraction", fontsize=fontsize,
                    color=color, arrowprops=dict(arrowstyle="->", color=color, lw=0.8))
    else:
        ax.annotate(text, (x[i], edge), xytext=(-8 if from_end else 8, 8 if below else -8),
                    textcoords="offset points", ha="right" if from_end else "left",
                    va="bottom" if below else "top", fontsize=fontsize, color=color)
    return x[i]

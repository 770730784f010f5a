r"""A loss surface small enough to draw: one sigmoid neuron, two parameters, two minima.

The model is a single neuron :math:`\hat y = \sigma(w x + b)`, :math:`\sigma(z) = 1/(1+e^{-z})`,
fitted by mean squared error to :math:`n` points :math:`(x_i, y_i)`:

.. math:: L(w, b) = \frac{1}{n} \sum_{i=1}^{n} \bigl(\sigma(w x_i + b) - y_i\bigr)^2 .

With :math:`p_i = \sigma(w x_i + b)` and :math:`\sigma' = \sigma (1 - \sigma)`, its gradient is

.. math:: \frac{\partial L}{\partial w} = \frac{2}{n} \sum_i (p_i - y_i)\, p_i (1 - p_i)\, x_i,
          \qquad
          \frac{\partial L}{\partial b} = \frac{2}{n} \sum_i (p_i - y_i)\, p_i (1 - p_i).

The data of :func:`plateau` rise at one point and fall at another. A sigmoid is a single
step, so it can fit one edge or the other, not both: the surface has one minimum per edge, and
which one plain gradient descent reaches depends only on where it starts.
Everything here is NumPy and deterministic: no random numbers, no threads.
"""

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.colors import ListedColormap, LogNorm
from scipy.optimize import minimize
from scipy.special import expit

START_COLORS = {"A": "#E69F00", "B": "#0072B2"}
"""Colours of the two starting points A and B in every figure of the surface."""


def sigmoid(z):
    r""":math:`\sigma(z) = 1/(1+e^{-z})`, computed without overflow for large :math:`|z|`."""
    return expit(np.asarray(z, dtype=float))


def _check_finite_number(name, value, low=-math.inf, low_open=False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > low if low_open else value >= low)
    if not ok:
        interval = f"({low}, inf)" if low_open else ("(-inf, inf)" if low == -math.inf else f"[{low}, inf)")
        raise ValueError(f"The {name!r} parameter must be a finite float in the range {interval}. "
                         f"Got {value!r} instead.")


def _check_point(name, point):
    if np.shape(point) != (2,):
        raise ValueError(f"The {name!r} parameter must be a pair (w, b). Got {point!r} instead.")
    for value in point:
        _check_finite_number(name, value)


@dataclass(frozen=True, eq=False)
class NeuronFit:
    r"""The problem of fitting :math:`\sigma(w x + b)` to the points ``(x, y)`` by squared error.

    ``loss``, ``gradient`` and ``predict`` broadcast over arrays of ``w`` and ``b`` of the same
    shape, so one call evaluates a whole grid of parameter values.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        x, y = np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)
        if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
            raise ValueError(f"x and y must be 1-D arrays of the same length >= 2. "
                             f"Got shapes {x.shape} and {y.shape}.")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("x and y must hold finite numbers only.")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def predict(self, w, b, x=None):
        r""":math:`\sigma(w x + b)` at the points ``x`` (the data's by default), on a last axis."""
        x = self.x if x is None else np.asarray(x, dtype=float)
        return sigmoid(np.asarray(w, dtype=float)[..., None] * x + np.asarray(b, dtype=float)[..., None])

    def loss(self, w, b):
        r""":math:`L(w, b) = \frac1n \sum_i (\sigma(w x_i + b) - y_i)^2`."""
        return ((self.predict(w, b) - self.y) ** 2).mean(axis=-1)

    def gradient(self, w, b):
        r"""``(dL/dw, dL/db)`` from the closed form :math:`\frac2n \sum_i (p_i - y_i) p_i (1-p_i) (x_i, 1)`."""
        p = self.predict(w, b)
        slope = 2 * (p - self.y) * p * (1 - p) / len(self.x)
        return (slope * self.x).sum(axis=-1), slope.sum(axis=-1)


def plateau(n_points: int = 81, low: float = -4.0, high: float = 4.0, rise: float = -2.0,
            fall: float = 3.0, steepness: float = 3.0) -> NeuronFit:
    r"""``n_points`` evenly spaced :math:`x \in [\text{low}, \text{high}]` with a plateau-shaped target

    .. math:: y = \sigma\bigl(s (x - \text{rise})\bigr) - \sigma\bigl(s (x - \text{fall})\bigr),

    which climbs from 0 to 1 around ``rise`` and comes back down around ``fall``, both with
    steepness :math:`s`. The neuron fits the rising edge exactly with :math:`(w, b) = (s, -s\,\text{rise})`
    and the falling one with :math:`(w, b) = (-s, s\,\text{fall})`; the edge it leaves out costs
    roughly the share of the data beyond that edge.
    """
    if not isinstance(n_points, (int, np.integer)) or isinstance(n_points, bool) or n_points < 2:
        raise ValueError(f"The 'n_points' parameter must be an int >= 2. Got {n_points!r} instead.")
    for name, value in (("low", low), ("high", high), ("rise", rise), ("fall", fall)):
        _check_finite_number(name, value)
    _check_finite_number("steepness", steepness, low=0, low_open=True)
    if not low < high:
        raise ValueError(f"The range needs low < high. Got low={low!r}, high={high!r}.")
    if not rise < fall:
        raise ValueError(f"The plateau needs rise < fall. Got rise={rise!r}, fall={fall!r}.")
    x = np.linspace(low, high, n_points)
    return NeuronFit(x, sigmoid(steepness * (x - rise)) - sigmoid(steepness * (x - fall)))


def _check_descent(lr, steps):
    _check_finite_number("lr", lr, low=0, low_open=True)
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"The 'steps' parameter must be an int >= 0. Got {steps!r} instead.")


def descend(problem: NeuronFit, start, lr: float = 2.5, steps: int = 20_000) -> np.ndarray:
    r"""Plain gradient descent with a fixed step from ``start = (w, b)``.

    Each step is :math:`(w, b) \leftarrow (w, b) - \eta\, \nabla L(w, b)` with :math:`\eta` = ``lr``.
    Returns the path, an array of shape ``(steps + 1, 2)`` whose row ``t`` is :math:`(w, b)`
    after ``t`` steps (row 0 is the start).
    """
    _check_point("start", start)
    _check_descent(lr, steps)
    path = np.empty((steps + 1, 2))
    path[0] = start
    w, b = float(start[0]), float(start[1])
    for t in range(1, steps + 1):
        dw, db = problem.gradient(w, b)
        w, b = w - lr * float(dw), b - lr * float(db)
        path[t] = w, b
    return path


def descend_all(problem: NeuronFit, w, b, lr: float = 2.5, steps: int = 3000):
    r"""Run :func:`descend` from every start ``(w[k], b[k])`` at once (arrays of one shape);
    return only where each one ends, as two arrays of that shape."""
    _check_descent(lr, steps)
    w, b = np.array(w, dtype=float), np.array(b, dtype=float)
    if w.shape != b.shape or not (np.isfinite(w).all() and np.isfinite(b).all()):
        raise ValueError(f"w and b must be finite arrays of one shape. Got shapes {w.shape} and {b.shape}.")
    for _ in range(steps):
        dw, db = problem.gradient(w, b)
        w, b = w - lr * dw, b - lr * db
    return w, b


def find_minimum(problem: NeuronFit, start) -> tuple[float, float, float]:
    r"""The local minimum ``(w, b, loss)`` that a quasi-Newton search (BFGS, with the exact
    gradient) reaches from ``start``: the point the slow last part of gradient descent creeps to."""
    _check_point("start", start)

    def value_and_gradient(theta):
        return float(problem.loss(*theta)), np.array(problem.gradient(*theta), dtype=float)

    result = minimize(value_and_gradient, np.asarray(start, dtype=float), jac=True, method="BFGS",
                      options={"gtol": 1e-10})
    w, b = result.x
    return float(w), float(b), float(problem.loss(w, b))


def basin_map(problem: NeuronFit, ws, bs, minima, lr: float = 2.5, steps: int = 3000) -> np.ndarray:
    r"""Which of ``minima`` (a list of ``(w, b)``) gradient descent reaches from each start of the
    grid ``ws`` x ``bs``: an int array of shape ``(len(bs), len(ws))`` holding the index of the
    nearest minimum to where each descent ends."""
    W, B = np.meshgrid(np.asarray(ws, dtype=float), np.asarray(bs, dtype=float))
    end_w, end_b = descend_all(problem, W, B, lr, steps)
    minima = np.asarray(minima, dtype=float)
    if minima.ndim != 2 or minima.shape[1] != 2:
        raise ValueError(f"minima must be a list of (w, b) pairs. Got an array of shape {minima.shape}.")
    distances = np.hypot(end_w[..., None] - minima[:, 0], end_b[..., None] - minima[:, 1])
    return distances.argmin(axis=-1)


def loss_grid(problem: NeuronFit, ws, bs) -> np.ndarray:
    """The loss at every ``(w, b)`` of the grid ``ws`` x ``bs``, shape ``(len(bs), len(ws))``
    (rows are values of ``b``, as ``contourf(ws, bs, grid)`` expects)."""
    W, B = np.meshgrid(np.asarray(ws, dtype=float), np.asarray(bs, dtype=float))
    return problem.loss(W, B)


# ---------------------------------------------------------------------------------------------
# figures

_OUTLINE = [patheffects.withStroke(linewidth=3.5, foreground="white")]


def _draw_paths_2d(ax, paths, every):
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], color=START_COLORS.get(name, "black"), lw=2, path_effects=_OUTLINE,
                label=f"path from {name}")
    for k, (name, path) in enumerate(paths.items()):
        # white dots with a black rim, above the minima's stars: visible on dark and light ground
        ax.plot(path[every::every, 0], path[every::every, 1], "o", mfc="white", mec="black", mew=0.8, ms=4.5,
                zorder=7, label=f"every {every:,}th step" if k == 0 else None)
        ax.plot(*path[0], "o", color=START_COLORS.get(name, "black"), ms=9, mec="black")
        ax.annotate(name, path[0], xytext=(-14, -4), textcoords="offset points", fontsize=13,
                    fontweight="bold", path_effects=_OUTLINE)


def plot_surface(problem: NeuronFit, paths: dict, minima: dict, ws, bs, every: int = 1000,
                 title: str | None = None):
    """The loss surface as a 3-D plot (left) and a contour map (right), log colour scale.

    ``paths`` maps a start's name (``"A"``, ``"B"``) to its :func:`descend` path, drawn with a
    white dot every ``every`` steps (after the start); ``minima`` maps a label to a ``(w, b)``
    point, marked with a star. Returns the figure.
    """
    ws, bs = np.asarray(ws, dtype=float), np.asarray(bs, dtype=float)
    grid = loss_grid(problem, ws, bs)
    norm = LogNorm(grid.min(), grid.max())
    levels = np.geomspace(grid.min(), grid.max(), 25)
    fig = plt.figure(figsize=(12, 5))

    ax3d = fig.add_subplot(1, 2, 1, projection="3d", computed_zorder=False)
    W, B = np.meshgrid(ws, bs)
    ax3d.plot_surface(W, B, grid, cmap="bone", norm=norm, rstride=2, cstride=2, lw=0, alpha=0.85)
    for name, path in paths.items():
        lifted = problem.loss(path[:, 0], path[:, 1])
        ax3d.plot(path[:, 0], path[:, 1], lifted, color=START_COLORS.get(name, "black"), lw=2.5, zorder=5)
        ax3d.text(path[0, 0], path[0, 1], lifted[0] + 0.04, name, fontsize=12, fontweight="bold", zorder=6)
    for w, b in minima.values():
        ax3d.scatter([w], [b], [problem.loss(w, b)], marker="*", s=180, color="#F0E442",
                     edgecolor="black", zorder=6, depthshade=False)
    ax3d.set_xlabel("weight w")
    ax3d.set_ylabel("bias b")
    ax3d.set_zlabel("loss L(w, b)")
    ax3d.view_init(elev=40, azim=-70)

    ax = fig.add_subplot(1, 2, 2)
    filled = ax.contourf(ws, bs, grid, levels=levels, norm=norm, cmap="bone")
    ax.contour(ws, bs, grid, levels=levels[::3], colors="black", linewidths=0.3, alpha=0.5)
    fig.colorbar(filled, ax=ax, label="loss L(w, b) (log scale)", format="%.2f")
    _draw_paths_2d(ax, paths, every)
    for k, (label, (w, b)) in enumerate(minima.items()):
        ax.plot(w, b, "*", color="#F0E442", ms=16, mec="black", zorder=6, label="a minimum" if k == 0 else None)
        ax.annotate(label, (w, b), xytext=(-10 if w > 0 else 10, 8), textcoords="offset points",
                    ha="right" if w > 0 else "left", fontsize=10, path_effects=_OUTLINE)
    ax.set_xlabel("weight w")
    ax.set_ylabel("bias b")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fits(problem: NeuronFit, fits: dict, starts: dict | None = None, title: str | None = None, ax=None):
    """The data and the neuron's curve for each ``(w, b)`` in ``fits`` (name -> point), with the
    curve at each start of ``starts`` dashed. Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    x = np.linspace(problem.x.min(), problem.x.max(), 400)
    ax.plot(problem.x, problem.y, "o", color="0.35", ms=3, label="data (target y)")
    for name, (w, b) in (starts or {}).items():
        ax.plot(x, problem.predict(w, b, x), "--", color=START_COLORS.get(name, "black"), lw=1.5,
                label=f"{name} at the start")
    for name, (w, b) in fits.items():
        ax.plot(x, problem.predict(w, b, x), color=START_COLORS.get(name, "black"), lw=2.2,
                label=f"{name} after descent")
    ax.set_xlabel("input x")
    ax.set_ylabel("output σ(w x + b)")
    ax.set_ylim(-0.05, 1.1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        ax.set_title(title)
    return ax


def plot_basins(problem: NeuronFit, ws, bs, basins: np.ndarray, labels, starts: dict | None = None,
                title: str | None = None, ax=None):
    """Colour each start of the grid ``ws`` x ``bs`` by the minimum it descends to (``basins``
    from :func:`basin_map`, ``labels`` naming the minima in order); mark ``starts``. Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    ws, bs = np.asarray(ws, dtype=float), np.asarray(bs, dtype=float)
    colors = ["#D9D9D9", "#6E6E6E", "#B3B3FF", "#FFB3B3"][:len(labels)]
    step_w = (ws[1] - ws[0]) / 2
    step_b = (bs[1] - bs[0]) / 2
    ax.imshow(basins, origin="lower", aspect="auto", interpolation="nearest",
              extent=(ws[0] - step_w, ws[-1] + step_w, bs[0] - step_b, bs[-1] + step_b),
              cmap=ListedColormap(colors), vmin=-0.5, vmax=len(labels) - 0.5)
    for color, label in zip(colors, labels):
        ax.fill_between([], [], color=color, label=f"ends in {label}")
    for name, (w, b) in (starts or {}).items():
        ax.plot(w, b, "o", color=START_COLORS.get(name, "black"), ms=10, mec="black")
        ax.annotate(name, (w, b), xytext=(-15, -4), textcoords="offset points", fontsize=13,
                    fontweight="bold", path_effects=_OUTLINE)
    ax.set_xlabel("starting weight w")
    ax.set_ylabel("starting bias b")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return ax

r"""What a trained classifier does on the plane: decision regions and weight heatmaps.

For a model :math:`f:\mathbb{R}^2\to\mathbb{R}^K` (class scores), the decision region of class
:math:`k` is :math:`\{x : \arg\max_j f_j(x) = k\}`. We evaluate the model on a regular grid of
points covering the data and, for two classes, draw
:math:`p_1(x) = \mathrm{softmax}(f(x))_1 = \sigma(f_1(x) - f_0(x))` as a colour map, with the
decision boundary :math:`p_1(x) = 1/2` (equivalently :math:`f_1(x) = f_0(x)`) as a line.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

CLASS_COLORS = ("#0072B2", "#D55E00")
"""Class 0 and class 1 of a two-class problem (points and the two ends of the colour map)."""


def plane_grid(X, resolution: int = 150, margin: float = 0.5):
    r"""A ``resolution`` x ``resolution`` grid over the bounding box of the 2-D points ``X``.

    The box is :math:`[\min_i x_{i1} - m, \max_i x_{i1} + m] \times [\min_i x_{i2} - m, \max_i x_{i2} + m]`
    with :math:`m` = ``margin``. Returns ``(xx, yy)``, two arrays of shape
    ``(resolution, resolution)`` as :func:`numpy.meshgrid` gives them.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"X must be a non-empty array of 2-D points, shape (n, 2). Got shape {X.shape}.")
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 2:
        raise ValueError(f"The 'resolution' parameter must be an int >= 2. Got {resolution!r} instead.")
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"The 'margin' parameter must be a float in the range [0, inf). Got {margin!r} instead.")
    low, high = X.min(0) - margin, X.max(0) + margin
    return np.meshgrid(np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution))


def class_probabilities(model: nn.Module, xx, yy) -> np.ndarray:
    r"""Softmax class probabilities of ``model`` at every grid point, shape ``(*xx.shape, K)``.

    :math:`p_k(x) = e^{f_k(x)} / \sum_j e^{f_j(x)}` for the scores :math:`f(x)` of the model
    (evaluated in ``eval`` mode without gradients, in the precision of the model's parameters).
    """
    xx, yy = np.asarray(xx), np.asarray(yy)
    if xx.shape != yy.shape:
        raise ValueError(f"xx and yy must have the same shape. Got {xx.shape} and {yy.shape}.")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    points = torch.tensor(np.c_[xx.ravel(), yy.ravel()], dtype=dtype)   # the model's own precision
    model.eval()
    with torch.no_grad():
        scores = model(points)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"The model must output one score per class (at least 2) for each point. "
                         f"Got scores of shape {tuple(scores.shape)}.")
    return torch.softmax(scores, dim=1).numpy().reshape(*xx.shape, -1)


def plot_decision_boundary(ax, model: nn.Module, X, y, resolution: int = 150, title: str | None = None):
    r"""Draw :math:`p_1(x)` of a two-class ``model`` on ``ax``, its boundary :math:`p_1 = 1/2` and the points.

    ``X`` (shape ``(n, 2)``) and ``y`` (labels 0/1) are the points drawn on top, coloured by class.
    Returns the filled contour (for a colour bar).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have one label per point. Got {len(X)} points and {len(y)} labels.")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(f"plot_decision_boundary draws two-class problems: labels must be 0 or 1. "
                         f"Got labels {sorted(set(np.unique(y).tolist()))}.")
    xx, yy = plane_grid(X, resolution)
    p1 = class_probabilities(model, xx, yy)[..., 1]
    cmap = plt.matplotlib.colors.LinearSegmentedColormap.from_list("classes", [CLASS_COLORS[0], "white",
                                                                               CLASS_COLORS[1]])
    filled = ax.contourf(xx, yy, p1, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.75)
    ax.contour(xx, yy, p1, levels=[0.5], colors="black", linewidths=1.2)
    for k in (0, 1):
        ax.scatter(*X[y == k].T, s=6, color=CLASS_COLORS[k], edgecolors="white", linewidths=0.2)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    if title:
        ax.set_title(title, fontsize=9)
    return filled


def plot_weight_heatmaps(axes, snapshots: dict, name: str, epochs, vmax: float | None = None):
    r"""One heatmap per epoch of the weight matrix ``name``, on a shared symmetric colour scale.

    ``snapshots`` is :attr:`History.snapshots <lessonlib.train.History>` (epoch -> {name: weight});
    the scale is :math:`[-v, v]` with :math:`v` = ``vmax`` or :math:`\max_{e,i,j} |W^{(e)}_{ij}|`.
    Returns the last image (for a colour bar).
    """
    epochs = list(epochs)
    missing = [e for e in epochs if e not in snapshots]
    if missing:
        raise ValueError(f"No snapshot at epochs {missing}. Snapshots exist at {sorted(snapshots)}; "
                         f"train with snapshot_epochs={tuple(epochs)}.")
    if name not in snapshots[epochs[0]]:
        raise ValueError(f"No weight named {name!r}. Weights: {list(snapshots[epochs[0]])}.")
    if len(axes) != len(epochs):
        raise ValueError(f"Need one axis per epoch: {len(epochs)} epochs but {len(axes)} axes.")
    mats = [snapshots[e][name].numpy() for e in epochs]
    vmax = vmax or max(float(np.abs(m).max()) for m in mats)
    for ax, e, m in zip(axes, epochs, mats):
        image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set(xticks=[], yticks=[], title=f"epoch {e}")
    return image

r"""Per-layer histograms of what flows through a network, in the style of Glorot & Bengio (2010),
figures 6 and 7.

For each layer :math:`l` a batch of values :math:`v_l` (activations :math:`\tanh(z_l)`,
pre-activations :math:`z_l`, or back-propagated gradients :math:`\partial L/\partial z_l`) is
binned on edges shared by every layer, and the fraction of the layer's values in each bin,

.. math:: p_{l,k} = \frac{\#\{i : e_k \le v_{l,i} < e_{k+1}\}}{\#\{i\}},

is drawn as a line, one per layer, coloured from the first layer (light) to the last (dark). On
shared edges a layer whose values keep their spread draws a low, wide curve, and a layer whose
values collapse towards 0 draws a tall spike at the centre. The fractions are drawn on a log axis,
so that the wide curves stay visible beside the spikes. Values outside the edges are not binned:
:func:`layer_fractions` leaves them out, so a layer's fractions then sum to less than 1.
"""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch


def _as_array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().double().cpu().numpy()
    return np.asarray(values, dtype=float).ravel()


def layer_fractions(per_layer, edges) -> np.ndarray:
    r""":math:`p_{l,k}`, the fraction of layer :math:`l`'s values in bin :math:`[e_k, e_{k+1})`.

    ``per_layer`` is a sequence with one batch of values (tensor or array, any shape) per layer;
    ``edges`` are the increasing bin edges shared by every layer. Returns an array of shape
    ``(layers, bins)``; values outside the edges count in the denominator but in no bin.
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"'edges' must be at least two increasing numbers. Got {edges!r} instead.")
    per_layer = list(per_layer)
    if not per_layer:
        raise ValueError("'per_layer' must hold one batch of values per layer. Got no layer.")
    rows = []
    for l, values in enumerate(per_layer):
        v = _as_array(values)
        if v.size == 0:
            raise ValueError(f"Layer {l + 1} has no values to bin.")
        rows.append(np.histogram(v, bins=edges)[0] / v.size)
    return np.array(rows)


def within(values, half_width: float) -> float:
    r"""The fraction of ``values`` with :math:`|v| \le` ``half_width``: how much of a layer sits near 0."""
    if not half_width > 0:
        raise ValueError(f"'half_width' must be a float in the range (0, inf). Got {half_width!r} instead.")
    v = _as_array(values)
    return float((np.abs(v) <= half_width).mean())


def plot_layer_histograms(ax, per_layer, edges, *, cmap: str = "viridis", floor: float = 1e-4,
                          first_layer: int = 1):
    r"""Draw :func:`layer_fractions` of ``per_layer`` on ``ax``: one line per layer, coloured by depth.

    The y-axis is logarithmic (fraction of values per bin) and starts at ``floor``; layers are
    numbered from ``first_layer``. Returns a ``ScalarMappable`` for a colorbar of the layer number
    (``fig.colorbar(mappable, ax=axes, label="layer")``).
    """
    if not 0 < floor < 1:
        raise ValueError(f"'floor' must be a float in the range (0, 1). Got {floor!r} instead.")
    fractions = layer_fractions(per_layer, edges)
    centres = (np.asarray(edges[:-1], dtype=float) + np.asarray(edges[1:], dtype=float)) / 2
    last = first_layer + len(fractions) - 1
    norm = mpl.colors.Normalize(vmin=first_layer, vmax=max(last, first_layer + 1))
    colormap = plt.get_cmap(cmap)
    for l, row in enumerate(fractions):
        shown = np.where(row > 0, row, np.nan)
        ax.plot(centres, shown, color=colormap(norm(first_layer + l)), lw=1.3)
    ax.set_yscale("log")
    ax.set_ylim(floor, 1.5)
    ax.grid(alpha=0.3)
    return mpl.cm.ScalarMappable(norm=norm, cmap=colormap)

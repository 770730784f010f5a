"""Figures used across the book, with one fixed colour per scheme.

Colours come from the Okabe-Ito palette and Paul Tol's (readable by colour-blind readers; figures
keep a white background in the dark theme); no two families share a colour, nor do the parameterised
schemes with any family, and a scheme keeps its colour in every figure of every chapter, and
legends list schemes in the registry's order.
"""

import math

import matplotlib.pyplot as plt
import numpy as np

from .schemes import SCHEMES, Scheme, make_scheme

FAMILY_COLORS = {
    "zeros": "#999999",
    "constant": "#8C564B",
    "normal": "#D55E00",
    "uniform": "#882255",
    "xavier_uniform": "#0072B2",
    "xavier_normal": "#0072B2",
    "kaiming_uniform": "#009E73",
    "kaiming_normal": "#009E73",
    "lecun_uniform": "#999933",
    "lecun_normal": "#999933",
    "orthogonal": "#000000",
    "pytorch_default": "#7F3C8D",
}
"""The colour of each scheme; parameterised schemes the book uses often get their own below."""

PARAMETERISED_COLORS = {
    "normal(mean=5.0, std=3.0)": "#661100",   # article 000's "high"
    "normal(mean=0.2, std=0.05)": "#CC79A7",  # article 000's "low"
    "normal(mean=0.0, std=0.01)": "#E69F00",  # article 003's "small normal"
}


def scheme_color(scheme) -> str:
    """The book-wide colour of ``scheme`` (a :class:`Scheme` or a scheme name)."""
    scheme = make_scheme(scheme)
    return PARAMETERISED_COLORS.get(str(scheme), FAMILY_COLORS[scheme.name])


def in_book_order(schemes):
    """``schemes`` sorted as the registry lists them (zeros first, PyTorch's default last)."""
    rank = {name: i for i, name in enumerate(SCHEMES)}
    return sorted(schemes, key=lambda s: (rank[make_scheme(s).name], str(make_scheme(s))))


METRICS = {
    "loss": ("training loss", "training loss (cross-entropy)"),
    "test_loss": ("test loss", "test loss (cross-entropy)"),
    "train_acc": ("training accuracy", "training accuracy (%)"),
    "test_acc": ("test accuracy", "test accuracy (%)"),
}


def plot_learning_curves(runs: dict, metrics=("loss", "test_acc"), title: str | None = None,
                         log_loss: bool = True):
    """One panel per metric, one line per run, coloured by scheme.

    ``runs`` maps a :class:`Scheme` to its :class:`~lessonlib.train.History`. Accuracies are
    drawn in percent, losses on a log axis (they span decades). A diverged run ends with a
    cross at its last finite state and says so in the legend. Returns the figure.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric {unknown[0]!r}. Choose from {list(METRICS)}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        name, ylabel = METRICS[metric]
        for scheme in in_book_order(runs):
            history = runs[scheme]
            values = np.asarray(getattr(history, metric), dtype=float)
            if metric.endswith("acc"):
                values = 100 * values
            label = scheme.label + (f" (diverged at epoch {history.diverged_at})" if history.diverged else "")
            ax.plot(history.epochs, values, color=scheme_color(scheme), label=label, lw=1.8)
            if history.diverged:
                ax.plot(history.epochs[-1], values[-1], "x", color=scheme_color(scheme), ms=9, mew=2)
        if metric.endswith("loss") and log_loss:
            ax.set_yscale("log")
        ax.set_xlabel("epoch (full-batch updates)")
        ax.set_ylabel(ylabel)
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_weight_histograms(snapshots: dict, bins: int = 60, title: str | None = None, color=None):
    """Histograms of every weight matrix (columns) at every snapshot epoch (rows).

    ``snapshots`` is :attr:`History.snapshots` (epoch -> {layer name -> weight}). Each column
    shares its x-axis across epochs, so a distribution that narrows, widens or drifts shows at a
    glance. Returns the figure.
    """
    if not snapshots:
        raise ValueError("No snapshots to plot. Train with snapshot_epochs=(0, ..., epochs).")
    epochs = sorted(snapshots)
    names = list(snapshots[epochs[0]])
    fig, axes = plt.subplots(len(epochs), len(names), figsize=(3.2 * len(names), 1.5 * len(epochs) + 0.6),
                             sharex="col", squeeze=False)
    for col, name in enumerate(names):
        values = [snapshots[e][name].flatten().numpy() for e in epochs]
        low = min(v.min() for v in values)
        high = max(v.max() for v in values)
        edges = np.linspace(low, high if high > low else low + 1e-6, bins + 1)
        for row, (epoch, v) in enumerate(zip(epochs, values)):
            ax = axes[row][col]
            ax.hist(v, bins=edges, color=color or "#0072B2", alpha=0.85)
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"epoch {epoch}", rotation=0, ha="right", va="center")
            if row == 0:
                ax.set_title(name)
        axes[-1][col].set_xlabel("weight value")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_band(ax, x, values, color, label, marker="o"):
    """Draw the mean over seeds of ``values`` (shape ``(len(x), n_seeds)``) with a min-max band.

    NaN entries (diverged runs) are left out of the mean and counted in the label.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[0] != len(x):
        raise ValueError(f"values must have shape (len(x), n_seeds) = ({len(x)}, n). Got {values.shape}.")
    finite = np.isfinite(values)
    shown = finite.any(1)
    mean = np.where(finite, values, 0).sum(1) / np.maximum(finite.sum(1), 1)
    low = np.where(finite, values, np.inf).min(1)
    high = np.where(finite, values, -np.inf).max(1)
    lost = int((~finite).sum())
    label = label + (f" ({lost} diverged runs left out)" if lost else "")
    ax.plot(np.asarray(x)[shown], mean[shown], marker=marker, color=color, label=label, lw=1.8, ms=4)
    ax.fill_between(np.asarray(x)[shown], low[shown], high[shown], color=color, alpha=0.2, lw=0)


def plot_seed_bands(runs, title: str, labels: dict | None = None, styles: dict | None = None):
    """Training loss (log axis) and test accuracy per epoch of every scheme of an experiment: the
    mean over the seeds with the min-max band (:func:`plot_band`).

    ``runs`` is one :class:`~lessonlib.experiments.Results` (one row of two panels) or a dict
    ``{row name: Results}`` (one row per entry, each panel titled by its row name; e.g. one row
    per optimizer). ``labels`` and ``styles`` map a scheme to its legend label (default
    ``scheme.label``) and line style (default solid). One legend below the panels names every
    scheme of every row. Returns the figure.
    """
    rows = runs if isinstance(runs, dict) else {None: runs}
    if not rows:
        raise ValueError("plot_seed_bands needs at least one experiment's results. Got an empty dict.")
    labels, styles = labels or {}, styles or {}
    fig, axes = plt.subplots(len(rows), 2, figsize=(11.5, 3.8 * len(rows)), squeeze=False, sharex=True)
    for row, (name, results) in zip(axes, rows.items()):
        epochs = np.arange(results.loss.shape[2])
        for i, scheme in enumerate(results.schemes):
            for ax, values in zip(row, (results.loss[i], 100 * results.test_acc[i])):
                plot_band(ax, epochs, values.T, scheme_color(scheme), labels.get(scheme, scheme.label), marker="")
                ax.lines[-1].set_linestyle(styles.get(scheme, "-"))
        row[0].set(yscale="log", ylabel="training loss (cross-entropy)")
        row[1].set(ylim=(0, 100), ylabel="test accuracy (%)")
        if name is not None:
            row[0].set_title(f"{name}: training loss")
            row[1].set_title(f"{name}: test accuracy")
        for ax in row:
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch (full-batch updates)")
    entries = {}                     # one legend entry per label, below the panels (clear of every band)
    for ax in axes[:, 1]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    columns = min(3, len(entries))
    legend_rows = math.ceil(len(entries) / columns)
    fig.legend(entries.values(), entries.keys(), loc="lower center", ncol=columns, fontsize=9, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.12 + 0.25 * legend_rows) / fig.get_figheight(), 1, 1))
    return fig


def plot_layer_stats(stats: dict, ylabel: str, theory: dict | None = None, title: str | None = None,
                     log: bool = True, ax=None):
    """A per-layer statistic against depth, one line (or band over seeds) per scheme.

    ``stats`` maps a :class:`Scheme` to an array of shape ``(n_layers,)`` or
    ``(n_layers, n_seeds)``; ``theory`` maps a scheme to its predicted values per layer, drawn
    dashed in the same colour over the measurement. Layers are numbered from 1. Returns the axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4))
    for scheme in in_book_order(stats):
        values = np.asarray(stats[scheme], dtype=float)
        values = values[:, None] if values.ndim == 1 else values
        layers = np.arange(1, len(values) + 1)
        plot_band(ax, layers, values, scheme_color(scheme), scheme.label, marker=".")
        if theory and scheme in theory:
            ax.plot(layers, theory[scheme], "--", color=scheme_color(scheme), lw=1.2)
    if theory:
        ax.plot([], [], "--", color="0.4", label="theory")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax

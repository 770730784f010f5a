"""Figures used across the book, with one fixed colour per scheme.

Colours come from the Okabe-Ito palette (readable by colour-blind readers and on the book's
light and dark backgrounds); a scheme keeps its colour in every figure of every chapter, and
legends list schemes in the registry's order.
"""

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
    "lecun_uniform": "#56B4E9",
    "lecun_normal": "#56B4E9",
    "orthogonal": "#E69F00",
    "pytorch_default": "#7F3C8D",
}
"""The colour of each scheme; parameterised schemes the book uses often get their own below."""

PARAMETERISED_COLORS = {
    "normal(mean=5.0, std=3.0)": "#D55E00",   # article 000's "high"
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

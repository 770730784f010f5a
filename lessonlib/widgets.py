r"""An interactive explorer of signal propagation at initialization, and the pure functions behind it.

The computation and the widget are kept apart:

- :func:`propagate` builds ``mlp([width] * (depth + 1), activation)`` (biases 0), initializes it
  with a scheme at a chosen scale, sends a batch of standard normal inputs forward and a random
  upstream gradient of second moment about 1 backward (in float64, so that values like
  :math:`10^{-100}` are still numbers), and returns per-layer statistics and histograms together
  with the prediction of the variance recursion (:mod:`lessonlib.theory`)

  .. math:: q_l = n_{l-1}\, v_l\, \mathbb{E}[f(z_{l-1})^2], \qquad
            \mathbb{E}[(\partial L/\partial z_l)^2] = \mathbb{E}[f'(z_l)^2]\; n_{l+1}\, v_{l+1}\,
            \mathbb{E}[(\partial L/\partial z_{l+1})^2],

  where :math:`v_l` is the weight variance the scheme gives layer :math:`l` (:func:`weight_variance`).
- :func:`plot_propagation` draws one result: the standard deviation of the pre-activations against
  depth with the theory line, and histograms of activations or gradients at a few layers.
- :class:`InitExplorer` wires ipywidgets to them. It caches every :func:`propagate` result per
  ``(scheme, scale, activation, depth, width, seed)``, so changing only a display option (which
  histograms, a log axis) redraws without recomputing.

The scale of a scheme is the standard deviation for ``normal`` and a gain multiplying the weights
for every fan-based scheme (for Xavier and orthogonal it is exactly their ``gain`` parameter).

The names mean what they mean in the rest of the book. "He normal" (``kaiming_normal``, and
``kaiming_uniform``) is ``torch.nn.init.kaiming_normal_`` with its defaults, the ReLU gain
:math:`\sqrt 2`, whatever the activation: :math:`v = 2/n_\text{in}`. The fan-in scheme that takes the
activation's own gain :math:`g` (``calculate_gain``: 5/3 for tanh, 1 for the sigmoid,
:math:`\sqrt{2/(1+a^2)}` for the leaky ReLU) is a scheme of its own, ``lecun_gain``, "LeCun ×
activation gain": :math:`v = g^2/n_\text{in}`, ``kaiming_normal_(w, a, nonlinearity=activation)``.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch

from .data import two_moons
from .models import mlp
from .plots import scheme_color
from .probes import SATURATING, dead_fraction, saturated_fraction, weight_layers
from .schemes import gain, make_scheme
from .seed import set_seed
from .theory import predict_backward, predict_forward

LAB_SCHEMES = ("normal", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
               "lecun_normal", "lecun_gain", "orthogonal", "pytorch_default")
"""The schemes that make sense for a deep MLP with zero-mean weights (no zeros or constants)."""

LAB_ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu")
NEGATIVE_SLOPE = 0.01
"""The leaky ReLU slope of :func:`lessonlib.models.mlp` (``nn.LeakyReLU``'s default)."""

MAX_DEPTH, MAX_WIDTH, SCALE_RANGE = 50, 512, (0.01, 10.0)
BINS = 40


@contextmanager
def single_thread():
    """Run the block on one thread, then restore PyTorch's thread count.

    The networks here are small (width <= 512, a batch of 256), so one thread is as fast as two on an
    idle machine and much faster on a busy one, where each of the many small operations would wait for
    the second thread; and the results no longer depend on the number of threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check(scheme: str, scale: float, activation: str, depth: int, width: int, seed: int = 0) -> None:
    """Raise a ValueError naming the bad value and what is allowed."""
    if scheme not in LAB_SCHEMES:
        raise ValueError(f"The 'scheme' parameter must be one of {list(LAB_SCHEMES)}. Got {scheme!r} instead.")
    if (not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale)
            or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]):
        raise ValueError(f"The 'scale' parameter must be a float in the range [{SCALE_RANGE[0]}, "
                         f"{SCALE_RANGE[1]}]. Got {scale!r} instead.")
    if activation not in LAB_ACTIVATIONS:
        raise ValueError(f"The 'activation' parameter must be one of {list(LAB_ACTIVATIONS)}. "
                         f"Got {activation!r} instead.")
    for name, value, top in (("depth", depth, MAX_DEPTH), ("width", width, MAX_WIDTH)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= top:
            raise ValueError(f"The {name!r} parameter must be an int in the range [1, {top}]. "
                             f"Got {value!r} instead.")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"The 'seed' parameter must be a non-negative int. Got {seed!r} instead.")


LAB_LABELS = {"lecun_gain": "LeCun × activation gain"}
"""Legend names of the lab's schemes that are not in :data:`lessonlib.schemes.SCHEMES`."""


def base_scheme(scheme: str, activation: str):
    r"""The :class:`~lessonlib.schemes.Scheme` before scaling.

    Every registry scheme is drawn as the registry draws it, so "He normal" has the ReLU gain
    :math:`\sqrt 2` for every activation, as in the rest of the book. ``lecun_gain`` is
    :math:`\mathcal{N}(0, g^2/n_\text{in})` with the activation's own gain :math:`g`, drawn by
    ``kaiming_normal`` with ``nonlinearity=activation`` (and the leaky slope for the leaky ReLU)."""
    if scheme == "lecun_gain":
        slope = NEGATIVE_SLOPE if activation == "leaky_relu" else 0.0
        return make_scheme("kaiming_normal", a=slope, nonlinearity=activation)
    return make_scheme(scheme)


def weight_variance(scheme: str, scale: float, activation: str, fan_in: int, fan_out: int) -> float:
    r"""The variance :math:`v` of one weight of a ``(fan_out, fan_in)`` matrix under the scaled scheme.

    With :math:`s` the scale: normal :math:`s^2`; Xavier :math:`s^2 \cdot 2/(n_\text{in}+n_\text{out})`;
    He :math:`2 s^2/n_\text{in}` (the ReLU gain, for every activation); LeCun :math:`s^2/n_\text{in}`;
    LeCun × activation gain :math:`s^2\, g^2/n_\text{in}` (:math:`g` the activation's gain);
    orthogonal :math:`s^2/\max(n_\text{in}, n_\text{out})` (every row or column has norm :math:`s`);
    PyTorch's default :math:`s^2/(3\,n_\text{in})`.
    """
    _check(scheme, scale, activation, 1, 1)
    if scheme == "normal":
        return scale**2
    if scheme.startswith("xavier"):
        unscaled = 2.0 / (fan_in + fan_out)
    elif scheme.startswith("kaiming"):
        unscaled = gain("relu") ** 2 / fan_in
    elif scheme == "lecun_gain":
        unscaled = gain(activation, NEGATIVE_SLOPE) ** 2 / fan_in
    elif scheme == "lecun_normal":
        unscaled = 1.0 / fan_in
    elif scheme == "orthogonal":
        unscaled = 1.0 / max(fan_in, fan_out)
    else:  # pytorch_default
        unscaled = 1.0 / (3 * fan_in)
    return scale**2 * unscaled


def initialize(model: torch.nn.Module, scheme: str, scale: float, activation: str, seed: int = 0):
    """Seed, then fill every weight matrix of ``model`` with the scaled scheme; biases 0. Returns ``model``."""
    _check(scheme, scale, activation, 1, 1, seed)
    base = make_scheme("normal", std=scale) if scheme == "normal" else base_scheme(scheme, activation)
    multiplier = 1.0 if scheme == "normal" else scale
    set_seed(seed)
    with torch.no_grad():
        for _, layer in weight_layers(model):
            base(layer.weight)
            layer.weight.mul_(multiplier)
            if layer.bias is not None:
                layer.bias.zero_()
    return model


def _histogram(values: torch.Tensor, bins: int = BINS):
    """``(counts, edges)`` of the finite entries of ``values`` (fractions of all entries)."""
    v = values.flatten().numpy()
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros(bins), np.linspace(-1, 1, bins + 1)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        low, high = low - 0.5 * (abs(low) + 1e-12), high + 0.5 * (abs(high) + 1e-12)
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    return counts / v.size, edges


def _mean_cosine(a: torch.Tensor) -> float:
    """Mean cosine similarity between the rows of ``a`` (examples), over all pairs of different rows."""
    unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-300)
    gram = unit @ unit.T
    n = len(a)
    return float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1)))


@dataclass(frozen=True)
class Propagation:
    r"""Per-layer statistics of one network at initialization (layers numbered 1..depth+1).

    ``z_std`` and ``z_second_moment``: of the pre-activations :math:`z_l`; ``activation_std``: of
    :math:`f(z_l)` for the hidden layers; ``grad_second_moment``: of :math:`\partial L/\partial z_l`;
    ``theory_*``: the variance recursion's prediction of the two second moments;
    ``saturated``: per hidden layer, the fraction of tanh/sigmoid units within 0.03 of a bound
    (:func:`lessonlib.probes.saturated_fraction`; NaN for ReLUs); ``dead``: per hidden layer, the
    fraction of ReLU/leaky ReLU units that are negative for the whole batch
    (:func:`lessonlib.probes.dead_fraction`; NaN for tanh/sigmoid); ``similarity``: per hidden layer,
    the mean cosine similarity :math:`\cos(a_l(x), a_l(x'))` of the activations of two different
    inputs of the batch (1 when the layer maps every input to the same direction);
    ``activation_hist[l]`` and ``grad_hist[l]``: ``(fractions, bin edges)`` of layer ``l + 1``.
    """

    scheme: str
    scale: float
    activation: str
    depth: int
    width: int
    seed: int
    z_std: np.ndarray
    z_second_moment: np.ndarray
    activation_std: np.ndarray
    grad_second_moment: np.ndarray
    theory_z_second_moment: np.ndarray
    theory_grad_second_moment: np.ndarray
    saturated: np.ndarray
    dead: np.ndarray
    similarity: np.ndarray
    activation_hist: list = field(repr=False)
    grad_hist: list = field(repr=False)

    @property
    def layers(self) -> np.ndarray:
        return np.arange(1, self.depth + 2)

    @property
    def theory_z_std(self) -> np.ndarray:
        return np.sqrt(self.theory_z_second_moment)


def propagate(scheme: str, scale: float, activation: str, depth: int, width: int, seed: int = 0,
              batch: int = 256) -> Propagation:
    r"""One forward and backward pass through ``mlp([width] * (depth + 2), activation)`` at initialization.

    ``depth`` hidden layers (each followed by ``activation``) and one output layer, all of width
    ``width``; the weights from :func:`initialize`. The input is ``batch`` standard normal vectors
    (fixed, seed 1000), the loss :math:`L = \sum_{ij} y_{ij} u_{ij}` with a fixed standard normal
    upstream gradient :math:`u` (seed 1001), so :math:`\partial L/\partial z_{\text{out}} = u`.
    Everything is computed in float64, on one thread (:func:`single_thread`). Returns a :class:`Propagation`.
    """
    _check(scheme, scale, activation, depth, width, seed)
    if not isinstance(batch, int) or not 2 <= batch <= 4096:
        raise ValueError(f"The 'batch' parameter must be an int in the range [2, 4096]. Got {batch!r} instead.")
    with single_thread():
        return _propagate(scheme, scale, activation, depth, width, seed, batch)


def _propagate(scheme, scale, activation, depth, width, seed, batch):
    sizes = [width] * (depth + 2)
    net = initialize(mlp(sizes, activation), scheme, scale, activation, seed).double()
    x = torch.randn(batch, width, generator=torch.Generator().manual_seed(1000), dtype=torch.float64)
    upstream = torch.randn(batch, width, generator=torch.Generator().manual_seed(1001), dtype=torch.float64)
    linears = [layer for _, layer in weight_layers(net)]
    zs = []

    def keep(module, args, out):  # keep z_l and its gradient; returning None leaves the output as is
        out.retain_grad()
        zs.append(out)

    hooks = [layer.register_forward_hook(keep) for layer in linears]
    try:
        (net(x) * upstream).sum().backward()
    finally:
        for h in hooks:
            h.remove()
    f = net[1]  # the activation module that follows every hidden layer
    with torch.no_grad():
        acts = [f(z) for z in zs[:-1]]
        grads = [z.grad for z in zs]
        variances = [weight_variance(scheme, scale, activation, width, width)] * len(linears)
        widths = list(sizes)
        theory_q = predict_forward(widths, variances, activation, float(x.pow(2).mean()), NEGATIVE_SLOPE)
        theory_g = predict_backward(widths, variances, activation, float(upstream.pow(2).mean()),
                                    float(x.pow(2).mean()), NEGATIVE_SLOPE)
        return Propagation(
            scheme, float(scale), activation, int(depth), int(width), int(seed),
            z_std=np.array([float(z.std()) for z in zs]),
            z_second_moment=np.array([float(z.pow(2).mean()) for z in zs]),
            activation_std=np.array([float(a.std()) for a in acts]),
            grad_second_moment=np.array([float(g.pow(2).mean()) for g in grads]),
            theory_z_second_moment=theory_q, theory_grad_second_moment=theory_g,
            saturated=np.array([saturated_fraction(z, activation) if activation in SATURATING else np.nan
                                for z in zs[:-1]]),
            dead=np.array([dead_fraction(z) if activation not in SATURATING else np.nan for z in zs[:-1]]),
            similarity=np.array([_mean_cosine(a) for a in acts]),
            activation_hist=[_histogram(a) for a in acts],
            grad_hist=[_histogram(g) for g in grads])


def label(scheme: str, scale: float) -> str:
    """``N(μ=0, σ=1)`` for the normal (as :attr:`Scheme.label`), ``Xavier normal × 2`` for a scaled
    fan-based scheme."""
    if scheme == "normal":
        return make_scheme("normal", std=scale).label
    name = LAB_LABELS.get(scheme) or make_scheme(scheme).label
    return name if scale == 1 else f"{name} × {scale:g}"


def color(scheme: str, scale: float) -> str:
    """The book-wide colour of the scheme (:func:`lessonlib.plots.scheme_color`); LeCun × activation
    gain takes LeCun's."""
    if scheme == "lecun_gain":
        return scheme_color("lecun_normal")
    return scheme_color(make_scheme("normal", std=scale) if scheme == "normal" else make_scheme(scheme))


def chosen_layers(depth: int, n: int = 3) -> list[int]:
    """``n`` hidden layers spread from the first to the last (numbered from 1), e.g. 1, 25, 50."""
    return sorted(set(int(round(x)) for x in np.linspace(1, depth, n)))


def plot_propagation(result: Propagation, show: str = "activations", layers=None, log_counts: bool = False):
    r"""Left: std of :math:`z_l` against depth, measured (solid) and predicted (dashed).
    Right: histograms of the activations :math:`f(z_l)` (``show="activations"``) or of the gradients
    :math:`\partial L/\partial z_l` (``show="gradients"``) at ``layers`` (hidden layers, from 1).
    Returns the figure."""
    if show not in ("activations", "gradients"):
        raise ValueError(f"The 'show' parameter must be 'activations' or 'gradients'. Got {show!r} instead.")
    layers = chosen_layers(result.depth) if layers is None else sorted(set(layers))
    bad = [l for l in layers if not 1 <= l <= result.depth]
    if bad:
        raise ValueError(f"'layers' must be hidden layers in the range [1, {result.depth}]. Got {bad} instead.")
    col = color(result.scheme, result.scale)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.plot(result.layers, result.z_std, "o-", ms=3, color=col, label="measured (one network)")
    left.plot(result.layers, result.theory_z_std, "--", color="0.3", label="variance recursion")
    left.set(yscale="log", xlabel="layer l", ylabel="std of pre-activations $z_l$")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    left.set_title(f"{label(result.scheme, result.scale)}, {result.activation}, width {result.width}")
    hists = result.activation_hist if show == "activations" else result.grad_hist
    shades = np.linspace(0.35, 1.0, len(layers))
    for shade, layer in zip(shades, layers):
        counts, edges = hists[layer - 1]
        right.stairs(counts, edges, color=col, alpha=float(shade), lw=1.6, label=f"layer {layer}")
    right.set(xlabel="activation $f(z_l)$" if show == "activations" else "gradient $\\partial L/\\partial z_l$",
              ylabel="fraction of entries", yscale="log" if log_counts else "linear")
    right.set_title(f"{show} at layers {', '.join(map(str, layers))}")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curve(scheme: str, scale: float, activation: str, depth: int, width: int, seed: int = 0,
                   epochs: int = 30):
    """Train ``mlp([2] + [width] * depth + [2], activation)``, initialized as in the explorer, on
    the two moons for ``epochs`` full-batch Adam updates (learning rate 0.01). Returns the History."""
    from .train import train

    _check(scheme, scale, activation, depth, width, seed)
    net = initialize(mlp([2] + [width] * depth + [2], activation), scheme, scale, activation, seed)
    with single_thread():
        return train(net, two_moons(), epochs=epochs, lr=0.01)


class InitExplorer:
    """The explorer: ``display(InitExplorer().widget)`` in Jupyter.

    Controls: scheme, scale, activation, depth, width, seed (these define the network and are the
    cache key), and the display options ``show`` (activations or gradients), ``log_counts`` and
    ``train`` (a 30-epoch training curve on the two moons). Change a control, or call
    :meth:`update`; ``computations`` counts the :func:`propagate` calls actually made.
    """

    def __init__(self, scheme="xavier_normal", scale=1.0, activation="tanh", depth=20, width=256, seed=0):
        import ipywidgets as w

        _check(scheme, scale, activation, depth, width, seed)
        names = [("normal (σ = scale)" if s == "normal" else label(s, 1.0), s) for s in LAB_SCHEMES]
        self.scheme = w.Dropdown(options=names, value=scheme, description="scheme")
        self.scale = w.FloatLogSlider(value=scale, base=10, min=math.log10(SCALE_RANGE[0]),
                                      max=math.log10(SCALE_RANGE[1]), step=0.05, description="scale",
                                      continuous_update=False)
        self.activation = w.Dropdown(options=LAB_ACTIVATIONS, value=activation, description="activation")
        self.depth = w.IntSlider(value=depth, min=1, max=MAX_DEPTH, description="depth", continuous_update=False)
        self.width = w.IntSlider(value=width, min=8, max=MAX_WIDTH, step=8, description="width",
                                 continuous_update=False)
        self.seed = w.BoundedIntText(value=seed, min=0, max=10**6, description="seed")
        self.show = w.ToggleButtons(options=("activations", "gradients"), value="activations")
        self.log_counts = w.Checkbox(value=False, description="log counts")
        self.train = w.Checkbox(value=False, description="train 30 epochs")
        self.output = w.Output()
        self.status = w.HTML()
        self.cache, self.curves, self.computations = {}, {}, 0
        self.figures = []
        controls = [self.scheme, self.scale, self.activation, self.depth, self.width, self.seed,
                    self.show, self.log_counts, self.train]
        for control in controls:
            control.observe(lambda change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([w.VBox(controls[:3]), w.VBox(controls[3:6]), w.VBox(controls[6:])]),
                              self.status, self.output])
        self.update()

    @property
    def key(self) -> tuple:
        """What the computation depends on: ``(scheme, scale, activation, depth, width, seed)``."""
        return (self.scheme.value, round(float(self.scale.value), 6), self.activation.value,
                int(self.depth.value), int(self.width.value), int(self.seed.value))

    @property
    def result(self) -> Propagation:
        """The :class:`Propagation` for the current controls (computed once per key)."""
        if self.key not in self.cache:
            self.cache[self.key] = propagate(*self.key)
            self.computations += 1
        return self.cache[self.key]

    def update(self):
        """Recompute if the network changed, then redraw the figures."""
        from IPython.display import clear_output, display

        result = self.result
        last = result.z_std[-2]
        self.status.value = (f"std of z at layer 1: {result.z_std[0]:.3g}, at layer {result.depth}: {last:.3g} "
                             f"(predicted {result.theory_z_std[-2]:.3g})")
        self.figures = [plot_propagation(result, self.show.value, log_counts=self.log_counts.value)]
        if self.train.value:
            if self.key not in self.curves:
                self.curves[self.key] = training_curve(*self.key)
            history = self.curves[self.key]
            fig, ax = plt.subplots(figsize=(5.5, 3.2))
            ax.plot(history.epochs, history.loss, color=color(result.scheme, result.scale))
            ax.set(yscale="log", xlabel="epoch (full-batch Adam updates)", ylabel="training loss (cross-entropy)",
                   title=f"two moons: test accuracy {100 * history.final_test_acc:.2f}% after "
                         f"{len(history.loss) - 1} epochs")
            ax.grid(alpha=0.3)
            fig.tight_layout()
            self.figures.append(fig)
        with self.output:
            clear_output(wait=True)
            for fig in self.figures:
                display(fig)
                plt.close(fig)  # shown once, in the explorer, not again below the cell

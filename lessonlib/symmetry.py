r"""Measure the two ways a constant initialization fails: a dead signal and identical units.

For a stack of weight layers :math:`l = 1, \dots, L` (``Linear``, ``Conv*``), each hidden one
followed by an element-wise activation :math:`f`,

.. math:: z^{(l)} = W^{(l)} a^{(l-1)} + b^{(l)}, \qquad a^{(l)} = f(z^{(l)}), \qquad a^{(0)} = x,

and backpropagation with :math:`\delta^{(l)} = \partial L / \partial z^{(l)}` gives

.. math:: \frac{\partial L}{\partial W^{(l)}} = \delta^{(l)} a^{(l-1)\top}, \qquad
          \frac{\partial L}{\partial b^{(l)}} = \delta^{(l)}, \qquad
          \delta^{(l-1)} = \big(W^{(l)\top} \delta^{(l)}\big) \odot f'(z^{(l-1)})

(summed over the batch). This module measures those quantities:

- :func:`record_pass`: one forward and backward pass, keeping every :math:`z^{(l)}`,
  :math:`a^{(l)}` and parameter gradient (a dead network has them at exactly 0);
- :func:`unit_spread` and :func:`unit_spreads`: how different the units of a layer are
  (a symmetric layer has a spread of 0, or of float rounding: see :data:`COPY_TOLERANCE`);
- :class:`EpochLog`: an ``on_epoch`` callback for :func:`~lessonlib.train.train` that keeps any
  such measurement at every epoch of training.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .probes import Probe


def _check_batch(X, y=None) -> None:
    if not isinstance(X, torch.Tensor) or X.dim() < 2 or len(X) == 0:
        shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"X must be a tensor of inputs with a batch dimension first, shape (n, ...) "
                         f"with n >= 1. Got {shape} instead.")
    if y is not None and (not isinstance(y, torch.Tensor) or y.dim() != 1 or len(y) != len(X)):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be a 1-D tensor with one label per input, shape ({len(X)},). "
                         f"Got {shape} instead.")


# ---------------------------------------------------------------------------------------------
# one forward and backward pass


@dataclass
class Pass:
    r"""What one forward and backward pass of a network computed, layer by layer.

    For weight layer ``names[l]``: ``pre_activations[l]`` is :math:`z^{(l)}` (batch first),
    ``activations[l]`` is :math:`a^{(l)} = f(z^{(l)})`, what the next weight layer receives
    (``None`` for the last layer, whose :math:`z` are the scores), ``weight_grads[l]`` and
    ``bias_grads[l]`` are :math:`\partial L / \partial W^{(l)}` and
    :math:`\partial L / \partial b^{(l)}` (``None`` if the layer has no bias). ``loss`` is
    :math:`L`.
    """

    names: list
    pre_activations: list
    activations: list
    weight_grads: list
    bias_grads: list
    loss: float

    def max_abs(self) -> dict:
        r"""The largest magnitude :math:`\max |t|` of every recorded tensor, by name.

        Keys: ``"<layer> z"``, ``"<layer> a"`` (hidden layers), ``"<layer>.weight grad"``,
        ``"<layer>.bias grad"`` (layers with a bias). A value of exactly 0 means the whole tensor
        is 0, for every input of the batch.
        """
        out = {}
        for name, z, a, gw, gb in zip(self.names, self.pre_activations, self.activations,
                                      self.weight_grads, self.bias_grads):
            out[f"{name} z"] = float(z.abs().max())
            if a is not None:
                out[f"{name} a"] = float(a.abs().max())
            out[f"{name}.weight grad"] = float(gw.abs().max())
            if gb is not None:
                out[f"{name}.bias grad"] = float(gb.abs().max())
        return out

    def table(self) -> str:
        """:meth:`max_abs` as a text table, one row per layer, values to 3 significant digits."""
        m = self.max_abs()
        columns = ("z", "a", ".weight grad", ".bias grad")
        header = ["layer", "max|z|", "max|a|", "max|dL/dW|", "max|dL/db|"]

        def cell(name, col):
            key = f"{name} {col}" if col in ("z", "a") else f"{name}{col}"
            return f"{m[key]:.3g}" if key in m else "-"

        rows = [header] + [[name] + [cell(name, c) for c in columns] for name in self.names]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def record_pass(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn=F.cross_entropy) -> Pass:
    r"""Run ``loss_fn(model(X), y)`` forward and backward once and return what it computed.

    Forward hooks (a :class:`~lessonlib.probes.Probe`, removed afterwards) record each weight
    layer's :math:`z^{(l)}` and what the next weight layer receives, :math:`a^{(l)}`; the
    parameter gradients are read after ``backward()``. The model is left as it was: its
    parameters untouched, and the ``.grad`` each parameter had before restored, so this can run
    inside a training loop (e.g. from :class:`EpochLog`) without changing the training.
    """
    _check_batch(X, y)
    saved = {p: p.grad for p in model.parameters()}
    model.zero_grad(set_to_none=True)
    try:
        with Probe(model) as probe:
            loss = loss_fn(model(X), y)
            loss.backward()
        layers = [layer for _, layer in probe.layers]
        n = len(layers)

        def grad(p):
            return None if p is None else (p.grad.detach().clone() if p.grad is not None
                                           else torch.zeros_like(p))

        return Pass(
            names=list(probe.names),
            pre_activations=[probe.outputs[i] for i in range(n)],
            activations=[probe.inputs[i + 1] if i + 1 < n else None for i in range(n)],
            weight_grads=[grad(layer.weight) for layer in layers],
            bias_grads=[grad(getattr(layer, "bias", None)) for layer in layers],
            loss=float(loss.detach()),
        )
    finally:
        for p, g in saved.items():
            p.grad = g


# ---------------------------------------------------------------------------------------------
# how identical the units of a layer are


COPY_TOLERANCE = 0.01
"""The relative spread (:func:`unit_spread` with ``relative=True``) below which the units of a
layer count as copies of one unit.

Units that are copies in exact arithmetic do identical float32 operations, and stay bit for bit
equal, only if the matrix library sums every unit's products in the same order. Kernels that
handle some units in another vector lane or block (they differ between CPUs and instruction
sets) make those units differ in the last bits (a relative :math:`10^{-7}`, float32's
resolution), and training can amplify such differences by a few orders of magnitude over 100
epochs. Units that a random initialization makes different differ by a relative spread of
order 1. The tolerance lies between the two, far from both.
"""


def describe_spread(s: float) -> str:
    """A relative spread as text that reads the same on every CPU: ``"< 0.01"`` for copies
    (below :data:`COPY_TOLERANCE`, where the exact value is float rounding), else 2 digits."""
    return f"< {COPY_TOLERANCE:g}" if s < COPY_TOLERANCE else f"{s:.2g}"


def unit_spread(t: torch.Tensor, dim: int = 0, relative: bool = False) -> float:
    r"""The largest difference between any two units of ``t``; units are indexed along ``dim``.

    With :math:`i, j` running over units (positions along ``dim``) and :math:`k` over all other
    positions,

    .. math:: s(t) = \max_{i,j} \max_k |t_{ik} - t_{jk}| = \max_k \big(\max_i t_{ik} - \min_i t_{ik}\big).

    :math:`s = 0` exactly when all units are identical. Units are the rows of a weight matrix
    :math:`W` of shape ``(out, in)`` (``dim=0``: each row is the incoming weights of one unit),
    its columns for the outgoing weights of the previous layer's units (``dim=1``), the entries
    of a bias (``dim=0``), the columns of a batch of activations ``(n, units)`` (``dim=1``:
    the largest difference between two units' outputs on the same input). Computed in float64,
    so a difference is never rounded to 0.

    ``relative=True`` divides by the tensor's size, :math:`s(t) / \max_{i,k} |t_{ik}|` (0 for a
    tensor of zeros), so that tensors of any scale compare: at most 2, of order 1 for random
    units, below :data:`COPY_TOLERANCE` for copies.
    """
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"unit_spread needs a tensor. Got {type(t).__name__} instead.")
    if not isinstance(dim, int) or isinstance(dim, bool) or not -t.dim() <= dim < t.dim():
        raise ValueError(f"The 'dim' parameter must be an int in the range [{-t.dim()}, {t.dim()}) for "
                         f"a tensor of shape {tuple(t.shape)}. Got {dim!r} instead.")
    if t.shape[dim] < 2:
        raise ValueError(f"A spread across units needs at least 2 units along dim {dim}. "
                         f"Got a tensor of shape {tuple(t.shape)}.")
    if t.numel() == 0:
        raise ValueError(f"unit_spread needs a non-empty tensor. Got shape {tuple(t.shape)}.")
    t = t.detach().double()
    if not torch.isfinite(t).all():
        raise ValueError("unit_spread needs finite values; the tensor holds inf or NaN.")
    if not isinstance(relative, bool):
        raise ValueError(f"The 'relative' parameter must be True or False. Got {relative!r} instead.")
    spread = float((t.amax(dim) - t.amin(dim)).max())
    if not relative:
        return spread
    size = float(t.abs().max())
    return spread / size if size > 0 else 0.0


def unit_spreads(model: nn.Module, X: torch.Tensor, relative: bool = False) -> dict:
    r"""The :func:`unit_spread` of everything that tells the units of each hidden layer apart.

    For hidden weight layer ``name`` (every weight layer but the last), with ``n`` the next one:

    - ``"<name> incoming"``: rows of :math:`W^{(l)}` (each unit's weights),
    - ``"<name> bias"``: entries of :math:`b^{(l)}` (if the layer has a bias),
    - ``"<name> outgoing"``: columns of :math:`W^{(l+1)}` (the weights that read each unit),
    - ``"<name> activations"``: columns of :math:`a^{(l)}` on the inputs ``X``.

    All four are exactly 0 for a layer whose units are identical copies of one unit.
    ``relative=True`` gives each as a fraction of its tensor's size (see :func:`unit_spread`).
    """
    _check_batch(X)
    with torch.no_grad(), Probe(model) as probe:
        model(X)
    layers = [layer for _, layer in probe.layers]
    if len(layers) < 2:
        raise ValueError(f"{type(model).__name__} has no hidden layer: it needs at least 2 weight layers.")
    out = {}
    for i, name in enumerate(probe.names[:-1]):
        layer, following = layers[i], layers[i + 1]
        out[f"{name} incoming"] = unit_spread(layer.weight, 0, relative)
        if getattr(layer, "bias", None) is not None:
            out[f"{name} bias"] = unit_spread(layer.bias, 0, relative)
        out[f"{name} outgoing"] = unit_spread(following.weight, 1, relative)
        out[f"{name} activations"] = unit_spread(probe.inputs[i + 1], 1, relative)
    return out


# ---------------------------------------------------------------------------------------------
# over training


class EpochLog:
    """An ``on_epoch`` callback for :func:`~lessonlib.train.train` that keeps a measurement per epoch.

    ``measure(model)`` returns a dict of numbers (e.g. ``lambda m: unit_spreads(m, X)``);
    after training, ``log[key]`` is the array of that value at epochs ``log.epochs``.

    >>> log = EpochLog(lambda m: record_pass(m, data.X_train, data.y_train).max_abs())
    >>> history = train(model, data, on_epoch=log)
    >>> log["fc1 a"]   # one value per epoch 0..100
    """

    def __init__(self, measure):
        if not callable(measure):
            raise ValueError(f"EpochLog needs a callable measure(model) -> dict. Got {type(measure).__name__}.")
        self.measure = measure
        self.epochs = []
        self.values = {}

    def __call__(self, epoch, model):
        result = self.measure(model)
        if not isinstance(result, dict) or not result:
            raise ValueError(f"measure(model) must return a non-empty dict of numbers. Got {result!r}.")
        if self.values and set(result) != set(self.values):
            raise ValueError(f"measure(model) returned the keys {sorted(result)} at epoch {epoch}, "
                             f"but {sorted(self.values)} before.")
        self.epochs.append(epoch)
        for key, value in result.items():
            self.values.setdefault(key, []).append(float(value))

    def keys(self):
        return self.values.keys()

    def __getitem__(self, key) -> np.ndarray:
        if key not in self.values:
            raise KeyError(f"No measurement {key!r}. Measured: {list(self.values)}.")
        return np.array(self.values[key])

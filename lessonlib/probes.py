r"""Look inside a network: what each layer receives, produces and sends back.

A :class:`Probe` registers hooks on every layer with a weight matrix (``Linear``, ``Conv*``),
keeps what passes through during one forward (and backward) pass, and removes its hooks when
the ``with`` block ends. For layer :math:`l` with :math:`z_l = W_l a_{l-1} + b_l` it records

- ``inputs[l]``: :math:`a_{l-1}`, the activations the layer receives (for the first layer, the data),
- ``outputs[l]``: :math:`z_l`, the pre-activations it produces,
- ``grads[l]``: :math:`\partial L / \partial z_l`, the gradient that flows back into it
  (after ``loss.backward()`` inside the block).

The activations of hidden layer :math:`l` are the inputs of layer :math:`l+1`, so this works
for networks that call ``F.relu`` as well as for ``nn.Sequential`` stacks.

Two unit-level diagnostics of a layer's pre-activations :math:`z` (a batch of shape
``(examples, units)``) complete the per-layer mean and spread:

- :func:`saturated_fraction`: the fraction of entries :math:`z_{ij}` whose activation lies within
  ``margin`` (0.03) of one of the activation's bounds, where its slope is nearly 0;
- :func:`dead_fraction`: the fraction of ReLU units that output 0 for every example of the batch,
  so that no gradient reaches their weights.
"""

import numpy as np
import torch
import torch.nn as nn

SATURATING = {
    "tanh": (torch.tanh, -1.0, 1.0),
    "sigmoid": (torch.sigmoid, 0.0, 1.0),
}
"""Activations with bounds: ``name -> (function, lower bound, upper bound)``."""


def saturated_fraction(z: torch.Tensor, activation: str, margin: float = 0.03) -> float:
    r"""Fraction of the entries of ``z`` whose activation is within ``margin`` of its bounds.

    For tanh (bounds :math:`\pm 1`) an entry is saturated when :math:`|\tanh(z)| > 1 - m`; with the
    default :math:`m = 0.03` that is :math:`|\tanh z| > 0.97`, i.e. :math:`|z| > \operatorname{artanh}(0.97)
    \approx 2.09`, where :math:`\tanh'(z) = 1 - \tanh^2 z < 0.059`. For the sigmoid :math:`\sigma`
    (bounds 0 and 1) it is saturated when :math:`\sigma(z) < m` or :math:`\sigma(z) > 1 - m`, i.e.
    :math:`|z| > \ln(0.97/0.03) \approx 3.48`, where :math:`\sigma'(z) < 0.030`. The fraction is taken
    over every entry (every example and unit) of ``z``.
    """
    if activation not in SATURATING:
        raise ValueError(f"Saturation is defined for bounded activations {sorted(SATURATING)}. "
                         f"Got {activation!r} instead.")
    if not 0 < margin < 0.5:
        raise ValueError(f"'margin' must be a float in the range (0, 0.5). Got {margin!r} instead.")
    f, low, high = SATURATING[activation]
    a = f(z.double())
    return float(((a < low + margin) | (a > high - margin)).double().mean())


def dead_fraction(z: torch.Tensor) -> float:
    r"""Fraction of units (columns of ``z``, shape ``(examples, units)``) that are dead ReLUs.

    Unit :math:`j` is dead on the batch when :math:`z_{ij} \le 0` for every example :math:`i`:
    then :math:`\mathrm{relu}(z_{ij}) = 0` and :math:`\mathrm{relu}'(z_{ij}) = 0` for all :math:`i`, so the
    unit passes nothing forward and no gradient reaches its incoming weights. For a leaky ReLU of
    slope :math:`a > 0` the same count gives the units that sit on their negative side for every
    example; those are not dead: they pass :math:`a z` forward and :math:`a` times the gradient back.
    """
    if z.dim() != 2:
        raise ValueError(f"'z' must have shape (examples, units). Got shape {tuple(z.shape)} instead.")
    return float((z <= 0).all(dim=0).double().mean())


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every layer that has a weight matrix, in forward order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2]


class Probe:
    """Record each weight layer's input, output and output gradient for one pass.

    >>> with Probe(model) as probe:
    ...     loss = loss_fn(model(x), y)
    ...     loss.backward()
    >>> probe.stats("inputs", "std")   # one value per layer
    """

    def __init__(self, model: nn.Module):
        self.layers = weight_layers(model)
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no layer with a weight matrix to probe.")
        self.names = [name for name, _ in self.layers]
        self.inputs, self.outputs, self.grads = {}, {}, {}
        self._handles = []

    def __enter__(self):
        for i, (_, layer) in enumerate(self.layers):
            self._handles.append(layer.register_forward_hook(self._recorder(i)))
        return self

    def _recorder(self, i):
        def hook(module, args, output):
            self.inputs[i] = args[0].detach()
            self.outputs[i] = output.detach()
            if output.requires_grad:
                output.register_hook(lambda grad: self.grads.__setitem__(i, grad.detach()))
        return hook

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return False

    STATISTICS = {
        "mean": lambda t: t.mean(),
        "std": lambda t: t.std(),
        "second_moment": lambda t: (t.double() ** 2).mean(),
    }

    def stats(self, what: str, statistic: str = "std") -> np.ndarray:
        r"""``statistic`` of ``what`` (``"inputs"``, ``"outputs"`` or ``"grads"``) per layer.

        ``statistic`` is ``"mean"``, ``"std"`` or ``"second_moment"`` (:math:`\mathbb{E}[t^2]`),
        taken over the batch and the units of the layer.
        """
        if what not in ("inputs", "outputs", "grads"):
            raise ValueError(f"'what' must be 'inputs', 'outputs' or 'grads'. Got {what!r} instead.")
        if statistic not in self.STATISTICS:
            raise ValueError(f"'statistic' must be one of {list(self.STATISTICS)}. Got {statistic!r} instead.")
        self._require(what)
        recorded = getattr(self, what)
        return np.array([float(self.STATISTICS[statistic](recorded[i])) for i in range(len(self.layers))])

    def weight_grad_stats(self, statistic: str = "std") -> np.ndarray:
        """``statistic`` of each layer's weight gradient (after ``backward()``)."""
        missing = [name for name, layer in self.layers if layer.weight.grad is None]
        if missing:
            raise ValueError(f"Layers {missing} have no weight gradient yet. Call loss.backward() first.")
        return np.array([float(self.STATISTICS[statistic](layer.weight.grad)) for _, layer in self.layers])

    def saturation(self, activation: str, margin: float = 0.03) -> np.ndarray:
        """:func:`saturated_fraction` of each layer's pre-activations (``outputs``), one value per layer.

        The last entry is the output layer's, which no activation follows in :func:`~lessonlib.models.mlp`.
        """
        self._require("outputs")
        return np.array([saturated_fraction(self.outputs[i], activation, margin) for i in range(len(self.layers))])

    def dead_units(self) -> np.ndarray:
        """:func:`dead_fraction` of each layer's pre-activations (``outputs``), one value per layer
        (dead ReLUs; for a leaky ReLU, units below 0 for every example, which still get a gradient).

        The last entry is the output layer's, which no activation follows in :func:`~lessonlib.models.mlp`.
        """
        self._require("outputs")
        return np.array([dead_fraction(self.outputs[i].flatten(1)) for i in range(len(self.layers))])

    def _require(self, what):
        """Raise a ValueError that says what to run if ``what`` was not recorded for every layer."""
        if not self.outputs:
            raise ValueError("Nothing was recorded yet. Run a forward pass through the model inside the with "
                             "block first, `with Probe(model) as probe: model(x)` (and loss.backward() there "
                             "for the gradients), then read the probe.")
        missing = [name for i, name in enumerate(self.names) if i not in getattr(self, what)]
        if missing:
            hint = ("Call loss.backward() inside the with block." if what == "grads" else
                    "The forward pass inside the with block did not reach them.")
            raise ValueError(f"No {what} were recorded for {len(missing)} of {len(self.layers)} layers "
                             f"({', '.join(missing)}). {hint}")

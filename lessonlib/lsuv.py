r"""Layer-sequential unit-variance (LSUV) initialization, Mishkin & Matas (2016).

The algorithm, for a network with weight layers :math:`W_1, \dots, W_L` and a batch :math:`x`:

1. Fill every weight with an orthogonal matrix (Saxe et al., 2014) and every bias with 0.
2. For :math:`l = 1, \dots, L` in forward order: run the batch through the network, read the
   standard deviation :math:`s_l` of layer :math:`l`'s output :math:`z_l = W_l a_{l-1} + b_l`
   and divide :math:`W_l` by :math:`s_l`. Since :math:`z_l` is linear in :math:`W_l` (the bias
   is 0), this sets :math:`\mathrm{std}(z_l) = 1` on the batch, up to rounding. Repeat until
   :math:`|s_l - 1| \le` ``tol`` or ``max_iter`` rescalings were made.

Layers before :math:`l` are already fixed when layer :math:`l` is rescaled, so every layer's
output has unit variance on the batch, whatever the activation function: the data, not a
formula for the activation, sets each scale.

The paper (its Algorithm 1) states the tolerance on the variance,
:math:`|\mathrm{Var}(z_l) - 1| < \mathrm{Tol}_\text{var}`, with at most :math:`T_\text{max}`
rescalings; here ``tol`` bounds :math:`|\mathrm{std}(z_l) - 1|`, so ``tol`` :math:`= \epsilon` is
about a variance tolerance of :math:`2\epsilon`, and ``max_iter`` is :math:`T_\text{max}`. The
statistic is taken over the whole output tensor (every example and unit), as in the paper.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn

from .probes import weight_layers
from .schemes import init_model


@dataclass
class LSUVReport:
    """What :func:`lsuv_init` did: per weight layer, the output std before any rescaling, after
    the last one, and how many rescalings it took."""

    names: list
    std_before: list
    std_after: list
    iterations: list

    def __repr__(self) -> str:
        worst = max(abs(s - 1) for s in self.std_after)
        return (f"LSUVReport({len(self.names)} layers, at most {max(self.iterations)} rescalings per layer, "
                f"largest |std - 1| after: {worst:.2g})")


def _output_std(model, layer, x):
    seen = {}
    handle = layer.register_forward_hook(lambda module, args, output: seen.__setitem__("z", output))
    try:
        model(x)
    finally:
        handle.remove()
    return float(seen["z"].double().std())


@torch.no_grad()
def lsuv_init(model: nn.Module, x: torch.Tensor, *, tol: float = 0.01, max_iter: int = 10,
              seed: int | None = None, include_last: bool = True) -> LSUVReport:
    r"""Initialize ``model`` in place with LSUV on the batch ``x`` (see the module docstring).

    ``tol`` is the accepted :math:`|\mathrm{std}(z_l) - 1|`, ``max_iter`` the most rescalings
    per layer, ``seed`` seeds the orthogonal draws. With ``include_last=False`` the last weight
    layer (the output layer) keeps its orthogonal weights. The model is put in eval mode for the
    passes and back in the mode it was in. Returns an :class:`LSUVReport`.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) < 2:
        raise ValueError(f"'x' must be a batch tensor of shape (examples, ...) with at least 2 examples. "
                         f"Got {type(x).__name__}{'' if not isinstance(x, torch.Tensor) else ' of shape ' + str(tuple(x.shape))}.")
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0 < tol < 1:
        raise ValueError(f"The 'tol' parameter must be a float in the range (0, 1). Got {tol!r} instead.")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"The 'max_iter' parameter must be an int >= 1. Got {max_iter!r} instead.")
    layers = weight_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no layer with a weight matrix to initialize.")
    init_model(model, "orthogonal", bias="zeros", seed=seed)
    was_training = model.training
    model.eval()
    report = LSUVReport([], [], [], [])
    try:
        for name, layer in (layers if include_last else layers[:-1]):
            std = _output_std(model, layer, x)
            report.names.append(name)
            report.std_before.append(std)
            steps = 0
            while abs(std - 1) > tol and steps < max_iter:
                if not std > 0:
                    raise ValueError(f"Layer {name!r} outputs a constant on the batch (std {std:.3g}); "
                                     f"LSUV cannot rescale it to unit variance.")
                layer.weight.div_(std)
                steps += 1
                std = _output_std(model, layer, x)
            report.std_after.append(std)
            report.iterations.append(steps)
    finally:
        model.train(was_training)
    return report

r"""Width scaling: the standard parameterization against μP (Yang and Hu 2021; Yang et al. 2022).

A network :math:`x \to W_1 \to \phi \to W_2 \to \phi \to W_3` whose hidden layers have width
:math:`n` is built at a base width :math:`n_0` and widened by :math:`m = n/n_0`. With Adam and
the learning rate :math:`\eta` tuned at the base width:

=================  =============================  =============================
layer              standard (``"sp"``)            μP (``"mup"``, Adam)
=================  =============================  =============================
input :math:`W_1`  Var :math:`2/n_\text{in}`, lr :math:`\eta`       the same
hidden :math:`W_2` Var :math:`2/n`, lr :math:`\eta`                 Var :math:`2/n`, lr :math:`\eta/m`
output :math:`W_3` Var :math:`1/n`, lr :math:`\eta`                 Var :math:`1/(n\,m)`, lr :math:`\eta/m`
biases             0, lr :math:`\eta`                               the same
=================  =============================  =============================

Adam moves every weight by roughly its learning rate per step whatever the gradient's size, and a
hidden unit sums :math:`n` such moves: with a fixed :math:`\eta` the change of a pre-activation grows
with the width, so in the standard parameterization the best :math:`\eta` shrinks as the network
widens. μP divides the hidden and output learning rates by :math:`m` so that each layer's output
moves by an amount that neither grows nor vanishes with the width, and starts the output layer
smaller so that the output does not depend on the random initial readout as the width grows. At
:math:`m = 1` the two are the same network.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Split

PARAMETERIZATIONS = ("sp", "mup")


def mlp_at_width(n_in: int, width: int, n_out: int, parameterization: str, base_width: int,
                 seed: int = 0) -> tuple[nn.Sequential, list]:
    """A ReLU network ``n_in -> width -> width -> n_out`` drawn as the table above says, and Adam's
    parameter groups (each with its ``lr_scale``, the factor on the base learning rate)."""
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"The 'parameterization' parameter must be one of {list(PARAMETERIZATIONS)}. "
                         f"Got {parameterization!r} instead.")
    for name, value in (("width", width), ("base_width", base_width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"The '{name}' parameter must be an int >= 1. Got {value!r} instead.")
    m = width / base_width if parameterization == "mup" else 1.0
    net = nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                        nn.Linear(width, n_out))
    gen = torch.Generator().manual_seed(seed)
    first, hidden, output = net[0], net[2], net[4]
    with torch.no_grad():
        first.weight.normal_(0.0, math.sqrt(2 / n_in), generator=gen)
        hidden.weight.normal_(0.0, math.sqrt(2 / width), generator=gen)
        output.weight.normal_(0.0, math.sqrt(1 / (width * m)), generator=gen)
        for layer in (first, hidden, output):
            layer.bias.zero_()
    groups = [
        {"params": [first.weight, first.bias, hidden.bias, output.bias], "lr_scale": 1.0},
        {"params": [hidden.weight, output.weight], "lr_scale": 1.0 / m},
    ]
    return net, groups


def final_loss(data: Split, width: int, parameterization: str, base_width: int, lr: float, *,
               steps: int, seed: int = 0) -> float:
    """Training loss (cross-entropy) after ``steps`` full-batch Adam steps at the base learning rate
    ``lr``, in the data's floating-point type; ``inf`` if the run diverged."""
    net, groups = mlp_at_width(data.n_features, width, data.n_classes, parameterization, base_width, seed)
    net.to(data.X_train.dtype)
    opt = torch.optim.Adam([{"params": g["params"], "lr": lr * g["lr_scale"]} for g in groups])
    for _ in range(steps):
        loss = F.cross_entropy(net(data.X_train), data.y_train)
        if not math.isfinite(loss.item()):
            return math.inf
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        loss = F.cross_entropy(net(data.X_train), data.y_train).item()
    return loss if math.isfinite(loss) else math.inf

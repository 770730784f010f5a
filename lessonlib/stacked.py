r"""Many seeds of one fully connected network, trained as one: backpropagation written out.

A network that is a chain ``x -> Linear -> activation -> ... -> Linear`` (every :func:`~lessonlib.models.mlp`,
:class:`~lessonlib.models.DigitNN`) is trained for :math:`S` seeds at once by stacking each layer's
weights into one tensor :math:`W_l \in \mathbb{R}^{S \times n_l \times n_{l-1}}` and doing every
matrix product as a batch of :math:`S` products. For seed :math:`s` and the :math:`N` training
examples :math:`X`, with :math:`h_0 = X`:

.. math::

    z_l = h_{l-1} W_l^\top + b_l, \qquad h_l = \varphi(z_l), \qquad
    \mathcal{L} = \frac1N \sum_{n} -\log \operatorname{softmax}(z_L)_{n, y_n}

and the gradients, from :math:`\delta_L = \partial\mathcal{L}/\partial z_L` down:

.. math::

    \delta_L = \tfrac1N\big(\operatorname{softmax}(z_L) - \operatorname{onehot}(y)\big), \quad
    \frac{\partial\mathcal{L}}{\partial W_l} = \delta_l^\top h_{l-1}, \quad
    \frac{\partial\mathcal{L}}{\partial b_l} = \textstyle\sum_n \delta_l, \quad
    \delta_{l-1} = (\delta_l W_l) \odot \varphi'(z_{l-1}).

:math:`\varphi'` is read off the stored output :math:`h = \varphi(z)`: :math:`\mathbb 1[h>0]` for
ReLU, :math:`1-h^2` for tanh, :math:`h(1-h)` for the sigmoid, 1 or the slope for leaky ReLU.
These are the products autograd computes for one model; writing them out lets the large arrays
(activations and their gradients, ``[seed, example, unit]``) live in buffers reused every epoch
instead of new tensors per step, and keeps the scores as ``[seed, class, example]``, where the
softmax and the arg-max over a few classes are fast reductions.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from .data import Split

aten = torch.ops.aten

METRICS = ("loss", "train_acc", "test_loss", "test_acc")


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity: ``forward_`` overwrites ``z`` with :math:`\\varphi(z)`,
    ``backward_(d, h)`` overwrites ``d`` with :math:`d \\odot \\varphi'(z)` from ``h`` = :math:`\\varphi(z)`.
    ``"linear"`` (``nn.Identity``) leaves both as they are."""

    name: str
    slope: float = 0.0

    def forward_(self, z):
        if self.name == "relu":
            z.relu_()
        elif self.name == "tanh":
            z.tanh_()
        elif self.name == "sigmoid":
            z.sigmoid_()
        elif self.name == "leaky_relu":
            F.leaky_relu_(z, self.slope)

    def backward_(self, d, h):
        if self.name == "relu":
            aten.threshold_backward.grad_input(d, h, 0, grad_input=d)
        elif self.name == "tanh":
            aten.tanh_backward.grad_input(d, h, grad_input=d)
        elif self.name == "sigmoid":
            aten.sigmoid_backward.grad_input(d, h, grad_input=d)
        elif self.name == "leaky_relu":   # h > 0 exactly where z > 0, since the slope is positive
            aten.leaky_relu_backward.grad_input(d, h, self.slope, True, grad_input=d)


_MODULES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.LeakyReLU: "leaky_relu",
            nn.Identity: "linear"}
_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", torch.tanh: "tanh", torch.sigmoid: "sigmoid",
              F.leaky_relu: "leaky_relu"}


def _activation_of(node, modules):
    """The :class:`Activation` an FX node applies, or None if it is no supported nonlinearity."""
    if node.op == "call_module":
        module = modules[node.target]
        name, extra = _MODULES.get(type(module)), []
        slope = getattr(module, "negative_slope", 0.0)
    elif node.op == "call_function":
        name = _FUNCTIONS.get(node.target)
        extra = list(node.args[1:]) + [v for k, v in node.kwargs.items() if k != "inplace"]
        slope = extra[0] if extra else 0.01          # F.leaky_relu's default slope
    else:
        return None
    if name is None or (extra and name != "leaky_relu"):
        return None
    if name != "leaky_relu":
        return Activation(name)
    return Activation(name, float(slope)) if slope > 0 else None


def linear_chain(model: nn.Module):
    """``model`` as ``[(Linear, Activation or None), ...]`` if it is a chain of biased ``nn.Linear``
    layers with a supported activation between them and none after the last; else None."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:   # a forward FX cannot trace (control flow on the input) is no plain chain
        return None
    modules = dict(model.named_modules())
    nodes = list(graph.nodes)
    if [n.op for n in nodes[:1] + nodes[-1:]] != ["placeholder", "output"]:
        return None
    chain, previous = [], nodes[0]
    for node in nodes[1:-1]:
        if len(node.all_input_nodes) != 1 or node.all_input_nodes[0] is not previous:
            return None
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, nn.Linear) and type(module) is nn.Linear:
            if module.bias is None or (chain and chain[-1][1] is None):
                return None
            chain.append((module, None))
        else:
            activation = _activation_of(node, modules)
            if activation is None or not chain or chain[-1][1] is not None:
                return None
            chain[-1] = (chain[-1][0], activation)
        previous = node
    if not chain or chain[-1][1] is not None or nodes[-1].all_input_nodes != [previous]:
        return None
    return chain


def train_stacked(models, data: Split, epochs: int, lr: float, optimizer,
                  states_at=()) -> tuple[dict, np.ndarray, dict]:
    """Train ``models`` (same architecture, a :func:`linear_chain`) on ``data`` together.

    ``optimizer`` is a ``torch.optim`` class, built on the stacked weights; Adam and SGD act element
    by element, so each seed is updated exactly as if it were trained alone. Returns the per-epoch
    ``records`` (``METRICS`` -> array ``[seed, epoch]``, NaN after a divergence) and the epoch at
    which each seed's loss became non-finite (-1: never), and ``states``: for each epoch in
    ``states_at``, one ``state_dict`` per seed (copies of its weights and biases at that epoch, before
    its update, named as in ``models[0]``; None once the seed has diverged). From then on a diverged seed's score
    gradient is set to zero; whatever its own (non-finite) weights do, every product, sum and
    optimizer step stays within that seed's slice, so it cannot touch the others.
    """
    chains = [linear_chain(m) for m in models]
    layers = list(zip(*[[linear for linear, _ in chain] for chain in chains]))
    activations = [activation for _, activation in chains[0]]
    S, N, n_test = len(models), len(data.y_train), len(data.y_test)
    module_names = {id(module): name for name, module in models[0].named_modules()}
    names = [f"{module_names[id(linear)]}.{kind}" for linear, _ in chains[0] for kind in ("weight", "bias")]
    states = {}
    weights = [torch.stack([linear.weight.detach() for linear in layer]) for layer in layers]
    biases = [torch.stack([linear.bias.detach() for linear in layer]) for layer in layers]
    biases[-1] = biases[-1].unsqueeze(2)          # the scores are [seed, class, example]
    params = [p for pair in zip(weights, biases) for p in pair]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = optimizer(params, lr=lr)

    def buffers(n):
        return ([torch.empty(S, n, w.shape[1], dtype=w.dtype) for w in weights[:-1]]
                + [torch.empty(S, weights[-1].shape[1], n, dtype=weights[-1].dtype)])

    train_h, test_h, deltas = buffers(N), buffers(n_test), buffers(N)
    x_train, x_test = data.X_train.expand(S, -1, -1), data.X_test.expand(S, -1, -1)

    def forward(x, h):
        for l in range(len(weights) - 1):
            torch.bmm(x, weights[l].transpose(1, 2), out=h[l]).add_(biases[l].unsqueeze(1))
            activations[l].forward_(h[l])
            x = h[l]
        return torch.bmm(weights[-1], x.transpose(1, 2), out=h[-1]).add_(biases[-1])

    def losses_and_accuracy(scores, labels):
        log_p = torch.log_softmax(scores, 1)
        loss = -log_p.gather(1, labels.view(1, 1, -1).expand(S, 1, -1)).squeeze(1).mean(1)
        correct = (scores.max(1).indices == labels).sum(1)
        return log_p, loss.numpy(), correct.numpy() / len(labels)

    one_hot = F.one_hot(data.y_train, weights[-1].shape[1]).to(data.X_train.dtype).T
    records = {m: np.full((S, epochs + 1), np.nan) for m in METRICS}
    diverged = np.full(S, -1)
    for epoch in range(epochs + 1):
        log_p, loss, train_acc = losses_and_accuracy(forward(x_train, train_h), data.y_train)
        _, test_loss, test_acc = losses_and_accuracy(forward(x_test, test_h), data.y_test)
        newly = (diverged < 0) & ~np.isfinite(loss)
        diverged[newly] = epoch
        alive = diverged < 0
        for m, values in zip(METRICS, (loss, train_acc, test_loss, test_acc)):
            records[m][alive, epoch] = values[alive]
        if epoch in states_at:
            states[epoch] = [{name: p[s].reshape(p.shape[1:2] if name.endswith("bias") else p.shape[1:]).clone()
                              for name, p in zip(names, params)} if alive[s] else None for s in range(S)]
        if epoch == epochs or not alive.any():
            break
        d = torch.exp(log_p, out=deltas[-1]).sub_(one_hot).div_(N)
        if not alive.all():
            d[torch.from_numpy(~alive)] = 0.0
        for l in reversed(range(len(weights))):
            last = l == len(weights) - 1
            h_below = train_h[l - 1] if l > 0 else x_train
            if last:
                torch.bmm(d, h_below, out=weights[l].grad)
                torch.sum(d, 2, keepdim=True, out=biases[l].grad)
            else:
                activations[l].backward_(d, train_h[l])
                torch.bmm(d.transpose(1, 2), h_below, out=weights[l].grad)
                torch.sum(d, 1, out=biases[l].grad)
            if l > 0:
                below = d.transpose(1, 2) if last else d
                d = torch.bmm(below, weights[l], out=deltas[l - 1])
        opt.step()
    return records, diverged, states


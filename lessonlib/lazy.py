r"""Lazy and rich training: how far a network's weights and features move (Chizat, Oyallon and
Bach 2019).

Scale a network's centred output by :math:`\alpha`, :math:`h_\alpha(x) = \alpha\,\big(f(w, x) - f(w_0, x)\big)`,
and train it by gradient descent on the squared error to the one-hot labels with the learning
rate :math:`\eta/\alpha^2`. A step moves the weights by :math:`\Delta w = -\tfrac{\eta}{\alpha}\,
\nabla_w f^\top \nabla_h R`, and the output by about :math:`\alpha\,\nabla_w f\,\Delta w = -\eta\,
\nabla_w f\,\nabla_w f^\top \nabla_h R`, the same for every :math:`\alpha`. So the function is
learnt at one speed while the weights move :math:`1/\alpha` as far: for a large :math:`\alpha`
training is *lazy* (the network stays near its linearization at :math:`w_0`, a kernel method
with the tangent kernel :math:`\nabla_w f\,\nabla_w f^\top` of the initialization), for a small
:math:`\alpha` it is *rich* (the hidden features change). Subtracting :math:`f(w_0, x)` makes the
output start at 0 whatever :math:`\alpha` is.

For a bias-free ReLU network of :math:`L` layers, multiplying every weight by :math:`\lambda`
multiplies the output by :math:`\lambda^L`: a large initialization is a large :math:`\alpha`.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Split


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    r"""Linear centred kernel alignment of two representations of the same examples (rows):

    .. math:: \mathrm{CKA}(X, Y) = \frac{\|Y_c^\top X_c\|_F^2}{\|X_c^\top X_c\|_F\,\|Y_c^\top Y_c\|_F},

    with :math:`X_c, Y_c` the columns centred (Kornblith et al. 2019). 1 when :math:`Y` is a
    rotation and rescaling of :math:`X`; lower as the two arrange the examples differently."""
    if X.dim() != 2 or Y.dim() != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"linear_cka compares two [example, feature] matrices of the same examples. "
                         f"Got the shapes {tuple(X.shape)} and {tuple(Y.shape)} instead.")
    X = (X - X.mean(0)).double()
    Y = (Y - Y.mean(0)).double()
    return float((Y.T @ X).norm() ** 2 / ((X.T @ X).norm() * (Y.T @ Y).norm()))


def train_scaled(model: nn.Sequential, data: Split, alpha: float, *, steps: int, lr: float) -> dict:
    r"""Train :math:`h_\alpha = \alpha\,(f(w) - f(w_0))` by full-batch gradient descent with the learning rate
    ``lr`` :math:`/\alpha^2` on half the mean squared error to the one-hot labels.

    ``model`` is a ``nn.Sequential`` whose last module is the output layer; its *features* are the
    output of everything before it. Returns ``loss`` (the training loss at each of the
    ``steps + 1`` states), ``test_acc`` (the last state's) and ``test_predictions`` (its predicted
    class of each test example), ``weight_change`` (per ``nn.Linear``,
    :math:`\|W - W_0\|_F/\|W_0\|_F` at the end) and ``feature_cka`` (linear CKA of the test
    examples' features before and after training).
    """
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"The 'alpha' parameter must be a float in the range (0, inf). Got {alpha!r} instead.")
    features = model[:-1]
    targets = F.one_hot(data.y_train, data.n_classes).to(data.X_train.dtype)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    start = [m.weight.detach().clone() for m in linears]
    with torch.no_grad():
        f0_train, f0_test = model(data.X_train), model(data.X_test)
        features_before = features(data.X_test)
    opt = torch.optim.SGD(model.parameters(), lr=lr / alpha ** 2)
    losses = []
    for step in range(steps + 1):
        h = alpha * (model(data.X_train) - f0_train)
        loss = 0.5 * ((h - targets) ** 2).sum(1).mean()
        losses.append(loss.item())
        if step == steps or not math.isfinite(losses[-1]):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores = alpha * (model(data.X_test) - f0_test)
        predictions = scores.argmax(1)
        test_acc = (predictions == data.y_test).float().mean().item()
        features_after = features(data.X_test)
    return {
        "loss": losses,
        "test_acc": test_acc,
        "test_predictions": predictions,
        "weight_change": [float((m.weight.detach() - w0).norm() / w0.norm()) for m, w0 in zip(linears, start)],
        "feature_cka": linear_cka(features_before, features_after),
    }

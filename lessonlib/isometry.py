r"""A deep network at initialization as a map from input to output: weights drawn at a point
:math:`(\sigma_w^2, \sigma_b^2)` of the mean-field diagram (:mod:`lessonlib.mean_field`), Gaussian
or orthogonal, and the singular values of the network's input-output Jacobian
(Saxe et al. 2014; Pennington et al. 2017).

For :math:`z_l = W_l\,\phi(z_{l-1}) + b_l` the Jacobian of the output with respect to the input is
the product

.. math:: J = \frac{\partial z_L}{\partial x} = W_L D_{L-1} W_{L-1} \cdots D_1 W_1,
          \qquad D_l = \mathrm{diag}\big(\phi'(z_l)\big).

Its mean squared singular value is :math:`\chi_1` per layer, so at the edge of chaos
(:math:`\chi_1 = 1`) it stays about 1 at any depth. *Dynamical isometry* asks more: that every
singular value stay near 1, so that no direction of the input is blown up or lost. A product of
Gaussian matrices cannot do it: its singular values spread further apart with every layer.
Orthogonal :math:`W_l` (all singular values :math:`\sigma_w`) with a nearly linear tanh
(:math:`D_l \approx I`, a small :math:`q^*`) can; ReLU cannot, since :math:`D_l` zeroes about half
of the directions at every layer, orthogonal weights or not.
"""

import math

import numpy as np
import torch
import torch.nn as nn

WEIGHTS = ("gaussian", "orthogonal")


def init_deep(model: nn.Module, sigma_w2: float, sigma_b2: float = 0.0, weights: str = "gaussian",
              seed: int = 0) -> nn.Module:
    r"""Draw every ``nn.Linear`` of ``model`` in place: biases :math:`\mathcal{N}(0, \sigma_b^2)` and
    weights :math:`\mathcal{N}(0, \sigma_w^2/n_\text{in})` (``"gaussian"``) or :math:`\sigma_w` times
    a random orthogonal matrix (``"orthogonal"``, ``torch.nn.init.orthogonal_`` with gain
    :math:`\sigma_w`; for a square layer every singular value is :math:`\sigma_w`, and both give
    :math:`\mathbb{E}\|W a\|^2 = \sigma_w^2\|a\|^2` for a square layer). Returns ``model``."""
    if weights not in WEIGHTS:
        raise ValueError(f"The 'weights' parameter must be one of {list(WEIGHTS)}. Got {weights!r} instead.")
    for name, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ValueError(f"The '{name}' parameter must be a float in the range [0, inf). Got {value!r} instead.")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                if weights == "orthogonal":
                    nn.init.orthogonal_(layer.weight, math.sqrt(sigma_w2), generator=generator)
                else:
                    layer.weight.normal_(0.0, math.sqrt(sigma_w2 / layer.in_features), generator=generator)
                if layer.bias is not None:
                    layer.bias.normal_(0.0, math.sqrt(sigma_b2), generator=generator)
    return model


def jacobian_singular_values(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    r"""The singular values of :math:`\partial\,\mathrm{model}(x)/\partial x` at one input ``x``
    (a 1-D tensor), largest first."""
    if x.dim() != 1:
        raise ValueError(f"jacobian_singular_values takes one input, a 1-D tensor. Got the shape {tuple(x.shape)} instead.")
    jacobian = torch.autograd.functional.jacobian(model, x)
    return torch.linalg.svdvals(jacobian).numpy()


def share_within(values, factor: float = 2.0) -> float:
    r"""The share of ``values`` (singular values) within a ``factor`` of 1: in
    :math:`[1/\mathrm{factor}, \mathrm{factor}]`."""
    values = np.asarray(values)
    return float(np.mean((values >= 1 / factor) & (values <= factor)))

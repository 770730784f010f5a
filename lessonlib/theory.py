r"""What the variance argument predicts, layer by layer, for a wide random network.

For a layer :math:`z_l = W_l a_{l-1}` with independent zero-mean weights of variance
:math:`v_l` and :math:`n_{l-1}` inputs, each pre-activation is a sum of :math:`n_{l-1}`
independent terms, so its second moment is

.. math:: q_l = \mathbb{E}[z_l^2] = n_{l-1}\, v_l\, \mathbb{E}[a_{l-1}^2],
          \qquad \mathbb{E}[a_l^2] = \mathbb{E}_{z \sim \mathcal{N}(0, q_l)}[f(z)^2].

Backwards, :math:`\partial L/\partial a_{l-1} = W_l^\top \partial L/\partial z_l` and
:math:`\partial L/\partial z_l = f'(z_l)\,\partial L/\partial a_l`, so

.. math:: \mathbb{E}[(\partial L/\partial a_{l-1})^2] = n_l\, v_l\, \mathbb{E}[(\partial L/\partial z_l)^2],
          \qquad \mathbb{E}[(\partial L/\partial z_l)^2] = \mathbb{E}[f'(z_l)^2]\,\mathbb{E}[(\partial L/\partial a_l)^2].

For the piecewise-linear units, :math:`f(z) = z` for :math:`z > 0` and :math:`f(z) = a z` for
:math:`z < 0` (ReLU :math:`a = 0`; leaky ReLU :math:`a > 0`, ``nn.LeakyReLU``'s default
:math:`a = 0.01`; linear :math:`a = 1`), each half of a symmetric :math:`z \sim \mathcal{N}(0, q)`
carries half of its second moment, and the negative half is scaled by :math:`a`, so

.. math:: \mathbb{E}[f(z)^2] = \frac{q}{2} + a^2\,\frac{q}{2} = \frac{1+a^2}{2}\,q,
          \qquad \mathbb{E}[f'(z)^2] = \frac{1+a^2}{2}.

With :math:`\chi = n\,v` (square layers) a layer then multiplies *both* the forward second moment
and the gradient's by the same factor :math:`\chi\,(1+a^2)/2`, whatever :math:`q` is
(:func:`layer_factor`). He's leaky gain, :math:`\chi = g^2 = 2/(1+a^2)`, makes it exactly 1 in
both directions; Xavier's :math:`\chi = 1` makes it :math:`(1+a^2)/2`, which is :math:`1/2` for
ReLU and :math:`0.50005` for :math:`a = 0.01`. For tanh and sigmoid the factor depends on
:math:`q`.

The Gaussian expectations are exact for ReLU, leaky ReLU and linear units and computed by
quadrature for tanh and sigmoid (:func:`gaussian_expectation`), accurate for any variance the
course uses. The prediction holds for wide layers at
initialization (biases zero); at finite width it is an average the measurement scatters around.
"""

import math
import numbers

import numpy as np

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)    # on [-1, 1]
_TAIL = 12.0
r"""Where the standard normal's density is cut off: :math:`\varphi(12) \approx 2\cdot 10^{-32}`."""


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(z / 2))            # 1 / (1 + e^{-z}), without overflow for large |z|


SMOOTH_UNITS = {
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
}
"""Each smooth unit and its derivative, as functions of NumPy arrays."""


def _panel_edges(q: float) -> np.ndarray:
    r"""``0, s, 2s, 4s, ..., 12`` with :math:`s = \min(1, 1/\sqrt q)`: the first panel holds the
    centre of ``fn(sqrt(q) x)``, of width about :math:`1/\sqrt q`, the later ones double."""
    edges, edge = [0.0], min(1.0, 1.0 / math.sqrt(q))
    while edge < _TAIL:
        edges.append(edge)
        edge *= 2
    return np.array(edges + [_TAIL])


def gaussian_expectation(fn, q: float) -> float:
    r""":math:`\mathbb{E}[fn(z)]` for :math:`z \sim \mathcal{N}(0, q)`.

    With :math:`z = \sqrt q\, x`, :math:`x \sim \mathcal{N}(0, 1)`,

    .. math:: \mathbb{E}[fn(z)] = \int_{-\infty}^{\infty} fn(\sqrt q\, x)\, \varphi(x)\, dx,
              \qquad \varphi(x) = e^{-x^2/2}/\sqrt{2\pi},

    integrated over :math:`|x| \le 12` by 24-point Gauss-Legendre rules on panels that start at
    :math:`[0, \min(1, 1/\sqrt q)]` and double in width (:func:`_panel_edges`), on both sides of 0.
    For a large variance the slope of tanh or the sigmoid is non-zero only on a narrow centre,
    :math:`|x| \lesssim 3/\sqrt q`, which a fixed Gauss-Hermite rule steps over (at :math:`q = 512`
    it gives 0.12 for :math:`\mathbb{E}[\tanh'(z)^2]`, exactly 0.0235); here the first panel covers
    it. A kink at 0 (ReLU) falls on a panel edge. Accurate to about :math:`10^{-14}` relative for
    :math:`10^{-4} \le q \le 10^{4}` (and beyond) on the course's units (the tests compare closed
    forms and 30-digit integrals to :math:`10^{-4}`), with 240 to about 600 evaluations of ``fn``,
    well under a millisecond. ``fn`` takes and returns NumPy arrays: it is called twice, on the
    positive nodes :math:`z` and on :math:`-z`. ``q = 0`` gives ``fn(0)``; a negative, NaN or
    infinite ``q`` raises a ``ValueError``.
    """
    if not isinstance(q, numbers.Real) or isinstance(q, bool) or not math.isfinite(q) or q < 0:
        raise ValueError(f"The 'q' parameter must be a variance: a float in the range [0, inf). Got {q!r} instead.")
    if q == 0:
        return float(np.asarray(fn(np.zeros(1)))[0])
    edges = _panel_edges(float(q))
    half, mid = np.diff(edges)[:, None] / 2, (edges[1:] + edges[:-1])[:, None] / 2
    x = (mid + half * _GL_NODES).ravel()
    w = (half * _GL_WEIGHTS).ravel() * np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
    z = math.sqrt(q) * x
    return float(np.dot(w, fn(z)) + np.dot(w, fn(-z)))


_KEPT = {
    "linear": lambda a: 1.0,
    "relu": lambda a: 0.5,
    "leaky_relu": lambda a: (1 + a**2) / 2,
}
r"""Piecewise-linear units: :math:`\mathbb{E}[f(z)^2]/q = \mathbb{E}[f'(z)^2]` for the slope :math:`a`."""


def layer_factor(activation: str, chi: float = 1.0, negative_slope: float = 0.01) -> float:
    r"""The factor :math:`\chi\,\mathbb{E}[f(z)^2]/q = \chi\,\mathbb{E}[f'(z)^2]` by which one layer
    multiplies the forward second moment :math:`q` and, for square layers, the gradient's.

    Defined for the units whose factor does not depend on :math:`q`: ``"linear"`` (:math:`\chi`),
    ``"relu"`` (:math:`\chi/2`) and ``"leaky_relu"`` with slope :math:`a` = ``negative_slope``
    (:math:`\chi\,(1+a^2)/2`). ``chi`` is :math:`n\,\mathrm{Var}(W)`: 1 for Xavier on square
    layers, 2 for He, :math:`2/(1+a^2)` for He with the leaky gain.
    """
    if activation not in _KEPT:
        raise ValueError(f"layer_factor is defined for the units whose factor does not depend on q, "
                         f"{sorted(_KEPT)}. Got {activation!r} instead; for tanh and sigmoid use "
                         f"predict_forward and predict_backward.")
    if not isinstance(chi, (int, float)) or isinstance(chi, bool) or not math.isfinite(chi) or chi < 0:
        raise ValueError(f"The 'chi' parameter must be a float in the range [0, inf). Got {chi!r} instead.")
    return chi * _KEPT[activation](negative_slope)


def _moments(activation: str, negative_slope: float):
    r"""Functions :math:`q \mapsto \mathbb{E}[f(z)^2]` and :math:`q \mapsto \mathbb{E}[f'(z)^2]`,
    :math:`z \sim \mathcal{N}(0, q)`: closed forms for the piecewise-linear units (a ReLU keeps
    half of the second moment, a leaky ReLU :math:`(1+a^2)/2`), quadrature for tanh and sigmoid."""
    if activation in _KEPT:
        keep = _KEPT[activation](negative_slope)
        return (lambda q: keep * q), (lambda q: keep)
    if activation not in SMOOTH_UNITS:
        raise ValueError(f"No prediction for activation {activation!r}. "
                         f"Choose one of ['leaky_relu', 'linear', 'relu', 'sigmoid', 'tanh'].")
    f, df = SMOOTH_UNITS[activation]
    return (lambda q: gaussian_expectation(lambda z: f(z) ** 2, q),
            lambda q: gaussian_expectation(lambda z: df(z) ** 2, q))


def predict_forward(widths, weight_vars, activation: str, input_second_moment: float = 1.0,
                    negative_slope: float = 0.01) -> np.ndarray:
    r"""Predicted second moment :math:`q_l = \mathbb{E}[z_l^2]` of each layer's pre-activations.

    ``widths`` are the layer sizes :math:`n_0, n_1, \dots, n_L` (input first), ``weight_vars``
    the weight variances :math:`v_1, \dots, v_L` (one number for all layers, or one per layer).
    ``activation`` follows every layer but the last. Returns :math:`q_1, \dots, q_L`.
    """
    widths, weight_vars = _check(widths, weight_vars)
    activation_moment, _ = _moments(activation, negative_slope)
    q, moment = [], input_second_moment
    for fan_in, v in zip(widths[:-1], weight_vars):
        q.append(fan_in * v * moment)
        moment = activation_moment(q[-1])
    return np.array(q)


def predict_backward(widths, weight_vars, activation: str, output_grad_second_moment: float = 1.0,
                     input_second_moment: float = 1.0, negative_slope: float = 0.01) -> np.ndarray:
    r"""Predicted :math:`\mathbb{E}[(\partial L/\partial z_l)^2]` for every layer :math:`l = 1..L`,
    given its value at the last layer (``output_grad_second_moment``)."""
    widths, weight_vars = _check(widths, weight_vars)
    _, derivative_moment = _moments(activation, negative_slope)
    q = predict_forward(widths, weight_vars, activation, input_second_moment, negative_slope)
    g = [output_grad_second_moment]
    for layer in range(len(q) - 1, 0, -1):  # from layer L down to layer 2
        grad_a = widths[layer + 1] * weight_vars[layer] * g[0]  # into the activations of layer `layer`
        g.insert(0, derivative_moment(q[layer - 1]) * grad_a)
    return np.array(g)


def _check(widths, weight_vars):
    widths = list(widths)
    if len(widths) < 2 or not all(isinstance(n, int) and n > 0 for n in widths):
        raise ValueError(f"'widths' must list at least two positive ints. Got {widths!r} instead.")
    if np.ndim(weight_vars) == 0:
        weight_vars = [float(weight_vars)] * (len(widths) - 1)
    weight_vars = [float(v) for v in weight_vars]
    if len(weight_vars) != len(widths) - 1:
        raise ValueError(f"'weight_vars' must have one variance per layer ({len(widths) - 1}). "
                         f"Got {len(weight_vars)} instead.")
    if any(v < 0 for v in weight_vars):
        raise ValueError(f"'weight_vars' must be >= 0. Got {weight_vars!r} instead.")
    return widths, weight_vars


_BOUNDED = ("tanh", "sigmoid")


def fixed_point(activation: str, chi: float, q0: float = 1.0, tol: float = 1e-12,
                max_iter: int = 10_000) -> float:
    r"""The second moment :math:`q^*` at which a deep stack of square layers settles.

    With :math:`\chi = n\,\mathrm{Var}(w)`, zero biases and the forward recursion

    .. math:: q_{l+1} = \chi\, \mathbb{E}_{z \sim \mathcal{N}(0, q_l)}[f(z)^2],

    a bounded unit (``"tanh"``, ``"sigmoid"``) cannot let :math:`q` grow without limit:
    :math:`\mathbb{E}[f(z)^2] \le 1`, so :math:`q \le \chi`. Iterating from ``q0`` until two
    iterates differ by less than ``tol`` (relative) gives the fixed point
    :math:`q^* = \chi\,\mathbb{E}[f(z)^2]`, :math:`z \sim \mathcal{N}(0, q^*)`. For tanh with
    :math:`\chi \le 1` it is 0 (the signal dies out); for the sigmoid, whose output has mean
    about 1/2, it is positive for every :math:`\chi > 0`. Piecewise-linear units have no finite
    non-zero fixed point unless their factor :func:`layer_factor` is exactly 1. If ``max_iter``
    iterations do not converge (tanh at :math:`\chi = 1` approaches 0 only like :math:`1/l`),
    the last iterate is returned.
    """
    if activation not in _BOUNDED:
        raise ValueError(f"fixed_point is defined for the bounded units {list(_BOUNDED)}, whose second "
                         f"moment settles. Got {activation!r} instead; for {sorted(_KEPT)} each layer "
                         f"multiplies q by layer_factor(activation, chi).")
    if not isinstance(chi, (int, float)) or isinstance(chi, bool) or not math.isfinite(chi) or chi <= 0:
        raise ValueError(f"The 'chi' parameter must be a float in the range (0, inf). Got {chi!r} instead.")
    activation_moment, _ = _moments(activation, 0.0)
    q = float(q0)
    for _ in range(max_iter):
        new = chi * activation_moment(q)
        if abs(new - q) <= tol * max(new, 1e-300):
            return new
        q = new
    return q


def gradient_factor(activation: str, chi: float, q: float, negative_slope: float = 0.01) -> float:
    r"""The factor :math:`\chi\,\mathbb{E}[f'(z)^2]`, :math:`z \sim \mathcal{N}(0, q)`, by which one
    square layer multiplies the second moment of the gradient :math:`\partial L/\partial z` on its
    way back, when its pre-activations have second moment ``q``.

    Its square root is the factor of the gradient's RMS. A unit's slope bounds it: the sigmoid's
    slope is at most 1/4, so the factor is at most :math:`\chi/16`, but saturated units (large
    ``q``) have slopes near 0 and make it far smaller. Evaluate it at :func:`fixed_point` for the
    factor of a deep stack.
    """
    if not isinstance(q, (int, float)) or isinstance(q, bool) or not math.isfinite(q) or q < 0:
        raise ValueError(f"The 'q' parameter must be a float in the range [0, inf). Got {q!r} instead.")
    if not isinstance(chi, (int, float)) or isinstance(chi, bool) or not math.isfinite(chi) or chi < 0:
        raise ValueError(f"The 'chi' parameter must be a float in the range [0, inf). Got {chi!r} instead.")
    _, derivative_moment = _moments(activation, negative_slope)
    return chi * derivative_moment(q)

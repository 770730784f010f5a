r"""Two inputs through a deep, wide random network: the length map, the correlation map, and the
depth over which a network can tell inputs apart (Poole et al. 2016; Schoenholz et al. 2017).

Each layer computes :math:`z_l = W_l\,\phi(z_{l-1}) + b_l` with weights
:math:`W_{ij} \sim \mathcal{N}(0, \sigma_w^2/n)` and biases :math:`b_i \sim \mathcal{N}(0, \sigma_b^2)`.
(Chapters 8 and 10 write :math:`\chi = n\,\mathrm{Var}(W)` for :math:`\sigma_w^2`.) For wide layers
a pre-activation of one input is Gaussian with variance :math:`q_l`, and those of two inputs are
jointly Gaussian with correlation :math:`c_l`:

.. math::

    q_l = \sigma_w^2\, \mathbb{E}_{z \sim \mathcal{N}(0, q_{l-1})}\big[\phi(z)^2\big] + \sigma_b^2
    \qquad \text{(the length map)},

    c_l = \frac{\sigma_w^2\, \mathbb{E}\big[\phi(u_1)\,\phi(u_2)\big] + \sigma_b^2}{q_l}, \quad
    u_1 = \sqrt{q}\,x, \ u_2 = \sqrt{q}\,\big(c_{l-1} x + \sqrt{1 - c_{l-1}^2}\, y\big)
    \qquad \text{(the correlation map)},

with :math:`x, y` independent standard normals and :math:`q = q^*`, the length map's fixed point
(with biases :math:`q_l` reaches it within a few layers; without, a tanh network's :math:`q_l`
goes to 0 for :math:`\sigma_w^2 \le 1`: geometrically below 1, only like :math:`1/(2l)` at
:math:`\sigma_w^2 = 1`). :math:`c = 1` is always a fixed point of the
correlation map; its slope there,

.. math:: \chi_1 = \frac{\partial c_l}{\partial c_{l-1}}\Big|_{c = 1}
          = \sigma_w^2\, \mathbb{E}_{z \sim \mathcal{N}(0, q^*)}\big[\phi'(z)^2\big],

decides the phase. :math:`\chi_1 < 1` (ordered): every pair of inputs becomes the same input,
:math:`c_l \to 1`. :math:`\chi_1 > 1` (chaotic): nearby inputs fly apart until :math:`c_l` settles
at a :math:`c^* < 1`. :math:`\chi_1` is also the factor by which a layer multiplies the gradient's
second moment on its way back (chapter 5's :math:`\chi`), so :math:`\chi_1 = 1`, the *edge of chaos*,
is where gradients neither vanish nor explode. Near the fixed point :math:`c^*` the distance
:math:`|c_l - c^*|` shrinks like :math:`e^{-l/\xi_c}` with the depth scale

.. math:: \xi_c = -\frac{1}{\ln \chi_c}, \qquad
          \chi_c = \sigma_w^2\, \mathbb{E}\big[\phi'(u_1)\,\phi'(u_2)\big] \text{ at } q^*, c^*,

which is :math:`\chi_1` in the ordered phase and diverges at the edge of chaos.

For ReLU the expectations are closed forms (Cho and Saul's arc-cosine kernel): with
:math:`\theta = \arccos c`,

.. math:: \mathbb{E}[\mathrm{relu}(u_1)\,\mathrm{relu}(u_2)]
          = \frac{q}{2\pi}\big(\sin\theta + (\pi - \theta)\cos\theta\big), \qquad
          \mathbb{E}[\mathrm{relu}'(u_1)\,\mathrm{relu}'(u_2)] = \frac{\pi - \theta}{2\pi}.

For tanh they are computed by quadrature: the trapezoid rule with step 0.05 on
:math:`[-9, 9]^2` (a Gaussian-weighted analytic integrand, for which the rule converges
exponentially; the tests check the rule against erf's and ReLU's closed forms and the maps against
Monte Carlo runs of wide layers).
"""

import math

import numpy as np
from scipy.optimize import brentq

from .theory import SMOOTH_UNITS, gaussian_expectation

ACTIVATIONS = ("tanh", "relu")

_STEP = 0.05
_GRID = np.arange(-9.0, 9.0 + _STEP / 2, _STEP)
_WEIGHTS = _STEP * np.exp(-_GRID ** 2 / 2) / math.sqrt(2 * math.pi)   # trapezoid rule for N(0, 1)

_UNITS = {
    "tanh": SMOOTH_UNITS["tanh"],
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
}


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"The mean-field maps are defined for {list(ACTIVATIONS)}. Got {activation!r} instead.")


def _check_variance(name, value, low_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (low_open and value == 0):
        interval = "(0, inf)" if low_open else "[0, inf)"
        raise ValueError(f"The '{name}' parameter must be a float in the range {interval}. Got {value!r} instead.")


def _check_correlation(c):
    ok = isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
    if not ok or not -1 <= c <= 1:
        raise ValueError(f"The 'c' parameter must be a correlation: a float in the range [-1, 1]. Got {c!r} instead.")


def pair_expectation(f, g, q: float, c: float) -> float:
    r""":math:`\mathbb{E}[f(u_1)\,g(u_2)]` for jointly Gaussian :math:`u_1, u_2` of variance ``q``
    and correlation ``c``, by the trapezoid rule on :math:`[-9, 9]^2` with step 0.05.
    ``f`` and ``g`` take and return NumPy arrays."""
    _check_variance("q", q)
    _check_correlation(c)
    x = _GRID[:, None]
    y = _GRID[None, :]
    u1 = math.sqrt(q) * x
    u2 = math.sqrt(q) * (c * x + math.sqrt(max(0.0, 1 - c * c)) * y)
    return float(_WEIGHTS @ (f(u1) * g(u2)) @ _WEIGHTS)


def _relu_pair(q, c, derivative=False):
    theta = math.acos(min(1.0, max(-1.0, c)))
    if derivative:
        return (math.pi - theta) / (2 * math.pi)
    return q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))


def length_map(activation: str, q: float, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    r"""One layer of the length map: :math:`\sigma_w^2\,\mathbb{E}[\phi(z)^2] + \sigma_b^2`,
    :math:`z \sim \mathcal{N}(0, q)`."""
    _check_activation(activation)
    for name, value in (("q", q), ("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        _check_variance(name, value)
    f = _UNITS[activation][0]
    return sigma_w2 * gaussian_expectation(lambda z: f(z) ** 2, q) + sigma_b2


def fixed_length(activation: str, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0,
                 tol: float = 1e-12, max_iter: int = 100_000) -> float:
    r"""The length map's fixed point :math:`q^*`.

    For ReLU the map is linear, :math:`q \mapsto \tfrac{\sigma_w^2}{2}\,q + \sigma_b^2`, so
    :math:`q^* = \sigma_b^2/(1 - \sigma_w^2/2)` for :math:`\sigma_w^2 < 2` and no finite fixed point
    exists above (a ``ValueError``; at :math:`\sigma_w^2 = 2, \sigma_b = 0` every :math:`q` is one,
    and ``q0`` is returned). For tanh the map is iterated from ``q0`` until two iterates differ by
    less than ``tol`` relative; at :math:`\sigma_b = 0, \sigma_w^2 \le 1` it is 0 (:math:`\tanh(z)^2 < z^2`
    shrinks :math:`q` every layer, at :math:`\sigma_w^2 = 1` only like :math:`1/(2l)`). After ``max_iter``
    iterations the last iterate is returned.
    """
    _check_activation(activation)
    _check_variance("sigma_w2", sigma_w2, low_open=True)
    _check_variance("sigma_b2", sigma_b2)
    if activation == "relu":
        if sigma_w2 == 2 and sigma_b2 == 0:
            return float(q0)
        if sigma_w2 >= 2:
            raise ValueError(f"A ReLU network with sigma_w2 = {sigma_w2:g} >= 2 has no finite fixed length: "
                             f"q grows by sigma_w2/2 = {sigma_w2 / 2:g} every layer.")
        return sigma_b2 / (1 - sigma_w2 / 2)
    if sigma_b2 == 0 and sigma_w2 <= 1:       # tanh(z)^2 < z^2: q shrinks every layer, to 0
        return 0.0
    q = float(q0)
    for _ in range(max_iter):
        new = length_map(activation, q, sigma_w2, sigma_b2)
        if abs(new - q) <= tol * max(new, 1e-300):
            return new
        q = new
    return q


def correlation_map(activation: str, c: float, sigma_w2: float, sigma_b2: float = 0.0,
                    q: float | None = None) -> float:
    r"""One layer of the correlation map at the length ``q`` (default :math:`q^*`):
    :math:`c \mapsto (\sigma_w^2\,\mathbb{E}[\phi(u_1)\phi(u_2)] + \sigma_b^2)/q'`, with
    :math:`q'` the length map of ``q`` (:math:`= q` at :math:`q^*`)."""
    _check_activation(activation)
    _check_correlation(c)
    q = fixed_length(activation, sigma_w2, sigma_b2) if q is None else q
    _check_variance("q", q)
    if activation == "relu":
        pair = _relu_pair(q, c)
    else:
        pair = pair_expectation(np.tanh, np.tanh, q, c)
    q_next = length_map(activation, q, sigma_w2, sigma_b2)
    return (sigma_w2 * pair + sigma_b2) / q_next


def correlations(activation: str, c0: float, layers: int, sigma_w2: float, sigma_b2: float = 0.0) -> np.ndarray:
    r"""``c_0, c_1, ..., c_layers``: the correlation map iterated at :math:`q^*` from ``c0``."""
    if not isinstance(layers, int) or layers < 0:
        raise ValueError(f"The 'layers' parameter must be an int >= 0. Got {layers!r} instead.")
    q = fixed_length(activation, sigma_w2, sigma_b2)
    cs = [float(c0)]
    for _ in range(layers):
        cs.append(min(1.0, correlation_map(activation, cs[-1], sigma_w2, sigma_b2, q)))
    return np.array(cs)


def chi_1(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    r""":math:`\chi_1 = \sigma_w^2\,\mathbb{E}[\phi'(z)^2]`, :math:`z \sim \mathcal{N}(0, q^*)`: the
    correlation map's slope at :math:`c = 1` and the per-layer factor of the gradient's second
    moment. Below 1 the network is ordered, above 1 chaotic."""
    q = fixed_length(activation, sigma_w2, sigma_b2)
    slope = _UNITS[activation][1]
    return sigma_w2 * gaussian_expectation(lambda z: slope(z) ** 2, q)


def fixed_correlation(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    r"""The stable fixed point :math:`c^*` of the correlation map: 1 in the ordered phase
    (:math:`\chi_1 \le 1`), below 1 in the chaotic phase, found by root finding on
    :math:`c \mapsto \mathrm{map}(c) - c` between -1 and just below 1."""
    if chi_1(activation, sigma_w2, sigma_b2) <= 1:
        return 1.0
    q = fixed_length(activation, sigma_w2, sigma_b2)
    gap = lambda c: correlation_map(activation, c, sigma_w2, sigma_b2, q) - c
    top = 1 - 1e-6
    if gap(top) >= 0:           # chi_1 barely above 1: the other fixed point is within 1e-6 of 1
        return 1.0
    return float(brentq(gap, -1.0, top, xtol=1e-12)) if gap(-1.0) > 0 else -1.0


def chi_c(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    r""":math:`\chi_c = \sigma_w^2\,\mathbb{E}[\phi'(u_1)\phi'(u_2)]` at :math:`q^*, c^*`: the
    correlation map's slope at its stable fixed point (:math:`\chi_1` in the ordered phase)."""
    c = fixed_correlation(activation, sigma_w2, sigma_b2)
    if c == 1.0:
        return chi_1(activation, sigma_w2, sigma_b2)
    q = fixed_length(activation, sigma_w2, sigma_b2)
    if activation == "relu":
        return sigma_w2 * _relu_pair(q, c, derivative=True)
    slope = _UNITS[activation][1]
    return sigma_w2 * pair_expectation(slope, slope, q, c)


def depth_scale(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    r""":math:`\xi_c = -1/\ln \chi_c`: the number of layers over which the correlation of two inputs
    forgets where it started (by a factor :math:`e`). Infinite at the edge of chaos."""
    chi = chi_c(activation, sigma_w2, sigma_b2)
    return math.inf if chi >= 1 else -1 / math.log(chi)


def critical_sigma_w2(activation: str, sigma_b2: float = 0.0) -> float:
    r"""The :math:`\sigma_w^2` at which :math:`\chi_1 = 1` for the bias variance ``sigma_b2``: the
    edge of chaos. ReLU: 2 at :math:`\sigma_b = 0` (He's gain), and no edge with biases (below 2
    :math:`\chi_1 = \sigma_w^2/2 < 1`; at 2 and above the length diverges). tanh: by root finding
    between 1 (where :math:`\chi_1 \le 1`) and 10."""
    _check_activation(activation)
    _check_variance("sigma_b2", sigma_b2)
    if activation == "relu":
        if sigma_b2 > 0:
            raise ValueError("A ReLU network with biases has no edge of chaos: chi_1 = sigma_w2/2 < 1 wherever "
                             "its length stays finite (sigma_w2 < 2).")
        return 2.0
    if sigma_b2 == 0:
        return 1.0
    return float(brentq(lambda s: chi_1("tanh", s, sigma_b2) - 1, 1.0, 10.0, xtol=1e-10))

r"""Weight initialization schemes: one short function each, a registry, and ``init_model``.

Every scheme fills a weight tensor in place. The fan-based ones read the fans and the gain from
one place (:func:`fans`, :func:`gain`). Each random one draws exactly as ``torch.nn.init`` does,
from PyTorch's global generator or from the ``generator=`` it is given, so after the same seed
they produce the very same numbers. The parameters have ``torch.nn.init``'s names and defaults.
A scheme given a zero-element tensor leaves it as it is, with the warning that
``torch.nn.init.kaiming_*_`` gives.

For a ``Linear(fan_in, fan_out)`` weight of shape ``(fan_out, fan_in)``; a convolution's fans
are multiplied by its kernel size.
"""

import functools
import inspect
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn

# ---------------------------------------------------------------------------------------------
# fans and gains


def fans(weight: torch.Tensor) -> tuple[int, int]:
    r"""``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``.

    :math:`n_\text{in} = \text{in} \cdot \prod \text{kernel}`,
    :math:`n_\text{out} = \text{out} \cdot \prod \text{kernel}`.
    """
    if weight.dim() < 2:
        raise ValueError(f"Fans are defined for weights with at least 2 dimensions. "
                         f"Got a tensor of shape {tuple(weight.shape)} instead.")
    receptive_field = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


GAINS = {
    "linear": lambda slope: 1.0,
    "sigmoid": lambda slope: 1.0,
    "tanh": lambda slope: 5.0 / 3,
    "relu": lambda slope: math.sqrt(2.0),
    "leaky_relu": lambda slope: math.sqrt(2.0 / (1 + slope**2)),
    "selu": lambda slope: 3.0 / 4,
}


def gain(nonlinearity: str, negative_slope: float = 0.01) -> float:
    r"""The factor that restores unit variance after ``nonlinearity`` (as ``nn.init.calculate_gain``).

    ReLU zeroes half of a symmetric input, halving its second moment, hence
    :math:`\sqrt{2}`; leaky ReLU with slope :math:`a` keeps :math:`(1+a^2)/2` of it, hence
    :math:`\sqrt{2/(1+a^2)}`; tanh gets :math:`5/3`; linear and sigmoid get 1.
    """
    if nonlinearity not in GAINS:
        raise ValueError(f"No gain is defined for nonlinearity {nonlinearity!r}. "
                         f"Choose one of {sorted(GAINS)}.")
    return GAINS[nonlinearity](negative_slope)


MODES = ("fan_in", "fan_out")

SLOPE = "a leaky ReLU slope: a finite float in the range [0, inf), not a bool"
"""What the slope ``a`` of the He schemes may be (the message of the errors that reject one)."""


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_slope(a) -> bool:
    return _is_number(a) and a >= 0


def _fan(weight: torch.Tensor, mode: str) -> int:
    if mode not in MODES:
        raise ValueError(f"The 'mode' parameter must be 'fan_in' or 'fan_out'. Got {mode!r} instead.")
    fan_in, fan_out = fans(weight)
    return fan_in if mode == "fan_in" else fan_out


def _scheme(fill):
    """Make ``fill`` a scheme: it runs without autograd, and it returns a zero-element tensor
    untouched (there is nothing to fill, and its fans may be 0) with the warning of
    ``torch.nn.init.kaiming_*_``."""

    @functools.wraps(fill)
    def scheme(weight, *args, **kwargs):
        if weight.numel() == 0:
            warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
            return weight
        with torch.no_grad():
            return fill(weight, *args, **kwargs)

    return scheme


# ---------------------------------------------------------------------------------------------
# the schemes


@_scheme
def zeros(weight):
    r"""Every weight :math:`w = 0`."""
    return weight.zero_()


@_scheme
def constant(weight, value=1.0):
    r"""Every weight :math:`w = c` for the constant ``value``."""
    return weight.fill_(value)


@_scheme
def normal(weight, mean=0.0, std=1.0, generator=None):
    r""":math:`w \sim \mathcal{N}(\text{mean}, \text{std}^2)`."""
    return weight.normal_(mean, std, generator=generator)


@_scheme
def uniform(weight, a=0.0, b=1.0, generator=None):
    r""":math:`w \sim \mathcal{U}(a, b)`: mean :math:`(a+b)/2`, std :math:`(b-a)/\sqrt{12}`."""
    return weight.uniform_(a, b, generator=generator)


@_scheme
def xavier_uniform(weight, gain=1.0, generator=None):
    r"""Glorot & Bengio (2010): :math:`w \sim \mathcal{U}(-b, b)`,
    :math:`b = \text{gain}\sqrt{6/(n_\text{in}+n_\text{out})}`,
    so that :math:`\mathrm{Var}(w) = \text{gain}^2 \cdot 2/(n_\text{in}+n_\text{out})`."""
    fan_in, fan_out = fans(weight)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return weight.uniform_(-bound, bound, generator=generator)


@_scheme
def xavier_normal(weight, gain=1.0, generator=None):
    r"""Glorot & Bengio (2010): :math:`w \sim \mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = \text{gain}\sqrt{2/(n_\text{in}+n_\text{out})}`."""
    fan_in, fan_out = fans(weight)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return weight.normal_(0.0, std, generator=generator)


def _he_gain(a, nonlinearity) -> float:
    if not _is_slope(a):
        raise ValueError(f"The 'a' parameter must be {SLOPE}. Got {a!r} instead.")
    return gain(nonlinearity, a)


@_scheme
def kaiming_uniform(weight, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    r"""He et al. (2015): :math:`w \sim \mathcal{U}(-b, b)`,
    :math:`b = g\sqrt{3/\text{fan}}`, so :math:`\mathrm{Var}(w) = g^2/\text{fan}`.

    The gain :math:`g` is that of ``nonlinearity`` (:func:`gain`); the slope ``a`` counts only for
    ``"leaky_relu"``, where :math:`g = \sqrt{2/(1+a^2)}`. The defaults are ``torch.nn.init``'s:
    ``"leaky_relu"`` with :math:`a = 0`, the ReLU gain :math:`\sqrt 2`, so
    :math:`b = \sqrt{6/n_\text{in}}`. ``mode`` picks the fan: ``"fan_in"`` or ``"fan_out"``."""
    bound = _he_gain(a, nonlinearity) * math.sqrt(3.0 / _fan(weight, mode))
    return weight.uniform_(-bound, bound, generator=generator)


@_scheme
def kaiming_normal(weight, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    r"""He et al. (2015): :math:`w \sim \mathcal{N}(0, \sigma^2)`, :math:`\sigma = g/\sqrt{\text{fan}}`.

    The gain :math:`g` is that of ``nonlinearity`` (:func:`gain`); the slope ``a`` counts only for
    ``"leaky_relu"``, where :math:`g = \sqrt{2/(1+a^2)}`. The defaults are ``torch.nn.init``'s:
    ``"leaky_relu"`` with :math:`a = 0`, the ReLU gain :math:`\sqrt 2`, so
    :math:`\sigma = \sqrt{2/n_\text{in}}`. ``mode`` picks the fan: ``"fan_in"`` or ``"fan_out"``."""
    std = _he_gain(a, nonlinearity) / math.sqrt(_fan(weight, mode))
    return weight.normal_(0.0, std, generator=generator)


@_scheme
def lecun_uniform(weight, generator=None):
    r"""LeCun et al. (1998): :math:`w \sim \mathcal{U}(-b, b)`, :math:`b = \sqrt{3/n_\text{in}}`,
    so :math:`\mathrm{Var}(w) = 1/n_\text{in}` (``kaiming_uniform_(w, nonlinearity="linear")``)."""
    bound = math.sqrt(3.0 / fans(weight)[0])
    return weight.uniform_(-bound, bound, generator=generator)


@_scheme
def lecun_normal(weight, generator=None):
    r"""LeCun et al. (1998): :math:`w \sim \mathcal{N}(0, 1/n_\text{in})`
    (``kaiming_normal_(w, nonlinearity="linear")``)."""
    return weight.normal_(0.0, 1.0 / math.sqrt(fans(weight)[0]), generator=generator)


@_scheme
def orthogonal(weight, gain=1.0, generator=None):
    r"""Saxe et al. (2014): the weight (flattened to a matrix) is ``gain`` times a random
    orthogonal matrix (the Q of a QR decomposition of a Gaussian matrix), so it preserves the
    norm of every vector it maps (or of its transpose when it is wide)."""
    return nn.init.orthogonal_(weight, gain=gain, generator=generator)


@_scheme
def pytorch_default(weight, generator=None):
    r"""What ``nn.Linear`` and ``nn.Conv*`` do on construction:
    ``kaiming_uniform_(w, a=sqrt(5))``, which works out to
    :math:`w \sim \mathcal{U}(-1/\sqrt{n_\text{in}}, 1/\sqrt{n_\text{in}})`,
    a variance of :math:`1/(3\,n_\text{in})`."""
    bound = 1.0 / math.sqrt(fans(weight)[0])
    return weight.uniform_(-bound, bound, generator=generator)


# ---------------------------------------------------------------------------------------------
# the registry

SCHEMES = {f.__name__: f for f in (
    zeros, constant, normal, uniform, xavier_uniform, xavier_normal, kaiming_uniform,
    kaiming_normal, lecun_uniform, lecun_normal, orthogonal, pytorch_default)}
"""Every scheme by name, in the order the course meets them (and legends list them)."""

ALIASES = {"zero": "zeros", "glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal",
           "he_uniform": "kaiming_uniform", "he_normal": "kaiming_normal"}

_FAN_BASED = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
              "lecun_uniform", "lecun_normal", "orthogonal", "pytorch_default"}


def _check_params(name: str, params: dict) -> None:
    """Validate the parameters of scheme ``name`` once, where the user's values enter."""

    def require(ok, param, allowed):
        if not ok:
            raise ValueError(f"The {param!r} parameter of the {name!r} scheme must be {allowed}. "
                             f"Got {params[param]!r} instead.")

    if name.startswith("kaiming"):
        require(_is_slope(params["a"]), "a", SLOPE)
        require(params["mode"] in MODES, "mode", "'fan_in' or 'fan_out'")
        require(params["nonlinearity"] in GAINS, "nonlinearity", f"one of {sorted(GAINS)}")
    for param in ("value", "mean", "a", "b", "std", "gain"):
        if param in params:
            require(_is_number(params[param]), param, "a finite float")
    if "std" in params:
        require(params["std"] >= 0, "std", "a float in the range [0, inf)")
    if "gain" in params:
        require(params["gain"] > 0, "gain", "a float in the range (0, inf)")
    if name == "uniform" and params["a"] > params["b"]:
        raise ValueError(f"The 'uniform' scheme needs a <= b. Got a={params['a']!r} > b={params['b']!r}.")


@dataclass(frozen=True)
class Scheme:
    """A named scheme with its parameters, validated. Build one with :func:`make_scheme`."""

    name: str
    items: tuple = ()

    @property
    def params(self) -> dict:
        """The parameters, every one filled in (defaults included)."""
        return dict(self.items)

    def __call__(self, weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Fill ``weight`` in place and return it, drawing from ``generator`` if one is given
        (else from PyTorch's global generator)."""
        fill = SCHEMES[self.name]
        if generator is None or self.name in ("zeros", "constant"):   # nothing to draw
            return fill(weight, **self.params)
        return fill(weight, **self.params, generator=generator)

    @property
    def fan_based(self) -> bool:
        """True if the scheme reads the layer's fans (and so cannot fill a 1-D bias)."""
        return self.name in _FAN_BASED

    @property
    def label(self) -> str:
        r"""A short name for legends, e.g. ``N(μ=5, σ=3)``, ``He normal`` or ``He normal (fan_out)``.

        Parameters at their defaults are left out. A He scheme names its slope and nonlinearity
        only where its gain is not ReLU's :math:`\sqrt 2`: ``He normal (0.2, leaky_relu)``,
        ``He uniform (tanh)``; with ``relu``, or ``leaky_relu`` and :math:`a = 0`, it is ``He normal``.
        """
        p = {k: f"{v:g}" if isinstance(v, float) else v for k, v in self.params.items()}
        if self.name == "constant":
            return f"constant {p['value']}"
        if self.name == "normal":
            return f"N(μ={p['mean']}, σ={p['std']})"
        if self.name == "uniform":
            return f"U({p['a']}, {p['b']})"
        family = {"xavier": "Xavier", "kaiming": "He", "lecun": "LeCun"}
        head, _, kind = self.name.partition("_")
        if head not in family:
            return {"pytorch_default": "PyTorch default"}.get(self.name, self.name)
        shown = dict(self.params)
        if "nonlinearity" in shown:   # He: name the gain only where it is not ReLU's sqrt(2)
            if not (shown["nonlinearity"] == "leaky_relu" and shown["a"] != 0):
                del shown["a"]        # the slope a is read only by leaky_relu
                if shown["nonlinearity"] in ("relu", "leaky_relu"):
                    del shown["nonlinearity"]
        defaults = {("gain", 1.0), ("mode", "fan_in")}
        extras = [p[k] for k, v in shown.items() if (k, v) not in defaults]
        return f"{family[head]} {kind}" + (f" ({', '.join(map(str, extras))})" if extras else "")

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def make_scheme(name: str, **params) -> Scheme:
    """The scheme ``name`` with ``params`` (others at their defaults), validated.

    >>> print(make_scheme("normal", mean=5, std=3))
    normal(mean=5.0, std=3.0)
    """
    if isinstance(name, Scheme):
        return name
    canonical = ALIASES.get(name, name)
    if canonical not in SCHEMES:
        raise ValueError(f"Unknown initialization scheme {name!r}. Valid schemes: "
                         f"{', '.join(SCHEMES)} (aliases: {', '.join(ALIASES)}).")
    if "generator" in params:
        raise ValueError(f"A scheme is built without its generator; give it when drawing: "
                         f"make_scheme({canonical!r})(weight, generator=g).")
    signature = inspect.signature(SCHEMES[canonical])
    allowed = [param for param in list(signature.parameters)[1:] if param != "generator"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"The {canonical!r} scheme has no parameter {unknown[0]!r}. "
                         f"Its parameters: {', '.join(allowed) or 'none'}.")
    full = {}
    for param in allowed:
        value = params.get(param, signature.parameters[param].default)
        full[param] = float(value) if _is_number(value) else value
    _check_params(canonical, full)
    return Scheme(canonical, tuple(full.items()))


BIAS_POLICIES = ("zeros", "same", "keep")


def init_model(model: nn.Module, scheme, *, bias: str = "zeros", seed: int | None = None,
               **scheme_params) -> nn.Module:
    """Initialize every layer of ``model`` that has a weight matrix (``Linear``, ``Conv*``).

    ``scheme`` is a scheme name, one of :data:`SCHEMES` (zeros, constant, normal, uniform,
    xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal, lecun_uniform, lecun_normal,
    orthogonal, pytorch_default) or an alias (zero, glorot_*, he_*), drawn with its default
    parameters; or a :class:`Scheme` built with :func:`make_scheme` to give it parameters:
    ``init_model(model, make_scheme("normal", std=0.1))``. ``bias`` says what happens to biases:
    ``"zeros"`` sets them to 0 (the usual choice, and what the article does for He and
    Xavier), ``"same"`` draws them from the same scheme (the article's zero, high and low
    runs; only for schemes that need no fans), ``"keep"`` leaves them as they are.
    With ``seed``, :func:`~lessonlib.seed.set_seed` is called first, so the draws are the same
    as ``set_seed(seed)`` followed by the article's loop over ``model.parameters()``.
    Layers without a weight matrix (normalization layers) are left alone. Returns ``model``.
    Any other keyword (``std=0.1``) is a TypeError that shows the ``make_scheme`` call to write.
    """
    from .seed import set_seed

    if scheme_params:
        given = ", ".join(f"{k}={v!r}" for k, v in scheme_params.items())
        name = scheme.name if isinstance(scheme, Scheme) else scheme
        raise TypeError(f"init_model takes model, scheme, bias and seed, not {given}. Give a scheme its "
                        f"parameters with make_scheme: init_model(model, make_scheme({name!r}, {given})).")
    scheme = make_scheme(scheme)
    if bias not in BIAS_POLICIES:
        raise ValueError(f"The 'bias' parameter must be one of {BIAS_POLICIES}. Got {bias!r} instead.")
    if bias == "same" and scheme.fan_based:
        raise ValueError(f"bias='same' cannot be used with {scheme.name!r}: it needs the fans of a "
                         f"weight matrix and a bias has none. Use bias='zeros' or 'keep'.")
    layers = [m for m in model.modules()
              if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no layer with a weight matrix to initialize.")
    if seed is not None:
        set_seed(seed)
    with torch.no_grad():
        for layer in layers:
            scheme(layer.weight)
            if getattr(layer, "bias", None) is not None:
                if bias == "zeros":
                    layer.bias.zero_()
                elif bias == "same":
                    scheme(layer.bias)
    return model

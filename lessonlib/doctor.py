r"""The init doctor: one call that says how a network is initialized and what to fix.

``report = diagnose(model, inputs, targets)`` runs one forward and one backward pass and returns a
:class:`Report`: one row per layer with parameters, in forward order, and a list of findings.
For a weight of shape ``(out, in, *kernel)`` with fans :math:`n_\text{in}, n_\text{out}`
(:func:`~lessonlib.schemes.fans`) and :math:`g` the gain of the activation that follows the
layer (:func:`~lessonlib.schemes.gain`), the weights' std is set against each scheme's:

.. math:: \sigma_\text{LeCun} = \frac{1}{\sqrt{n_\text{in}}}, \qquad
          \sigma_\text{Xavier} = g\sqrt{\frac{2}{n_\text{in} + n_\text{out}}}, \qquad
          \sigma_\text{He} = \sqrt{\frac{2}{n_\text{in}}},

PyTorch's default :math:`\mathcal{U}(\pm 1/\sqrt{n_\text{in}})`, of std :math:`1/\sqrt{3\,n_\text{in}}`
(:math:`1/\sqrt{3\,\text{hidden}}` in recurrent layers, :math:`\mathcal{N}(0, 1)` in embeddings),
and GPT-2's :math:`\mathcal{N}(0, 0.02^2)`. A std within :data:`SCHEME_TOLERANCE` of one matches it.

The backward signal is the gradient reaching each layer's output. With ``targets`` it is the
gradient of the cross-entropy :math:`L`; without, that of :math:`\langle y, u \rangle`, a fixed
unit-variance random projection of the output :math:`y` (:math:`u \sim \mathcal{N}(0, 1)` from a
local generator: the global one is untouched). A classifier with :math:`C` classes whose output
says nothing yet starts at :math:`L = \ln C`. The output bias :math:`b_c = \ln p_c`, with the class
priors :math:`p_c = n_c / n` of the targets, states the priors (up to a constant, which the softmax
ignores) and lowers the initial loss to their entropy :math:`H(p) = -\sum_c p_c \ln p_c`.

The model is left exactly as it was: parameters, buffers (BatchNorm's running statistics),
``.grad``, ``training`` flags, hooks and the global RNG state are restored, also when the forward
raises. The pass runs in the model's current mode (a new model is in training mode, as in its
first step; call ``model.eval()`` first to diagnose inference) and runs the model's own hooks.
"""

import itertools
import math
import textwrap
from dataclasses import dataclass
from html import escape
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .models import EXPECTS
from .probes import dead_fraction, saturated_fraction
from .schemes import fans, gain

SCHEME_TOLERANCE = 0.15
r"""A std within ±15% of a scheme's matches it (plus 3 standard errors, :math:`3/\sqrt{2n}` for
:math:`n` weights); one beyond a factor 2 of every fan-based scheme is a warning."""
DEAD, SATURATED = (0.5, 0.9), (0.25, 0.5)
"""Shares of dead ReLU units, of saturated tanh/sigmoid outputs, that make a warning, an error.
A deep He-initialized ReLU stack already has 10-30% of its units silent on a batch of 16-256
examples (their representations align with depth), hence the high bar for dead units."""
TREND_FACTOR, TREND_RUN, TREND_OVERALL = 2.0, 3, 100.0
"""A std changing more than 2x per layer over 3 consecutive steps, or 100x from the first weight
layer to the last, vanishes or explodes: an error beyond 100x, else a warning."""
LOSS_MARGIN = (2.0, 10.0)
r"""Initial losses above :math:`\ln C` plus these make a warning, an error."""
PRIOR_GAP = (0.1, 0.25)
r"""Targets are imbalanced when :math:`\ln C - H(p)`, the nats a log-prior bias saves, exceeds 0.1
beyond the :math:`(C-1)/2n` that sampling :math:`n` labels adds; a bias away from the log priors
is then info, and a warning beyond 0.25 nats."""

KINDS = {nn.Linear: "weight", nn.Conv1d: "weight", nn.Conv2d: "weight", nn.Conv3d: "weight",
         nn.Embedding: "embedding", nn.RNNBase: "recurrent", nn.MultiheadAttention: "attention",
         nn.modules.batchnorm._BatchNorm: "norm", nn.LayerNorm: "norm", nn.GroupNorm: "norm"}
ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.GELU: "gelu",
               nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.SiLU: "silu", nn.Identity: "linear"}
FUNCTIONAL = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu,
              "leaky_relu": F.leaky_relu}
"""Activations recognised from values when no activation module is called (``F.relu``)."""
FIXES = {
    "relu": "He: nn.init.kaiming_normal_(w, nonlinearity='relu'), biases 0; "
            "init_model(model, 'kaiming_normal')",
    "leaky_relu": "He with the leaky gain: nn.init.kaiming_normal_(w, a=slope, nonlinearity='leaky_relu')",
    "tanh": "Xavier with gain 5/3: nn.init.xavier_normal_(w, gain=5/3); "
            "init_model(model, make_scheme('xavier_normal', gain=5/3))",
    "sigmoid": "Xavier (nn.init.xavier_normal_(w)) keeps the scale, but the sigmoid's slope is at most 1/4: "
               "in a deep stack use tanh or ReLU in the hidden layers, or add normalization layers",
    None: "Xavier: nn.init.xavier_normal_(w); init_model(model, 'xavier_normal')",
}
COLUMNS = {"index": "#", "name": "layer", "type": "type", "activation": "act", "weight_std": "w std",
           "std_lecun": "LeCun", "std_xavier": "Xavier", "std_he": "He", "scheme": "matches",
           "out_mean": "out mean", "out_std": "out std", "out_ratio": "x prev", "grad_std": "grad std",
           "grad_ratio": "x prev", "saturated": "sat", "dead": "dead", "copies": "copies"}
ROW_KEYS = [*COLUMNS, "kind", "status", "fan_in", "fan_out", "weights", "gain_mean", "bias_mean",
            "forget_bias", "hh_spread", "notes"]
SHARES = ("saturated", "dead", "copies")
WRAP = 100
"""Width at which the printed report wraps its findings."""


@dataclass(frozen=True)
class Finding:
    """``severity`` is ``"error"``, ``"warning"`` or ``"info"``; ``layer`` the first layer concerned,
    ``layers`` all of them; ``kind`` a stable code (``"dead"``, ``"backward_vanishing"``, ...)."""

    severity: str
    layer: str
    message: str
    fix: str
    kind: str = ""
    layers: tuple = ()


def _fmt(x, key="") -> str:
    if x is None or isinstance(x, str):
        return x or "-"
    return f"{100 * x:.0f}%" if key in SHARES else f"{x:.3g}"


@dataclass(repr=False)
class Report:
    """What :func:`diagnose` found.

    ``rows``: one dict per layer in forward order, with the keys :data:`ROW_KEYS`: ``index``,
    ``name`` (as in ``named_modules()``, ``""`` for the model itself), ``type``, ``kind``
    (``weight``, ``embedding``, ``recurrent``, ``attention``, ``norm``, ``other``), ``status``
    (``ok``; ``not examined``: a type the doctor cannot judge; ``not called``), ``activation``
    (what follows the layer, or ``None``), ``fan_in``, ``fan_out``, ``weight_std``, ``std_lecun``,
    ``std_xavier`` (with the gain), ``std_he``, ``scheme`` (the match: ``lecun``, ``xavier``,
    ``he``, ``xavier(tanh)``, ``he(tanh)``, ``default``, ``gpt2``, several joined by ``/`` when
    they coincide, or ``zeros``, ``constant``, ``non-finite``, ``none``), ``weights`` (per weight
    matrix: ``param, shape, std, scheme, closest, ratio``), ``out_mean``, ``out_std``, ``grad_std``
    (of the gradient reaching the output), ``out_ratio``, ``grad_ratio`` (to the previous row, in
    forward order: a gradient that vanishes on its way back has ``grad_ratio`` above 1),
    ``saturated``, ``dead`` (shares of the following activation), ``copies`` (share of units
    that copy another), ``gain_mean``, ``bias_mean`` (norm layers), ``forget_bias`` (LSTM),
    ``hh_spread`` (largest max/min singular value of a recurrent gate block; 1 when orthogonal)
    and ``notes``. Missing values are ``None``; every std is the sample std (Bessel's correction).

    ``findings``: :class:`Finding` s, errors first. ``classifier`` (``None`` without targets):
    ``classes``, ``examples``, ``loss``, ``ln_classes``, ``priors``, ``entropy``, ``logit_std``,
    ``output_layer``, ``bias_gap`` (largest gap between the centred bias and log priors) and
    ``bias_matches_log_priors`` (gap at most 0.25).
    """

    rows: list
    findings: list
    classifier: dict | None = None

    @property
    def ok(self) -> bool:
        """True when no finding is an error or a warning."""
        return not any(f.severity in ("error", "warning") for f in self.findings)

    def findings_for(self, layer: str) -> list:
        """The findings about ``layer`` (a ``name`` of :attr:`rows`)."""
        return [f for f in self.findings if layer in f.layers]

    def _table(self) -> list:
        cell = lambda r, k: str(r[k]) if k == "index" else r[k] or "(model)" if k == "name" else _fmt(r[k], k)
        return [list(COLUMNS.values())] + [[cell(r, k) for k in COLUMNS] for r in self.rows]

    def __str__(self) -> str:
        table = self._table()
        widths = [max(map(len, column)) for column in zip(*table)]
        align = lambda i, c, w: c.ljust(w) if i == 1 else c.rjust(w)      # layer names to the left
        lines = ["  ".join(align(i, c, w) for i, (c, w) in enumerate(zip(cells, widths))) for cells in table]
        lines.insert(1, "-" * len(lines[0]))
        lines += [f"  {r['name'] or '(model)'}: {note}" for r in self.rows for note in r["notes"]]
        if c := self.classifier:
            lines.append(f"loss at init {c['loss']:.3g}, ln C = {c['ln_classes']:.3g} "
                         f"({c['classes']} classes)")
        lines.append(f"{len(self.findings)} findings" + ":" * bool(self.findings))
        lines += [textwrap.fill(f"[{f.severity}] {f.layer or '(model)'}: {f.message}", WRAP,
                                subsequent_indent="    ") + "\n" +
                  textwrap.fill(f"fix: {f.fix}", WRAP, initial_indent="    ", subsequent_indent="    ")
                  for f in self.findings]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head, *body = self._table()
        row = lambda cells, tag: "<tr>" + "".join(f"<{tag}>{escape(c)}</{tag}>" for c in cells) + "</tr>"
        items = "".join(f"<li><b>{f.severity}</b> {escape(f.layer or '(model)')}: {escape(f.message)}"
                        f"<br><i>fix:</i> {escape(f.fix)}</li>" for f in self.findings)
        return (f"<table>{row(head, 'th')}{''.join(row(b, 'td') for b in body)}</table>"
                f"<p>{len(self.findings)} findings</p><ul>{items}</ul>")

    def plot(self, ax=None) -> Figure:
        """Forward and backward std per layer on a log axis; layers with an error or warning marked.

        Draws into ``ax`` if given, else into a new pyplot figure (shown by ``plt.show()`` or at the
        end of a notebook cell); returns the figure."""
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
        rows = [r for r in self.rows if r["status"] == "ok"]
        std = {k: np.array([r[k] or np.nan for r in rows], float) for k in ("out_std", "grad_std")}
        ax.plot(std["out_std"], "o-", ms=4, label="forward: std of the layer's output")
        ax.plot(std["grad_std"], "s-", ms=4, label="backward: std of the gradient at its output")
        flagged = {name for f in self.findings if f.severity != "info" for name in f.layers}
        marked = [i for i, r in enumerate(rows) if r["name"] in flagged]
        ax.plot(marked * 2, [*std["out_std"][marked], *std["grad_std"][marked]], "o", ms=11, mfc="none",
                mec="#B2182B", mew=1.5, ls="none", label="flagged layer (error or warning)")
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)), [r["name"] or "(model)" for r in rows], rotation=90 * (len(rows) > 8))
        ax.set(xlabel="layer (forward order)", ylabel="std")
        problems = dict.fromkeys(f.kind.replace("_", " ") for f in self.findings if f.severity != "info")
        ax.set_title("Init doctor: " + (", ".join(problems) if problems else "no problem found"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------------------------------------
# leaving the model as it was

HOOK_DICTS = [name for name in vars(nn.Module()) if "hooks" in name]


class _Untouched:
    """Keep every parameter and buffer (object and values), grad, training flag and hook dict of
    a model, and the global RNG state; put them all back on exit."""

    def __init__(self, model):
        keep = lambda d: {k: (t, None if t is None else t.detach().clone()) for k, t in d.items()}
        hooks = lambda m: {h: dict(getattr(m, h)) for h in HOOK_DICTS if hasattr(m, h)}
        self.modules = [(m, keep(m._parameters), keep(m._buffers), m.training, hooks(m))
                        for m in model.modules()]
        self.grads = [(p, p.grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()]
        self.rng = torch.get_rng_state()

    def __enter__(self):
        return self

    @torch.no_grad()
    def __exit__(self, *exc):
        for m, params, buffers, training, hooks in self.modules:
            for store, saved in ((m._parameters, params), (m._buffers, buffers)):
                for k, (t, value) in saved.items():
                    store[k] = t
                    if t is not None:
                        t.copy_(value)
            m.training = training
            for h, content in hooks.items():
                getattr(m, h).clear()
                getattr(m, h).update(content)
        for p, g, value in self.grads:
            p.grad = g
            if g is not None:
                g.copy_(value)
        torch.set_rng_state(self.rng)
        return False


# ---------------------------------------------------------------------------------------------
# one pass, recorded


def _first_tensor(x):
    """``x`` if a tensor, else the first tensor of a (nested) tuple: an LSTM's ``out``."""
    if isinstance(x, (tuple, list)):
        return next((t for t in map(_first_tensor, x) if t is not None), None)
    return x if isinstance(x, torch.Tensor) else None


def _layers(model) -> list:
    """``(name, module, kind)`` of every module with parameters of its own; a MultiheadAttention is
    one layer, with its ``out_proj`` (whose weight it uses without calling it)."""
    out, inside = [], []
    for name, m in model.named_modules():
        if any(name.startswith(prefix) for prefix in inside):
            continue
        if isinstance(m, nn.MultiheadAttention):
            inside.append(name + "." if name else "")
        if any(p is not None for p in m._parameters.values()) or isinstance(m, nn.MultiheadAttention):
            out.append((name, m, next((k for t, k in KINDS.items() if isinstance(m, t)), "other")))
    return out


def _describe_misfit(inputs, entered, active, err) -> str:
    shapes = lambda ts: [tuple(t.shape) for t in ts if isinstance(t, torch.Tensor)]
    expects = lambda m: next((f(m) for t, f in EXPECTS.items() if isinstance(m, t)), "another input")
    name, m, _ = entered[0]
    text = f"inputs of shape {shapes(inputs)}; the first layer {name or '(model)'!r} ({type(m).__name__}) " \
           f"expects {expects(m)}"
    if active and active[-1][0] != name:
        name, m, args = active[-1]
        text += f"; layer {name!r} ({type(m).__name__}) got {shapes(args)} and expects {expects(m)}"
    return f"The batch does not fit the model: {text}. PyTorch says: {err}"


class _Call(NamedTuple):
    """A layer's first call: its input and output tensors, a copy of the output's values (before any
    in-place activation changes them), and when it ended (a counter shared with activation calls)."""

    input: torch.Tensor | None
    output: torch.Tensor | None
    values: torch.Tensor | None
    time: int


def _record(model, layers, inputs):
    """Run ``model(*inputs)`` with hooks. Returns the output; ``name -> _Call`` in forward order;
    ``(activation, slope, copy of its input, time)`` for every call of an activation module."""
    seen, acts, entered, active, handles, clock = {}, [], [], [], [], itertools.count()

    def before(name, m, args):      # ``entered``: every layer call; ``active``: those not yet ended
        entered.append((name, m, args))
        active.append((name, m, args))

    def after(name, args, output):
        active.pop()
        out = _first_tensor(output)
        if name not in seen:
            values = None if out is None else out.detach().clone()
            seen[name] = _Call(_first_tensor(args), out, values, next(clock))

    def activation(act, m, args):
        if (z := _first_tensor(args)) is not None:
            acts.append((act, getattr(m, "negative_slope", 0.01), z.detach().clone(), next(clock)))

    for name, m, _ in layers:
        handles.append(m.register_forward_pre_hook(lambda m, args, name=name: before(name, m, args)))
        handles.append(m.register_forward_hook(lambda m, args, out, name=name: after(name, args, out)))
    for m in model.modules():
        if act := ACTIVATIONS.get(type(m)):
            handles.append(m.register_forward_pre_hook(lambda m, args, act=act: activation(act, m, args)))
    try:
        return model(*inputs), seen, acts
    except (RuntimeError, IndexError) as err:
        entered = entered or [(layers[0][0], layers[0][1], ())]
        raise ValueError(_describe_misfit(inputs, entered, active, err)) from err
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------------------------------
# measurements


def _copy_share(units: torch.Tensor):
    """Share of the rows of ``units`` (one per unit) equal to another row up to float rounding
    (1e-5 of the largest entry). Copies sort next to each other along a random projection."""
    units = units.detach().double().flatten(1)[:, :1024]
    if len(units) < 2 or not torch.isfinite(units).all():
        return None
    key = units @ torch.randn(units.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.double)
    s = units[key.argsort()]
    same = (s[1:] - s[:-1]).abs().amax(1) <= 1e-5 * units.abs().max()
    copy = torch.zeros(len(units), dtype=torch.bool)
    copy[:-1] |= same
    copy[1:] |= same
    return float(copy.double().mean())


def _gain(act, slope=0.01) -> float:
    """The gain of ``act``: GELU, ELU and SiLU count as ReLU; sigmoid, none or unknown as linear."""
    act = "relu" if act in ("gelu", "elu", "silu") else act
    return gain(act, slope) if act in ("relu", "tanh", "leaky_relu") else 1.0


def _candidates(w, kind, act, slope, module) -> dict:
    """The std each scheme would give ``w``, by name; Xavier and He with the gain of ``act`` too."""
    fan_in, fan_out, g = *fans(w), _gain(act, slope)
    c = {"lecun": 1 / math.sqrt(fan_in), "xavier": math.sqrt(2 / (fan_in + fan_out)),
         "he": math.sqrt(2 / fan_in), "default": 1 / math.sqrt(3 * fan_in), "gpt2": 0.02}
    if min(abs(g - 1), abs(g - math.sqrt(2))) > 0.01:
        c |= {f"xavier({act})": g * c["xavier"], f"he({act})": g / math.sqrt(fan_in)}
    if kind == "embedding":
        c["default"] = 1.0
    if kind == "recurrent":
        c["default"] = 1 / math.sqrt(3 * module.hidden_size)
    return c


def _match(w, candidates) -> dict:
    """``std``; ``scheme``, the one within tolerance (else ``zeros``, ``constant``, ``none``); and the
    ``closest`` fan-based scheme with the ``ratio`` of the std to its std."""
    w = w.detach().double()
    std = float(w.std()) if w.numel() > 1 else 0.0
    distance = lambda k: abs(math.log(std / candidates[k])) if std > 0 else 0.0
    closest = min((k for k in candidates if k != "gpt2"), key=distance)
    out = dict(std=std, closest=closest, ratio=std / candidates[closest])
    if not torch.isfinite(w).all():
        return out | dict(scheme="non-finite")
    if (w == w.flatten()[0]).all():
        return out | dict(scheme="zeros" if w.flatten()[0] == 0 else "constant")
    best = min(candidates, key=distance)
    if abs(std / candidates[best] - 1) > SCHEME_TOLERANCE + 3 / math.sqrt(2 * w.numel()):
        return out | dict(scheme="none")
    same = [k for k in candidates if abs(math.log(candidates[k] / candidates[best])) < 0.01]
    return out | dict(scheme="/".join(same))


def _weights(m, kind) -> list:
    """``(name, weight)`` of a layer's weight matrices: a MultiheadAttention's in-projections and
    ``out_proj``, every ``weight_ih``/``weight_hh`` of a recurrent layer."""
    if kind == "attention":
        own = [(n, p) for n, p in m.named_parameters(recurse=False) if "proj_weight" in n]
        return own + [("out_proj.weight", m.out_proj.weight)]
    if kind == "recurrent":
        return [(n, p) for n, p in m.named_parameters(recurse=False) if n.startswith("weight")]
    return [("weight", m.weight)] if kind in ("weight", "embedding") else []


def _extras(m, kind) -> dict:
    """A norm layer's gain and bias means; an LSTM's forget-gate bias (``b_ih + b_hh`` of the gate,
    the second quarter); the spread of singular values of the gate blocks of ``weight_hh_l0``."""
    out = {}
    if kind == "norm" and getattr(m, "weight", None) is not None:
        bias = float(m.bias.mean()) if m.bias is not None else 0.0
        out |= dict(gain_mean=float(m.weight.mean()), bias_mean=bias)
    if isinstance(m, nn.LSTM) and m.bias:
        h = m.hidden_size
        out["forget_bias"] = float((m.bias_ih_l0[h:2 * h] + m.bias_hh_l0[h:2 * h]).mean())
    if kind == "recurrent":
        blocks = m.weight_hh_l0.double().chunk(m.weight_hh_l0.shape[0] // m.hidden_size)
        spreads = [s[0] / s[-1] if s[-1] > 0 else math.inf for s in map(torch.linalg.svdvals, blocks)]
        out["hh_spread"] = float(max(spreads))
    return out


def _link(order, seen, acts) -> dict:
    """``name -> (activation, slope, pre-activation values or None)``: the activation module called
    next after the layer; else, for a layer feeding a norm layer, the norm's; else a function
    (``F.relu``) that turns the layer's output into the next layer's input."""
    linked = {}
    for act, slope, pre, t in acts:
        before = [n for n in order if seen[n].time < t]
        if before and before[-1] not in linked:
            linked[before[-1]] = (act, slope, pre)
    for a, b in zip(order, order[1:]):
        z, nxt = seen[a].values, seen[b].input
        if a in linked or z is None or nxt is None:
            continue
        if nxt is seen[a].output and b in linked:
            linked[a] = (*linked[b][:2], None)
        elif nxt.shape == z.shape and nxt.is_floating_point():
            fits = (act for act, f in FUNCTIONAL.items() if torch.allclose(f(z), nxt.detach(), 1e-4, 1e-6))
            if act := next(fits, None):
                linked[a] = (act, 0.01, z)
    return linked


def _row(index, name, m, kind, call, link, grad) -> dict:
    """One row of the report (see :class:`Report`)."""
    act, slope, pre = link or (None, 0.01, None)
    status = "not called" if call is None else "not examined" if kind == "other" else "ok"
    row = dict.fromkeys(ROW_KEYS) | dict(index=index, name=name, type=type(m).__name__, kind=kind,
                                         activation=act, status=status) | _extras(m, kind)
    mats = _weights(m, kind)
    row["weights"] = [dict(param=n, shape=tuple(w.shape)) | _match(w, _candidates(w, kind, act, slope, m))
                      for n, w in mats]
    if mats:
        c = _candidates(mats[0][1], kind, act, slope, m)
        row |= dict(zip(("fan_in", "fan_out"), fans(mats[0][1]))) | dict(
            weight_std=row["weights"][0]["std"], scheme=row["weights"][0]["scheme"], std_lecun=c["lecun"],
            std_xavier=_gain(act, slope) * c["xavier"], std_he=c["he"])
    notes = [f"{e['param']} std {e['std']:.3g} ({e['scheme']})" for e in row["weights"][1:]]
    if row["gain_mean"] is not None:
        notes.append(f"gain mean {row['gain_mean']:.3g}, bias mean {row['bias_mean']:.3g}")
    if row["forget_bias"] is not None:
        notes.append(f"forget-gate bias mean {row['forget_bias']:.3g}")
    if row["hh_spread"] is not None:
        notes.append(f"weight_hh gate blocks: singular values max/min {row['hh_spread']:.3g} (orthogonal: 1)")
    if kind == "embedding":
        notes.append("PyTorch's default for nn.Embedding is N(0, 1)")
    if kind == "other":
        notes.append("own parameters " + ", ".join(n for n, p in m._parameters.items() if p is not None))
    row["notes"] = ["; ".join(notes)] if notes else []
    if call is None or call.values is None:
        return row
    out = call.values.double()
    row |= dict(out_mean=float(out.mean()), out_std=float(out.std()) if out.numel() > 1 else 0.0)
    if grad is not None:
        row["grad_std"] = float(grad.double().std()) if grad.numel() > 1 else 0.0
    if pre is not None and act in ("tanh", "sigmoid"):
        row["saturated"] = saturated_fraction(pre, act)
    if pre is not None and act == "relu":
        row["dead"] = dead_fraction(pre.reshape(len(pre), -1))
    if mats:   # units: rows of the weight (columns for an embedding), channels or features of the output
        units = out.movedim(1, -1) if isinstance(m, nn.modules.conv._ConvNd) else out
        shares = [_copy_share(mats[0][1].T if kind == "embedding" else mats[0][1]),
                  _copy_share(units.reshape(-1, units.shape[-1]).T) if out.dim() > 1 else None]
        row["copies"] = max((s for s in shares if s is not None), default=None)
    return row


# ---------------------------------------------------------------------------------------------
# findings


def _span(rows) -> str:
    names = [r["name"] or "(model)" for r in rows]
    return names[0] if len(names) == 1 else f"{len(names)} layers ({names[0]} ... {names[-1]})"


def _between(values) -> str:
    """"0.01" or, when the values differ by more than 5%, "0.0071 to 0.02"."""
    low, high = min(values := list(values)), max(values)
    return f"{low:.2g}" + (f" to {high:.2g}" if high > 1.05 * low else "")


def _described(rows) -> str:
    """"; these are relu layers with weight std 0.01 (matches: none)"."""
    stds = [r["weight_std"] for r in rows if r["weight_std"] is not None]
    if not stds:
        return ""
    acts = sorted({r["activation"] for r in rows if r["activation"]}) or ["linear"]
    schemes = sorted({r["scheme"] for r in rows if r["scheme"]})
    return (f"; these are {'/'.join(acts)} layers with weight std {_between(stds)} "
            f"(matches: {', '.join(schemes)})")


def _add(findings, severity, rows, kind, message, fix=None):
    act = rows[0]["activation"]
    fix = fix or FIXES.get("relu" if act in ("gelu", "elu", "silu") else act, FIXES[None])
    findings.append(Finding(severity, rows[0]["name"], message, fix, kind, tuple(r["name"] for r in rows)))


def _behind_zero_gain(rows) -> set:
    """Weight layers whose gradient is 0 because a normalization layer after them has a zero gain
    (a residual branch that starts off, as in Goyal et al. 2017): the first step moves the gain."""
    gated, pending = set(), []
    for r in rows:
        if r["kind"] == "norm" and r["gain_mean"] == 0:
            gated.update(pending)
        elif r["weights"] and r["kind"] != "norm":
            pending = pending + [r["name"]] if r["grad_std"] == 0 else []
    return gated


def _trend(findings, wrows, key, gated=frozenset()):
    """Flag a std that vanishes or explodes along the weight layers (see :data:`TREND_FACTOR`)."""
    zeros = lambda r: r is not None and any(w["scheme"] == "zeros" for w in r["weights"])
    blocked = {r["name"]: zeros(r if key == "out_std" else nxt) or (key == "grad_std" and r["name"] in gated)
               for r, nxt in zip(wrows, wrows[1:] + [None])}
    wrows = wrows if key == "out_std" else wrows[:-1]   # the output layer's gradient is the loss's own
    values = [r[key] for r in wrows]
    if len(values) < 3 or any(v is None for v in values):
        return
    if 0 in values:   # zero weights explain it (they have their own finding), or else it is an error
        if zero := [r for r in wrows if r[key] == 0 and not blocked[r["name"]]]:
            what = "forward signal" if key == "out_std" else "gradient reaching the output"
            _add(findings, "error", zero, "no_signal" if key == "out_std" else "no_gradient",
                 f"the {what} is exactly 0 at {_span(zero)}: nothing is learned there{_described(zero)}")
        return
    ratios = np.array(values[1:]) / np.array(values[:-1])
    side = np.where(ratios > TREND_FACTOR, 1, np.where(ratios < 1 / TREND_FACTOR, -1, 0))
    runs, start = [], 0                    # (length, first, last) of each run of steps on one side
    for i in range(1, len(side) + 1):
        if i == len(side) or side[i] != side[start]:
            runs += [(i - start, start, i)] * bool(side[start])
            start = i
    run, a, b = max(runs, default=(0, 0, 0))
    a, b = (a, b) if run >= TREND_RUN else (0, len(values) - 1)
    total = values[b] / values[a]
    within = 1 / TREND_OVERALL <= total <= TREND_OVERALL
    if run < TREND_RUN and within:
        return
    factor, rows = total ** (1 / (b - a)), wrows[a:b + 1]
    if key == "out_std":
        kind = "forward_" + ("vanishing" if factor < 1 else "exploding")
        message = (f"forward std {'shrinks' if factor < 1 else 'grows'} {factor:.2g}x per layer over "
                   f"{_span(rows)} ({total:.2g}x in all)")
    else:                                  # the gradient flows from the last layer to the first
        kind = "backward_" + ("vanishing" if factor > 1 else "exploding")
        message = (f"gradient std {'shrinks' if factor > 1 else 'grows'} {1 / factor:.2g}x per layer on its "
                   f"way back over {_span(rows)} ({1 / total:.2g}x in all)")
    _add(findings, "warning" if within else "error", rows, kind, message + _described(rows))


def _unit_findings(findings, rows):
    """Symmetric weights, copied units, dead and saturated units, weights far from every scheme."""
    wrows = [r for r in rows if r["weights"] and r["status"] == "ok"]
    head, reaches_bottom, groups = wrows[-1]["name"], bool(wrows[0]["grad_std"]), {}
    group = lambda severity, kind, r: groups.setdefault((severity, kind), []).append(r)
    for r in wrows:
        symmetric = next((s for s in ("zeros", "constant") if s in [w["scheme"] for w in r["weights"]]), None)
        if symmetric and r["name"] == head:
            group("info", "symmetric_output", r)
        elif symmetric == "zeros" and reaches_bottom and r["grad_std"]:
            group("info", "zeros_bypassed", r)
        elif symmetric:
            group("error", symmetric, r)
        elif r["copies"] and r["copies"] >= 0.5 and r["name"] != head:
            group("warning", "copies", r)
        if far := [w for w in r["weights"] if w["scheme"] == "none"]:
            off = max(max(w["ratio"], 1 / w["ratio"]) for w in far)
            group("warning" if off > 2 else "info", "no_scheme", r)
    for key, limits in (("dead", DEAD), ("saturated", SATURATED)):
        for r in rows:
            if r[key] is not None and r[key] >= limits[0]:
                group("error" if r[key] >= limits[1] else "warning", key, r)
    for (severity, kind), rs in groups.items():
        span, far = _span(rs), [w for r in rs for w in r["weights"] if w["scheme"] == "none"]
        worst = lambda key: f"up to {_fmt(max(r[key] or 0 for r in rs), key)}"
        message, fix = {
            "zeros": (f"every weight is 0 in {span}: their units are identical and no gradient reaches "
                      f"the layers below", None),
            "constant": (f"every weight has the same value in {span}: their units compute the same function "
                         f"and gradient descent keeps them identical (symmetry)", None),
            "copies": (f"{worst('copies')} of the units of {span} are exact copies of another (symmetry)",
                       None),
            "symmetric_output": (f"the output layer {span} is {rs[0]['scheme']}: fine, the first step breaks "
                                 f"the tie (a zero output layer starts the loss at ln C)", "nothing to do"),
            "zeros_bypassed": (f"{span} start at 0 but the signal goes around them (residual branches that "
                               f"start off, as in Fixup or ReZero)", "nothing to do if intended"),
            "no_scheme": (far and f"weight std {_between(w['std'] for w in far)} is "
                          f"{_between(w['ratio'] for w in far)}x that of the closest scheme "
                          f"({', '.join(sorted({w['closest'] for w in far}))}) in {span}", None),
            "dead": (f"{worst('dead')} of the ReLU units after {span} are dead (0 for every example)"
                     f"{_described(rs)}", None),
            "saturated": (f"{worst('saturated')} of the {rs[0]['activation']} outputs after {span} are "
                          f"saturated (within 0.03 of a bound, where the slope is near 0)"
                          f"{_described(rs)}", None),
        }[kind]
        _add(findings, severity, rs, kind, message, fix)


def _layer_findings(findings, rows):
    """Layers not examined or not called, zero norm gains, LSTM forget gates that start at 0."""
    if zero_gain := [r for r in rows if r["gain_mean"] == 0]:
        _add(findings, "info", zero_gain, "zero_gain", f"the normalization gain is 0 in "
             f"{'layer ' * (len(zero_gain) == 1)}{_span(zero_gain)}: the branches they end start off (each "
             f"block is the identity) and the layers before them get no gradient until the first step "
             f"moves the gains", "nothing to do if intended")
    for r in rows:
        if r["status"] == "not examined":
            _add(findings, "info", [r], "not_examined", f"{r['type']} is not examined: the doctor cannot "
                 f"judge its initialization", "check its parameters by hand")
        if r["status"] == "not called":
            _add(findings, "info", [r], "not_called", f"{r['type']} did not run on this batch",
                 "nothing to do")
        if r["forget_bias"] is not None and abs(r["forget_bias"]) < 0.5:
            _add(findings, "info", [r], "forget_bias", f"forget-gate bias {r['forget_bias']:.2g}: the cell "
                 f"forgets about half of its memory at every step from the start",
                 "start it at 1 (Jozefowicz et al., 2015): bias_ih_l0[h:2h] = 1 and bias_hh_l0[h:2h] = 0")


def _classifier(y, targets, modules, seen, order) -> dict:
    """The loss at initialization, and the output layer's bias against the log priors."""
    classes, y = y.shape[1], y.detach().double()
    counts = torch.bincount(targets, minlength=classes).double()
    priors = (counts + 0.5) / (counts.sum() + 0.5 * classes)     # add-half smoothing: no log 0
    out = dict(classes=classes, examples=len(targets), loss=float(F.cross_entropy(y, targets)),
               ln_classes=math.log(classes), priors=priors.tolist(),
               entropy=float(-(priors * priors.log()).sum()), logit_std=float(y.std()),
               output_layer=None, bias_gap=None, bias_matches_log_priors=None)
    head = next((n for n in reversed(order) if seen[n].values is not None
                 and torch.equal(seen[n].values.double(), y)), None)
    bias = getattr(modules.get(head), "bias", None)
    if isinstance(bias, torch.Tensor) and bias.shape == (classes,):
        centred = lambda v: v - v.mean()
        gap = float((centred(bias.detach().double()) - centred(priors.log())).abs().max())
        out |= dict(output_layer=head, bias_gap=gap, bias_matches_log_priors=gap <= 0.25)
    return out


def _classifier_findings(findings, c, rows):
    excess = c["loss"] - c["ln_classes"]
    head = [r for r in rows if r["name"] == c["output_layer"]] or rows[-1:]
    if not math.isfinite(c["loss"]):
        _add(findings, "error", head, "nonfinite", f"the loss at initialization is {c['loss']}",
             "lower the weights' scale (see the other findings)")
    elif excess > LOSS_MARGIN[0]:
        _add(findings, "error" if excess > LOSS_MARGIN[1] else "warning", head, "loss_high",
             f"loss at initialization {c['loss']:.3g} is {excess:.2g} above ln C = {c['ln_classes']:.3g}: "
             f"the output is confident before learning anything (logit std {c['logit_std']:.2g})",
             "make the output small: zero or scale down the output layer, and fix the layers' scale; in a "
             "residual network whose branches end in a normalization layer, start each block's last gain at 0")
    saving = c["ln_classes"] - c["entropy"]
    imbalance = saving - (c["classes"] - 1) / (2 * c["examples"])
    if imbalance > PRIOR_GAP[0] and c["bias_matches_log_priors"] is False:
        _add(findings, "warning" if imbalance > PRIOR_GAP[1] else "info", head, "output_bias",
             f"the classes of this batch are imbalanced (priors {', '.join(f'{p:.2g}' for p in c['priors'])}) and the "
             f"output bias is {c['bias_gap']:.2g} away from their logs: a log-prior bias would lower the "
             f"initial loss by up to {saving:.2g} (from ln C toward the entropy {c['entropy']:.2g})",
             "with torch.no_grad(): output_layer.bias.copy_(torch.log(counts / counts.sum()))")


def _findings(rows, classifier, backward) -> list:
    findings, ok = [], [r for r in rows if r["status"] == "ok"]
    for key, what in (("out_std", "forward"), ("grad_std", "backward")):
        if bad := [r for r in ok if r[key] is not None and not math.isfinite(r[key])]:
            first = bad[0] if key == "out_std" else bad[-1]
            _add(findings, "error", [first], "nonfinite", f"NaN or inf in the {what} pass, first at "
                 f"{_span([first])}", "lower the weights' scale (see the other findings)")
        else:
            _trend(findings, [r for r in ok if r["kind"] != "norm"], key, _behind_zero_gain(ok))
    if any(r["weights"] for r in ok):
        _unit_findings(findings, rows)
    _layer_findings(findings, rows)
    if classifier:
        _classifier_findings(findings, classifier, rows)
    if not backward:
        _add(findings, "info", rows[:1], "no_backward", "no gradient reaches the layers (no parameter "
             "requires grad?): the backward signal is not measured", "set requires_grad to measure it")
    rank, index = {"error": 0, "warning": 1, "info": 2}, {r["name"]: r["index"] for r in rows}
    return sorted(findings, key=lambda f: (rank[f.severity], index.get(f.layer, -1)))


# ---------------------------------------------------------------------------------------------
# the call


def _check(model, inputs, targets, loss):
    """Validate the arguments where they enter; returns ``inputs`` as a tuple and whether to classify."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"'model' must be a torch.nn.Module. Got {type(model).__name__} instead.")
    if next(model.parameters(), None) is None:
        raise ValueError(f"{type(model).__name__} has no parameters, so it has no initialization to "
                         f"diagnose. Pass a model with at least one layer with weights (nn.Linear, ...).")
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    x = inputs[0] if inputs else None
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or len(x) == 0:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"'inputs' must be a tensor with the batch first, or a tuple of tensors passed as "
                         f"model(*inputs), with at least one example. Got {got} instead.")
    if any(isinstance(t, torch.Tensor) and t.is_floating_point() and not t.isfinite().all() for t in inputs):
        raise ValueError("'inputs' contain NaN or inf: diagnose the initialization on finite data.")
    if not (loss is None or isinstance(loss, bool) or callable(loss)):
        raise ValueError(f"'loss' must be None (check the loss when targets are given), True, False or a "
                         f"function loss(output, targets). Got {loss!r} instead.")
    classify = loss is True or (loss is None and targets is not None)
    if (classify or callable(loss)) and targets is None:
        raise ValueError("The loss check needs targets: call diagnose(model, inputs, targets) with one "
                         "integer class label per example, or pass loss=False. Got targets=None.")
    if classify and not (isinstance(targets, torch.Tensor) and targets.dim() == 1 and
                         not targets.is_floating_point() and targets.dtype != torch.bool):
        got = (f"shape {tuple(targets.shape)}, {targets.dtype}" if isinstance(targets, torch.Tensor)
               else type(targets).__name__)
        raise ValueError(f"'targets' must be a 1-D tensor of integer class labels, shape (batch,), or pass "
                         f"loss=function(output, targets) for other targets. Got {got} instead.")
    return inputs, classify


def _check_output(y, targets, classify):
    if y is None or not y.is_floating_point():
        raise ValueError(f"The model's output must be a float tensor or a tuple starting with one. "
                         f"Got {type(y).__name__ if y is None else y.dtype} instead.")
    if not classify:
        return
    if y.dim() != 2:
        raise ValueError(f"The loss check needs a classifier's output of shape (batch, classes). Got "
                         f"{tuple(y.shape)}; pass loss=False or a function loss(output, targets).")
    if len(targets) != len(y):
        raise ValueError(f"'targets' must hold one label per example: {len(y)}, the output's batch size. "
                         f"Got {len(targets)} labels instead.")
    if targets.min() < 0 or targets.max() >= y.shape[1]:
        raise ValueError(f"'targets' must be class labels in [0, {y.shape[1]}) for an output of "
                         f"{y.shape[1]} classes. Got labels from {int(targets.min())} to "
                         f"{int(targets.max())}.")


def _ratios(rows):
    """Each row's output and gradient std over those of the previous row with a measured output."""
    previous = None
    for r in rows:
        if r["status"] == "ok" and r["out_std"] is not None:
            for key, ratio in (("out_std", "out_ratio"), ("grad_std", "grad_ratio")):
                if previous and previous[key] and r[key] is not None:
                    r[ratio] = r[key] / previous[key]
            previous = r


def diagnose(model: nn.Module, inputs, targets=None, *, loss=None) -> Report:
    r"""Run one forward and backward pass of ``model`` on a batch and report on its initialization.

    ``inputs`` is a tensor (batch first) or a tuple of tensors, passed as ``model(*inputs)``; an
    output that is a tuple counts by its first tensor (an LSTM's ``out``). ``targets`` are integer
    class labels, one per example: the backward pass then uses the cross-entropy, and the report
    compares the initial loss with :math:`\ln C` and the output bias with the log priors
    :math:`\ln p_c`. ``loss=True`` requires targets, ``False`` ignores them, and a function
    ``loss(output, targets)`` replaces the cross-entropy in the backward pass (no loss checks).
    The model is left exactly as it was (see the module's docstring). Returns a :class:`Report`.

    >>> report = diagnose(init_model(mlp([64, 128, 10]), "kaiming_normal", seed=0), X, y)
    >>> report.ok, report.findings
    """
    inputs, classify = _check(model, inputs, targets, loss)
    layers = _layers(model)
    modules, kinds = {n: m for n, m, _ in layers}, {n: k for n, _, k in layers}
    with _Untouched(model), torch.enable_grad():
        output, seen, acts = _record(model, layers, inputs)
        y = _first_tensor(output)
        _check_output(y, targets, classify)
        if classify:
            objective = F.cross_entropy(y, targets)
        elif callable(loss):
            objective = loss(output, targets)
        else:   # a fixed unit-variance random projection of the output
            objective = (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(0)).to(y)).sum()
        outs = {n: c.output for n, c in seen.items() if c.output is not None and c.output.requires_grad}
        grads = (dict(zip(outs, torch.autograd.grad(objective, list(outs.values()), allow_unused=True)))
                 if outs and objective.requires_grad else {})
    order = list(seen)                     # in the order the layers' first calls ended
    links = _link(order, seen, acts)
    with torch.no_grad():
        classifier = _classifier(y, targets, modules, seen, order) if classify else None
        rows = [_row(i, n, modules[n], kinds[n], seen.get(n), links.get(n), grads.get(n))
                for i, n in enumerate(order + [n for n in kinds if n not in seen])]
    _ratios(rows)
    return Report(rows, _findings(rows, classifier, bool(grads)), classifier)

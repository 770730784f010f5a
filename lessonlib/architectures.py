r"""Today's architectures and the initializations the literature gives them (chapter 11).

Four cases, each a model, a data set generated in code (nothing is downloaded) and a fix:

- :class:`TinyTransformer` on :func:`lookup_task`, fixed by :func:`gpt2_init` (Radford et al., 2019);
- :class:`RecurrentClassifier` (an LSTM) on :func:`first_token_task`, fixed by :func:`lstm_init`
  (Saxe et al., 2014; Gers et al., 2000; Jozefowicz et al., 2015);
- :class:`NormResidualMLP` on the digits, fixed by :func:`zero_init_residual` (Goyal et al., 2017);
- any classifier on :func:`imbalanced_blobs`, fixed by :func:`prior_bias` (Karpathy, 2019).

:func:`train_seeds` trains one fresh model per seed and returns every curve as arrays;
:func:`stream_std` measures the residual stream at initialization. The models are built in
``torch.float64`` by default: a rounding then starts at :math:`10^{-16}` rather than
:math:`10^{-7}`, and the chapter's runs come out the same with 1 or 2 threads and with the narrowest
kernels, except a run whose training is chaotic (there only a level or a verdict is reproducible).
"""

import copy
import inspect
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Split
from .models import NORMS
from .seed import set_seed


def _check(low=1, **ints):
    for name, value in ints.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"The {name!r} parameter must be an int >= {low}. Got {value!r} instead.")


def _split(name, X, y, n_train) -> Split:
    return Split(name, X[:n_train], y[:n_train], X[n_train:], y[n_train:])


# ---------------------------------------------------------------------------------------------
# data


def lookup_task(n_train: int = 4000, n_test: int = 500, length: int = 8, vocab: int = 10,
                seed: int = 0) -> Split:
    r"""Sequences of ``length`` tokens from ``range(vocab)`` whose first token points at another.

    Token 0 is a position :math:`p \in \{1, \dots, \text{length}-1\}`; the label is the token at
    position :math:`p` (chance: :math:`1/\text{vocab}`). Reading it takes attention that depends on
    content (the pointer) and on position. int64 token ids, ``X.shape == (n, length)``, drawn by a
    ``torch.Generator`` seeded with ``seed``.
    """
    _check(n_train=n_train, n_test=n_test)
    _check(0, seed=seed)
    if not isinstance(length, int) or not 2 <= length <= vocab:
        raise ValueError(f"The 'length' parameter must be an int in [2, vocab={vocab}] (the pointer is a "
                         f"token). Got {length!r} instead.")
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    X = torch.randint(0, vocab, (n, length), generator=g)
    X[:, 0] = torch.randint(1, length, (n,), generator=g)
    return _split("lookup", X, X[torch.arange(n), X[:, 0]], n_train)


def first_token_task(n_train: int = 2000, n_test: int = 500, length: int = 20, n_classes: int = 4,
                     n_noise: int = 4, seed: int = 0) -> Split:
    r"""Remember the first token through ``length - 1`` steps of noise.

    Token 0 is the label :math:`y \in \{0, \dots, C-1\}`; the other tokens are distractors drawn
    uniformly from ``n_classes`` to ``n_classes + n_noise - 1``. A network reading left to right
    must carry :math:`y` through every step, so the gradient that teaches it to store :math:`y`
    passes through ``length - 1`` forget gates. int64 token ids, ``X.shape == (n, length)``.
    """
    _check(n_train=n_train, n_test=n_test, length=length, n_classes=n_classes, n_noise=n_noise)
    _check(0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    X = torch.randint(n_classes, n_classes + n_noise, (n, length), generator=g)
    X[:, 0] = y = torch.randint(0, n_classes, (n,), generator=g)
    return _split("first token", X, y, n_train)


def imbalanced_blobs(n_train: int = 2000, n_test: int = 1000, priors=(0.9, 0.07, 0.03),
                     n_features: int = 8, distance: float = 2.0, seed: int = 0) -> Split:
    r"""Gaussian classes drawn with the imbalanced ``priors`` :math:`p_c`.

    Class :math:`c`'s points are :math:`\mu_c + \mathcal{N}(0, I)` in ``n_features`` dimensions,
    each :math:`\mu_c` a random direction of length ``distance``, so the classes overlap and the
    loss cannot reach 0. float32 features as in :func:`~lessonlib.data.digits`; one NumPy
    ``RandomState(seed)`` draws everything.
    """
    priors = np.asarray(priors, dtype=float)
    if priors.ndim != 1 or len(priors) < 2 or (priors <= 0).any() or not math.isclose(priors.sum(), 1.0):
        raise ValueError(f"The 'priors' parameter must list at least two positive probabilities that sum "
                         f"to 1. Got {priors.tolist()!r} instead.")
    _check(n_train=n_train, n_test=n_test, n_features=n_features)
    _check(0, seed=seed)
    rng = np.random.RandomState(seed)
    means = rng.normal(size=(len(priors), n_features))
    means *= distance / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.choice(len(priors), size=n_train + n_test, p=priors)
    X = means[y] + rng.normal(size=(len(y), n_features))
    return _split("imbalanced blobs", torch.tensor(X, dtype=torch.float32), torch.tensor(y), n_train)


# ---------------------------------------------------------------------------------------------
# models


class TinyTransformer(nn.Module):
    r"""Token and learned position embeddings, ``n_layers`` pre-LN ``nn.TransformerEncoderLayer``,
    a final LayerNorm, the mean over positions and a linear head.

    Pre-LN (``norm_first=True``, GPT-2's layout): block :math:`l` adds
    :math:`\mathrm{Attn}(\mathrm{LN}(h))`, then :math:`\mathrm{FF}(\mathrm{LN}(h))`, to the residual
    stream :math:`h`. ReLU feed-forward, no dropout. The layers are built one by one: the stock
    ``nn.TransformerEncoder`` deep-copies one layer, so all of its layers start with the same
    weights. ``forward(x, return_stream=True)`` also returns the stream after the embeddings and
    after every block.
    """

    def __init__(self, vocab: int = 10, length: int = 8, n_classes: int = 10, d_model: int = 32,
                 n_heads: int = 2, n_layers: int = 4, d_ff: int = 64, dtype=torch.float64):
        super().__init__()
        _check(vocab=vocab, length=length, n_classes=n_classes,
               d_model=d_model, n_heads=n_heads, n_layers=n_layers, d_ff=d_ff)
        self.tok = nn.Embedding(vocab, d_model, dtype=dtype)
        self.pos = nn.Embedding(length, d_model, dtype=dtype)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=True,
                                       dtype=dtype) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model, dtype=dtype)
        self.head = nn.Linear(d_model, n_classes, dtype=dtype)

    def forward(self, x, return_stream: bool = False):
        h = self.tok(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        stream = [h]
        for layer in self.layers:
            stream.append(h := layer(h))
        out = self.head(self.norm(h).mean(dim=1))
        return (out, stream) if return_stream else out


class RecurrentClassifier(nn.Module):
    """One-hot tokens -> ``nn.LSTM(vocab, hidden)`` -> a linear head on the last hidden state."""

    def __init__(self, vocab: int = 8, hidden: int = 32, n_classes: int = 4, dtype=torch.float64):
        super().__init__()
        _check(vocab=vocab, hidden=hidden, n_classes=n_classes)
        self.vocab = vocab
        self.lstm = nn.LSTM(vocab, hidden, batch_first=True, dtype=dtype)
        self.head = nn.Linear(hidden, n_classes, dtype=dtype)

    def forward(self, x):
        out, _ = self.lstm(F.one_hot(x, self.vocab).to(self.head.weight.dtype))
        return self.head(out[:, -1])


class NormResidualMLP(nn.Module):
    r"""``in_features -> width``, ``n_blocks`` residual blocks with norm layers, ``width -> n_classes``.

    Block :math:`l` computes :math:`h_l = h_{l-1} + N_2(W_2\,\mathrm{relu}(N_1(W_1 h_{l-1})))` with
    :math:`N` a BatchNorm (``norm="batch"``) or a LayerNorm (``"layer"``): ResNet's branch with
    linear layers. The last norm outputs :math:`\gamma \hat z + \beta`, of variance :math:`\gamma^2`
    per unit, so with the default :math:`\gamma = 1` every block adds about 1 to the stream's
    variance, :math:`\mathrm{Var}(h_L) \approx \mathrm{Var}(h_0) + L`. :meth:`branch_norms` lists
    those norms; ``forward(x, return_stream=True)`` also returns the stream after every block.
    """

    def __init__(self, in_features: int = 64, width: int = 64, n_blocks: int = 16, n_classes: int = 10,
                 norm: str = "batch", dtype=torch.float64):
        super().__init__()
        _check(in_features=in_features, width=width, n_blocks=n_blocks, n_classes=n_classes)
        if NORMS.get(norm) is None:
            raise ValueError(f"The 'norm' parameter must be 'batch' or 'layer'. Got {norm!r} instead.")
        kw = dict(dtype=dtype)
        self.stem = nn.Linear(in_features, width, **kw)
        self.blocks = nn.ModuleList(nn.Sequential(
            nn.Linear(width, width, **kw), NORMS[norm](width, **kw), nn.ReLU(),
            nn.Linear(width, width, **kw), NORMS[norm](width, **kw)) for _ in range(n_blocks))
        self.head = nn.Linear(width, n_classes, **kw)

    def branch_norms(self) -> list:
        """The last norm layer of each block's branch, in forward order."""
        return [block[-1] for block in self.blocks]

    def forward(self, x, return_stream: bool = False):
        h = self.stem(x)
        stream = [h]
        for block in self.blocks:
            stream.append(h := h + block(h))
        out = self.head(h)
        return (out, stream) if return_stream else out


# ---------------------------------------------------------------------------------------------
# the fixes


@torch.no_grad()
def gpt2_init(model: nn.Module, n_layers: int | None = None, std: float = 0.02,
              seed: int | None = None) -> nn.Module:
    r"""GPT-2's initialization (Radford et al., 2019, section 2.3, as nanoGPT implements it).

    Every ``Linear`` and ``Embedding`` weight, and the attention's packed ``in_proj_weight``,
    :math:`w \sim \mathcal{N}(0, 0.02^2)`; every bias 0; LayerNorm gains 1. Then the two
    projections that write into the residual stream in each of the :math:`N` blocks (the
    attention's ``out_proj`` and the feed-forward's ``linear2``) are redrawn from
    :math:`\mathcal{N}(0, (0.02/\sqrt{2N})^2)`: the stream adds up :math:`2N` such outputs, so their
    summed variance no longer grows with depth. :math:`N` is ``n_layers``, by default the number of
    ``nn.TransformerEncoderLayer`` in ``model``. ``std`` is the base 0.02, a fixed number chosen for
    ``d_model`` 768, where it is :math:`0.55/\sqrt{d}`; at ``d_model`` 32 it is :math:`0.11/\sqrt{d}`.
    With ``seed``, :func:`~lessonlib.seed.set_seed` is called first. Returns ``model``.
    """
    if not isinstance(std, (int, float)) or isinstance(std, bool) or not math.isfinite(std) or std <= 0:
        raise ValueError(f"The 'std' parameter must be a float in the range (0, inf). Got {std!r} instead.")
    blocks = [m for m in model.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    if not blocks:
        raise ValueError(f"gpt2_init needs a model with nn.TransformerEncoderLayer blocks; "
                         f"{type(model).__name__} has none.")
    n_layers = len(blocks) if n_layers is None else n_layers
    _check(n_layers=n_layers)
    if seed is not None:
        set_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.normal_(0.0, std)
        if isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
            m.in_proj_weight.normal_(0.0, std)
        if isinstance(m, nn.LayerNorm) and m.weight is not None:
            m.weight.fill_(1.0)
        for name, p in m.named_parameters(recurse=False):
            if "bias" in name:
                p.zero_()
    for block in blocks:
        for projection in (block.self_attn.out_proj, block.linear2):
            projection.weight.normal_(0.0, std / math.sqrt(2 * n_layers))
    return model


@torch.no_grad()
def lstm_init(lstm: nn.Module, forget_bias: float = 1.0, seed: int | None = None) -> nn.Module:
    r"""Orthogonal recurrent weights, Xavier input weights and a forget-gate bias of ``forget_bias``.

    PyTorch stacks the gates :math:`(i, f, g, o)` in ``weight_ih`` and ``weight_hh``, four blocks
    of ``hidden`` rows. Each recurrent block :math:`U_k` becomes a random orthogonal matrix,
    :math:`U_k U_k^\top = I` (Saxe et al., 2014): every singular value is 1, so a product of them
    over time neither shrinks nor blows up a signal. Each input block is Xavier uniform,
    :math:`\mathcal{U}(\pm\sqrt{6/(n_\text{in} + \text{hidden})})` (Glorot & Bengio, 2010).
    The forget gate is :math:`f = \sigma(W_f x + U_f h + b_{ih,f} + b_{hh,f})`: PyTorch adds its two
    biases, so ``bias_ih``'s forget block is set to ``forget_bias`` and every other bias (all of
    ``bias_hh``) to 0, making the gate's bias exactly ``forget_bias``, as Keras's
    ``unit_forget_bias``. With 1 the cell keeps :math:`\sigma(1) \approx 0.73` of its memory per
    step at the start rather than about half (Gers et al., 2000; Jozefowicz et al., 2015).
    ``lstm`` is an ``nn.LSTM`` or a module holding some (each is initialized). Returns ``lstm``.
    """
    lstms = [m for m in lstm.modules() if isinstance(m, nn.LSTM)] if isinstance(lstm, nn.Module) else []
    if not lstms:
        raise TypeError(f"lstm_init needs an nn.LSTM or a module that holds one. Got {type(lstm).__name__}, "
                        f"which holds none (a GRU's gates are laid out differently).")
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) \
            or not math.isfinite(forget_bias):
        raise ValueError(f"The 'forget_bias' parameter must be a finite float. Got {forget_bias!r} instead.")
    if forget_bias != 0 and not all(m.bias for m in lstms):
        raise ValueError("An nn.LSTM built with bias=False has no forget-gate bias to set: use forget_bias=0.")
    if seed is not None:
        set_seed(seed)
    for m in lstms:
        for name, p in m.named_parameters():
            gates = p.split(m.hidden_size)                # i, f, g, o
            if name.startswith("weight_ih"):
                for block in gates:
                    nn.init.xavier_uniform_(block)
            elif name.startswith("weight_hh"):
                for block in gates:
                    nn.init.orthogonal_(block)
            elif name.startswith("bias"):
                p.zero_()
                if name.startswith("bias_ih"):
                    gates[1].fill_(forget_bias)
    return lstm


@torch.no_grad()
def zero_init_residual(model: nn.Module) -> nn.Module:
    r"""Start the last norm layer of every residual branch at :math:`\gamma = 0` (Goyal et al., 2017).

    The branch then outputs :math:`0 \cdot \hat z + \beta = 0` (:math:`\beta = 0`), so every block
    :math:`h_l = h_{l-1} + F(h_{l-1})` is the identity at initialization: the stream keeps its
    input's variance at any depth and the network starts as shallow as its stem and head. The
    gradient still reaches :math:`\gamma` (it is :math:`\hat z` times the gradient above), so the
    branches switch on as training starts. torchvision's ``resnet50(zero_init_residual=True)`` does
    this to each block's ``bn3`` (``bn2`` in a basic block). ``model.branch_norms()`` must list the
    norms (:class:`NormResidualMLP`'s does). Returns ``model``.
    """
    if not callable(getattr(model, "branch_norms", None)):
        raise TypeError(f"zero_init_residual needs a model with a branch_norms() method listing the last norm "
                        f"layer of each residual branch. {type(model).__name__} has none.")
    norms = model.branch_norms()
    if not norms or any(getattr(n, "weight", None) is None for n in norms):
        raise ValueError("branch_norms() must list norm layers with a learnable weight (affine=True).")
    for norm in norms:
        norm.weight.zero_()
        norm.bias.zero_()
    return model


def _labels(targets) -> torch.Tensor:
    targets = torch.as_tensor(targets)
    if targets.dim() != 1 or len(targets) == 0 or targets.is_floating_point() or targets.is_complex() \
            or targets.dtype == torch.bool:
        raise ValueError(f"The 'targets' must be a non-empty 1-D tensor of integer class labels. Got "
                         f"{targets.dtype} of shape {tuple(targets.shape)} instead.")
    if int(targets.min()) < 0:
        raise ValueError(f"Class labels must be >= 0. Got class {int(targets.min())}.")
    return targets


def class_priors(targets) -> torch.Tensor:
    r"""The class frequencies :math:`p_c = n_c / n` of ``targets`` for classes 0 to the largest (float64)."""
    counts = torch.bincount(_labels(targets)).double()
    return counts / counts.sum()


def prior_entropy(targets) -> float:
    r"""The entropy of the class frequencies, :math:`H(p) = -\sum_c p_c \ln p_c` in nats: the
    cross-entropy of a classifier that predicts the priors and nothing else."""
    p = class_priors(targets)
    return float(-(p[p > 0] * p[p > 0].log()).sum())


@torch.no_grad()
def prior_bias(linear: nn.Linear, targets) -> nn.Linear:
    r"""Set an output layer's bias to the log class frequencies, :math:`b_c = \ln p_c`.

    The softmax of the bias is then :math:`p`: as long as the weights add little to the logits the
    network predicts the priors, and its cross-entropy starts at their entropy :math:`H(p)`
    (:func:`prior_entropy`) instead of :math:`\ln C`, the loss of a uniform guess ("init well",
    Karpathy, 2019). The softmax ignores a constant shift, so :math:`\ln p_c + k` with any
    :math:`k` does the same. Every class of ``linear``'s outputs must occur in ``targets``.
    Returns ``linear``.
    """
    if not isinstance(linear, nn.Linear) or linear.bias is None:
        raise TypeError(f"prior_bias needs an nn.Linear with a bias. Got {linear!r}.")
    targets = _labels(targets)
    if int(targets.max()) >= linear.out_features:
        raise ValueError(f"The targets hold class {int(targets.max())}, outside the layer's "
                         f"{linear.out_features} outputs (classes 0 to {linear.out_features - 1}).")
    counts = torch.bincount(targets, minlength=linear.out_features).double()
    if (counts == 0).any():
        raise ValueError(f"Class(es) {(counts == 0).nonzero().flatten().tolist()} never occur in the targets: "
                         f"the log of a frequency 0 is -inf. Every class of the layer's outputs must occur.")
    linear.bias.copy_((counts / counts.sum()).log())
    return linear


# ---------------------------------------------------------------------------------------------
# training over seeds, and the stream at initialization


def _evaluate(model, X, y):
    model.eval()
    with torch.no_grad():
        scores = model(X)
    model.train()
    return F.cross_entropy(scores, y).item(), (scores.argmax(1) == y).double().mean().item()


def train_seeds(make_model, init_fn, data: Split, seeds, *, steps: int, lr: float = 3e-3,
                batch_size: int | None = 32, eval_every: int = 25, eval_train: bool = False) -> dict:
    r"""Train ``make_model()`` from each seed with Adam; return every run's curves as arrays.

    For each seed: :func:`~lessonlib.seed.set_seed`, ``model = make_model()`` (which draws PyTorch's
    default initialization), then ``init_fn(model)`` unless it is None. Minibatches of
    ``batch_size`` (None: the whole training set) are drawn without replacement, epoch after epoch,
    by a ``torch.Generator`` seeded with the seed, so a run is the same every time. Float features
    are cast to the model's dtype. Adam (PyTorch's fused kernel), learning rate ``lr``, cross-entropy.

    Returns a dict of NumPy arrays with one row per seed: ``loss[seed, step]``, the minibatch loss
    before update ``step`` (``loss[:, 0]`` is the loss at initialization); at the steps
    ``eval_steps`` (0, ``eval_every``, ..., ``steps``) ``test_loss`` and ``test_acc`` and, with
    ``eval_train``, ``train_loss`` and ``train_acc``, all in eval mode (where a BatchNorm network at
    step 0 uses its initial running statistics); and ``seeds``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"The 'seeds' parameter must list distinct seeds. Got {seeds!r} instead.")
    _check(steps=steps, eval_every=eval_every)
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"The 'lr' parameter must be a float in the range (0, inf). Got {lr!r} instead.")
    if batch_size is not None:
        _check(batch_size=batch_size)
    n = len(data.X_train)
    batch_size = min(batch_size or n, n)
    eval_steps = sorted(set(range(0, steps, eval_every)) | {steps})
    metrics = ("test_loss", "test_acc") + (("train_loss", "train_acc") if eval_train else ())
    out = {k: np.full((len(seeds), len(eval_steps)), np.nan) for k in metrics} | {
        "loss": np.full((len(seeds), steps), np.nan)}
    for i, seed in enumerate(seeds):
        set_seed(seed)
        model = make_model()
        if init_fn is not None:
            init_fn(model)
        dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
        X, X_test = (v.to(dtype) if v.is_floating_point() else v for v in (data.X_train, data.X_test))
        opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        g = torch.Generator().manual_seed(seed)
        order, k = torch.randperm(n, generator=g), 0
        model.train()
        for step in range(steps + 1):
            if step in eval_steps:
                j = eval_steps.index(step)
                out["test_loss"][i, j], out["test_acc"][i, j] = _evaluate(model, X_test, data.y_test)
                if eval_train:
                    out["train_loss"][i, j], out["train_acc"][i, j] = _evaluate(model, X, data.y_train)
            if step == steps:
                break
            if k + batch_size > n:
                order, k = torch.randperm(n, generator=g), 0
            idx, k = order[k:k + batch_size], k + batch_size
            loss = F.cross_entropy(model(X[idx]), data.y_train[idx])
            out["loss"][i, step] = loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return out | {"eval_steps": np.array(eval_steps), "seeds": np.array(seeds)}


def steps_to(results: dict, target: float, metric: str = "test_acc") -> np.ndarray:
    """Per seed, the first evaluation step at which ``results[metric]`` reaches ``target`` (NaN: never)."""
    reached = results[metric] >= target
    first = results["eval_steps"][reached.argmax(axis=1)].astype(float)
    first[~reached.any(axis=1)] = np.nan
    return first


@torch.no_grad()
def stream_std(model: nn.Module, inputs: torch.Tensor) -> np.ndarray:
    r"""The std of the residual stream :math:`h_0, h_1, \dots, h_L` (after the embeddings or the stem,
    then after every block) over all examples, positions and units, in one training-mode forward
    pass of a copy of ``model`` (so the model's BatchNorm statistics are left as they were)."""
    if "return_stream" not in inspect.signature(model.forward).parameters:
        raise TypeError(f"stream_std needs a model whose forward takes return_stream=True; "
                        f"{type(model).__name__}'s does not.")
    _, stream = copy.deepcopy(model).train()(inputs, return_stream=True)
    return np.array([float(h.double().std()) for h in stream])

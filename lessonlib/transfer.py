r"""Transfer learning on the digits: a class-subset split, and a new head on a trained network.

A network trained on some classes (its *body*, every layer but the last, and its *head*, the last
``nn.Linear``) is reused for other classes: :func:`new_head` keeps the body and puts a fresh head
in place of the old one, initialized by a scheme of :mod:`lessonlib.schemes`; only that layer is
initialized, the body keeps what it learned. :func:`class_subset` makes the two tasks out of one
split, :func:`head_features` returns what the head sees.

Why the head's scale matters: for features :math:`h \in \mathbb{R}^{n_\text{in}}` the head's
logits are :math:`z_k = w_k^\top h + b_k`. With weights :math:`w_{kj} \sim \mathcal{N}(\mu, \sigma^2)`
i.i.d. and zero biases, :math:`z_k = \mu \sum_j h_j + \sigma\, \varepsilon_k^\top h`; the first term is
the same for every class and cancels in the softmax, the second has variance
:math:`\sigma^2 \lVert h \rVert^2`. So the logits spread across classes by

.. math:: \sqrt{\mathbb{E}_x\big[\mathrm{Var}_k\, z_k\big]} = \sigma \sqrt{\mathbb{E}_x \lVert h(x) \rVert^2},

which a pretrained body's features (ReLU outputs, not standardized) can make large.
"""

import copy

import torch
import torch.nn as nn

from .data import Split
from .schemes import init_model


def class_subset(data: Split, classes) -> Split:
    """The examples of ``classes`` only, in both halves of ``data``, relabelled ``0, 1, ...``.

    Class ``classes[i]`` becomes label ``i``, so ``class_subset(digits(), [5, 6, 7, 8, 9])`` is a
    5-class task whose label 0 is the digit 5. The train/test split of ``data`` is kept as it is:
    a training image of the subset was a training image of the whole set.
    """
    try:
        classes = list(classes)
    except TypeError:
        raise ValueError(f"The 'classes' parameter must be a list of class labels. "
                         f"Got {classes!r} instead.") from None
    allowed = f"distinct ints in the range [0, {data.n_classes})"
    if not classes:
        raise ValueError(f"The 'classes' parameter must list at least one class, {allowed}. Got [] instead.")
    bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < data.n_classes]
    if bad or len(set(classes)) != len(classes):
        raise ValueError(f"The 'classes' parameter must hold {allowed} (the {data.name} data has "
                         f"{data.n_classes} classes). Got {classes!r} instead.")
    relabel = torch.full((data.n_classes,), -1, dtype=torch.long)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))

    def pick(X, y):
        keep = relabel[y] >= 0
        return X[keep], relabel[y[keep]]

    X_train, y_train = pick(data.X_train, data.y_train)
    X_test, y_test = pick(data.X_test, data.y_test)
    return Split(f"{data.name} {classes}", X_train, y_train, X_test, y_test)


def _head(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """``(parent, attribute, layer)`` of the last ``nn.Linear`` registered in ``model``."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears or linears[0][0] == "":
        raise ValueError(f"new_head needs a model whose last layer is an nn.Linear inside it. "
                         f"Got {type(model).__name__}, which has "
                         f"{'no nn.Linear' if not linears else 'no layer but itself'}.")
    name, layer = linears[-1]
    with_weights = [n for n, m in model.named_modules()
                    if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2]
    if with_weights[-1] != name:
        raise ValueError(f"The last nn.Linear of {type(model).__name__} ({name!r}) is not its last layer "
                         f"with weights ({with_weights[-1]!r}), so it is not a head to replace.")
    parent_name, _, attribute = name.rpartition(".")
    return model.get_submodule(parent_name), attribute, layer


def new_head(model: nn.Module, n_classes: int, scheme, *, seed: int | None = None, bias: str = "zeros",
             freeze_body: bool = False) -> nn.Module:
    """A copy of ``model`` with a fresh last layer of ``n_classes`` outputs, initialized by ``scheme``.

    The head, the last ``nn.Linear`` of ``model``, is replaced by ``nn.Linear(in_features,
    n_classes)``, and only that layer is initialized: ``init_model(head, scheme, bias=bias,
    seed=seed)``. The rest of the network (the body) is a copy of ``model``'s, so the original is
    untouched and can be reused. With ``freeze_body=True`` every parameter of the body gets
    ``requires_grad=False``: an optimizer over ``model.parameters()`` then moves the head only.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"The 'n_classes' parameter must be an int >= 2. Got {n_classes!r} instead.")
    if not isinstance(freeze_body, bool):
        raise ValueError(f"The 'freeze_body' parameter must be True or False. Got {freeze_body!r} instead.")
    _head(model)                                   # validate before copying
    model = copy.deepcopy(model)
    parent, attribute, old = _head(model)
    head = nn.Linear(old.in_features, n_classes)
    init_model(head, scheme, bias=bias, seed=seed)
    setattr(parent, attribute, head)
    if freeze_body:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
    return model


def head_features(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """What the head of ``model`` receives for inputs ``X``: the body's output, shape ``(examples, fan_in)``.

    Read with a forward hook on the head (the last ``nn.Linear``), without gradients.
    """
    _, _, head = _head(model)
    captured = []
    handle = head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            model(X)
    finally:
        handle.remove()
    return captured[0]

"""The networks the lessons train, and the check that a batch fits one."""

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "linear": nn.Identity,
}


class DigitNN(nn.Module):
    """64-128-64-10 with ReLU: the network of the PyTorch blog article on the digits."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def mlp(sizes, activation: str = "relu") -> nn.Sequential:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    ``activation`` follows every hidden layer; the last layer outputs raw scores (logits).
    ``mlp([2, 64, 64, 64, 2])`` is the two-moons network of the empirical study.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f"The 'sizes' parameter must list at least two positive ints. Got {sizes!r} instead.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"The 'activation' parameter must be one of {sorted(ACTIVATIONS)}. "
                         f"Got {activation!r} instead.")
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ResidualMLP(nn.Module):
    r"""``in_features -> width``, then ``n_blocks`` residual blocks, then ``width -> n_classes``.

    Block :math:`l` computes :math:`h_{l} = h_{l-1} + W^{(2)}_l\,\mathrm{relu}(W^{(1)}_l h_{l-1})`
    (the "residual stream" :math:`h` plus a two-layer branch). :meth:`branch_outputs` lists the
    last layer :math:`W^{(2)}_l` of every branch: the layer Fixup (Zhang et al., 2019) sets to zero
    (it also multiplies the branch's other layers by :math:`L^{-1/(2m-2)}` for branches of :math:`m`
    layers and adds scalar multipliers and biases), and the one to scale to tame the stream's growth;
    ``forward(x, return_stream=True)`` also returns the stream after every block.
    """

    def __init__(self, in_features: int = 64, width: int = 64, n_blocks: int = 8, n_classes: int = 10):
        super().__init__()
        for name, value in (("in_features", in_features), ("width", width), ("n_blocks", n_blocks),
                            ("n_classes", n_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"The {name!r} parameter must be a positive int. Got {value!r} instead.")
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)) for _ in range(n_blocks))
        self.head = nn.Linear(width, n_classes)

    def branch_outputs(self) -> list:
        """The last ``nn.Linear`` of each residual branch, in forward order."""
        return [block[-1] for block in self.blocks]

    def forward(self, x, return_stream: bool = False):
        h = self.stem(x)
        stream = [h]
        for block in self.blocks:
            h = h + block(h)
            stream.append(h)
        out = self.head(h)
        return (out, stream) if return_stream else out


NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": None}


def norm_mlp(sizes, norm: str = "batch", activation: str = "relu") -> nn.Sequential:
    """Like :func:`mlp`, with a normalization layer between every hidden ``Linear`` and its activation.

    ``norm`` is ``"batch"`` (``BatchNorm1d``: each unit standardized over the batch),
    ``"layer"`` (``LayerNorm``: each example standardized over the units) or ``"none"``.
    """
    if norm not in NORMS:
        raise ValueError(f"The 'norm' parameter must be one of {sorted(NORMS)}. Got {norm!r} instead.")
    plain = mlp(sizes, activation)
    if NORMS[norm] is None:
        return plain
    layers = []
    for module in plain:
        layers.append(module)
        if isinstance(module, nn.Linear) and module is not plain[-1]:
            layers.append(NORMS[norm](module.out_features))
    return nn.Sequential(*layers)


class DigitCNN(nn.Module):
    """A small CNN for the 8x8 digits: conv 3x3 (1->16), ReLU, conv 3x3 (16->32), ReLU, 2x2 max-pool,
    then a linear layer 32*4*4 -> 10. It takes the flat 64-pixel rows of :func:`~lessonlib.data.digits`."""

    def __init__(self, channels: tuple = (16, 32), n_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc = nn.Linear(c2 * 4 * 4, n_classes)

    def forward(self, x):
        if x.dim() != 2 or x.shape[1] != 64:
            raise ValueError(f"DigitCNN expects flat 8x8 images of shape (examples, 64). Got {tuple(x.shape)}.")
        x = x.reshape(-1, 1, 8, 8)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


# ---------------------------------------------------------------------------------------------
# does a batch fit a model?

EXPECTS = {
    nn.Linear: lambda m: f"{m.in_features} input features, a batch of shape (examples, {m.in_features})",
    nn.modules.conv._ConvNd: lambda m: (f"{m.in_channels} input channels, a batch of shape "
                                        f"(examples, {m.in_channels}{', size' * len(m.kernel_size)})"),
    nn.Embedding: lambda m: f"integer ids in [0, {m.num_embeddings}), a batch of dtype torch.long",
    nn.RNNBase: lambda m: f"{m.input_size} features per step, a batch of shape "
                          f"({'examples, steps' if m.batch_first else 'steps, examples'}, {m.input_size})",
    nn.MultiheadAttention: lambda m: f"{m.embed_dim} features per position, a batch of shape "
                                     f"({'examples, positions' if m.batch_first else 'positions, examples'}, "
                                     f"{m.embed_dim})",
}
"""What a layer expects, by type: the words of the errors of :func:`check_batch` and of the doctor."""


def first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """``(name, module)`` of the first submodule, in the order they were defined, with parameters of
    its own: the layer that receives the batch (``model`` itself if it is a single layer). None if
    ``model`` has no parameters."""
    owners = [(name, m) for name, m in model.named_modules() if next(m.parameters(recurse=False), None) is not None]
    submodules = [(name, m) for name, m in owners if m is not model]
    return (submodules or owners or [None])[0]


def check_batch(model: nn.Module, x: torch.Tensor, name: str = "the batch") -> None:
    """Raise a ValueError that names the first layer and what it expects if ``x`` does not fit ``model``.

    A ``Linear`` first layer is checked against the last dimension of ``x``, an ``Embedding`` against
    the range of the ids in ``x``. Any other first layer (a ``Conv2d``, an ``LSTM``, ...), and an
    ``Embedding`` whose ids are in range, is checked by passing two examples of ``x`` through the model
    in eval mode without gradients; the model's training flags and PyTorch's random state are restored
    afterwards, so the check changes nothing (no running statistics, no draws). ``name`` says what
    ``x`` is in the message, e.g. ``"the digits data"``.
    """
    found = first_layer(model)
    if found is None:
        return
    layer_name, layer = found
    subject = name[:1].upper() + name[1:]
    expects = next((f(layer) for kind, f in EXPECTS.items() if isinstance(layer, kind)), "another input")
    if isinstance(layer, nn.Linear):
        if x.shape[-1] != layer.in_features:
            raise ValueError(f"The model expects {layer.in_features} input features (its first layer "
                             f"is {layer}) but {name} has {x.shape[-1]}.")
        return
    if isinstance(layer, nn.Embedding) and not x.is_floating_point() and x.numel() > 0:
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= layer.num_embeddings:
            raise ValueError(f"{subject} has ids from {low} to {high} but the model's first layer "
                             f"{layer_name!r} is {layer} and expects {expects}.")
    reached = []   # whether the first layer ran: if so, a later layer is the one that failed
    handle = layer.register_forward_hook(lambda *_: reached.append(True))
    modes = {m: m.training for m in model.modules()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model.eval()(x[:2])
    except (RuntimeError, IndexError) as err:
        where = (f"its first layer {layer_name!r} ({layer}) takes it, but a later layer does not" if reached
                 else f"its first layer {layer_name!r} is {layer} and expects {expects}")
        raise ValueError(f"{subject} (shape {tuple(x.shape)}, {x.dtype}) does not fit the model: {where}. "
                         f"PyTorch says: {err}") from err
    finally:
        handle.remove()
        for m, training in modes.items():
            m.train(training)

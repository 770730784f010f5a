"""The networks the lessons train."""

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

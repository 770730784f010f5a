"""Full-batch training that records what happened, epoch by epoch."""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .data import Split
from .models import check_batch

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


@dataclass
class History:
    """What one training run measured.

    Index ``e`` of every list is the state after ``e`` updates, from ``e = 0`` (the
    initialization itself) to the last epoch: training loss (mean cross-entropy), training and
    test accuracy (fractions in [0, 1]) and test loss. A run whose training loss became inf or
    NaN stops there: ``diverged_at`` holds that epoch and the lists end at the last finite state.
    ``snapshots[e]`` maps each weight matrix's name to a copy of it at epoch ``e``, for the epochs
    asked for with ``train(..., snapshot_epochs=...)``.
    """

    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    diverged_at: int | None = None
    snapshots: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def epochs(self) -> np.ndarray:
        return np.arange(len(self.loss))

    @property
    def final_test_acc(self) -> float:
        """Test accuracy at the end of training (at the last finite state if the run diverged)."""
        return self.test_acc[-1]

    def __repr__(self) -> str:
        status = f"diverged at epoch {self.diverged_at}" if self.diverged else f"{len(self.loss) - 1} epochs"
        return (f"History({status}: final loss {self.loss[-1]:.3g}, "
                f"test accuracy {100 * self.final_test_acc:.2f}%)")


def check_fits(model: nn.Module, data: Split) -> None:
    """Raise a ValueError that names both sides if ``data`` cannot be fed to ``model``
    (:func:`~lessonlib.models.check_batch` for the first layer, whatever its type)."""
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weight is not None and data.X_train.is_floating_point() and weight.dtype != data.X_train.dtype:
        raise ValueError(f"The model's parameters are {weight.dtype} but the {data.name} data is "
                         f"{data.X_train.dtype}; cast one to the other (model.to(dtype) or data.to(dtype)).")
    check_batch(model, data.X_train, f"the {data.name} data")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears and linears[-1].out_features < data.n_classes:
        raise ValueError(f"The model outputs {linears[-1].out_features} scores (its last layer is "
                         f"{linears[-1]}) but the {data.name} data has {data.n_classes} classes.")


def _accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return int((scores.argmax(dim=1) == labels).sum()) / len(labels)


def train(model: nn.Module, data: Split, *, epochs: int = 100, lr: float = 0.005,
          optimizer: str = "adam", on_epoch=None, snapshot_epochs=()) -> History:
    """Train ``model`` on all of ``data.X_train`` at once (one update per epoch).

    The defaults are the digits recipe: Adam, learning rate 0.005, 100 epochs, cross-entropy.
    ``on_epoch(epoch, model)``, if given, is called at every recorded state, before the update,
    to measure whatever a lesson needs. At each epoch in ``snapshot_epochs`` a copy of every
    weight matrix is kept in ``History.snapshots``. Returns a :class:`History`.
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"The 'epochs' parameter must be an int >= 0. Got {epochs!r} instead.")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"The 'lr' parameter must be a float in the range (0, inf). Got {lr!r} instead.")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"The 'optimizer' parameter must be one of {sorted(OPTIMIZERS)}. "
                         f"Got {optimizer!r} instead.")
    check_fits(model, data)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    for epoch in range(epochs + 1):
        model.train()
        scores = model(data.X_train)
        loss = loss_fn(scores, data.y_train)
        if not math.isfinite(loss.item()):
            history.diverged_at = epoch
            break
        model.eval()
        with torch.no_grad():
            test_scores = model(data.X_test)
        history.loss.append(loss.item())
        history.train_acc.append(_accuracy(scores, data.y_train))
        history.test_loss.append(loss_fn(test_scores, data.y_test).item())
        history.test_acc.append(_accuracy(test_scores, data.y_test))
        if epoch in snapshot_epochs:
            history.snapshots[epoch] = {name: p.detach().clone()
                                        for name, p in model.named_parameters() if p.dim() >= 2}
        if on_epoch is not None:
            on_epoch(epoch, model)
        if epoch == epochs:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return history

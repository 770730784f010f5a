r"""Run schemes x seeds and keep every run: the course's multi-seed experiments.

:func:`run_experiment` trains one fresh model per (scheme, seed) with the same recipe as
:func:`~lessonlib.train.train` and returns :class:`Results`, tidy arrays indexed
``[scheme, seed, epoch]``.

With ``batched=True`` (the default) all seeds of a scheme are trained **at once**: their
parameters are stacked along a new first axis and every matrix product is done for all seeds in
one batched product. A chain of ``Linear`` layers and activations (every ``mlp``, ``DigitNN``) is
trained by :func:`lessonlib.stacked.train_stacked`, which writes backpropagation out; any other
network by one vectorised forward pass (``torch.func.vmap``) and autograd, with the loss the sum
of the seeds' mean cross-entropies, so each seed's gradient is exactly its own. Adam and SGD act
element by element, so each seed follows the same update rule as if it were trained alone. Each
seed's initial weights are those of ``init_model(make_model(), scheme, seed=seed)``, exactly.
Only the order of floating-point sums differs from training one model at a time.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from scipy import stats as scipy_stats
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from .data import Split
from .schemes import init_model, make_scheme
from .stacked import METRICS, linear_chain, train_stacked
from .train import OPTIMIZERS, check_fits, train


@dataclass
class Results:
    """Every run of an experiment. Arrays are indexed ``[scheme, seed, epoch]``.

    ``loss``, ``train_acc``, ``test_loss``, ``test_acc`` hold the state after each update, from
    epoch 0 (the initialization) to the last; a run that diverged holds NaN from the epoch its
    loss became non-finite, which ``diverged_at[scheme, seed]`` records (-1: did not diverge).
    ``states[epoch][scheme][seed]`` is the ``state_dict`` of that run at each epoch asked for with
    ``run_experiment(states_at=...)``: load it into a fresh model to look at the network itself.
    """

    schemes: list
    seeds: list
    loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    diverged_at: np.ndarray
    states: dict = field(default_factory=dict)

    def final(self, metric: str = "test_acc") -> np.ndarray:
        """``metric`` after the last epoch, shape ``[scheme, seed]`` (NaN for diverged runs)."""
        return self._metric(metric)[:, :, -1]

    def epochs_to(self, target: float, metric: str = "train_acc") -> np.ndarray:
        """The first epoch at which ``metric`` reaches ``target``, ``[scheme, seed]``; NaN if never."""
        values = self._metric(metric)
        reached = np.nan_to_num(values, nan=-np.inf) >= target
        first = reached.argmax(axis=2).astype(float)
        first[~reached.any(axis=2)] = np.nan
        return first

    def summary(self, metric: str = "test_acc", level: float = 0.95) -> dict:
        """Per scheme: mean, std, confidence interval of the mean and runs left out, of the final ``metric``."""
        out = {}
        for scheme, values in zip(self.schemes, self.final(metric)):
            kept = values[np.isfinite(values)]
            mean = float(kept.mean()) if len(kept) else math.nan
            out[scheme] = {"mean": mean, "std": float(kept.std(ddof=1)) if len(kept) > 1 else math.nan,
                           "ci": confidence_interval(kept, level), "n": len(kept),
                           "diverged": int(len(values) - len(kept))}
        return out

    def _metric(self, metric):
        if metric not in METRICS:
            raise ValueError(f"Unknown metric {metric!r}. Choose one of {list(METRICS)}.")
        return getattr(self, metric)


def confidence_interval(values, level: float = 0.95) -> tuple[float, float]:
    r"""Student-t interval for the mean: :math:`\bar x \pm t_{(1+\text{level})/2,\,n-1}\, s/\sqrt{n}`."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (math.nan, math.nan)
    half = scipy_stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return (float(values.mean() - half), float(values.mean() + half))


def run_experiment(make_model, schemes, seeds, data: Split, *, bias: str = "zeros", epochs: int = 100,
                   lr: float = 0.005, optimizer: str = "adam", batched: bool = True,
                   progress: bool = True, states_at=()) -> Results:
    """Train ``make_model()`` from every scheme and seed on ``data``; return :class:`Results`.

    ``schemes`` are :class:`~lessonlib.schemes.Scheme` objects or names; ``bias`` is passed to
    :func:`~lessonlib.schemes.init_model`; ``epochs``, ``lr`` and ``optimizer`` are the recipe
    of :func:`~lessonlib.train.train`. Each model is cast to the floating-point type of ``data``'s
    features before it is initialized, so with ``data.to(torch.float64)`` the weights are drawn and
    trained in double precision (a float32 draw itself can differ in its last bit between CPUs). ``batched=False`` trains one model at a time with
    :func:`~lessonlib.train.train`. ``progress`` shows a progress bar (``TQDM_DISABLE=1`` turns
    it off, as the tests do). ``states_at`` lists the epochs at which every run's parameters are
    kept (in ``Results.states``).
    """
    schemes = [make_scheme(s) for s in schemes]
    seeds = [int(s) for s in seeds]
    if not schemes or not seeds:
        raise ValueError("run_experiment needs at least one scheme and one seed.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"The seeds must be distinct. Got {seeds!r}.")
    shape = (len(schemes), len(seeds), epochs + 1)
    arrays = {m: np.full(shape, np.nan) for m in METRICS}
    diverged_at = np.full(shape[:2], -1)
    states_at = sorted({int(e) for e in states_at})
    if any(not 0 <= e <= epochs for e in states_at):
        raise ValueError(f"The 'states_at' epochs must lie in [0, {epochs}]. Got {states_at!r}.")
    states = {e: [] for e in states_at}
    bar = tqdm(total=len(schemes) * len(seeds), desc="runs", disable=not progress, leave=False)
    for i, scheme in enumerate(schemes):
        models = [init_model(make_model().to(data.X_train.dtype), scheme, bias=bias, seed=seed) for seed in seeds]
        if batched:
            records, diverged, kept = _train_batched(models, data, epochs, lr, optimizer, states_at)
        else:
            records, diverged, kept = _train_one_by_one(models, data, epochs, lr, optimizer, states_at)
        for e in states_at:
            states[e].append(kept.get(e, [None] * len(seeds)))   # None: the run diverged before e
        for m in METRICS:
            arrays[m][i] = records[m]
        diverged_at[i] = diverged
        bar.update(len(seeds))
    bar.close()
    return Results(schemes, seeds, diverged_at=diverged_at, states=states, **arrays)


def _train_one_by_one(models, data, epochs, lr, optimizer, states_at):
    records = {m: np.full((len(models), epochs + 1), np.nan) for m in METRICS}
    diverged = np.full(len(models), -1)
    states = {e: [None] * len(models) for e in states_at}

    for s, model in enumerate(models):
        def keep(epoch, model, s=s):
            if epoch in states:
                states[epoch][s] = {name: value.clone() for name, value in model.state_dict().items()}

        history = train(model, data, epochs=epochs, lr=lr, optimizer=optimizer, on_epoch=keep)
        for m in METRICS:
            values = getattr(history, m)
            records[m][s, :len(values)] = values
        diverged[s] = -1 if history.diverged_at is None else history.diverged_at
    return records, diverged, states


def _train_batched(models, data, epochs, lr, optimizer, states_at):
    """Train identically shaped models as one: written-out backpropagation for a chain of linear
    layers, else stacked parameters, one vmapped forward pass and autograd."""
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"The 'lr' parameter must be a float in the range (0, inf). Got {lr!r} instead.")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"The 'optimizer' parameter must be one of {sorted(OPTIMIZERS)}. Got {optimizer!r} instead.")
    template = models[0]
    check_fits(template, data)
    if any(True for _ in template.buffers()):
        raise ValueError(f"{type(template).__name__} has buffers (e.g. BatchNorm statistics); "
                         f"train it with batched=False.")
    if linear_chain(template) is not None:
        return train_stacked(models, data, epochs, lr, OPTIMIZERS[optimizer], states_at)
    params, _ = stack_module_state(models)
    opt = OPTIMIZERS[optimizer](params.values(), lr=lr)

    def scores_of(p, x):
        return functional_call(template, (p,), (x,))

    forward = vmap(scores_of, in_dims=(0, None))
    n = len(models)
    records = {m: np.full((n, epochs + 1), np.nan) for m in METRICS}
    diverged = np.full(n, -1)
    states = {}

    def cross_entropy(scores, labels):  # one mean cross-entropy per model: shape (n,)
        return nn.functional.cross_entropy(scores.transpose(1, 2), labels.expand(n, -1),
                                           reduction="none").mean(1)

    def accuracy(scores, labels):
        return (scores.argmax(2) == labels).sum(1).numpy() / len(labels)

    for epoch in range(epochs + 1):
        scores = forward(params, data.X_train)
        losses = cross_entropy(scores, data.y_train)
        with torch.no_grad():
            test_scores = forward(params, data.X_test)
            values = {"loss": losses.numpy(force=True), "train_acc": accuracy(scores, data.y_train),
                      "test_loss": cross_entropy(test_scores, data.y_test).numpy(),
                      "test_acc": accuracy(test_scores, data.y_test)}
        newly = (diverged < 0) & ~np.isfinite(values["loss"])
        diverged[newly] = epoch
        alive = diverged < 0
        for m in METRICS:
            records[m][alive, epoch] = values[m][alive]
        if epoch in states_at:
            states[epoch] = [{name: p[s].detach().clone() for name, p in params.items()} for s in range(n)]
        if epoch == epochs or not alive.any():
            break
        opt.zero_grad()
        torch.where(torch.from_numpy(alive), losses, 0.0).sum().backward()
        opt.step()
    return records, diverged, states

"""The course's data sets, split once and returned as tensors.

Nothing is downloaded: the digits come with scikit-learn and the two moons are generated.
"""

from dataclasses import dataclass, replace

import torch
from sklearn.datasets import load_digits, make_moons
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Split:
    """A train/test split as tensors: float32 features (see :meth:`to`), int64 class labels."""

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1

    def to(self, dtype: torch.dtype) -> "Split":
        """The same split with its features in the floating-point ``dtype`` (labels stay int64).

        ``two_moons().to(torch.float64)`` trains in double precision: every rounding is about
        :math:`10^{-16}` instead of :math:`10^{-7}`, so a long chaotic run no longer depends on the
        order in which the CPU's kernels add up a sum (see chapter 7).
        """
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"The 'dtype' parameter must be a floating-point torch.dtype such as torch.float64. "
                             f"Got {dtype!r} instead.")
        return replace(self, X_train=self.X_train.to(dtype), X_test=self.X_test.to(dtype))

    def first(self, n_train: int, n_test: int | None = None) -> "Split":
        """The first ``n_train`` training and ``n_test`` test examples (all test examples if None):
        a smaller problem of the same kind, for experiments that train many deep networks."""
        for name, n, available in (("n_train", n_train, len(self.y_train)),
                                   ("n_test", len(self.y_test) if n_test is None else n_test, len(self.y_test))):
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= available:
                raise ValueError(f"The '{name}' parameter must be an int in the range [1, {available}]. Got {n!r} instead.")
        n_test = len(self.y_test) if n_test is None else n_test
        return replace(self, X_train=self.X_train[:n_train], y_train=self.y_train[:n_train],
                       X_test=self.X_test[:n_test], y_test=self.y_test[:n_test])

    def __repr__(self) -> str:
        return (f"Split({self.name!r}: {len(self.X_train)} train / {len(self.X_test)} test, "
                f"{self.n_features} features, {self.n_classes} classes)")


def _as_split(name, X_train, X_test, y_train, y_test) -> Split:
    return Split(
        name,
        torch.tensor(X_train, dtype=torch.float32),
        torch.tensor(y_train, dtype=torch.long),
        torch.tensor(X_test, dtype=torch.float32),
        torch.tensor(y_test, dtype=torch.long),
    )


def digits() -> Split:
    """The 8x8 handwritten digits (1797 images, 64 pixels, 10 classes).

    As in the PyTorch blog article the course starts from: every pixel standardized over the
    whole set (``StandardScaler``), then an 80/20 split with ``random_state=42``
    (1437 training and 360 test images).
    """
    bunch = load_digits()
    X = StandardScaler().fit_transform(bunch.data)
    return _as_split("digits", *train_test_split(X, bunch.target, test_size=0.2, random_state=42))


def two_moons(n_samples: int = 1200, noise: float = 0.18, test_size: float = 0.25,
              random_state: int = 1) -> Split:
    """Two interleaving half circles in 2-D, the empirical study's task.

    ``n_samples`` points with Gaussian noise of standard deviation ``noise``, split
    ``1 - test_size`` / ``test_size`` (900 / 300 by default). The data and the split are fixed
    by ``random_state``; only the model's seed varies between runs.
    """
    if not isinstance(n_samples, int) or n_samples < 4:
        raise ValueError(f"The 'n_samples' parameter must be an int >= 4. Got {n_samples!r} instead.")
    if noise < 0:
        raise ValueError(f"The 'noise' parameter must be a float in the range [0, inf). Got {noise!r} instead.")
    if not 0 < test_size < 1:
        raise ValueError(f"The 'test_size' parameter must be a float in the range (0, 1). Got {test_size!r} instead.")
    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    return _as_split("two moons", *train_test_split(X, y, test_size=test_size, random_state=random_state))

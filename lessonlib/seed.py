"""One call that makes a run repeatable."""

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch's CPU generator.

    Every random draw in the course (weight initialization, data shuffling) goes through one of
    these three generators, so the same seed gives the same run.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"The 'seed' parameter must be a non-negative int. Got {seed!r} instead.")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))

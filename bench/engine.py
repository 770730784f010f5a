"""Benchmark: the multi-seed engine against training one model at a time.

Runs the same experiments both ways, prints the times and their ratio, and counts the runs whose
final test accuracy differs between the two ways at the reported precision (2 decimals of a
percent): the two compute the same updates but sum in a different order, and over hundreds of
epochs a rounding difference can move a test point across the decision boundary.

    python bench/engine.py            # uses the torch default thread count
    OMP_NUM_THREADS=2 python bench/engine.py
"""

import time

import numpy as np
import torch

from lessonlib import DigitNN, digits, make_scheme, mlp, two_moons
from lessonlib.experiments import run_experiment

EXPERIMENTS = {
    "digits: 5 schemes x 20 seeds, DigitNN, Adam lr 0.005, 100 epochs": dict(
        make_model=DigitNN, data=digits(), epochs=100, lr=0.005, seeds=range(20),
        schemes=[make_scheme("normal", mean=0.2, std=0.05), "xavier_normal", "kaiming_normal",
                 "lecun_normal", "pytorch_default"]),
    "two moons: 3 schemes x 30 seeds, 2-64-64-64-2, Adam lr 0.001, 250 epochs": dict(
        make_model=lambda: mlp([2, 64, 64, 64, 2], "relu"), data=two_moons(), epochs=250, lr=0.001,
        seeds=range(30), schemes=[make_scheme("normal", std=0.01), "xavier_normal", "kaiming_normal"]),
}


def timed(**kwargs):
    start = time.perf_counter()
    results = run_experiment(progress=False, **kwargs)
    return time.perf_counter() - start, results


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for title, kwargs in EXPERIMENTS.items():
        one_by_one, a = timed(batched=False, **kwargs)
        batched, b = timed(batched=True, **kwargs)
        differ = np.round(100 * a.final(), 2) != np.round(100 * b.final(), 2)
        gap = np.nanmax(np.abs(100 * (a.final() - b.final())))
        print(f"\n{title}")
        print(f"  one model at a time: {one_by_one:7.1f} s")
        print(f"  engine (batched):    {batched:7.1f} s")
        print(f"  speed-up:            {one_by_one / batched:7.2f} x")
        print(f"  runs whose final test accuracy differs at 2 decimals of a percent: "
              f"{int(differ.sum())} of {differ.size} (largest difference {gap:.2f} points)")


if __name__ == "__main__":
    main()

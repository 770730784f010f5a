"""Benchmark: the multi-seed engine against training one model at a time.

Runs the same experiments both ways, prints the times and their ratio, and counts the runs whose
final test accuracy differs between the two ways at the reported precision (2 decimals of a
percent): the two compute the same updates but sum in a different order, and over hundreds of
epochs a rounding difference can move a test point across the decision boundary.

It also prints the rate at which each way does its arithmetic (the floating-point operations of
the matrix products of training and evaluation, counted from the layer sizes) beside the rate of
one large matrix product on this machine: the ceiling neither way can pass. Both ways do the same
arithmetic, so the ratio of that ceiling to the one-at-a-time rate bounds the speed-up any engine
could reach without changing the arithmetic. Last, it profiles 10 epochs of the engine and prints
the share of its operations' time spent in the batched matrix products; the rest goes to
element-wise passes over arrays of seeds x examples x units (bias, activation and its derivative,
softmax, optimizer).

    python bench/engine.py            # uses the torch default thread count
    OMP_NUM_THREADS=2 python bench/engine.py
"""

import time

import numpy as np
import torch
import torch.nn as nn
from torch.profiler import profile

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


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """Floating-point operations per second of an ``n x n`` by ``n x n`` float32 matrix product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def training_flops(make_model, data, epochs, seeds, schemes, **_) -> float:
    """Operations of the matrix products of every run: per example, a layer of fan-in m and fan-out
    n costs 2mn forward, 2mn for its weight gradient and 2mn for its input gradient (not for the
    first layer); every epoch also scores the test set, and the last state is scored once more."""
    layers = [(m.in_features, m.out_features) for m in make_model().modules() if isinstance(m, nn.Linear)]
    forward = sum(2 * m * n for m, n in layers)
    backward = forward + sum(2 * m * n for m, n in layers[1:])
    per_run = ((epochs + 1) * (len(data.X_train) + len(data.X_test)) * forward
               + epochs * len(data.X_train) * backward)
    return per_run * len(list(seeds)) * len(schemes)


def timed(**kwargs):
    start = time.perf_counter()
    results = run_experiment(progress=False, **kwargs)
    return time.perf_counter() - start, results


def matmul_share(make_model, data, seeds, schemes, lr, **_) -> float:
    """Fraction of the engine's CPU time spent in ``aten::bmm`` over 10 epochs of the first scheme."""
    with profile() as prof:
        run_experiment(make_model, schemes[:1], seeds, data, epochs=10, lr=lr, progress=False)
    events = prof.key_averages()
    return sum(e.self_cpu_time_total for e in events if e.key == "aten::bmm") / sum(
        e.self_cpu_time_total for e in events)


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{torch.backends.cpu.get_cpu_capability()} kernels")
    ceiling = matmul_rate()
    print(f"one 2048 x 2048 matrix product: {ceiling / 1e9:.0f} GFLOP/s")
    for title, kwargs in EXPERIMENTS.items():
        one_by_one, a = timed(batched=False, **kwargs)
        batched, b = timed(batched=True, **kwargs)
        differ = np.round(100 * a.final(), 2) != np.round(100 * b.final(), 2)
        gap = np.nanmax(np.abs(100 * (a.final() - b.final())))
        print(f"\n{title}")
        print(f"  one model at a time: {one_by_one:7.1f} s")
        print(f"  engine (batched):    {batched:7.1f} s")
        print(f"  speed-up:            {one_by_one / batched:7.2f} x")
        flops = training_flops(**kwargs)
        for way, seconds in (("one model at a time", one_by_one), ("engine (batched)", batched)):
            rate = flops / seconds
            print(f"  {way + ':':20s} {rate / 1e9:5.0f} GFLOP/s, {100 * rate / ceiling:3.0f}% of the matrix-product rate")
        print(f"  fastest possible:    {flops / ceiling:7.1f} s at the matrix-product rate, "
              f"a speed-up of at most {one_by_one * ceiling / flops:.2f} x")
        print(f"  runs whose final test accuracy differs at 2 decimals of a percent: "
              f"{int(differ.sum())} of {differ.size} (largest difference {gap:.2f} points)")
        print(f"  engine's operations: time in batched matrix products {100 * matmul_share(**kwargs):.0f}%")


if __name__ == "__main__":
    main()

r"""Checks for the depth lesson: counting dead ReLU units.

A layer's pre-activations on a batch form a matrix :math:`z` of shape ``(examples, units)``.
Unit :math:`j` is *dead* on the batch when :math:`z_{ij} \le 0` for every example :math:`i`: its
ReLU outputs 0 and has slope 0 everywhere, so it passes nothing forward and no gradient reaches
its weights. The dead fraction is

.. math:: \frac{1}{n}\sum_{j=1}^{n} \mathbb{1}\Big[\max_i z_{ij} \le 0\Big].

:func:`check_dead_fraction` runs a learner's ``dead_fraction(z)`` on hand-built batches and, when
an answer is off, says which usual slip it matches: counting entries instead of units, using
rows (examples) instead of columns (units), ``< 0`` where ``<= 0`` belongs, or a unit that is 0
for *some* example instead of for all of them.
"""

import torch

from ..probes import dead_fraction

CASES = [
    ("three units, the first negative for both examples",
     torch.tensor([[-1.0, 2.0, 0.5], [-0.5, -1.0, 3.0]])),
    ("a unit that is exactly 0 for every example (dead: relu'(0) = 0 in PyTorch)",
     torch.tensor([[0.0, 1.0], [0.0, -2.0], [0.0, -1.0]])),
    ("four units of which two are negative for all three examples",
     torch.tensor([[-1.0, -2.0, 1.0, -1.0], [-3.0, -1.0, -1.0, 2.0], [-0.1, -5.0, -2.0, -4.0]])),
    ("no dead unit", torch.tensor([[1.0, -1.0], [-1.0, 1.0]])),
]
"""Hand-built batches ``(description, z)`` of shape ``(examples, units)``."""

MISTAKES = {
    "the fraction of entries <= 0 (entries counted, not units)": lambda z: float((z <= 0).double().mean()),
    "the fraction of examples (rows) that are <= 0 for every unit; units are the columns":
        lambda z: float((z <= 0).all(dim=1).double().mean()),
    "'< 0' where '<= 0' belongs (a unit stuck at exactly 0 is dead too)":
        lambda z: float((z < 0).all(dim=0).double().mean()),
    "units <= 0 for SOME example instead of for every example":
        lambda z: float((z <= 0).any(dim=0).double().mean()),
    "the number of dead units, not their fraction": lambda z: float((z <= 0).all(dim=0).sum()),
}
"""Slips a learner may make, by description."""


def check_dead_fraction(candidate, *, verbose: bool = True) -> bool:
    r"""Check ``candidate(z)`` against :func:`lessonlib.probes.dead_fraction` on :data:`CASES`.

    ``candidate`` takes a tensor of shape ``(examples, units)`` and returns a float. Prints what
    it found (on the first case that fails: the input, the expected and the returned value, and
    the slip the answers match, if any) and returns True when every case is right to 1e-9.
    """
    if not callable(candidate):
        raise ValueError(f"check_dead_fraction needs a function z -> float. Got {type(candidate).__name__}.")
    for description, z in CASES:
        expected = dead_fraction(z)
        try:
            got = float(candidate(z.clone()))
        except Exception as error:  # the learner's code failed: say where, do not crash the check
            _say(verbose, f"Your function raised {type(error).__name__}: {error} on {description}:\n{z}")
            return False
        if abs(got - expected) > 1e-9:
            message = (f"Not yet. On {description},\nz =\n{z}\nyou returned {got:.4g}; expected "
                       f"{expected:.4g} ({int(round(expected * z.shape[1]))} of {z.shape[1]} units are "
                       f"<= 0 for every example).")
            slips = [name for name, slip in MISTAKES.items()
                     if all(abs(float(candidate(c.clone())) - slip(c)) <= 1e-9 for _, c in CASES)]
            if slips:
                message += f"\nYour answers match {slips[0]}."
            _say(verbose, message)
            return False
    _say(verbose, f"Correct: all {len(CASES)} batches give the right fraction of dead units.")
    return True


def _say(verbose, message):
    if verbose:
        print(message)

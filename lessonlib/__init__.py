"""lessonlib: the plumbing behind the weight-initialization course.

Imports flow one way: ``seed``, ``data`` -> ``models`` -> ``schemes`` -> ``train`` -> ``plots``.
The names most lessons need are re-exported here.
"""

from .data import Split, digits, two_moons
from .models import DigitNN, mlp
from .plots import plot_learning_curves, scheme_color
from .schemes import SCHEMES, Scheme, fans, gain, init_model, make_scheme
from .seed import set_seed
from .train import History, train

__all__ = ["Split", "digits", "two_moons", "DigitNN", "mlp", "plot_learning_curves",
           "scheme_color", "SCHEMES", "Scheme", "fans", "gain", "init_model", "make_scheme",
           "set_seed", "History", "train"]

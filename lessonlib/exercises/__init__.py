"""Checks for the exercises, one module per kind of check, each giving precise feedback.

- :mod:`.init_checks`: a hand-written initializer against a scheme of the registry.
"""

from .init_checks import CHECK_SHAPE, check_init, expected_spread

__all__ = ["CHECK_SHAPE", "check_init", "expected_spread"]

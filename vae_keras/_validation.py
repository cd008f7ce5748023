"""Validators for the numbers users pass to the package's constructors and functions.

One set, used by the models, schedules, builders, losses and evaluation, so that
the same mistake gets the same message wherever it is made. Each returns the
value as a plain Python number and raises a `ValueError` that names the argument,
says what was expected and ends with what was received.
"""

import math
import random

import numpy as np


def _prefix(where):
    return f"{where}: " if where else ""


def _is_whole(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def integer(value, what, where=None, minimum=1, optional=False):
    """A whole number >= `minimum` (1 or 0; Python or NumPy integer) as a Python int.

    With `optional`, None is let through as it is.
    """
    if optional and value is None:
        return None
    if not _is_whole(value) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(
            f"{_prefix(where)}{what} must be a {kind} integer; received {what}={value!r}"
        )
    return int(value)


def number(value, what, where=None, positive=False, non_negative=False):
    """A finite real number (not a bool), optionally > 0 or >= 0; returns a float."""
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{_prefix(where)}{what} must be a number; received {what}={value!r}"
        ) from None
    condition = "positive" if positive else "non-negative" if non_negative else None
    if not math.isfinite(result) or ((positive and result <= 0) or (non_negative and result < 0)):
        wanted = f"finite and {condition}" if condition else "finite"
        raise ValueError(f"{_prefix(where)}{what} must be {wanted}; received {what}={value!r}")
    return result


def seed(value, where=None):
    """`None` or a non-negative integer, as Keras and NumPy take a seed."""
    if value is None:
        return None
    if not _is_whole(value) or value < 0:
        raise ValueError(
            f"{_prefix(where)}seed must be None or a non-negative integer; received seed={value!r}"
        )
    return int(value)


def seed_or_draw(value, where=None):
    """A checked seed; for None one drawn from Python's `random`, as `SeedGenerator(None)` does.

    `keras.utils.set_random_seed` fixes Python's `random`; NumPy's global state is not used.
    """
    return random.randint(1, 10**9) if value is None else seed(value, where)


def shape(value, what, rank=None, where=None):
    """A tuple of positive integers (`rank` of them, if given), e.g. an image shape."""
    try:
        dims = tuple(value)
    except TypeError:
        dims = None
    if (
        dims is None
        or not dims
        or (rank is not None and len(dims) != rank)
        or not all(_is_whole(d) and d >= 1 for d in dims)
    ):
        count = f"{rank} " if rank is not None else ""
        raise ValueError(
            f"{_prefix(where)}{what} must be a tuple of {count}positive integers; "
            f"received {what}={value!r}"
        )
    return tuple(int(d) for d in dims)

"""The registry and the comparisons that every exercise check uses."""

import numpy as np

_CHECKS = {}


class NotYet(AssertionError):
    """An answer that is not right yet; its message is a hint that does not give the answer."""


def exercise(name):
    """Registers `function(answer) -> confirmation` as the check of the exercise `name`."""

    def register(function):
        if name in _CHECKS:
            raise ValueError(f"exercise: {name!r} is registered twice")
        _CHECKS[name] = function
        return function

    return register


def names():
    """The names of all registered exercises, sorted."""
    return sorted(_CHECKS)


def check(name, answer):
    """Checks a learner's answer to the exercise `name`; prints a confirmation when it is right.

    Args:
        name: The exercise, `"NN.short_name"` (NN: the notebook's number).
        answer: What the exercise asks for (a function, a value, a layer...).

    Raises:
        NotYet: The answer is not right yet. The message says what to look at, not the answer.
        KeyError: There is no exercise of that name.
    """
    if name not in _CHECKS:
        raise KeyError(f"check: no exercise named {name!r}; the exercises are {names()}")
    if answer is None or answer is Ellipsis:
        raise NotYet(f"{name}: not answered yet; replace the `...` with your code")
    try:
        confirmation = _CHECKS[name](answer)
    except NotYet as error:
        raise NotYet(f"{name}: {error}") from None
    except Exception as error:  # the learner's code raised: report it as a hint
        raise NotYet(
            f"{name}: running your answer raised {type(error).__name__}: {error}"
        ) from error
    print(f"\N{CHECK MARK} {name}: {confirmation}")


def as_array(value, what="your answer"):
    """`value` (a backend tensor, NumPy array or number) as a float64 NumPy array."""
    if value is None or value is Ellipsis:
        raise NotYet(f"{what} is still `{value!r}`: return or assign a value")
    try:
        import keras

        value = keras.ops.convert_to_numpy(value)
    except Exception:  # lists, NumPy arrays and numbers go straight to NumPy
        pass
    try:
        return np.asarray(value, dtype="float64")
    except (TypeError, ValueError) as error:
        raise NotYet(f"{what} is not a number or an array of numbers ({error})") from None


def tensors(*arrays):
    """`arrays` as float32 backend tensors, the way a model hands them to a learner's function."""
    import keras

    return [keras.ops.convert_to_tensor(a, "float32") for a in arrays]


def expect_close(
    value, reference, hint, rtol=1e-4, atol=1e-5, what="your answer", shapes=None, mistakes=()
):
    """Raises `NotYet(hint)` unless `value` equals `reference` within the tolerances.

    The checks run in this order, each with its own message: the shapes that typical
    mistakes give (`shapes`: shape -> hint), the shape, finiteness, the values that typical
    mistakes give (`mistakes`: pairs of a wrong value and its hint, compared with the same
    tolerances; one of another shape is skipped), and last the values themselves.
    """
    value, reference = as_array(value, what), as_array(reference)
    if shapes and value.shape in shapes:
        raise NotYet(shapes[value.shape])
    if value.shape != reference.shape:
        raise NotYet(f"{what} has shape {value.shape}; expected shape {reference.shape}")
    if not np.all(np.isfinite(value)):
        raise NotYet(f"{what} holds NaN or infinite values; {hint}")
    for wrong, mistake in mistakes:
        wrong = as_array(wrong, "a typical mistake")
        if wrong.shape == value.shape and np.allclose(value, wrong, rtol=rtol, atol=atol):
            raise NotYet(mistake)
    if not np.allclose(value, reference, rtol=rtol, atol=atol):
        raise NotYet(hint)

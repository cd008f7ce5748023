"""Checks for the exercises at the end of the notebooks.

Each exercise has a check: `check(name, answer)` prints a one-line confirmation when the answer
is right and raises `NotYet` with a hint when it is not. The checks compare the learner's answer
with the package's own functions (the KL, the likelihoods, `evaluation.log_likelihood`...), on
inputs of their own, so an answer that only fits the notebook's numbers does not pass.

Instructors: `python -m vae_keras.exercises OUT_DIR [NOTEBOOK ...]` writes the student version
of the notebooks (each solution replaced by `...`, the outputs of those cells cleared).

Example:

>>> import vae_keras as vk
>>> "01.kl_two_gaussians" in vk.exercises.names()
True
"""

from vae_keras.exercises import nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08  # noqa: F401
from vae_keras.exercises._core import NotYet, check, exercise, expect_close, names
from vae_keras.exercises.student import student_version, write_student_versions

__all__ = [
    "NotYet",
    "check",
    "exercise",
    "expect_close",
    "names",
    "student_version",
    "write_student_versions",
]

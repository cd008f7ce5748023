"""Silencing file descriptor 2, for TensorFlow's C++ start-up lines (no Keras import here)."""

import contextlib
import os


@contextlib.contextmanager
def quiet_stderr():
    """Sends the process's standard error (file descriptor 2) to `/dev/null`, then restores it.

    TensorFlow's C++ runtime writes start-up lines (oneDNN, "no CUDA driver found") straight to
    file descriptor 2, whatever `TF_CPP_MIN_LOG_LEVEL` says, so redirecting Python's
    `sys.stderr` does not catch them. Python-level warnings raised inside the block are lost too.

    Example:

    >>> import os
    >>> with quiet_stderr():
    ...     _ = os.write(2, b"not shown")
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

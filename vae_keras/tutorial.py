"""Small helpers that keep the tutorial notebooks' cells about VAEs.

Each notebook used to open with 60-85 lines of setup; what is left of it lives here:
quiet logs, a training callback that prints one line every few epochs, a Markdown table, the
held-out negative ELBO, a switch for writing files into the repository, and running one cell's
code under every Keras backend.

None of this is needed to use `vae_keras` in your own models.
"""

import linecache
import logging
import os
import subprocess
import sys
import warnings

import keras

from vae_keras import _validation, datasets
from vae_keras._quiet import quiet_stderr

__all__ = [
    "setup",
    "load_data",
    "quiet_stderr",
    "quiet_logs",
    "PrintEvery",
    "markdown_table",
    "show_table",
    "held_out",
    "write_assets",
    "cell_source",
    "notebook_cell",
    "run_on_backends",
]

WRITE_ASSETS_VARIABLE = "VAE_KERAS_WRITE_ASSETS"


def _short_warning(message, category, *args, **kwargs):
    return f"{category.__name__}: {message}\n"


def quiet_logs():
    """Prints warnings as `Category: message` and shows only TensorFlow's errors.

    Without this, a warning is printed with the path and line of the file that raised it (a
    machine path in a committed output), and TensorFlow's Python logger reports every function
    it traces again, which is expected when a notebook builds several models.

    Example:

    >>> import warnings
    >>> quiet_logs()
    >>> warnings.formatwarning("offline split", UserWarning, "/some/file.py", 3)
    'UserWarning: offline split\\n'
    """
    warnings.formatwarning = _short_warning
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def setup(seed):
    """The one call a notebook's setup cell makes: quiet logs, seeds, figures inline.

    Warnings are printed without file paths and TensorFlow's retracing notices are hidden
    (`quiet_logs`), Python's, NumPy's and the backend's random generators are seeded
    (`keras.utils.set_random_seed`), and in IPython figures are drawn inline. TensorFlow's
    C++ start-up lines are already kept out of a Jupyter notebook by `import vae_keras`.

    Args:
        seed: The seed, a non-negative integer.

    Example:

    >>> setup(1234)  # doctest: +ELLIPSIS
    Keras ... on ..., vae_keras ...; seed 1234
    """
    from vae_keras import __version__

    seed = _validation.integer(seed, "seed", "setup", minimum=0)
    quiet_logs()
    keras.utils.set_random_seed(seed)
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    if shell is not None and "ipykernel" in sys.modules:
        shell.run_line_magic("matplotlib", "inline")
    print(
        f"Keras {keras.__version__} on {keras.backend.backend()}, vae_keras {__version__}; seed {seed}"
    )


_LOADERS = {
    "mnist": ("MNIST", "load_mnist"),
    "fashion_mnist": ("Fashion-MNIST", "load_fashion_mnist"),
}


def load_data(name="mnist", n_train=None):
    """A dataset as the notebooks use it, with one line saying what was loaded.

    Images become float32 arrays of shape `(n, 28, 28, 1)` in [0, 1]. When only MNIST's
    official test split is available offline (see `vae_keras.datasets`), the loader's warning
    is part of the printed line instead of a separate message on standard error.

    Args:
        name: `"mnist"` or `"fashion_mnist"`.
        n_train: Keep only the first `n_train` training images (quick runs); `None`: all.

    Returns:
        `((x_train, y_train), (x_test, y_test))`.
    """
    if name not in _LOADERS:
        raise ValueError(
            f"load_data: name must be one of {sorted(_LOADERS)}; received name={name!r}"
        )
    n_train = _validation.integer(n_train, "n_train", "load_data", optional=True)
    title, loader = _LOADERS[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        (x_train, y_train), (x_test, y_test) = getattr(datasets, loader)()
    x_train, x_test = ((x.astype("float32") / 255.0)[..., None] for x in (x_train, x_test))
    line = f"{title}: {len(x_train):,} training and {len(x_test):,} test images"
    if n_train is not None and n_train < len(x_train):
        x_train, y_train = x_train[:n_train], y_train[:n_train]
        line += f", of which the first {n_train:,} training images are used"
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    print(line + "".join(f" ({note})" for note in notes))
    return (x_train, y_train), (x_test, y_test)


class PrintEvery(keras.callbacks.Callback):
    """Prints one line of losses every `n` epochs and after the last one.

    With `fit(..., verbose=0)` this keeps a notebook's training log to a few lines, while the
    full curves stay in the `History` that `fit` returns.

    Args:
        n: Print after every `n`-th epoch (and after the last).

    Example:

    >>> callback = PrintEvery(2)
    >>> callback.set_params({"epochs": 3})
    >>> for epoch in range(3):
    ...     callback.on_epoch_end(epoch, {"loss": 10.0 - epoch, "val_loss": 11.0})
    epoch   2/3: loss 9.00 (val 11.00)
    epoch   3/3: loss 8.00 (val 11.00)
    """

    NAMES = {"loss": "loss", "reconstruction_loss": "reconstruction", "kl_loss": "KL"}

    def __init__(self, n):
        super().__init__()
        self.n = _validation.integer(n, "n", "PrintEvery")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        epochs = self.params["epochs"]
        if (epoch + 1) % self.n and epoch + 1 < epochs:
            return
        parts = []
        for key, name in self.NAMES.items():
            if key in logs:
                val = f" (val {logs['val_' + key]:.2f})" if "val_" + key in logs else ""
                parts.append(f"{name} {logs[key]:.2f}{val}")
        print(f"epoch {epoch + 1:3d}/{epochs}: " + ", ".join(parts))


def markdown_table(header, rows, digits=2):
    """A Markdown table as text; floats are rounded to `digits` decimals, with thousands commas.

    Args:
        header: Column titles.
        rows: Sequences of cells, each as long as `header`.
        digits: Decimals for float cells; other cells are printed with `str`.

    Returns:
        The table, one line per row.

    Example:

    >>> print(markdown_table(["model", "nats"], [("VAE", 157.5), ("CVAE", 1234.567)]))
    | model | nats |
    | --- | --- |
    | VAE | 157.50 |
    | CVAE | 1,234.57 |
    """
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"markdown_table: every row needs {len(header)} cells; received {row}")
        cells = [f"{v:,.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def show_table(header, rows, digits=2):
    """Displays `markdown_table(header, rows, digits)` as rendered Markdown in a notebook."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows, digits)))


def held_out(model, x, batch_size=500):
    """Negative ELBO and its two terms, in nats per image, on held-out data.

    One `evaluate` pass with one `z` per image, so the negative ELBO is a one-sample Monte
    Carlo estimate. It is computed as reconstruction + KL, the true bound, whatever `beta`
    the model was trained with.

    Args:
        model: A compiled `vk.VAE` or `vk.CVAE`.
        x: Images, or `[images, labels]` for a CVAE.
        batch_size: Images per `evaluate` batch.

    Returns:
        A dict with the keys `"negative ELBO"`, `"reconstruction"` and `"KL"`.
    """
    logs = model.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
    rec, kl = logs["reconstruction_loss"], logs["kl_loss"]
    return {"negative ELBO": rec + kl, "reconstruction": rec, "KL": kl}


def write_assets():
    """Whether this run may write files into the repository (figures, models for the website).

    True only when the environment variable `VAE_KERAS_WRITE_ASSETS` is `1` and quick mode
    (`VAE_KERAS_QUICK=1`) is off, so that running a notebook leaves a clone unchanged unless
    asked to refresh those files.

    Example:

    >>> import os
    >>> os.environ.pop("VAE_KERAS_WRITE_ASSETS", None) and None
    >>> write_assets()
    False
    """
    return os.environ.get(WRITE_ASSETS_VARIABLE) == "1" and os.environ.get("VAE_KERAS_QUICK") != "1"


def cell_source(obj):
    """The whole source of the notebook cell (or file) in which a function or class was defined.

    IPython registers every executed cell with Python's `linecache`, so a function's code
    object knows its cell; for a class, its first method is used.

    Args:
        obj: A function, a method, or a class with at least one method defined in Python.

    Returns:
        The source text.
    """
    function = obj
    if isinstance(obj, type):
        methods = (value for value in vars(obj).values() if hasattr(value, "__code__"))
        function = next(methods, None)
        if function is None:
            raise ValueError(f"cell_source: {obj.__name__} defines no method; received {obj}")
    code = getattr(function, "__code__", None)
    if code is None:
        raise ValueError(f"cell_source: expected a function or a class; received {obj!r}")
    lines = linecache.getlines(code.co_filename)
    if not lines:
        raise ValueError(f"cell_source: the source of {obj!r} is not available")
    return "".join(lines)


def notebook_cell(path, tag):
    """The source of the one code cell of a notebook file that carries the tag `tag`.

    Lets a notebook reuse a cell of another one as it is committed, rather than a copy of it.

    Args:
        path: The `.ipynb` file.
        tag: A cell tag (in the cell's metadata, as JupyterLab's property inspector sets it).

    Returns:
        The cell's source text.
    """
    import json

    with open(path, encoding="utf-8") as handle:
        cells = json.load(handle)["cells"]
    found = [
        cell
        for cell in cells
        if cell["cell_type"] == "code" and tag in cell.get("metadata", {}).get("tags", [])
    ]
    if len(found) != 1:
        raise ValueError(
            f"notebook_cell: expected one code cell tagged {tag!r} in {path}; received {len(found)}"
        )
    source = found[0]["source"]
    return "".join(source) if isinstance(source, list) else source


def run_on_backends(script, backends=("tensorflow", "jax", "torch"), cwd=None, timeout=600):
    """Runs a Python script once per Keras backend, each in a fresh process.

    The backend must be chosen before Keras is imported, so each run is a new interpreter with
    `KERAS_BACKEND` set. A backend whose package is not installed is reported, not run.

    Args:
        script: Python source to run.
        backends: Keras backend names.
        cwd: Working directory of the runs (default: the current one).
        timeout: Seconds allowed per run.

    Returns:
        A dict from backend name to the run's standard output (stripped), or to a one-line
        explanation when the run failed or the backend is missing.

    Example:

    >>> outputs = run_on_backends("import os; print(os.environ['KERAS_BACKEND'])", ["numpy"])
    >>> outputs["numpy"]
    'numpy'
    """
    import importlib.util

    outputs = {}
    for backend in backends:  # each backend's package has the backend's name
        if importlib.util.find_spec(backend) is None:
            outputs[backend] = f"not installed here (pip install {backend})"
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-c", script]
        result = subprocess.run(  # a failed run is reported below, not raised
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            last = [line for line in result.stderr.splitlines() if line.strip()][-1:]
            outputs[backend] = f"failed (exit code {result.returncode}): {' '.join(last)}"
        else:
            outputs[backend] = result.stdout.strip()
    return outputs

"""Callbacks that show a VAE train as it happens, and stop it when it diverges.

- `ImageSnapshots` saves a grid of samples from the prior and a grid of
  reconstructions of fixed held-out images every N epochs, as PNG files and as
  TensorBoard image summaries.
- `LatentStatistics` adds the KL of every latent dimension (`kl_dim_0`, ...)
  and the number of active units (`active_units`) of a held-out batch to the
  epoch logs, so `History`, `CSVLogger`, the progress bar and
  `keras.callbacks.TensorBoard` show posterior collapse while the model trains.
- `NaNGuard` stops training at the first check that finds a non-finite loss
  term or weight, puts back the last weights (and optimizer state) it saw
  finite, and says which quantity became non-finite first and the likeliest
  cause.

Callbacks run in the order of the `callbacks` list and share one `logs`
dictionary: put `NaNGuard` first (so no checkpoint sees diverged weights) and
`LatentStatistics` before `CSVLogger`, `TensorBoard` and `ModelCheckpoint`
(so they see its keys). `History` and the progress bar always come last.

All three work with `vk.VAE` and `vk.CVAE` on TensorFlow, JAX and PyTorch.
Writing TensorBoard summaries needs TensorFlow installed (on any backend).
"""

import math
import os

import keras
import numpy as np
from keras import ops

from vae_keras import _validation, evaluation
from vae_keras.models import CVAE, VAE

__all__ = ["ImageSnapshots", "LatentStatistics", "NaNGuard"]

# exp(x) overflows float32 above this.
_FLOAT32_EXP_LIMIT = math.log(np.finfo("float32").max)


def _check_model(model, where):
    if not isinstance(model, (VAE, CVAE)):
        raise TypeError(
            f"{where} works with a vk.VAE or vk.CVAE; received model of type {type(model).__name__}"
        )


def _take(x, n, start=0):
    """Examples start to start + n of images or of [images, condition(, mask)]."""
    if isinstance(x, (list, tuple)):
        return [np.asarray(part)[start : start + n] for part in x]
    return np.asarray(x)[start : start + n]


def _check_data(x, where):
    """`x` as `fit` takes it: images, `[images, condition]` or `[images, condition, mask]`."""
    images = x[0] if isinstance(x, (list, tuple)) else x
    if isinstance(x, (list, tuple)) and len(x) not in (2, 3):
        raise ValueError(
            f"{where}: x must be images, [images, condition] or [images, condition, mask]; "
            f"received a sequence of {len(x)} items"
        )
    if not hasattr(images, "shape") or len(np.shape(images)) < 2:
        raise ValueError(
            f"{where}: x must hold NumPy-like images of shape (n, height, width, channels); "
            f"received {type(images).__name__} of shape {np.shape(images)}"
        )
    if np.shape(images)[0] == 0:
        raise ValueError(f"{where}: x must hold at least one image; received 0 images")


def _reconstruct(model, x):
    """`(z_mean, z_log_var, mean reconstruction)` of `x` as NumPy (the mask, if any, unused)."""
    z_mean, z_log_var = model.encode(x)
    decoded = model.decode([z_mean, x[1]] if model.conditional else z_mean)
    return tuple(ops.convert_to_numpy(t) for t in (z_mean, z_log_var, decoded))


# ----------------------------------------------------------------- image grids
def tile_images(images, n_cols, zoom=1, padding=1):
    """Tiles images into one array, row by row, on a white background.

    Args:
        images: Array of shape `(n, height, width, channels)` with 1 or 3
            channels, values in [0, 1].
        n_cols: Images per row.
        zoom: Integer upscaling factor (nearest neighbour), for small images.
        padding: Pixels of white between images (before zooming).

    Returns:
        A float32 array of shape `(rows, cols, channels)` in [0, 1].

    Example:

    >>> import numpy as np
    >>> from vae_keras.callbacks import tile_images
    >>> tile_images(np.zeros((6, 28, 28, 1)), n_cols=3).shape
    (59, 88, 1)
    """
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "tile_images: expected images of shape (n, height, width, 1 or 3); "
            f"received shape {images.shape}"
        )
    n_cols = _validation.positive_int(n_cols, "n_cols", "tile_images")
    zoom = _validation.positive_int(zoom, "zoom", "tile_images")
    n, height, width, channels = images.shape
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    grid = np.ones(
        (
            n_rows * (height + padding) + padding,
            n_cols * (width + padding) + padding,
            channels,
        ),
        dtype="float32",
    )
    for i in range(n):
        row, col = divmod(i, n_cols)
        top = padding + row * (height + padding)
        left = padding + col * (width + padding)
        grid[top : top + height, left : left + width] = images[i]
    if zoom > 1:
        grid = np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1)
    return grid


def _save_png(grid, path):
    from PIL import Image  # installed with matplotlib

    pixels = np.round(grid * 255.0).astype("uint8")
    if pixels.shape[-1] == 1:
        Image.fromarray(pixels[..., 0]).save(path)  # mode L
    else:
        Image.fromarray(pixels).save(path)  # mode RGB


def _summary_writer(log_dir, where):
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(
            f"{where}: writing TensorBoard summaries needs TensorFlow installed (tf.summary "
            "writes the event files, on any Keras backend); install tensorflow or leave "
            f"log_dir out; received log_dir={log_dir!r}"
        ) from None
    return tf.summary.create_file_writer(os.path.join(os.fspath(log_dir), "train"))


class ImageSnapshots(keras.callbacks.Callback):
    """Saves samples from the prior and reconstructions every N epochs.

    Two grids per snapshot: `samples`, decoded from the same draws of N(0, I)
    every time (for a CVAE one per label, cycling through the classes), so
    that the grids of successive epochs can be compared; and
    `reconstructions`, the first `num_images` images of `x` in the odd rows
    with their mean reconstructions `decoder(z_mean)` in the row below. They
    are written as `samples_epoch_0005.png` and
    `reconstructions_epoch_0005.png` into `directory`, and as image summaries
    named `samples` and `reconstructions` at step `epoch` into
    `<log_dir>/train`, the folder where `keras.callbacks.TensorBoard(log_dir)`
    writes its training scalars, so TensorBoard shows both side by side.

    Args:
        x: Held-out images (for a CVAE `[images, labels]`), NumPy-like, in the
            model's input range.
        directory: Folder for the PNG files (created if missing), or `None`.
        log_dir: TensorBoard log folder, or a `keras.callbacks.TensorBoard`
            instance whose `log_dir` is used, or `None`. Needs TensorFlow
            installed; works on every Keras backend.
        every_n_epochs: Snapshot after every N-th epoch (and never in between).
        num_samples: Images drawn from the prior per snapshot.
        num_images: Held-out images reconstructed per snapshot.
        n_cols: Images per row of the grids.
        zoom: Integer upscaling of the grids (nearest neighbour).
        seed: Seed of the prior draws (fixed for the whole training).

    Example:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> folder = tempfile.mkdtemp()
    >>> snapshots = vk.callbacks.ImageSnapshots(x[:8], directory=folder, every_n_epochs=2)
    >>> history = vae.fit(x, epochs=4, batch_size=32, verbose=0, callbacks=[snapshots])
    >>> sorted(os.path.basename(path) for path in snapshots.written)  # doctest: +NORMALIZE_WHITESPACE
    ['reconstructions_epoch_0002.png', 'reconstructions_epoch_0004.png',
     'samples_epoch_0002.png', 'samples_epoch_0004.png']
    """

    def __init__(
        self,
        x,
        directory=None,
        log_dir=None,
        every_n_epochs=1,
        num_samples=16,
        num_images=8,
        n_cols=8,
        zoom=1,
        seed=0,
    ):
        super().__init__()
        where = "ImageSnapshots"
        _check_data(x, where)
        if isinstance(log_dir, keras.callbacks.TensorBoard):
            log_dir = log_dir.log_dir
        if directory is None and log_dir is None:
            raise ValueError(
                f"{where}: give a directory for PNG files, a TensorBoard log_dir, or both; "
                "received directory=None, log_dir=None"
            )
        self.every_n_epochs = _validation.positive_int(every_n_epochs, "every_n_epochs", where)
        self.num_samples = _validation.positive_int(num_samples, "num_samples", where)
        self.num_images = _validation.positive_int(num_images, "num_images", where)
        self.n_cols = _validation.positive_int(n_cols, "n_cols", where)
        self.zoom = _validation.positive_int(zoom, "zoom", where)
        self.x = _take(x, self.num_images)
        self.directory = None if directory is None else os.fspath(directory)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.seed = _validation.seed(seed, where)
        self.written = []  # paths of the PNG files written, in order
        self._writer = None
        if self.log_dir is not None:
            self._writer = _summary_writer(self.log_dir, where)

    def set_model(self, model):
        _check_model(model, "ImageSnapshots")
        super().set_model(model)

    def grids(self):
        """The two grids for the model's current weights.

        Returns:
            A dict `{"samples": array, "reconstructions": array}` of float32
            arrays of shape `(rows, cols, channels)` in [0, 1].
        """
        model = self.model
        images = np.asarray(self.x[0] if model.conditional else self.x, "float32")
        # The same prior draws every time: z from the model's prior (p(z | c) for a
        # CVAE with a prior network), one label each cycling through the classes,
        # or the conditions of the first examples, cycled.
        cycle = np.arange(self.num_samples)
        if model.conditional and model.num_classes is not None:
            samples = model.generate(cycle % model.num_classes, seed=self.seed)
        elif model.conditional:
            conditions = np.asarray(self.x[1])
            samples = model.generate(conditions[cycle % len(conditions)], seed=self.seed)
        else:
            samples = model.generate(self.num_samples, seed=self.seed)
        reconstructions = _reconstruct(model, self.x)[2]
        # Originals and reconstructions in alternating rows of n_cols images.
        rows = []
        for start in range(0, images.shape[0], self.n_cols):
            rows.append(images[start : start + self.n_cols])
            rows.append(reconstructions[start : start + self.n_cols])
        width = min(self.n_cols, images.shape[0])
        padded = []
        for row in rows:
            if row.shape[0] < width:  # a short last pair of rows: pad with white
                fill = np.ones((width - row.shape[0],) + row.shape[1:], "float32")
                row = np.concatenate([row, fill])
            padded.append(row)
        pairs = np.concatenate(padded)
        return {
            "samples": tile_images(samples, self.n_cols, zoom=self.zoom),
            "reconstructions": tile_images(pairs, width, zoom=self.zoom),
        }

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        grids = self.grids()
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
            for name, grid in grids.items():
                path = os.path.join(self.directory, f"{name}_epoch_{epoch + 1:04d}.png")
                _save_png(grid, path)
                self.written.append(path)
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default():
                for name, grid in grids.items():
                    tf.summary.image(name, grid[None], step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


# ------------------------------------------------------------ latent statistics
class LatentStatistics(keras.callbacks.Callback):
    """Adds the per-dimension KL and the active units of a held-out batch to the logs.

    At the end of every epoch, with the model's current weights, the encoder
    runs once on `x` and the callback adds to the epoch's `logs`:

    - `kl_dim_0`, `kl_dim_1`, ...: the mean KL(q(z_j | x) || N(0, 1)) of each
      latent dimension j over `x`, in nats (their sum is the KL term of the
      ELBO for these images), as `vae_keras.evaluation.kl_per_dimension`;
    - `active_units`: the number of dimensions whose posterior mean varies
      over `x` by more than `threshold` (Burda et al., 2016), as
      `vae_keras.evaluation.active_units`.

    A dimension whose KL falls to about 0 has collapsed onto the prior: the
    decoder no longer reads it. Callbacks that come after this one in the
    `callbacks` list (`CSVLogger`, `keras.callbacks.TensorBoard`, where the
    values appear as scalars `epoch_kl_dim_0`, ...; `ModelCheckpoint`,
    `EarlyStopping`), the `History` and the progress bar see the new keys.

    Args:
        x: Held-out images (for a CVAE `[images, labels]`), NumPy-like. A few
            hundred images are plenty; the encoder runs on all of them.
        threshold: Variance of the posterior mean above which a unit counts
            as active.
        batch_size: Images per encoder call; `None` means all at once (up to
            4096).

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=3), vk.build_mlp_decoder(latent_dim=3))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> statistics = vk.callbacks.LatentStatistics(x[:32])
    >>> history = vae.fit(x, epochs=1, batch_size=32, verbose=0, callbacks=[statistics])
    >>> sorted(key for key in history.history if key.startswith(("kl_dim", "active")))
    ['active_units', 'kl_dim_0', 'kl_dim_1', 'kl_dim_2']
    """

    def __init__(self, x, threshold=0.01, batch_size=None):
        super().__init__()
        _check_data(x, "LatentStatistics")
        threshold = _validation.number(
            threshold, "threshold", "LatentStatistics", non_negative=True
        )
        if batch_size is not None:
            batch_size = _validation.positive_int(batch_size, "batch_size", "LatentStatistics")
        self.x = x
        self.threshold = threshold
        self.batch_size = batch_size

    def set_model(self, model):
        _check_model(model, "LatentStatistics")
        super().set_model(model)

    def statistics(self):
        """The values added to the logs, for the model's current weights.

        Returns:
            A dict with `kl_dim_0`, ... (floats, nats) and `active_units` (int).
        """
        kl = evaluation.kl_per_dimension(self.model, self.x, batch_size=self.batch_size)
        values = {f"kl_dim_{j}": float(value) for j, value in enumerate(kl)}
        variance = evaluation.posterior_mean_variance(self.model, self.x, self.batch_size)
        values["active_units"] = int(np.sum(variance > self.threshold))
        return values

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.statistics())


# ------------------------------------------------------------------- NaN guard
class _Snapshot:
    """Copies of the model's variables and optimizer state at one training step."""

    def __init__(self, model):
        state = getattr(model, "_jax_state", None)
        if (
            keras.backend.backend() == "jax"
            and state
            and not getattr(model, "_jax_state_synced", True)
        ):
            # JAX's fit keeps the current values outside the variables between syncs.
            groups = (
                state["trainable_variables"],
                state["non_trainable_variables"],
                state["optimizer_variables"],
            )
        else:
            groups = (
                model.trainable_variables,
                model.non_trainable_variables,
                model.optimizer.variables,
            )
        self.values = tuple(
            [np.array(ops.convert_to_numpy(value), copy=True) for value in group]
            for group in groups
        )
        iterations = [
            i for i, v in enumerate(model.optimizer.variables) if v is model.optimizer.iterations
        ]
        self.step = int(self.values[2][iterations[0]]) if iterations else None
        self.non_finite = [
            variable.path
            for variable, value in zip(model.trainable_variables, self.values[0])
            if not np.all(np.isfinite(value))
        ]

    def restore(self, model):
        if keras.backend.backend() == "jax":
            model.jax_state_sync()
        groups = (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
        )
        for variables, values in zip(groups, self.values):
            for variable, value in zip(variables, values):
                variable.assign(value)


_TERMS = ("reconstruction_loss", "kl_loss", "loss")


def _largest(array):
    array = np.asarray(array, dtype="float64")
    finite = array[np.isfinite(array)]
    return float(np.max(np.abs(finite))) if finite.size else float("nan")


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite step, restores finite weights, says why.

    After every call into the training function (every step on JAX and
    PyTorch; every `steps_per_execution` steps on TensorFlow, 32 by default
    for `vk.VAE`) the guard reads `loss`, `reconstruction_loss` and `kl_loss`
    from the logs and copies the weights and the optimizer state. If a term
    or a weight is NaN or infinite it stops training, puts back the last copy
    that was finite (so a `ModelCheckpoint` that comes after it in the
    `callbacks` list never saves diverged weights, not even as the "best" of
    a first epoch), and prints a diagnosis, kept in `report`:

    - which logged terms were non-finite, and the step window in which the
      first non-finite value appeared (one step where checks run every step);
    - with a diagnosis batch `x`, a replay: from the restored weights and
      optimizer state it trains on `x` one step at a time (at most
      `max_replay_steps`), checking after each step, in this order, the
      encoder's outputs `z_mean` and `z_log_var`, the decoder's output, the
      reconstruction term, the KL term, the total loss and the updated
      weights, and names the first that became non-finite, with the likeliest
      cause (an exploding `z_log_var`, a too-large learning rate or beta, ...).
      Afterwards the restored state is put back again;
    - the learning rate and beta in use.

    Copying the weights at every check costs time proportional to the model's
    size (a few milliseconds per step for the tutorial's models on a CPU).
    Put the guard first in the `callbacks` list.

    Args:
        x: Optional diagnosis batch: images (for a CVAE `[images, labels]`),
            NumPy-like, a few dozen examples from the training data. Without
            it the guard still stops and restores, and reports the logged
            terms.
        max_replay_steps: Most replay steps of the diagnosis.
        verbose: 1 prints the report when it stops training; 0 only keeps it.

    Attributes:
        stopped_step: Optimizer step at which the non-finite value was seen,
            or `None` while training is finite.
        restored_step: Optimizer step of the restored weights.
        first_non_finite: Name of the quantity that became non-finite first in
            the replay (`"z_mean"`, `"z_log_var"`, `"reconstruction"`,
            `"reconstruction_loss"`, `"kl_loss"`, `"loss"`, `"weights"`), or
            `None`.
        report: The diagnosis as text.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> head = vae.encoder.layers[-1]  # the z_log_var head: start it at 100
    >>> head.set_weights([head.get_weights()[0], head.get_weights()[1] + 100.0])
    >>> guard = vk.callbacks.NaNGuard(x[:32], verbose=0)
    >>> history = vae.fit(x, epochs=3, batch_size=32, verbose=0, callbacks=[guard])
    >>> guard.first_non_finite  # exp(100) overflows float32
    'z_log_var'
    >>> guard.stopped_step is not None
    True
    >>> all(np.isfinite(w).all() for w in vae.get_weights())
    True
    """

    def __init__(self, x=None, max_replay_steps=100, verbose=1):
        super().__init__()
        if x is not None:
            _check_data(x, "NaNGuard")
        self.x = x
        self.max_replay_steps = _validation.positive_int(
            max_replay_steps, "max_replay_steps", "NaNGuard"
        )
        if verbose not in (0, 1):
            raise ValueError(f"NaNGuard: verbose must be 0 or 1; received verbose={verbose!r}")
        self.verbose = verbose
        self._snapshot = None
        self._reset()

    def _reset(self):
        self.stopped_step = None
        self.restored_step = None
        self.first_non_finite = None
        self.report = None

    def set_model(self, model):
        if self.x is not None:
            _check_model(model, "NaNGuard")
        super().set_model(model)

    def on_train_begin(self, logs=None):
        self._reset()
        optimizer = self.model.optimizer
        if not optimizer.built:
            # Keras builds it at the first step; the snapshot needs its slots now.
            optimizer.build(self.model.trainable_variables)
        snapshot = _Snapshot(self.model)
        if snapshot.non_finite:
            raise ValueError(
                "NaNGuard: the model's weights are not finite before training starts; "
                f"received non-finite values in {', '.join(snapshot.non_finite)}"
            )
        self._snapshot = snapshot

    def on_train_batch_end(self, batch, logs=None):
        if self.stopped_step is not None:
            return
        logs = logs or {}
        bad_terms = [
            name
            for name in _TERMS
            if name in logs and not np.all(np.isfinite(np.asarray(logs[name], dtype="float64")))
        ]
        snapshot = _Snapshot(self.model)
        if not bad_terms and not snapshot.non_finite:
            self._snapshot = snapshot
            return
        self.model.stop_training = True
        self.stopped_step = snapshot.step
        self.restored_step = self._snapshot.step
        self._snapshot.restore(self.model)
        self.report = self._diagnose(bad_terms, snapshot)
        if self.verbose:
            print(self.report, flush=True)

    # ------------------------------------------------------------ diagnosis
    def _diagnose(self, bad_terms, snapshot):
        model = self.model
        first_bad = self.restored_step + 1 if self.restored_step is not None else None
        if first_bad is not None and first_bad < self.stopped_step:
            window = f"between steps {first_bad} and {self.stopped_step}"
        else:
            window = f"at step {self.stopped_step}"
        if bad_terms:
            found = (
                f"{_join(bad_terms)} {'is' if len(bad_terms) == 1 else 'are'} non-finite "
                f"in the logs (epoch means) after step {self.stopped_step}"
            )
        else:
            found = (
                f"every logged term is finite, but weights are not after step "
                f"{self.stopped_step} ({_join(snapshot.non_finite[:3])}"
                f"{', ...' if len(snapshot.non_finite) > 3 else ''})"
            )
        lines = [
            f"NaNGuard: training stopped: {found}; the first non-finite value came {window}. "
            f"The weights and optimizer state of step {self.restored_step}, the last "
            "finite ones, are restored."
        ]
        learning_rate = _learning_rate(model)
        beta = _beta(model)
        settings = f"learning rate {learning_rate:.3g}"
        if beta is not None:
            settings += f", beta {beta:.3g}"
        if self.x is None:
            lines.append(
                f"Settings: {settings}. Give NaNGuard(x=...) a batch of training images to "
                "find which quantity diverged first."
            )
            return "\n".join(lines)
        finding = self._replay()
        self._snapshot.restore(model)
        self.first_non_finite = finding["name"]
        lines.append(finding["text"])
        lines.append(f"Likeliest cause: {finding['cause']} (with {settings}).")
        return "\n".join(lines)

    def _replay(self):
        """Trains on `x` from the restored state, checking each quantity after each step."""
        model = self.model
        metric_values = [np.array(ops.convert_to_numpy(v)) for v in model.metrics_variables]
        learning_rate = _learning_rate(model)
        previous = None
        try:
            for updates in range(self.max_replay_steps + 1):
                z_mean, z_log_var, reconstruction = _reconstruct(model, self.x)
                for name, value in (("z_mean", z_mean), ("z_log_var", z_log_var)):
                    if not np.all(np.isfinite(value)):
                        return _finding(name, updates, previous, learning_rate)
                if not np.all(np.isfinite(reconstruction)):
                    return _finding("reconstruction", updates, previous, learning_rate)
                current = {"z_mean": _largest(z_mean), "z_log_var": float(np.max(z_log_var))}
                if current["z_log_var"] > _FLOAT32_EXP_LIMIT:
                    return _finding(
                        "z_log_var_overflow", updates, previous, learning_rate, value=current
                    )
                if updates == self.max_replay_steps:
                    break
                try:
                    logs = model.train_on_batch(self.x, return_dict=True)
                except RuntimeError as error:
                    # PyTorch's binary cross-entropy raises on NaN probabilities
                    # instead of returning NaN.
                    if "between 0 and 1" not in str(error):
                        raise
                    return _finding(
                        "reconstruction_loss", updates, current, learning_rate, now=True
                    )
                for name in _TERMS:
                    if name in logs and not np.isfinite(float(logs[name])):
                        # computed with the weights checked above, before this update
                        return _finding(name, updates, current, learning_rate, logs=logs, now=True)
                weights = [ops.convert_to_numpy(w) for w in model.trainable_weights]
                if not all(np.all(np.isfinite(w)) for w in weights):
                    return _finding("weights", updates + 1, current, learning_rate)
                previous = current
        finally:
            for variable, value in zip(model.metrics_variables, metric_values):
                variable.assign(value)
        return {
            "name": None,
            "text": (
                f"Replay on the diagnosis batch: {self.max_replay_steps} steps from the restored "
                "weights stayed finite, so the divergence depends on the training batches."
            ),
            "cause": (
                "a learning rate too large for some training batches, or extreme values in "
                "them; lower the learning rate or clip gradients (clipnorm=1.0)"
            ),
        }


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _learning_rate(model):
    try:
        return float(ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return float("nan")


def _beta(model):
    return float(ops.convert_to_numpy(model.current_beta()))


def _finding(name, updates, before, learning_rate, logs=None, value=None, now=False):
    """Text and likeliest cause for the first non-finite quantity of the replay.

    `updates` is the number of replay updates applied when it was seen; `before`
    holds the largest |z_mean| and z_log_var one update earlier (or, with `now`,
    at the weights the non-finite loss term was computed with).
    """
    lower = (
        f"lower the learning rate (now {learning_rate:.3g}) or clip gradients "
        "(e.g. keras.optimizers.Adam(clipnorm=1.0))"
    )
    largest_log_var = None if before is None else before["z_log_var"]
    context = ""
    if before is not None:
        when = "At those weights" if now else "One update earlier"
        context = (
            f" {when} the largest z_log_var was {largest_log_var:.3g} and the "
            f"largest |z_mean| {before['z_mean']:.3g}."
        )
    exploding = largest_log_var is not None and largest_log_var > 0.5 * _FLOAT32_EXP_LIMIT
    where = f"after {updates} replay update{'s' if updates != 1 else ''}"
    if name in ("z_mean", "z_log_var"):
        text = f"the encoder's output {name} became non-finite first, {where}.{context}"
        cause = f"the encoder's weights diverged; {lower}"
        if name == "z_log_var" and exploding:
            cause = f"an exploding z_log_var; {lower}, or bound z_log_var in the encoder"
    elif name == "z_log_var_overflow":
        name = "z_log_var"
        text = (
            f"z_log_var reached {value['z_log_var']:.3g} {where}, past {_FLOAT32_EXP_LIMIT:.1f} "
            f"where exp(z_log_var) overflows float32.{context}"
        )
        cause = f"an exploding z_log_var; {lower}, or bound z_log_var in the encoder"
    elif name == "reconstruction":
        text = f"the decoder's output became non-finite first, {where}.{context}"
        cause = f"the decoder's weights diverged; {lower}"
    elif name == "reconstruction_loss":
        text = (
            f"the reconstruction term became non-finite first, {where}, while z_mean, "
            f"z_log_var and the mean reconstruction were finite.{context}"
        )
        cause = (
            "an exploding z_log_var (the sampled z = z_mean + exp(z_log_var / 2) * eps "
            f"overflowed); {lower}"
            if exploding
            else f"the decoder diverged on the sampled z; {lower}"
        )
    elif name == "kl_loss":
        text = f"the KL term became non-finite first, {where}.{context}"
        cause = (
            f"an exploding z_log_var (exp(z_log_var) in the KL overflowed); {lower}"
            if exploding
            else f"z_mean or z_log_var so large that the KL overflowed; {lower}"
        )
    elif name == "loss":
        beta = None if logs is None else logs.get("beta")
        text = (
            f"the total loss became non-finite first, {where}, while the reconstruction and "
            f"KL terms were finite.{context}"
        )
        cause = (
            f"beta times the KL term overflowed: beta ({beta:.3g}) is too large"
            if beta is not None and np.isfinite(beta) and beta > 1e6
            else "a regularization loss of the encoder or decoder diverged"
        )
    else:  # weights
        text = (
            f"the weights became non-finite first, {where}, while every loss term was "
            f"finite: the gradients overflowed.{context}"
        )
        cause = f"a learning rate too large; {lower}"
    return {"name": name, "text": "Replay on the diagnosis batch: " + text, "cause": cause}

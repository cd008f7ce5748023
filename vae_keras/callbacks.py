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

import os

import keras
import numpy as np

from vae_keras import _validation, evaluation
from vae_keras._inputs import check_examples, check_model
from vae_keras.guard import NaNGuard, reconstruct

__all__ = ["ImageSnapshots", "LatentStatistics", "NaNGuard"]


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
    n_cols = _validation.integer(n_cols, "n_cols", "tile_images")
    zoom = _validation.integer(zoom, "zoom", "tile_images")
    n, height, width, channels = images.shape
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    cell_height, cell_width = height + padding, width + padding
    grid = np.ones(
        (n_rows * cell_height + padding, n_cols * cell_width + padding, channels), "float32"
    )
    for i in range(n):
        top = padding + (i // n_cols) * cell_height
        left = padding + (i % n_cols) * cell_width
        grid[top : top + height, left : left + width] = images[i]
    if zoom > 1:
        grid = np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1)
    return grid


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
        check_examples(x, where)
        if isinstance(log_dir, keras.callbacks.TensorBoard):
            log_dir = log_dir.log_dir
        if directory is None and log_dir is None:
            raise ValueError(
                f"{where}: give a directory for PNG files, a TensorBoard log_dir, or both; "
                "received directory=None, log_dir=None"
            )
        self.every_n_epochs = _validation.integer(every_n_epochs, "every_n_epochs", where)
        self.num_samples = _validation.integer(num_samples, "num_samples", where)
        self.num_images = _validation.integer(num_images, "num_images", where)
        self.n_cols = _validation.integer(n_cols, "n_cols", where)
        self.zoom = _validation.integer(zoom, "zoom", where)
        # the first images (and their condition and mask)
        self.x = keras.tree.map_structure(lambda part: np.asarray(part)[: self.num_images], x)
        self.directory = None if directory is None else os.fspath(directory)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.seed = _validation.seed(seed, where)
        self.written = []  # paths of the PNG files written, in order
        self._writer = None if self.log_dir is None else _summary_writer(self.log_dir, where)

    def set_model(self, model):
        check_model(model, "ImageSnapshots")
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
        _, _, reconstructions = reconstruct(model, self.x)
        # Originals and reconstructions in alternating rows of n_cols images, a short
        # last pair of rows padded with white.
        width = min(self.n_cols, images.shape[0])
        fill = np.ones((-images.shape[0] % width,) + images.shape[1:], "float32")
        rows = [
            np.concatenate([a, fill]).reshape((-1, width) + a.shape[1:])
            for a in (images, reconstructions)
        ]
        pairs = np.stack(rows, axis=1).reshape((-1,) + images.shape[1:])
        samples = tile_images(samples, self.n_cols, zoom=self.zoom)
        return {"samples": samples, "reconstructions": tile_images(pairs, width, zoom=self.zoom)}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        grids = self.grids()
        if self.directory is not None:
            from PIL import Image  # installed with matplotlib

            os.makedirs(self.directory, exist_ok=True)
            for name, grid in grids.items():
                path = os.path.join(self.directory, f"{name}_epoch_{epoch + 1:04d}.png")
                pixels = np.round(grid * 255.0).astype("uint8")  # mode L or RGB
                Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
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
        where = "LatentStatistics"
        check_examples(x, where)
        self.x = x
        self.threshold = _validation.number(threshold, "threshold", where, non_negative=True)
        self.batch_size = _validation.integer(batch_size, "batch_size", where, optional=True)

    def set_model(self, model):
        check_model(model, "LatentStatistics")
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

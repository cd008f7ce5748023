"""MNIST and Fashion-MNIST loaders that also work offline, from IDX files.

Both loaders return `((x_train, y_train), (x_test, y_test))` with uint8 images
of shape `(n, 28, 28)` and uint8 labels, like `keras.datasets.mnist.load_data()`.

Where the data comes from, in order:

1. `$VAE_KERAS_DATA_DIR/<name>/` when the environment variable
   `VAE_KERAS_DATA_DIR` is set: the four files in their original IDX format
   (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`), gzipped or not. A
   folder holding only the 10,000-image test split (`t10k-*`) is split
   deterministically into 8,000 train / 2,000 test images, every class in both,
   with a warning that says so.
2. (Fashion-MNIST only) `/usr/share/datasets/fashion-mnist/`, where Debian's
   package `dataset-fashion-mnist` installs the official files, when the folder
   of step 1 is not set or does not exist. A named folder that exists but lacks
   the files is an error, never silently skipped.
3. `keras.datasets.<name>.load_data()`, which downloads and caches the data.

Binarized images, for models whose likelihood is the Bernoulli: `binarize`
draws one binary image per grey-level image, and `DynamicBinarization` feeds
`fit` a fresh draw every epoch ("dynamic binarization", as Burda, Grosse &
Salakhutdinov, 2016, trained on MNIST).
"""

import gzip
import os
import warnings

import keras
import numpy as np

from vae_keras import _validation

__all__ = [
    "load_mnist",
    "load_fashion_mnist",
    "read_idx",
    "binarize",
    "DynamicBinarization",
    "DATA_DIR_ENV",
]

DATA_DIR_ENV = "VAE_KERAS_DATA_DIR"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FILES = ", ".join(stem + "[.gz]" for stems in _SPLITS.values() for stem in stems)
TEST_ONLY_TRAIN_SIZE = 8000


def read_idx(path):
    """Reads one IDX file (gzipped or not) of unsigned bytes into a NumPy array.

    Args:
        path: Path of an IDX image file (magic 2051) or label file (magic 2049).

    Returns:
        A uint8 array of shape `(n, rows, cols)` for images or `(n,)` for labels.

    Raises:
        ValueError: if the magic number is not 2049 or 2051, or the file size
            does not match the sizes in its header.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise ValueError(f"{path}: not a valid IDX file (only {len(data)} bytes)")
    magic = int.from_bytes(data[0:4], "big")
    rank = {_LABELS_MAGIC: 1, _IMAGES_MAGIC: 3}.get(magic)
    if rank is None:
        raise ValueError(
            f"{path}: not a valid IDX file: bad magic number {magic} "
            f"(expected {_IMAGES_MAGIC} for images or {_LABELS_MAGIC} for labels)"
        )
    header = 4 + 4 * rank
    if len(data) < header:  # labels have their 8 bytes: checked above
        raise ValueError(f"{path}: not a valid IDX image file (header too short)")
    dims = [int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise ValueError(
            f"{path}: IDX file has the wrong size: its header announces {dims} "
            f"({expected} bytes) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder, stem):
    """The path of the file `stem` or `stem.gz` in `folder`, or None."""
    paths = (os.path.join(folder, stem + ending) for ending in ("", ".gz"))
    return next((path for path in paths if os.path.isfile(path)), None)


def _read_split(folder, split):
    images_stem, labels_stem = _SPLITS[split]
    images, labels = (read_idx(_find(folder, stem)) for stem in (images_stem, labels_stem))
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{folder}: {images_stem} must hold images and {labels_stem} labels; "
            f"got arrays of shapes {images.shape} and {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels in the {split} split"
        )
    return images, labels


def _stratified_split(images, labels, train_size, seed=0):
    """Deterministic split keeping each class's share (largest remainder rounding)."""
    n = labels.shape[0]
    test_size = n - train_size
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * test_size / n
    per_class = np.floor(quotas).astype(int)
    remainder = test_size - per_class.sum()
    order = np.argsort(-(quotas - per_class), kind="stable")
    per_class[order[:remainder]] += 1
    rng = np.random.default_rng(seed)
    test_index = [
        rng.permutation(np.flatnonzero(labels == cls))[:k] for cls, k in zip(classes, per_class)
    ]
    test_mask = np.zeros(n, dtype=bool)
    test_mask[np.concatenate(test_index)] = True
    train_index = rng.permutation(np.flatnonzero(~test_mask))
    test_index = rng.permutation(np.flatnonzero(test_mask))
    return (images[train_index], labels[train_index]), (images[test_index], labels[test_index])


def _sizes(train, test):
    return f"{len(train[1]):,} train / {len(test[1]):,} test images"


def _load_folder(folder, name):
    """Loads a folder of IDX files; returns (data, description) or raises."""
    has_train = all(_find(folder, stem) for stem in _SPLITS["train"])
    has_test = all(_find(folder, stem) for stem in _SPLITS["test"])
    if has_train and has_test:
        train, test = _read_split(folder, "train"), _read_split(folder, "test")
        return (train, test), f"{name} from IDX files in {folder}: {_sizes(train, test)}"
    if has_test:
        images, labels = _read_split(folder, "test")
        train, test = _stratified_split(images, labels, TEST_ONLY_TRAIN_SIZE)
        # Worded without the folder's path: notebooks print this warning, and a
        # machine's absolute path means nothing to their readers.
        description = (
            f"offline {name}: only the official test split ({len(labels):,} images) is "
            f"available; split {len(train[1]):,} train / {len(test[1]):,} test"
        )
        # stacklevel 4: _load_folder <- _load <- load_mnist <- the caller's line
        warnings.warn(description, UserWarning, stacklevel=4)
        return (train, test), description
    raise FileNotFoundError(
        f"{folder} does not hold the {name} files. Expected the IDX files {_FILES} "
        f"(at least the two t10k-* files). Put them there, or unset {DATA_DIR_ENV} "
        f"to download {name} with keras.datasets."
    )


def _load(name, keras_name, extra_folders=(), return_info=False):
    data_dir = os.environ.get(DATA_DIR_ENV)
    env_folder = os.path.join(data_dir, name) if data_dir else None
    installed = [f for f in extra_folders if os.path.isdir(f) and _find(f, _SPLITS["test"][0])]
    # The folder the user named comes first; if it is missing or incomplete and
    # nothing else is installed locally, _load_folder says which files it expected.
    named = env_folder and (os.path.isdir(env_folder) or not installed)
    folder = env_folder if named else next(iter(installed), None)
    if folder is None:
        data, description = _load_keras(name, keras_name)
    else:
        data, description = _load_folder(folder, name)
    if not return_info:
        return data
    (x_train, _), (x_test, _) = data
    source = "keras" if folder is None else "idx"
    sizes = {"n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0])}
    return data, {"source": source, "description": description, **sizes}


def _load_keras(name, keras_name):
    try:
        data = getattr(keras.datasets, keras_name).load_data()
    except Exception as error:  # no network, a broken cache, ...
        raise RuntimeError(
            f"Could not load {name}: keras.datasets.{keras_name}.load_data() failed "
            f"({type(error).__name__}: {error}). Either connect to the internet so Keras can "
            f"download it, or set {DATA_DIR_ENV} to a folder whose '{name}/' subfolder "
            f"holds the IDX files {_FILES}."
        ) from error
    return data, f"{name} from keras.datasets (download cache): {_sizes(*data)}"


def load_mnist(return_info=False):
    """Loads MNIST as `((x_train, y_train), (x_test, y_test))`, uint8.

    Reads `$VAE_KERAS_DATA_DIR/mnist/` when `VAE_KERAS_DATA_DIR` is set (see the
    module docstring), otherwise `keras.datasets.mnist.load_data()`.

    Args:
        return_info: Also return a dict with the `source` (`"idx"` or
            `"keras"`), a one-line `description`, `n_train` and `n_test`.

    Returns:
        The data, and the info dict when `return_info=True`.

    Raises:
        FileNotFoundError: `VAE_KERAS_DATA_DIR` is set but its `mnist/` folder
            lacks the IDX files.
        ValueError: a file there is not valid IDX.
        RuntimeError: no folder is set and the download fails.

    Example:

    >>> import vae_keras as vk
    >>> (x_train, y_train), (x_test, y_test) = vk.datasets.load_mnist()  # doctest: +SKIP
    """
    return _load("mnist", "mnist", return_info=return_info)


def load_fashion_mnist(return_info=False):
    """Loads Fashion-MNIST as `((x_train, y_train), (x_test, y_test))`, uint8.

    Sources in order: `$VAE_KERAS_DATA_DIR/fashion-mnist/`, then
    `/usr/share/datasets/fashion-mnist/` (Debian's `dataset-fashion-mnist`,
    the full 60,000/10,000 set), then `keras.datasets.fashion_mnist`.

    Args:
        return_info: Also return the info dict described in `load_mnist`.
    """
    return _load("fashion-mnist", "fashion_mnist", (DEBIAN_FASHION_MNIST,), return_info)


# ------------------------------------------------------------- binarization
def _unit_interval_images(images, where, min_ndim=1):
    """`images` as a float32 array (of `min_ndim` axes or more), finite and in [0, 1]."""
    array = np.asarray(images)
    if array.dtype.kind not in "fiub" or array.ndim < min_ndim:
        raise ValueError(
            f"{where}: images must be a numeric array with a batch axis ({min_ndim}+ axes); "
            f"received {type(images).__name__} of dtype {array.dtype} and shape {array.shape}"
        )
    array = array.astype("float32")
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{where}: images contain NaN or infinite values")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(
            f"{where}: images must hold intensities in [0, 1] (the probabilities of a 1); "
            f"received values in [{array.min()}, {array.max()}] (divide uint8 images by 255)"
        )
    return array


def _draw(rng, grey):
    """One Bernoulli draw per pixel, with the grey level as the probability of a 1."""
    return (rng.random(grey.shape, dtype="float32") < grey).astype("float32")


def binarize(images, seed=None):
    """One binary image per grey-level image: each pixel is 1 with its intensity as probability.

    Pixel `x_ij` in [0, 1] becomes a Bernoulli(`x_ij`) draw, so the mean of many
    binarizations is the grey-level image. Binarized MNIST, on which the
    Bernoulli likelihood is a true likelihood, is made this way.

    Args:
        images: A NumPy-like array of intensities in [0, 1], any shape.
        seed: Seed of the draws (a NumPy `Generator`); the same seed gives the
            same images. `None` draws a seed from Python's `random` module,
            which `keras.utils.set_random_seed` fixes.

    Returns:
        A float32 NumPy array of the input's shape, with values in {0, 1}.

    Raises:
        ValueError: values outside [0, 1], NaN or infinity.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> vk.datasets.binarize(np.array([[0.0, 1.0, 0.5, 0.5]]), seed=0).tolist()
    [[0.0, 1.0, 0.0, 1.0]]
    """
    images = _unit_interval_images(images, "binarize")
    return _draw(np.random.default_rng(_validation.seed_or_draw(seed, "binarize")), images)


class DynamicBinarization(keras.utils.PyDataset):
    """Batches for `fit` with a fresh binarization of the images every epoch.

    Each time `fit` reads a batch, its grey-level images are binarized as by
    `binarize`, from a NumPy `Generator` seeded with `(seed, epoch, batch
    index)`: within an epoch the same batch is the same draw however often and
    in whichever order it is read, and each epoch draws anew. This is "dynamic
    binarization" (Burda, Grosse & Salakhutdinov, 2016): over many epochs the
    model sees many binary versions of each image, whose average is the
    grey-level image, instead of one fixed binarized set it could overfit. As a
    `keras.utils.PyDataset` it works with `fit` and `evaluate` on TensorFlow,
    JAX and PyTorch.

    The counter `epoch` counts the calls of `on_epoch_end`, which `fit` makes
    after each epoch (on TensorFlow also once before the first, after reading
    a batch to learn its shape), so every epoch of training draws anew. A batch is `(images,)` for a `VAE`, or `((images, conditions),)`
    for a `CVAE` when `conditions` is given (the model's inputs, no targets).

    Args:
        images: Grey-level images, a NumPy-like array of intensities in [0, 1],
            shape `(n, ...)`.
        conditions: Optional conditions (labels) for a `CVAE`, one per image;
            they are batched with the images and not binarized.
        batch_size: Images per batch, a positive integer; the last batch may be
            smaller.
        shuffle: Whether each epoch visits the images in a new order (drawn
            from the same seed and the epoch).
        seed: Seed of the draws and the order. `None` draws one from Python's
            `random` module, which `keras.utils.set_random_seed` fixes.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> data = vk.datasets.DynamicBinarization(x, batch_size=32, seed=0)
    >>> len(data), data[0][0].shape, sorted(np.unique(data[0][0]).tolist())
    (2, (32, 28, 28, 1), [0.0, 1.0])
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> history = vae.fit(data, epochs=2, verbose=0)
    >>> len(history.history["loss"])
    2
    """

    def __init__(self, images, conditions=None, batch_size=128, shuffle=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        where = "DynamicBinarization"
        self.images = _unit_interval_images(images, where, min_ndim=2)
        if conditions is not None:
            conditions = np.asarray(conditions)
            if conditions.ndim < 1 or conditions.shape[0] != self.images.shape[0]:
                raise ValueError(
                    f"{where}: one condition per image is needed; received "
                    f"{self.images.shape[0]} images and conditions of shape {conditions.shape}"
                )
        self.conditions = conditions
        self.batch_size = _validation.integer(batch_size, "batch_size", where)
        self.shuffle = bool(shuffle)
        self.seed = _validation.seed_or_draw(seed, where)
        self.epoch = 0

    def __len__(self):
        return -(-self.images.shape[0] // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"DynamicBinarization: batch {index} of {len(self)}")
        n = self.images.shape[0]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        grey = self.images[chosen]
        binary = _draw(np.random.default_rng([self.seed, self.epoch, index]), grey)
        # the model's inputs alone, as one-element tuples: (images,) or ((images, conditions),)
        return (binary,) if self.conditions is None else ((binary, self.conditions[chosen]),)

    def on_epoch_end(self):
        self.epoch += 1

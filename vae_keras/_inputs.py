"""Checks on the data a VAE or CVAE is given, wherever it comes from.

Every public entry point (`fit`, `evaluate`, `predict`, `train_on_batch`,
`test_on_batch`, `predict_on_batch`, `encode`, `decode`, `generate`,
`log_likelihood`) checks its data with the same `InputChecks`, so a mistake
gets the same message on every path and on every backend:

- NumPy-like arrays (and eager tensors) are checked once, in one vectorised
  pass, before any step runs.
- Streams are checked batch by batch as they are read, by the same checks: a
  `tf.data.Dataset` through a `tf.numpy_function` inside a `map` (also on the
  JAX and PyTorch backends, which read datasets through TensorFlow), a Python
  generator, a `keras.utils.PyDataset` or a PyTorch `DataLoader` in Python. The
  first bad batch stops training with the message an array would have given;
  `last_error` keeps the stream's error, which the entry points raise again.

`InputChecks` holds only plain values (no model), so it pickles into the worker
processes of a `PyDataset` with `use_multiprocessing=True`.
"""

import contextlib
import inspect
import sys

import keras
import numpy as np
from keras import ops


def static_shape(tensor_or_shape):
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return tuple(shape) if shape is not None else None


def shapes_differ(a, b):
    """True when two shapes (without batch axis) certainly differ."""
    if a is None or b is None:
        return False
    if len(a) != len(b):
        return True
    return any(x is not None and y is not None and x != y for x, y in zip(a, b))


def is_array(x):
    """NumPy arrays and anything that converts to one without copying semantics: eager tensors."""
    return isinstance(x, np.ndarray) or (
        hasattr(x, "__array__") and hasattr(x, "shape") and hasattr(x, "dtype")
    )


def one_hot(labels, num_classes, dtype):
    """Class ids `(n,)` or `(n, 1)`, or one-hot `(n, num_classes)`, as a one-hot tensor.

    Works on arrays and on tensors inside a traced step; the values are
    checked by `InputChecks.check_labels` before they get here.
    """
    labels = ops.convert_to_tensor(labels)
    shape = static_shape(labels)
    if len(shape) == 2 and shape[-1] == 1 and num_classes != 1:
        labels = ops.squeeze(labels, axis=-1)
        shape = shape[:1]
    if len(shape) == 1:
        return ops.one_hot(ops.cast(labels, "int32"), num_classes, dtype=dtype)
    if len(shape) == 2 and shape[-1] == num_classes:
        return ops.cast(labels, dtype)
    raise ValueError(
        f"CVAE: labels must be class ids of shape (n,) or one-hot of shape "
        f"(n, {num_classes}); received shape {shape}"
    )


def check_model(model, where):
    """A `vk.VAE` or `vk.CVAE` (anything with their `checked_arrays`), or a TypeError."""
    if not (isinstance(model, keras.Model) and hasattr(model, "checked_arrays")):
        raise TypeError(
            f"{where} works with a vk.VAE or vk.CVAE; received model of type {type(model).__name__}"
        )


def check_examples(x, where):
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


# Likelihoods whose data must lie in [0, 1], with their names in messages.
_UNIT_RANGE = {"bernoulli": "Bernoulli", "continuous_bernoulli": "continuous Bernoulli"}


class InputChecks:
    """The checks of one model's data (see the module docstring).

    Args:
        name: The model's class name, which starts every message.
        likelihood: The model's likelihood; `"bernoulli"` requires pixels in [0, 1].
        input_shapes: The shapes of one example of each input (the image, and
            the condition of a CVAE) as the encoder declares them; `()` if unknown.
        num_classes: For a CVAE conditioned on class labels, the number of
            classes; None otherwise.
        conditional: Whether the model takes `[images, conditions]`; implied by
            `num_classes`. A CVAE with `num_classes=None` takes any condition.
    """

    def __init__(self, name, likelihood, input_shapes=(), num_classes=None, conditional=False):
        self.name = name
        self.likelihood = likelihood
        self.image_shape = input_shapes[0] if input_shapes else None
        self.condition_shape = input_shapes[1] if len(input_shapes) == 2 else None
        self.num_classes = num_classes
        self.conditional = bool(conditional) or num_classes is not None
        self.labelled = num_classes is not None  # a CVAE conditioned on class labels
        self.what = "labels" if self.labelled or not self.conditional else "conditions"
        self.last_error = None  # the last failed check of a stream's batch

    # ------------------------------------------------------------ messages
    def no_targets_message(self):
        if self.conditional:
            what = self.what
            return (
                f"CVAE trains on its inputs [images, {what}] alone and takes no targets; call "
                f"fit([x, {'y' if self.labelled else 'c'}]) without a second argument, and let "
                f"a dataset yield ((images, {what}),) rather than (images, {what})"
            )
        return (
            f"{self.name} trains on its inputs alone (the targets are the inputs "
            "themselves); call fit(x) / evaluate(x) without y"
        )

    def _one_hot_width(self, width):
        return f"CVAE: one-hot labels have width {width} but num_classes is {self.num_classes}"

    def _check_shape(self, role, shape, expected):
        """Refuses a per-example shape that certainly differs from the encoder's."""
        if shapes_differ(expected, shape):
            per = "example" if role == "conditions" else "image"
            raise ValueError(
                f"{self.name}: {role} have shape {shape} per {per}; the encoder expects {expected}"
            )

    # ------------------------------------------------------- eager checks
    def _check_array(self, array, role, expected_shape):
        """A NumPy array of the data: a batch axis, the encoder's shape per example, finite."""
        if array.ndim < 1:
            raise ValueError(f"{self.name}: {role} must have a batch axis; received a scalar")
        self._check_shape(role, array.shape[1:], expected_shape)
        if array.size and array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{self.name}: {role} contain NaN or infinite values")

    def check_images(self, images, role="images"):
        """Shape, finiteness and (Bernoulli) range of NumPy-like images; others pass."""
        if not is_array(images):
            return
        images = np.asarray(images)
        self._check_array(images, role, self.image_shape)
        if images.size and self.likelihood in _UNIT_RANGE:
            low, high = images.min(), images.max()
            if low < 0 or high > 1:
                raise ValueError(
                    f"{self.name}: with the {_UNIT_RANGE[self.likelihood]} likelihood {role} "
                    f"must lie in [0, 1]; received values in [{low}, {high}] (divide uint8 "
                    "images by 255)"
                )

    def check_labels(self, labels):
        """Checks class ids or one-hot labels; returns them as a float32 one-hot array.

        Labels of another rank are refused by `one_hot`.
        """
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1 and self.num_classes != 1:
            labels = labels[:, 0]
        if labels.ndim == 1 and labels.size:
            kind = labels.dtype.kind
            if not (kind in "iub" or (kind == "f" and np.all(np.mod(labels, 1) == 0))):
                raise ValueError(
                    f"CVAE: integer labels must be whole numbers; received labels of dtype {labels.dtype}"
                )
            if labels.min() < 0 or labels.max() >= self.num_classes:
                raise ValueError(
                    "CVAE: labels out of range: expected class ids in "
                    f"[0, {self.num_classes - 1}], received values from {labels.min()} to "
                    f"{labels.max()}"
                )
        if labels.ndim == 2 and labels.shape[1] != self.num_classes:
            raise ValueError(self._one_hot_width(labels.shape[1]))
        return ops.convert_to_numpy(one_hot(labels, self.num_classes, "float32"))

    def check_conditions(self, conditions):
        """Checks conditions of any shape (`num_classes=None`); returns them as float32 NumPy."""
        conditions = np.asarray(conditions)
        if conditions.dtype.kind not in "iubf":
            raise ValueError(f"CVAE: conditions must be numbers; received dtype {conditions.dtype}")
        conditions = conditions.astype("float32")
        self._check_array(conditions, "conditions", self.condition_shape)
        return conditions

    def check_condition(self, condition, n=None):
        """Labels (one-hot, float32) or general conditions (float32), checked; `n` of them."""
        checked = (
            self.check_labels(condition) if self.labelled else self.check_conditions(condition)
        )
        if n is not None and checked.shape[0] != n:
            what = "label" if self.labelled else "condition"
            raise ValueError(
                f"CVAE: {checked.shape[0]} {what}s for {n} images; give one {what} per image"
            )
        return checked

    def split(self, x, role="inputs"):
        """`(images, labels)` of the model's inputs (labels None for a VAE), structure checked."""
        if not self.conditional:
            return x, None
        what = self.what
        pair = f"[{'z' if role == 'decode inputs' else 'images'}, {what}]"
        if not isinstance(x, (list, tuple)):
            received = "a single array" if is_array(x) else type(x).__name__
            raise ValueError(
                f"CVAE: {role} must be a list {pair} (a dataset must yield "
                f"((images, {what}),)); received {received}"
            )
        if len(x) == 3 and role != "decode inputs":
            return x[0], x[1]  # the third item is a mask: see `mask_of`
        if len(x) != 2:
            allowed = pair if role == "decode inputs" else f"{pair} or [images, {what}, mask]"
            raise ValueError(f"CVAE: {role} must be a list {allowed}; received {len(x)} items")
        return x[0], x[1]

    def mask_of(self, x):
        """The mask of `[images, condition, mask]`, or None (a CVAE's inputs only)."""
        return x[2] if self.conditional and isinstance(x, (list, tuple)) and len(x) == 3 else None

    def check_mask(self, mask, images, role="mask"):
        """A mask broadcasts to the images' shape per example and lies in [0, 1]."""
        mask = np.asarray(mask)
        image_shape = np.shape(images)
        fits = mask.ndim == len(image_shape) and mask.shape[:1] == image_shape[:1]
        fits = fits and all(m in (1, i) for m, i in zip(mask.shape[1:], image_shape[1:]))
        if not fits:
            raise ValueError(
                f"CVAE: the {role} must have the images' shape {tuple(image_shape)} (or one "
                f"that broadcasts to it, one mask per image); received {mask.shape}"
            )
        if mask.dtype.kind not in "iubf":
            raise ValueError(f"CVAE: the {role} must be numbers; received dtype {mask.dtype}")
        if mask.size:
            low, high = mask.min(), mask.max()
            if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 1:
                raise ValueError(
                    f"CVAE: the {role} must lie in [0, 1] (1 scores a pixel, 0 leaves it out); "
                    f"received values in [{low}, {high}]"
                )
        return mask.astype("float32")

    def check_inputs(self, x, role="inputs", host_only=False):
        """Checks the model's inputs if they are arrays; a stream is left to `wrap`.

        With `host_only`, only NumPy arrays and lists are checked, and tensors pass
        untouched (they may be symbolic, or on an accelerator).
        """
        if not is_array(x) and not (self.conditional and isinstance(x, (list, tuple))):
            return  # a dataset or generator: checked batch by batch
        images, labels = self.split(x, role)
        host = (np.ndarray, list) if host_only else None
        if host is None or isinstance(images, host):
            self.check_images(images, "images" if role == "inputs" else f"{role} images")
        if labels is None or not is_array(images) or (host and not isinstance(labels, host)):
            return
        self.check_condition(labels, n=np.shape(images)[0])
        mask = self.mask_of(x)
        if mask is not None and (host is None or isinstance(mask, host)) and is_array(mask):
            self.check_mask(mask, images)

    def check_data(self, x, y=None, role="inputs"):
        """Inputs without targets (the model's targets are its inputs)."""
        if y is not None:
            where = "" if role == "inputs" else f" (received targets in {role})"
            raise ValueError(self.no_targets_message() + where)
        self.check_inputs(x, role=role)

    def check_validation_data(self, validation_data):
        """Checks `validation_data` in every form Keras accepts; returns it, streams wrapped."""
        if not isinstance(validation_data, (list, tuple)):  # arrays checked, streams wrapped
            self.check_inputs(validation_data, role="validation_data")
            return self.wrap(validation_data)
        pair = len(validation_data) == 2 and all(map(is_array, validation_data))
        if self.conditional and pair:
            # A CVAE never takes targets, so [x_val, y_val] can only mean its two inputs.
            validation_data = (list(validation_data),)
        x_val, y_val, _ = keras.utils.unpack_x_y_sample_weight(tuple(validation_data))
        self.check_data(x_val, y_val, role="validation_data")
        return validation_data

    def check_batch(self, batch, targets_allowed=False):
        """Checks one batch read from a stream (NumPy-convertible parts)."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        if y is not None and not targets_allowed:
            raise ValueError(self.no_targets_message())
        self.check_inputs(x)

    # --------------------------------------------------------------- streams
    def wrap(self, x, targets_allowed=False):
        """Returns `x` with every batch checked as it is read; arrays are returned as they are."""
        # TensorFlow and PyTorch are not imported here: data of theirs means they are loaded.
        tf, torch = sys.modules.get("tensorflow"), sys.modules.get("torch")
        if tf is not None and isinstance(x, tf.data.Dataset):
            return self._wrap_tf_dataset(x, targets_allowed)
        if inspect.isgenerator(x):
            return self._checked_batches(x, targets_allowed)
        if isinstance(x, keras.utils.PyDataset):
            return _CheckedPyDataset(x, self, targets_allowed)
        if torch is not None and isinstance(x, torch.utils.data.DataLoader):
            return _checked_dataloader(x, self, targets_allowed)
        return x

    def _checked_batches(self, batches, targets_allowed):
        for batch in batches:
            self._check_recording(batch, targets_allowed)
            yield batch

    def _check_recording(self, batch, targets_allowed):
        try:
            self.check_batch(batch, targets_allowed)
        except ValueError as error:
            # Keep it: TensorFlow may wrap it into an error of its own on the way out.
            self.last_error = error
            raise

    def _wrap_tf_dataset(self, dataset, targets_allowed):
        import tensorflow as tf

        spec = dataset.element_spec
        x_spec, y_spec, _ = keras.utils.unpack_x_y_sample_weight(spec)
        if y_spec is not None and not targets_allowed:
            raise ValueError(self.no_targets_message())
        image_spec, label_spec = self.split(x_spec)
        shape = static_shape(image_spec.shape)
        if shape is not None:
            self._check_shape("images", shape[1:], self.image_shape)
        if label_spec is not None:
            label_shape = static_shape(label_spec.shape)
            if not self.labelled:
                self._check_shape("conditions", label_shape[1:], self.condition_shape)
            elif len(label_shape) == 2 and label_shape[-1] not in (None, 1, self.num_classes):
                raise ValueError(self._one_hot_width(label_shape[-1]))

        def check_arrays(*arrays):  # the eager checks, on the batch's NumPy arrays
            batch = tf.nest.pack_sequence_as(spec, list(arrays))
            self._check_recording(batch, targets_allowed)
            return np.bool_(True)

        def check(*element):  # tf.data unpacks a tuple element into arguments
            batch = element if isinstance(spec, tuple) else element[0]
            checked = tf.numpy_function(check_arrays, tf.nest.flatten(batch), tf.bool)
            with tf.control_dependencies([checked]):
                return tf.nest.map_structure(tf.identity, batch)

        return dataset.map(check)


class _CheckedPyDataset(keras.utils.PyDataset):
    """A `PyDataset` that checks each batch of another one as it is read."""

    def __init__(self, dataset, checks, targets_allowed):
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset = dataset
        self.checks = checks
        self.targets_allowed = targets_allowed

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        batch = self.dataset[index]
        self.checks._check_recording(batch, self.targets_allowed)
        return batch

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _checked_dataloader(loader, checks, targets_allowed):
    """A copy of a PyTorch `DataLoader` (same dataset, sampler, workers) whose batches are checked."""

    class CheckedDataLoader(type(loader)):
        def __iter__(self):
            return checks._checked_batches(super().__iter__(), targets_allowed)

    checked = object.__new__(CheckedDataLoader)
    checked.__dict__.update(loader.__dict__)
    return checked


class CheckedEntryPoints:
    """The models' data entry points: each checks its data with `InputChecks` first."""

    @contextlib.contextmanager
    def _stream_errors(self, checks):
        """Re-raises a failed stream check as the `ValueError` an array would have given.

        On JAX, Keras' trainer detaches the variables' values while it trains and
        reattaches them at the end; an error in between would leave the model
        without weights. While a stream is read they stay attached, and the state
        reached before the bad batch is synced back.
        """
        self._reading_stream = True
        try:
            yield
        except Exception as error:
            if keras.backend.backend() == "jax":
                self.jax_state_sync()
            replacement = checks.last_error  # TensorFlow may have wrapped it
            if replacement is None or replacement is error:
                raise
            raise replacement from error
        finally:
            self._reading_stream = False

    def _checked_targets(self, checks, x, y, sample_weight):
        """Checks `x` (and that `y` is None); returns the `y` for Keras' `fit` and friends.

        None, or for arrays with `sample_weight` an empty `(n, 0)` array, which
        `compute_loss` recognises and ignores: Keras drops the weights when `y` is None.
        """
        checks.check_data(x, y)
        images = x[0] if isinstance(x, (list, tuple)) else x
        if sample_weight is None or not is_array(images):
            return None
        return np.zeros((np.shape(images)[0], 0), "float32")

    def _checked_run(self, run, x, y, args, kwargs):
        """`run(x, y, ...)`, Keras' `fit` or `evaluate`, on checked (or wrapped) data."""
        checks = self.input_checks()
        y = self._checked_targets(checks, x, y, kwargs.get("sample_weight"))
        x = checks.wrap(x)
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = checks.check_validation_data(kwargs["validation_data"])
        with self._stream_errors(checks):
            return run(x, y, *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        return self._checked_run(super().fit, x, y, args, kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return self._checked_run(super().evaluate, x, y, args, kwargs)

    def predict(self, x, *args, **kwargs):
        checks = self.input_checks()
        checks.check_inputs(x)
        with self._stream_errors(checks):
            return super().predict(checks.wrap(x, targets_allowed=True), *args, **kwargs)

    def _purge_model_variables(self, *args, **kwargs):
        # JAX only (see `_stream_errors`): Keep the values attached while a stream is read.
        if not getattr(self, "_reading_stream", False):
            super()._purge_model_variables(*args, **kwargs)

    def train_on_batch(self, x, y=None, sample_weight=None, *args, **kwargs):
        y = self._checked_targets(self.input_checks(), x, y, sample_weight)
        return super().train_on_batch(x, y, sample_weight, *args, **kwargs)

    def test_on_batch(self, x, y=None, sample_weight=None, *args, **kwargs):
        y = self._checked_targets(self.input_checks(), x, y, sample_weight)
        return super().test_on_batch(x, y, sample_weight, *args, **kwargs)

    def predict_on_batch(self, x):
        self.input_checks().check_inputs(x)
        return super().predict_on_batch(x)

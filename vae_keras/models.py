"""VAE and CVAE as `keras.Model` subclasses that train with a plain `fit`.

The negative ELBO is computed in `compute_loss`, which the trainers of all three
Keras backends call, so no backend-specific `train_step` is needed. `call`
returns the mean reconstruction `decoder(z_mean)`; the loss draws its own
`z ~ q(z|x)` with the reparameterization trick. Under TensorFlow's and JAX's
compiled training steps the unused output of `call` is pruned, so the forward
pass runs once per step.
"""

import keras
import numpy as np
from keras import ops

from vae_keras.layers import Sampling
from vae_keras.losses import LIKELIHOODS, VAELoss, kl_divergence

__all__ = ["VAE", "CVAE"]

# Training steps per call into the compiled graph on TensorFlow with
# `compile(steps_per_execution="auto")`.
_TF_STEPS_PER_EXECUTION = 32
_CONV_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)


def _backend_is(name):
    return keras.backend.backend() == name


def _static_shape(tensor_or_shape):
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return tuple(shape) if shape is not None else None


def _shapes_differ(a, b):
    """True when two shapes (without batch axis) certainly differ."""
    if a is None or b is None:
        return False
    if len(a) != len(b):
        return True
    return any(x is not None and y is not None and x != y for x, y in zip(a, b))


def _is_array(x):
    return isinstance(x, np.ndarray) or (
        hasattr(x, "__array__") and hasattr(x, "shape") and hasattr(x, "dtype")
    )


class _LatentVariableModel(keras.Model):
    """Shared machinery of `VAE` and `CVAE`: loss, metrics, checks, saving."""

    _conditional = False

    def __init__(self, encoder, decoder, beta=1.0, seed=None, likelihood="bernoulli", **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        for role, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.layers.Layer):
                raise TypeError(
                    f"{name}: {role} must be a Keras model or layer; received {type(model).__name__}"
                )
        try:
            beta = float(beta)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: beta must be a number; received {beta!r}") from None
        if not (beta >= 0 and np.isfinite(beta)):
            raise ValueError(f"{name}: beta must be finite and non-negative; received {beta}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"{name}: unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.beta = beta
        self.seed = seed
        self.likelihood = likelihood
        self.sampler = Sampling(seed=seed, name="sampling")
        self.reconstruction_loss_fn = VAELoss(likelihood=likelihood, reduction=None)
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self._check_functional_shapes()
        if encoder.built and decoder.built:
            self.built = True

    # ----------------------------------------------------------------- checks
    def _check_functional_shapes(self):
        """Checks what the sub-models' static shapes already tell, at construction."""
        name = type(self).__name__
        outputs = getattr(self.encoder, "outputs", None)
        if outputs is not None:
            self._check_encoder_outputs(outputs)
        encoder_inputs = getattr(self.encoder, "inputs", None)
        decoder_outputs = getattr(self.decoder, "outputs", None)
        if encoder_inputs and decoder_outputs:
            if len(decoder_outputs) != 1:
                raise ValueError(
                    f"{name}: the decoder must return one tensor (the images); "
                    f"it returns {len(decoder_outputs)}"
                )
            image_shape = _static_shape(encoder_inputs[0])[1:]
            output_shape = _static_shape(decoder_outputs[0])[1:]
            if _shapes_differ(image_shape, output_shape):
                raise ValueError(
                    f"{name}: the decoder's output shape {output_shape} differs from the "
                    f"encoder's image shape {image_shape}; they must match per image"
                )
        decoder_inputs = getattr(self.decoder, "inputs", None)
        if outputs is not None and decoder_inputs:
            latent_dim = _static_shape(outputs[0])[-1]
            decoder_z = _static_shape(decoder_inputs[0])[-1]
            if latent_dim is not None and decoder_z is not None and latent_dim != decoder_z:
                raise ValueError(
                    f"{name}: the encoder has latent size {latent_dim} but the decoder "
                    f"expects z of size {decoder_z}"
                )

    def _check_encoder_outputs(self, outputs):
        name = type(self).__name__
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            count = len(outputs) if isinstance(outputs, (list, tuple)) else 1
            raise ValueError(
                f"{name}: the encoder must return exactly two tensors [z_mean, z_log_var]; "
                f"it returns {count}"
            )
        mean_shape, log_var_shape = _static_shape(outputs[0]), _static_shape(outputs[1])
        if _shapes_differ(mean_shape, log_var_shape):
            raise ValueError(
                f"{name}: the encoder's z_mean and z_log_var have different shapes "
                f"{mean_shape} and {log_var_shape}; they must have the same latent width"
            )
        return outputs

    def _check_reconstruction(self, images, reconstruction):
        image_shape = _static_shape(images)[1:]
        output_shape = _static_shape(reconstruction)[1:]
        if _shapes_differ(image_shape, output_shape):
            raise ValueError(
                f"{type(self).__name__}: the decoder's output shape {output_shape} differs "
                f"from the input images' shape {image_shape}"
            )

    def _check_images(self, images, role="images"):
        """Eager checks on NumPy-like image arrays before any training step."""
        if not _is_array(images):
            return
        images = np.asarray(images)
        name = type(self).__name__
        encoder_inputs = getattr(self.encoder, "inputs", None)
        if encoder_inputs:
            expected = _static_shape(encoder_inputs[0])[1:]
            if _shapes_differ(expected, images.shape[1:]):
                raise ValueError(
                    f"{name}: {role} have shape {images.shape[1:]} per image but the "
                    f"encoder expects {expected}"
                )
        if images.size and not np.all(np.isfinite(images)):
            raise ValueError(f"{name}: {role} contain NaN or infinite values")
        if self.likelihood == "bernoulli" and images.size:
            low, high = images.min(), images.max()
            if low < 0 or high > 1:
                raise ValueError(
                    f"{name}: with the Bernoulli likelihood {role} must lie in [0, 1]; "
                    f"received values in [{low}, {high}] (divide uint8 images by 255)"
                )

    def _check_data(self, x, y=None):
        if y is not None:
            raise ValueError(
                f"{type(self).__name__} trains on its inputs alone (the targets are the "
                "inputs themselves); call fit(x) / evaluate(x) without y"
            )
        self._check_inputs(x)

    def _check_inputs(self, x):
        self._check_images(x)

    # --------------------------------------------------------------- training
    def compile(
        self, optimizer="adam", loss=None, steps_per_execution="auto", jit_compile="auto", **kwargs
    ):
        """Configures training; the loss is always the negative ELBO.

        Takes the arguments of `keras.Model.compile` except `loss`, with two
        faster defaults (see `benchmarks/README.md` for the measurements):

        - `steps_per_execution="auto"`: 32 on TensorFlow, so `fit` runs 32
          batches per call into the compiled graph instead of returning to
          Python after each one; 1 on JAX and PyTorch (PyTorch requires 1).
        - `jit_compile="auto"`: Keras' rule (XLA on JAX and on accelerators),
          except that on CPU-only TensorFlow, where Keras turns XLA off, it is
          turned on for models without convolution layers. (XLA's CPU
          convolutions are slower than TensorFlow's own, so convolutional
          models keep it off.)

        Both stay `"auto"` in the saved compile config and are resolved again
        for the backend that loads the model. Pass explicit values to override.
        """
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss (the negative ELBO); "
                "call compile(optimizer=...) without a loss argument"
            )
        self._requested_execution = (steps_per_execution, jit_compile)
        if steps_per_execution == "auto":
            steps_per_execution = _TF_STEPS_PER_EXECUTION if _backend_is("tensorflow") else 1
        if jit_compile == "auto":
            jit_compile = self._auto_jit_compile(kwargs.get("run_eagerly", False))
        super().compile(
            optimizer=optimizer,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            **kwargs,
        )

    def _auto_jit_compile(self, run_eagerly):
        """`True` on CPU-only TensorFlow for models without convolutions, else "auto"."""
        if run_eagerly or not _backend_is("tensorflow"):
            return "auto"
        import tensorflow as tf

        if tf.distribute.has_strategy() or any(
            device.device_type != "CPU" for device in tf.config.list_physical_devices()
        ):
            return "auto"
        try:
            from tensorflow.python.framework.config import is_op_determinism_enabled
        except ImportError:  # pragma: no cover - moved in some TensorFlow version
            return "auto"
        if is_op_determinism_enabled():
            return "auto"
        for layer in self._flatten_layers():
            if isinstance(layer, _CONV_LAYERS) or not getattr(layer, "supports_jit", True):
                return "auto"
        return True

    def get_compile_config(self):
        config = super().get_compile_config()
        requested = getattr(self, "_requested_execution", None)
        if config and requested is not None:
            config["steps_per_execution"], config["jit_compile"] = requested
        return config

    def compile_from_config(self, config):
        # Keras skips models whose `compile` is overridden; this one is safe to call.
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y)
        validation_data = kwargs.get("validation_data")
        if validation_data is not None and not hasattr(validation_data, "__iter__"):
            self._check_inputs(validation_data)
        elif isinstance(validation_data, (list, tuple)) and not self._conditional:
            self._check_inputs(validation_data)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_inputs(x)
        return super().predict(x, *args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative ELBO of the batch `x`: reconstruction + beta * KL (+ added losses).

        Both terms are computed per example (in nats) and averaged over the
        batch; the metrics `reconstruction_loss` and `kl_loss` track them.
        """
        images, condition = self._unpack(x)
        images = ops.cast(images, self.compute_dtype)
        z_mean, z_log_var = self._encode(images, condition, training=training)
        z = self.sampler([z_mean, z_log_var])
        reconstruction = self._decode(z, condition, training=training)
        self._check_reconstruction(images, reconstruction)
        reconstruction_loss = self.reconstruction_loss_fn(images, reconstruction)
        kl_loss = kl_divergence(z_mean, z_log_var)
        if sample_weight is not None:
            sample_weight = ops.cast(ops.reshape(sample_weight, (-1,)), reconstruction_loss.dtype)
            reconstruction_loss = reconstruction_loss * sample_weight
            kl_loss = kl_loss * sample_weight
        reconstruction_loss = ops.mean(reconstruction_loss)
        kl_loss = ops.mean(kl_loss)
        total = reconstruction_loss + self.beta * kl_loss
        for extra in self.losses:  # e.g. weight regularizers of the sub-models
            total = total + ops.cast(extra, total.dtype)
        batch_size = ops.shape(images)[0]
        self.reconstruction_loss_tracker.update_state(reconstruction_loss, sample_weight=batch_size)
        self.kl_loss_tracker.update_state(kl_loss, sample_weight=batch_size)
        return total

    # ------------------------------------------------------------ sub-models
    def _encode(self, images, condition, training=None):
        inputs = images if condition is None else [images, condition]
        outputs = self.encoder(inputs, training=training)
        z_mean, z_log_var = self._check_encoder_outputs(outputs)
        return z_mean, z_log_var

    def _decode(self, z, condition, training=None):
        inputs = z if condition is None else [z, condition]
        return self.decoder(inputs, training=training)

    def call(self, inputs, training=None):
        images, condition = self._unpack(inputs)
        z_mean, _ = self._encode(images, condition, training=training)
        return self._decode(z_mean, condition, training=training)

    @property
    def latent_dim(self):
        """Width of the latent space, read from the encoder's outputs."""
        outputs = getattr(self.encoder, "outputs", None)
        if outputs:
            return _static_shape(outputs[0])[-1]
        decoder_inputs = getattr(self.decoder, "inputs", None)
        if decoder_inputs:
            return _static_shape(decoder_inputs[0])[-1]
        raise AttributeError("latent_dim is unknown until the sub-models are built")

    def _prior_samples(self, n, z, seed):
        latent_dim = self.latent_dim
        if z is None:
            rng = np.random.default_rng(seed) if seed is not None else np.random
            return rng.standard_normal((n, latent_dim)).astype("float32")
        z = np.asarray(z, dtype="float32")
        if z.ndim == 1:
            z = np.broadcast_to(z, (n, z.shape[0]))
        if z.ndim != 2 or z.shape[1] != latent_dim or (n is not None and z.shape[0] != n):
            raise ValueError(
                f"{type(self).__name__}.generate: z must have shape ({n}, {latent_dim}) "
                f"or ({latent_dim},); received {z.shape}"
            )
        return z

    # ---------------------------------------------------------------- saving
    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "seed": self.seed,
            "likelihood": self.likelihood,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)


@keras.saving.register_keras_serializable(package="vae_keras")
class VAE(_LatentVariableModel):
    """A variational autoencoder that trains with `compile` and `fit` alone.

    The loss is the negative ELBO, per image and averaged over the batch:
    `loss = reconstruction_loss + beta * kl_loss`, with the reconstruction term
    from `VAELoss` (summed over pixels) and the KL term from `kl_divergence`
    (summed over latent dimensions). `fit` and `evaluate` report all three.

    Args:
        encoder: A Keras model mapping images to `[z_mean, z_log_var]`.
        decoder: A Keras model mapping `z` to images (probabilities in [0, 1]
            for the Bernoulli likelihood).
        beta: Weight of the KL term (1 gives the ELBO; other values a beta-VAE).
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"` or `"gaussian"`, passed to `VAELoss`.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: A batch of images.

    Returns:
        The mean reconstruction `decoder(z_mean)`; it is deterministic.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> history = vae.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['kl_loss', 'loss', 'reconstruction_loss']
    """

    def _unpack(self, inputs):
        return inputs, None

    def generate(self, n=None, z=None, seed=None):
        """Decodes `n` draws from the prior N(0, I), or the given `z`, in one call.

        Args:
            n: Number of images (may be omitted when `z` is given).
            z: Optional latent codes of shape `(n, latent_dim)`.
            seed: Seed for the prior draws; with `None` NumPy's global state is
                used, which `keras.utils.set_random_seed` fixes.

        Returns:
            A NumPy array of images.
        """
        if z is None and (n is None or int(n) < 1):
            raise ValueError("VAE.generate: give a positive n or latent codes z")
        n = None if n is None else int(n)
        if z is not None and n is None:
            n = np.asarray(z).shape[0]
        z = self._prior_samples(n, z, seed)
        return ops.convert_to_numpy(self.decoder(z, training=False))


@keras.saving.register_keras_serializable(package="vae_keras")
class CVAE(_LatentVariableModel):
    """A conditional VAE: the label conditions both encoder and decoder.

    The encoder models q(z | x, y) and the decoder p(x | z, y) (Sohn, Lee & Yan,
    2015, "Learning Structured Output Representation using Deep Conditional
    Generative Models"). Both receive the label as a one-hot vector, so z is
    free to encode what the label does not say: the style of the digit.

    Args:
        encoder: A Keras model mapping `[images, one_hot_labels]` to
            `[z_mean, z_log_var]`.
        decoder: A Keras model mapping `[z, one_hot_labels]` to images.
        num_classes: Number of classes, a positive integer.
        beta: Weight of the KL term.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"` or `"gaussian"`.
        **kwargs: Standard `keras.Model` arguments.

    Call arguments:
        inputs: `[images, labels]`, labels as integer class ids of shape `(n,)`
            or one-hot of shape `(n, num_classes)`.

    Returns:
        The mean reconstruction `decoder([z_mean, one_hot_labels])`.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> cvae = vk.CVAE(
    ...     vk.build_mlp_encoder(latent_dim=2, num_classes=10),
    ...     vk.build_mlp_decoder(latent_dim=2, num_classes=10),
    ...     num_classes=10,
    ... )
    >>> cvae.compile(optimizer="adam")
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((64, 28, 28, 1)).astype("float32")
    >>> y = rng.integers(0, 10, size=64)
    >>> history = cvae.fit([x, y], epochs=1, batch_size=32, verbose=0)
    >>> cvae.generate([3, 3, 7], seed=0).shape
    (3, 28, 28, 1)
    """

    _conditional = True

    def __init__(
        self, encoder, decoder, num_classes, beta=1.0, seed=None, likelihood="bernoulli", **kwargs
    ):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise ValueError(
                f"CVAE: num_classes must be a positive integer; received {num_classes!r}"
            )
        if num_classes < 1:
            raise ValueError(
                f"CVAE: num_classes must be a positive integer; received {num_classes}"
            )
        self.num_classes = int(num_classes)
        super().__init__(encoder, decoder, beta=beta, seed=seed, likelihood=likelihood, **kwargs)

    def _check_functional_shapes(self):
        for role, model in (("encoder", self.encoder), ("decoder", self.decoder)):
            inputs = getattr(model, "inputs", None)
            if not inputs:
                continue
            if len(inputs) != 2:
                raise ValueError(
                    f"CVAE: the {role} must take two inputs [{'images' if role == 'encoder' else 'z'}, "
                    f"one_hot_labels]; it takes {len(inputs)}"
                )
            width = _static_shape(inputs[1])[-1]
            if width is not None and width != self.num_classes:
                raise ValueError(
                    f"CVAE: the {role}'s label input has width {width} but num_classes is "
                    f"{self.num_classes}"
                )
        super()._check_functional_shapes()

    def _one_hot(self, labels):
        labels = ops.convert_to_tensor(labels)
        shape = _static_shape(labels)
        if len(shape) == 2 and shape[-1] == 1:
            labels = ops.squeeze(labels, axis=-1)
            shape = shape[:1]
        if len(shape) == 1:
            return ops.one_hot(
                ops.cast(labels, "int32"), self.num_classes, dtype=self.compute_dtype
            )
        if len(shape) == 2 and shape[-1] == self.num_classes:
            return ops.cast(labels, self.compute_dtype)
        raise ValueError(
            f"CVAE: labels must be class ids of shape (n,) or one-hot of shape "
            f"(n, {self.num_classes}); received shape {shape}"
        )

    def _unpack(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"CVAE: inputs must be a list [images, labels]; received {type(inputs).__name__}"
            )
        images, labels = inputs
        return images, self._one_hot(labels)

    def _check_labels(self, labels, n=None):
        """Eager checks on NumPy-like labels; returns them as a one-hot array."""
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim == 1:
            if labels.size and not np.all(np.equal(np.mod(labels, 1), 0)):
                raise ValueError("CVAE: integer labels must be whole numbers")
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(
                    f"CVAE: labels out of range: expected class ids in [0, {self.num_classes - 1}], "
                    f"received values from {labels.min()} to {labels.max()}"
                )
            one_hot = np.eye(self.num_classes, dtype="float32")[labels.astype("int64")]
        elif labels.ndim == 2:
            if labels.shape[1] != self.num_classes:
                raise ValueError(
                    f"CVAE: one-hot labels have width {labels.shape[1]} but num_classes is "
                    f"{self.num_classes}"
                )
            one_hot = labels.astype("float32")
        else:
            raise ValueError(
                f"CVAE: labels must be class ids of shape (n,) or one-hot of shape "
                f"(n, {self.num_classes}); received shape {labels.shape}"
            )
        if n is not None and one_hot.shape[0] != n:
            raise ValueError(
                f"CVAE: {one_hot.shape[0]} labels for {n} images; give one label per image"
            )
        return one_hot

    def _check_inputs(self, x):
        if not isinstance(x, (list, tuple)):
            if _is_array(x):
                raise ValueError(
                    "CVAE: inputs must be a list [images, labels]; received a single array"
                )
            return  # a dataset or generator: checked when traced
        if len(x) != 2:
            raise ValueError(
                f"CVAE: inputs must be a list [images, labels]; received {len(x)} items"
            )
        images, labels = x
        self._check_images(images)
        if _is_array(images) and _is_array(labels):
            self._check_labels(labels, n=np.asarray(images).shape[0])

    def generate(self, labels, z=None, seed=None):
        """Decodes one image per label, with z from the prior N(0, I) unless given.

        Args:
            labels: Class ids of shape `(n,)` or one-hot labels `(n, num_classes)`.
            z: Optional latent codes, shape `(n, latent_dim)`, or one code of shape
                `(latent_dim,)` shared by all labels (same style, different digit).
            seed: Seed for the prior draws; with `None` NumPy's global state is
                used, which `keras.utils.set_random_seed` fixes.

        Returns:
            A NumPy array of `n` images, decoded in one batched call.
        """
        one_hot = self._check_labels(labels)
        z = self._prior_samples(one_hot.shape[0], z, seed)
        return ops.convert_to_numpy(self.decoder([z, one_hot], training=False))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}

"""VAE and CVAE as `keras.Model` subclasses that train with a plain `fit`.

What one training step computes, on every backend:

1. One encoder pass: `z_mean, z_log_var = encoder(x)`.
2. One draw `z = z_mean + exp(0.5 * z_log_var) * eps` (the `Sampling` layer).
3. One decoder pass: `reconstruction = decoder(z)`.
4. The negative ELBO, per example and averaged over the batch:
   `reconstruction_loss + beta * kl_loss` (plus any regularization losses of the
   sub-models), computed in float32 whatever the compute dtype.

During `fit` and `evaluate` the model's `call` returns all three tensors of
steps 1-3 and `compute_loss` reads them, so each sub-model runs exactly once
per step: a BatchNormalization updates its statistics once, a Dropout draws
once. Outside the training and evaluation steps, `model(x)` and `predict(x)`
return the deterministic mean reconstruction `decoder(z_mean)`.

`beta` is a number or a Keras schedule (`LearningRateSchedule`, e.g.
`vk.LinearWarmup` for KL warm-up or `vk.CyclicalAnnealing`), evaluated at the
model's own training step counter inside the compiled step; `model.beta = x`
takes effect from the next step. `free_bits` (Kingma et al., 2016) puts a floor
under each latent dimension's batch-average KL in the loss.
"""

import contextlib
import inspect
import sys
import threading

import keras
import numpy as np
from keras import ops

from vae_keras.layers import Sampling
from vae_keras.losses import LIKELIHOODS, VAELoss, kl_divergence, kl_per_dimension

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


def _tf_strategy_active():
    """True inside the scope of a `tf.distribute` strategy (TensorFlow backend only)."""
    if not _backend_is("tensorflow"):
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()


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


def _is_tf_dataset(x):
    if "tensorflow" not in sys.modules:
        return False
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset)


def _unpack_x_y_sample_weight(data):
    """Keras' reading of a batch or of `validation_data`: `(x,)`, `(x, y)`, `(x, y, w)`."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(
        "Data is expected to be (x,), (x, y) or (x, y, sample_weight); "
        f"received a sequence of {len(data)} items"
    )


# Models whose training or evaluation step is running in this thread. While a
# model is in this set its `call` returns the tensors the loss needs (see the
# module docstring). Thread-local because tf.distribute runs one thread per replica.
_STEP_CONTEXT = threading.local()


@contextlib.contextmanager
def _inside_step(model):
    active = getattr(_STEP_CONTEXT, "models", None)
    if active is None:
        active = _STEP_CONTEXT.models = set()
    key = id(model)
    entered = key not in active
    active.add(key)
    try:
        yield
    finally:
        if entered:
            active.discard(key)


def _is_inside_step(model):
    return id(model) in getattr(_STEP_CONTEXT, "models", ())


class _CurrentValue(keras.metrics.Metric):
    """A metric that reports the last value it was given (the beta in use)."""

    def __init__(self, name, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.value = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, aggregation="mean", name="value"
        )

    def update_state(self, value):
        self.value.assign(ops.cast(value, self.dtype))

    def result(self):
        return ops.convert_to_tensor(self.value)

    def reset_state(self):
        self.value.assign(ops.zeros((), self.dtype))


def _parse_beta(value, where):
    """Returns `(schedule, number)`: exactly one of them is not None."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value, None
    if isinstance(value, bool):
        raise ValueError(f"{where}: beta must be a number or a schedule; received {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: beta must be a number or a keras.optimizers.schedules."
            f"LearningRateSchedule; received {value!r}"
        ) from None
    if not (number >= 0 and np.isfinite(number)):
        raise ValueError(f"{where}: beta must be finite and non-negative; received {value!r}")
    return None, number


def _parse_free_bits(value, where):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: free_bits must be a number of nats per latent dimension; received {value!r}"
        ) from None
    if isinstance(value, bool) or not (number >= 0 and np.isfinite(number)):
        raise ValueError(f"{where}: free_bits must be finite and non-negative; received {value!r}")
    return number


class _LatentVariableModel(keras.Model):
    """Shared machinery of `VAE` and `CVAE`: loss, metrics, checks, saving."""

    _conditional = False

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        seed=None,
        likelihood="bernoulli",
        free_bits=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        for role, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.layers.Layer):
                raise TypeError(
                    f"{name}: {role} must be a Keras model or layer; received {type(model).__name__}"
                )
        beta_schedule, beta_number = _parse_beta(beta, name)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"{name}: unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self.likelihood = likelihood
        self._free_bits = _parse_free_bits(free_bits, name)
        self.sampler = Sampling(seed=seed, name="sampling")
        self.reconstruction_loss_fn = VAELoss(likelihood=likelihood, reduction=None)
        # State the compiled step reads, so that changing it needs no retracing.
        self.training_steps = keras.Variable(
            0,
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="training_steps",
        )
        self._beta_variable = keras.Variable(
            0.0 if beta_number is None else beta_number,
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="beta",
        )
        self._beta_schedule = beta_schedule
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.beta_tracker = _CurrentValue(name="beta")
        self._check_functional_shapes()
        if encoder.built and decoder.built:
            self.built = True

    # ------------------------------------------------------- beta, free bits
    @property
    def beta(self):
        """The KL weight: a number, or the schedule evaluated at `training_steps`.

        Assigning a new value (also from a callback, during `fit`) takes effect
        from the next training step. Assigning a number to a model whose beta
        is a number only updates a variable; switching between a number and a
        schedule, or to another schedule, rebuilds the compiled step.
        """
        if self._beta_schedule is not None:
            return self._beta_schedule
        return float(ops.convert_to_numpy(self._read_state(self._beta_variable)))

    @beta.setter
    def beta(self, value):
        schedule, number = _parse_beta(value, type(self).__name__)
        if schedule is None:
            self._assign_state(self._beta_variable, number)
        if schedule is not None or self._beta_schedule is not None:
            self._beta_schedule = schedule
            self._rebuild_step_functions()

    @property
    def free_bits(self):
        """The per-dimension KL floor in nats (Kingma et al., 2016); 0 turns it off."""
        return self._free_bits

    @free_bits.setter
    def free_bits(self, value):
        value = _parse_free_bits(value, type(self).__name__)
        if value != self._free_bits:
            self._free_bits = value
            self._rebuild_step_functions()

    def _current_beta(self):
        if self._beta_schedule is None:
            return ops.convert_to_tensor(self._beta_variable)
        return ops.cast(self._beta_schedule(self.training_steps), "float32")

    def _read_state(self, variable):
        """The variable's value, also while JAX's `fit` holds the state outside the model."""
        if _backend_is("jax") and getattr(self, "_jax_state", None):
            self.jax_state_sync()
        return variable.value

    def _assign_state(self, variable, value):
        if _backend_is("jax") and getattr(self, "_jax_state", None):
            # JAX's fit keeps the state outside the model between syncs: sync, so
            # the assignment below is what the next step reads.
            self.jax_state_sync()
        variable.assign(value)

    def _rebuild_step_functions(self):
        """Re-traces the compiled train/test steps that captured Python-level settings."""
        for attribute, make in (
            ("train_function", "make_train_function"),
            ("test_function", "make_test_function"),
        ):
            if getattr(self, attribute, None) is not None:
                getattr(self, make)(force=True)

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

    def _check_data(self, x, y=None, role="inputs"):
        if y is not None:
            message = self._no_targets_message()
            if role != "inputs":
                message += f" (received targets in {role})"
            raise ValueError(message)
        self._check_inputs(x, role=role)

    def _check_inputs(self, x, role="inputs"):
        self._check_images(x, role="images" if role == "inputs" else f"{role} images")

    # --------------------------------------------------------------- training
    def compile(
        self, optimizer="adam", loss=None, steps_per_execution="auto", jit_compile="auto", **kwargs
    ):
        """Configures training; the loss is always the negative ELBO.

        Takes the arguments of `keras.Model.compile` except `loss`, with two
        faster defaults (see `benchmarks/README.md` for the measurements):

        - `steps_per_execution="auto"`: 32 on TensorFlow, so `fit` runs 32
          batches per call into the compiled graph instead of returning to
          Python after each one; 1 on JAX and PyTorch (PyTorch requires 1),
          and 1 under a `tf.distribute` strategy (Keras' multi-step loop fails
          under `MirroredStrategy`).
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
        self._check_distribution_support()
        self._requested_execution = (steps_per_execution, jit_compile)
        if steps_per_execution == "auto":
            steps_per_execution = (
                _TF_STEPS_PER_EXECUTION
                if _backend_is("tensorflow") and not _tf_strategy_active()
                else 1
            )
        if jit_compile == "auto":
            jit_compile = self._auto_jit_compile(kwargs.get("run_eagerly", False))
        super().compile(
            optimizer=optimizer,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            **kwargs,
        )

    def _check_distribution_support(self):
        distribution = keras.distribution.distribution()
        if _backend_is("tensorflow") and distribution is not None:
            raise ValueError(
                f"{type(self).__name__}: Keras' distribution API "
                "(keras.distribution.DataParallel, ModelParallel) runs on the JAX backend; "
                "the TensorFlow trainer ignores it, so this model would train on one device. "
                "On TensorFlow, build and compile the model inside "
                "tf.distribute.MirroredStrategy().scope(); received "
                f"distribution={type(distribution).__name__}"
            )
        if _backend_is("torch") and distribution is not None:
            raise ValueError(
                f"{type(self).__name__}: Keras' distribution API "
                "(keras.distribution.DataParallel, ModelParallel) runs on the JAX backend; "
                "the PyTorch backend has no support for it, so this model would not be "
                "trained in parallel. Use KERAS_BACKEND=jax with DataParallel, or "
                "KERAS_BACKEND=tensorflow with tf.distribute.MirroredStrategy; received "
                f"distribution={type(keras.distribution.distribution()).__name__}"
            )

    def _scale_for_replicas(self, total, batch_size):
        """Scales the loss of one replica so that the replicas' gradients sum to the global one.

        Under a `tf.distribute` strategy each replica sees part of the global
        batch and the gradients of the replicas are summed. Each replica's loss
        is its batch mean, so it is weighted by `local / global` examples: the
        sum of the gradients is then exactly the gradient of the global batch
        mean, also for a last batch that does not split evenly. The returned
        value is the batch mean divided by the number of replicas, what Keras
        reports for its own losses and un-scales for the `loss` metric.
        (JAX's `DataParallel` computes the loss on the whole global batch and
        needs nothing here.)
        """
        if not _tf_strategy_active():
            return total
        import tensorflow as tf

        replica_context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replica_context is None or replicas == 1:
            return total
        local = ops.cast(batch_size, total.dtype)
        global_size = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, local)
        exact = total * local / global_size
        return exact + ops.stop_gradient(total / replicas - exact)

    def _free_bits_term(self, kl_per_dim, batch_size):
        """`sum_j max(free_bits, KL_j)`, with `KL_j` the batch-average KL of dimension j.

        Under a `tf.distribute` strategy the floor must see the global batch,
        not one replica's share: the per-dimension averages are all-reduced
        (without gradient), and this replica's gradient flows through the
        dimensions that are above the floor globally. With the weighting of
        `_scale_for_replicas` the summed gradients are those of one device.
        """
        replicated = self._replica_average(kl_per_dim, batch_size)
        if replicated is None:
            return ops.sum(ops.maximum(kl_per_dim, self._free_bits))
        above = ops.cast(ops.greater(replicated, self._free_bits), kl_per_dim.dtype)
        gradient_path = ops.sum(above * kl_per_dim)
        value = ops.sum(ops.maximum(replicated, self._free_bits))
        return gradient_path + ops.stop_gradient(value - gradient_path)

    def _replica_average(self, batch_mean, batch_size):
        """The global-batch average of a per-replica batch mean, or None without replicas."""
        if not _tf_strategy_active():
            return None
        import tensorflow as tf

        replica_context = tf.distribute.get_replica_context()
        if replica_context is None or tf.distribute.get_strategy().num_replicas_in_sync == 1:
            return None
        local = ops.cast(batch_size, batch_mean.dtype)
        total = replica_context.all_reduce(
            tf.distribute.ReduceOp.SUM, ops.stop_gradient(batch_mean) * local
        )
        return total / replica_context.all_reduce(tf.distribute.ReduceOp.SUM, local)

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
        x = self._checked_stream(x)
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._checked_validation_data(kwargs["validation_data"])
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y)
        return super().evaluate(self._checked_stream(x), y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_inputs(x)
        return super().predict(self._checked_stream(x), *args, **kwargs)

    def _checked_validation_data(self, validation_data):
        """Checks `validation_data` in every form Keras accepts, before any training step."""
        if not isinstance(validation_data, (list, tuple)):
            if _is_array(validation_data):
                self._check_inputs(validation_data, role="validation_data")
            return self._checked_stream(validation_data)
        x_val, y_val, _ = _unpack_x_y_sample_weight(validation_data)
        self._check_data(x_val, y_val, role="validation_data")
        return validation_data

    def _checked_stream(self, x):
        """Hook for subclasses: wraps datasets and generators in per-batch checks."""
        return x

    def train_step(self, *args, **kwargs):
        with _inside_step(self):
            return super().train_step(*args, **kwargs)

    def test_step(self, *args, **kwargs):
        with _inside_step(self):
            return super().test_step(*args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative ELBO of the batch `x`: reconstruction + beta * KL (+ added losses).

        Both terms are computed per example (in nats, in float32) and averaged
        over the batch; the metrics `reconstruction_loss`, `kl_loss` and `beta`
        track them. With `free_bits > 0` the KL term of the loss is
        `sum_j max(free_bits, mean_batch KL_j)`; `kl_loss` still reports the
        true KL. `y_pred` is what `call` returned inside the training step (the
        three tensors of one forward pass); any other `y_pred`, such as the
        mean reconstruction from a plain `model(x)`, is ignored and the forward
        pass is run here.
        """
        if y is not None:
            raise ValueError(self._no_targets_message())
        images, condition = self._unpack(x)
        if isinstance(y_pred, dict) and set(y_pred) == {"reconstruction", "z_mean", "z_log_var"}:
            outputs = y_pred
        else:
            outputs = self._forward(images, condition, training=training)
        images = ops.cast(images, "float32")
        reconstruction = ops.cast(outputs["reconstruction"], "float32")
        z_mean = ops.cast(outputs["z_mean"], "float32")
        z_log_var = ops.cast(outputs["z_log_var"], "float32")
        reconstruction_loss = self.reconstruction_loss_fn(images, reconstruction)
        if self._free_bits:
            kl_terms = kl_per_dimension(z_mean, z_log_var)
        else:
            kl_terms = kl_divergence(z_mean, z_log_var)
        if sample_weight is not None:
            weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            reconstruction_loss = reconstruction_loss * weight
            kl_terms = kl_terms * (weight if self._free_bits == 0 else weight[:, None])
        reconstruction_loss = ops.mean(reconstruction_loss)
        if self._free_bits:
            kl_per_dim = ops.mean(kl_terms, axis=0)
            kl_loss = ops.sum(kl_per_dim)
            kl_term = self._free_bits_term(kl_per_dim, ops.shape(images)[0])
        else:
            kl_loss = kl_term = ops.mean(kl_terms)
        beta = self._current_beta()
        if training:
            self.training_steps.assign_add(1)
        total = reconstruction_loss + beta * kl_term
        for extra in self.losses:  # e.g. weight regularizers of the sub-models
            total = total + ops.cast(extra, total.dtype)
        batch_size = ops.shape(images)[0]
        self.reconstruction_loss_tracker.update_state(reconstruction_loss, sample_weight=batch_size)
        self.kl_loss_tracker.update_state(kl_loss, sample_weight=batch_size)
        self.beta_tracker.update_state(beta)
        return self._scale_for_replicas(total, batch_size)

    def _no_targets_message(self):
        return (
            f"{type(self).__name__} trains on its inputs alone (the targets are the "
            "inputs themselves); call fit(x) / evaluate(x) without y"
        )

    # ------------------------------------------------------------ sub-models
    def _encode(self, images, condition, training=None):
        inputs = images if condition is None else [images, condition]
        outputs = self.encoder(inputs, training=training)
        z_mean, z_log_var = self._check_encoder_outputs(outputs)
        return z_mean, z_log_var

    def _decode(self, z, condition, training=None):
        inputs = z if condition is None else [z, condition]
        return self.decoder(inputs, training=training)

    def _forward(self, images, condition, training=None):
        """One encoder pass, one draw of z, one decoder pass."""
        z_mean, z_log_var = self._encode(images, condition, training=training)
        z = self.sampler([z_mean, z_log_var])
        reconstruction = self._decode(z, condition, training=training)
        self._check_reconstruction(images, reconstruction)
        return {"reconstruction": reconstruction, "z_mean": z_mean, "z_log_var": z_log_var}

    def call(self, inputs, training=None):
        images, condition = self._unpack(inputs)
        if _is_inside_step(self):
            return self._forward(images, condition, training=training)
        z_mean, _ = self._encode(images, condition, training=training)
        # float32 whatever the compute dtype, so predict() gives ordinary arrays
        return ops.cast(self._decode(z_mean, condition, training=training), "float32")

    def log_likelihood(self, x, num_samples=1000, batch_size=None, seed=None):
        """Importance-sampled estimate of log p(x) per example, in nats.

        See `vae_keras.evaluation.log_likelihood`; for a `CVAE`, `x` is
        `[images, labels]` and the estimate is the conditional log p(x | y).
        """
        from vae_keras import evaluation

        return evaluation.log_likelihood(
            self, x, num_samples=num_samples, batch_size=batch_size, seed=seed
        )

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
            if seed is not None:
                return (
                    np.random.default_rng(seed).standard_normal((n, latent_dim)).astype("float32")
                )
            # Keras' global seed generator: fixed by keras.utils.set_random_seed,
            # and NumPy's global stream is left alone.
            return ops.convert_to_numpy(keras.random.normal((n, latent_dim), dtype="float32"))
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
            "beta": (
                keras.saving.serialize_keras_object(self._beta_schedule)
                if self._beta_schedule is not None
                else self.beta
            ),
            "seed": self.seed,
            "likelihood": self.likelihood,
            "free_bits": self._free_bits,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        if isinstance(config.get("beta"), dict):
            config["beta"] = keras.saving.deserialize_keras_object(
                config["beta"], custom_objects=custom_objects
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
        beta: Weight of the KL term (1 gives the ELBO; other values a beta-VAE):
            a number, or a `keras.optimizers.schedules.LearningRateSchedule`
            such as `vk.LinearWarmup` (KL warm-up) or `vk.CyclicalAnnealing`,
            evaluated at the model's training step. Can be reassigned at any time.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"` or `"gaussian"`, passed to `VAELoss`.
        free_bits: Free bits (Kingma et al., 2016): a floor, in nats, under the
            batch-average KL of each latent dimension in the loss, so that the
            optimizer gains nothing by pushing a dimension's KL below it; a
            remedy for posterior collapse. 0 (the default) turns it off.
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
    ['beta', 'kl_loss', 'loss', 'reconstruction_loss']
    """

    def _unpack(self, inputs):
        return inputs, None

    def generate(self, n=None, z=None, seed=None):
        """Decodes `n` draws from the prior N(0, I), or the given `z`, in one call.

        Args:
            n: Number of images (may be omitted when `z` is given).
            z: Optional latent codes of shape `(n, latent_dim)`, or one code of
                shape `(latent_dim,)` (one image, or `n` copies when `n` is given).
            seed: Seed for the prior draws; with `None` they come from Keras'
                global seed generator, which `keras.utils.set_random_seed` fixes
                (NumPy's global random state is not touched).

        Returns:
            A NumPy array of images.
        """
        if z is None and (n is None or int(n) < 1):
            raise ValueError("VAE.generate: give a positive n or latent codes z")
        n = None if n is None else int(n)
        if z is not None and n is None:
            z = np.asarray(z)
            n = 1 if z.ndim == 1 else z.shape[0]
        z = self._prior_samples(n, z, seed)
        return ops.convert_to_numpy(ops.cast(self.decoder(z, training=False), "float32"))


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
        beta: Weight of the KL term: a number or a schedule, as for `VAE`.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"` or `"gaussian"`.
        free_bits: Per-dimension KL floor in nats, as for `VAE`.
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
        self,
        encoder,
        decoder,
        num_classes,
        beta=1.0,
        seed=None,
        likelihood="bernoulli",
        free_bits=0.0,
        **kwargs,
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
        super().__init__(
            encoder,
            decoder,
            beta=beta,
            seed=seed,
            likelihood=likelihood,
            free_bits=free_bits,
            **kwargs,
        )

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
                "CVAE: inputs must be a list [images, labels] (a dataset must yield "
                f"((images, labels),)); received {type(inputs).__name__}"
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

    def _check_inputs(self, x, role="inputs"):
        if not isinstance(x, (list, tuple)):
            if _is_array(x):
                raise ValueError(
                    f"CVAE: {role} must be a list [images, labels]; received a single array"
                )
            return  # a dataset or generator: its labels are checked batch by batch
        if len(x) != 2:
            raise ValueError(
                f"CVAE: {role} must be a list [images, labels]; received {len(x)} items"
            )
        images, labels = x
        self._check_images(images, role="images" if role == "inputs" else f"{role} images")
        if _is_array(images) and _is_array(labels):
            self._check_labels(labels, n=np.asarray(images).shape[0])

    def _no_targets_message(self):
        return (
            "CVAE trains on its inputs [images, labels] alone and takes no targets; call "
            "fit([x, y]) without a second argument, and let a dataset yield "
            "((images, labels),) rather than (images, labels)"
        )

    def _checked_validation_data(self, validation_data):
        # A CVAE never takes targets, so [x_val, y_val] (or a pair of arrays) can
        # only mean its two inputs.
        if (
            isinstance(validation_data, (list, tuple))
            and len(validation_data) == 2
            and all(_is_array(part) for part in validation_data)
        ):
            validation_data = (list(validation_data),)
        return super()._checked_validation_data(validation_data)

    def _checked_stream(self, x):
        """Wraps a tf.data.Dataset or a generator so that every batch's labels are checked."""
        if _is_tf_dataset(x):
            is_tuple = isinstance(x.element_spec, tuple)

            def check(*element):  # tf.data unpacks a tuple element into arguments
                return self._assert_labels_in_graph(element if is_tuple else element[0])

            return x.map(check)
        if inspect.isgenerator(x):
            return self._check_generator(x)
        return x

    def _batch_labels(self, batch):
        inputs, _, _ = _unpack_x_y_sample_weight(batch)
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            return inputs[1]
        return None

    def _check_generator(self, batches):
        for batch in batches:
            labels = self._batch_labels(batch)
            if labels is not None:
                self._check_labels(np.asarray(labels))
            yield batch

    def _assert_labels_in_graph(self, batch):
        import tensorflow as tf

        labels = self._batch_labels(batch)
        if labels is None:
            return batch
        rank = labels.shape.rank
        if rank == 2 and labels.shape[-1] not in (None, 1, self.num_classes):
            raise ValueError(
                f"CVAE: one-hot labels have width {labels.shape[-1]} but num_classes is "
                f"{self.num_classes}"
            )
        if rank == 1 or (rank == 2 and labels.shape[-1] == 1):
            checks = [
                tf.debugging.assert_greater_equal(
                    labels,
                    tf.cast(0, labels.dtype),
                    message="CVAE: labels out of range: class ids must be >= 0",
                ),
                tf.debugging.assert_less(
                    labels,
                    tf.cast(self.num_classes, labels.dtype),
                    message=(
                        f"CVAE: labels out of range: expected class ids in "
                        f"[0, {self.num_classes - 1}]"
                    ),
                ),
            ]
            with tf.control_dependencies(checks):
                batch = tf.nest.map_structure(tf.identity, batch)
        return batch

    def generate(self, labels, z=None, seed=None):
        """Decodes one image per label, with z from the prior N(0, I) unless given.

        Args:
            labels: Class ids of shape `(n,)` or one-hot labels `(n, num_classes)`.
            z: Optional latent codes, shape `(n, latent_dim)`, or one code of shape
                `(latent_dim,)` shared by all labels (same style, different digit).
            seed: Seed for the prior draws; with `None` they come from Keras'
                global seed generator, which `keras.utils.set_random_seed` fixes
                (NumPy's global random state is not touched).

        Returns:
            A NumPy array of `n` images, decoded in one batched call.
        """
        one_hot = self._check_labels(labels)
        z = self._prior_samples(one_hot.shape[0], z, seed)
        images = self.decoder([z, one_hot], training=False)
        return ops.convert_to_numpy(ops.cast(images, "float32"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}

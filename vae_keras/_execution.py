"""The models' compile policy: steps per call into the graph, XLA, and which multi-device API.

`VAE.compile` and `CVAE.compile` default both settings to `"auto"` and resolve
them here, for the backend and devices present when `compile` runs (see
`benchmarks/README.md` for the measurements behind the choices):

- `steps_per_execution`: 32 on TensorFlow, so `fit` runs 32 batches per call
  into the compiled graph instead of returning to Python after each one; 1 on
  JAX and PyTorch (PyTorch requires 1), and 1 under a `tf.distribute` strategy
  (Keras' multi-step loop fails under `MirroredStrategy`).
- `jit_compile`: Keras' own rule (XLA on JAX and on accelerators), except that
  on CPU-only TensorFlow, where Keras turns XLA off, it is turned on for models
  without convolution layers: XLA's CPU convolutions are slower than
  TensorFlow's own.
"""

import keras

from vae_keras.objective import tf_strategy_active

_BACKEND_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX"}

# Training steps per call into the compiled graph on TensorFlow with
# `compile(steps_per_execution="auto")`.
TF_STEPS_PER_EXECUTION = 32

# compile() arguments that only make sense for a model whose loss Keras computes
# from targets; the VAE's loss is the negative ELBO of its inputs.
REFUSED_COMPILE_ARGUMENTS = ("loss", "metrics", "weighted_metrics", "loss_weights")


def backend_is(name):
    return keras.backend.backend() == name


def check_distribution_support(where):
    """Refuses Keras' distribution API on the backends whose trainers ignore it."""
    distribution = keras.distribution.distribution()
    backend = keras.backend.backend()
    if distribution is None or backend == "jax":
        return
    if backend == "tensorflow":
        effect = (
            "the TensorFlow trainer ignores it, so this model would train on one device. "
            "On TensorFlow, build and compile the model inside "
            "tf.distribute.MirroredStrategy().scope()"
        )
    else:
        effect = (
            f"the {_BACKEND_NAMES.get(backend, backend)} backend has no support for it, so "
            "this model would not be trained in parallel. Use KERAS_BACKEND=jax with "
            "DataParallel, or KERAS_BACKEND=tensorflow with tf.distribute.MirroredStrategy"
        )
    raise ValueError(
        f"{where}: Keras' distribution API (keras.distribution.DataParallel, ModelParallel) "
        f"runs on the JAX backend; {effect}; received distribution={type(distribution).__name__}"
    )


def resolve_steps_per_execution(requested):
    if requested != "auto":
        return requested
    return TF_STEPS_PER_EXECUTION if backend_is("tensorflow") and not tf_strategy_active() else 1


def resolve_jit_compile(requested, model, run_eagerly):
    """`True` on CPU-only TensorFlow for models without convolutions, else Keras' "auto"."""
    if requested != "auto" or run_eagerly or not backend_is("tensorflow"):
        return requested  # the value asked for, or Keras' own "auto"
    import tensorflow as tf

    try:
        from tensorflow.python.framework.config import is_op_determinism_enabled
    except ImportError:  # pragma: no cover - moved in some TensorFlow version
        return "auto"
    devices = tf.config.list_physical_devices()
    if tf.distribute.has_strategy() or any(device.device_type != "CPU" for device in devices):
        return "auto"
    if is_op_determinism_enabled() or any(
        # a convolution (Keras' Conv*, SeparableConv*, DepthwiseConv*, ConvLSTM* all have a
        # kernel_size), or a layer that cannot be compiled
        hasattr(layer, "kernel_size") or not getattr(layer, "supports_jit", True)
        for layer in model._flatten_layers()
    ):
        return "auto"
    return True


def check_compile_arguments(where, *values):
    """Refuses `loss`, `metrics`, `weighted_metrics` and `loss_weights` with a clear message.

    `values` are the four arguments, in that order.
    """
    for key, value in zip(REFUSED_COMPILE_ARGUMENTS, values):
        if value is None or (key != "loss" and not value):
            continue
        if key == "loss":
            raise ValueError(
                f"{where} computes its own loss (the negative ELBO); call "
                f"compile(optimizer=...) without a loss argument; received loss={value!r}"
            )
        raise ValueError(
            f"{where}.compile: {key} is not supported. The model has no targets to compare "
            "predictions with; it reports loss, reconstruction_loss, kl_loss and beta. For "
            "other numbers (per-dimension KL, active units, log-likelihood) use the functions "
            f"of vae_keras.evaluation in a callback; received {key}={value!r}"
        )


class CompilePolicy:
    """`compile` for the models: the refusals above, then Keras' with the "auto" policy."""

    # What `steps_per_execution="auto"` gives on TensorFlow (outside a strategy).
    tf_steps_per_execution = TF_STEPS_PER_EXECUTION

    def compile(
        self,
        optimizer="adam",
        loss=None,
        steps_per_execution="auto",
        jit_compile="auto",
        metrics=None,
        weighted_metrics=None,
        loss_weights=None,
        **kwargs,
    ):
        """Configures training; the loss is always the negative ELBO.

        Takes the arguments of `keras.Model.compile` except `loss`, `metrics`,
        `weighted_metrics` and `loss_weights`, which need targets the model
        does not have (they raise a `ValueError`; the model reports `loss`,
        `reconstruction_loss`, `kl_loss` and `beta`). Two defaults are faster
        than Keras' own (see `benchmarks/README.md` for the measurements):

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
        name = type(self).__name__
        check_compile_arguments(name, loss, metrics, weighted_metrics, loss_weights)
        check_distribution_support(name)
        self._requested_execution = (steps_per_execution, jit_compile)
        super().compile(
            optimizer=optimizer,
            steps_per_execution=resolve_steps_per_execution(steps_per_execution),
            jit_compile=resolve_jit_compile(jit_compile, self, kwargs.get("run_eagerly", False)),
            **kwargs,
        )

    def get_compile_config(self):
        config = super().get_compile_config()
        requested = getattr(self, "_requested_execution", None)
        if config and requested is not None:
            config["steps_per_execution"], config["jit_compile"] = requested
        return config

    def compile_from_config(self, config):
        # Keras skips models whose `compile` is overridden; this one is safe to call.
        config = keras.saving.deserialize_keras_object(config)
        for key in REFUSED_COMPILE_ARGUMENTS:
            config.pop(key, None)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

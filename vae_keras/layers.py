"""The reparameterization trick, as a Keras layer and as a plain function."""

import keras
from keras import ops

from vae_keras._inputs import shapes_differ
from vae_keras.distributions import reparameterize

__all__ = ["Sampling", "sampling"]


def _check_pair(inputs, where):
    """Return `(z_mean, z_log_var)` or raise a ValueError that names the problem."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(
            f"{where} expects a list of two tensors [z_mean, z_log_var]; "
            f"received {type(inputs).__name__}"
            + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
        )
    mean_shape, log_var_shape = (tuple(tensor.shape) for tensor in inputs)
    if shapes_differ(mean_shape, log_var_shape):
        raise ValueError(
            f"{where}: z_mean and z_log_var must have the same shape; "
            f"received {mean_shape} and {log_var_shape}"
        )
    return inputs


def _sample(z_mean, z_log_var, seed, dtype):
    """One draw of `eps ~ N(0, I)` through `distributions.reparameterize`, cast to `dtype`.

    `dtype=None` keeps the dtype of `z_mean`.

    `eps` is drawn in float32 (or wider): under mixed precision the arithmetic
    must not run in float16, where `exp(0.5 * z_log_var)` overflows.
    """
    z_mean, z_log_var = ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)
    wide = keras.backend.result_type(z_mean.dtype, z_log_var.dtype, "float32")
    epsilon = keras.random.normal(ops.shape(z_mean), dtype=wide, seed=seed)
    return ops.cast(reparameterize(z_mean, z_log_var, epsilon), dtype or z_mean.dtype)


@keras.saving.register_keras_serializable(package="vae_keras")
class Sampling(keras.layers.Layer):
    """Draws `z ~ N(z_mean, exp(z_log_var))` with the reparameterization trick.

    The layer returns `z_mean + exp(0.5 * z_log_var) * eps` with `eps ~ N(0, I)`.
    All randomness sits in `eps`, so gradients flow to `z_mean` and `z_log_var`
    (Kingma & Welling, 2014, "Auto-Encoding Variational Bayes", section 2.4).
    `eps` comes from a `keras.random.SeedGenerator` owned by the layer: two
    layers built with the same `seed` produce the same sequence of draws, and the
    layer works on every Keras backend, including inside JAX's `jit`.

    Mixed precision: under `mixed_float16` or `mixed_bfloat16` the draw and the
    arithmetic run in float32 (in float16, `exp(0.5 * z_log_var)` overflows for
    log-variances above about 22) and `z` is returned in the layer's compute dtype.

    Args:
        seed: Optional integer seed for the layer's `SeedGenerator`. With `None`
            the seed comes from Keras' global seed, which
            `keras.utils.set_random_seed` fixes.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A list `[z_mean, z_log_var]` of two tensors of the same shape,
            typically `(batch, latent_dim)`.

    Returns:
        A tensor `z` with the shape of `z_mean`.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> z = vk.Sampling(seed=0)([np.zeros((4, 2)), np.zeros((4, 2))])
    >>> tuple(z.shape)
    (4, 2)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = _check_pair(inputs, "Sampling")
        return _sample(z_mean, z_log_var, self.seed_generator, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="vae_keras")
def sampling(args):
    """The reparameterization trick as a plain function, for `keras.layers.Lambda`.

    Computes `z_mean + exp(0.5 * z_log_var) * eps` with `eps ~ N(0, I)`, like
    `Sampling`, for the classic Keras pattern
    `z = keras.layers.Lambda(vk.sampling)([z_mean, z_log_var])`. The function is
    registered as `vae_keras>sampling`, so a functional model holding
    `Lambda(vk.sampling)` saves to `.keras` and loads back with
    `keras.models.load_model` under the default `safe_mode=True` (a Python
    `lambda` in its place would be refused).

    Backends: a function has nowhere to keep a random state, so `eps` is drawn
    with Keras' global seed generator. That trains on TensorFlow and PyTorch. On
    JAX, unseeded random draws inside a traced function are an error, and Keras
    traces the Lambda as soon as it is built (to infer its output shape), so the
    Lambda route fails there at model construction. Use the `Sampling` layer: it
    owns a `SeedGenerator`, works on all three backends, and its `seed` is saved
    with the model.

    Args:
        args: A list `[z_mean, z_log_var]` of two tensors of the same shape.

    Returns:
        A tensor `z` with the shape and dtype of `z_mean`; as in `Sampling`, the
        arithmetic runs in float32 when `z_mean` is float16 or bfloat16.

    Example:

    In a functional model (TensorFlow or PyTorch backend):

        z = keras.layers.Lambda(vk.sampling)([z_mean, z_log_var])

    Called directly:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> z = vk.sampling([np.zeros((4, 2)), np.zeros((4, 2))])
    >>> tuple(z.shape)
    (4, 2)
    """
    z_mean, z_log_var = _check_pair(args, "sampling")
    return _sample(z_mean, z_log_var, None, None)

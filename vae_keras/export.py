"""Serving: a trained VAE or CVAE as one TensorFlow SavedModel with three endpoints.

A deployed VAE serves `encode`, `decode` and `generate`, not `fit`.
`export_serving` writes them with `keras.export.ExportArchive`; the result
loads with `tf.saved_model.load` in a process that has neither Keras nor
`vae_keras` (TensorFlow Serving reads the same folder). It runs on the
TensorFlow backend; a model trained on JAX or PyTorch is saved as a `.keras`
file, loaded with `KERAS_BACKEND=tensorflow` and exported there.

Endpoints of a `VAE` (images of the encoder's input shape, float32):

- `encode(images)` -> `{"z_mean": ..., "z_log_var": ...}`, each `(n, latent_dim)`;
- `decode(z)` -> images, the decoder's output (pixel probabilities for the
  Bernoulli likelihood);
- `generate(n, seed)` -> `n` images decoded from
  `z = tf.random.stateless_normal([n, latent_dim], seed=[seed, 0])` (int32
  scalars; the same seed gives the same images): the means of p(x | z), which
  are the decoder's output except for the continuous Bernoulli likelihood,
  whose mean is not its parameter lambda (as `model.generate` returns them).

A `CVAE`'s endpoints take its condition as well: `encode(images, c)`,
`decode(z, c)` and `generate(c, seed)` (one image per condition), with `c`
integer class ids for a CVAE with `num_classes`, and a float32 tensor of the
condition's shape for any other CVAE. `generate` draws z from the model's prior:
N(0, I), or p(z | c) for a CVAE with a `prior` network, `z = prior_mean(c) +
exp(0.5 * prior_log_var(c)) * eps` with the same `eps`.
"""

import os

import keras

from vae_keras._inputs import one_hot
from vae_keras.distributions import reparameterize
from vae_keras.models import CVAE, VAE

__all__ = ["export_serving"]


def export_serving(model, filepath):
    """Writes `encode`, `decode` and `generate` endpoints of a model as one SavedModel.

    Args:
        model: A built `vk.VAE` or `vk.CVAE` (trained, or called once) whose
            encoder declares its input shape (a functional or Sequential model,
            as the `vk.build_*` builders make).
        filepath: Folder to write the SavedModel into.

    Returns:
        `filepath`.

    Example:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> import keras
    >>> import vae_keras as vk
    >>> if keras.backend.backend() == "tensorflow":
    ...     import tensorflow as tf
    ...     vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    ...     path = vk.export.export_serving(vae, os.path.join(tempfile.mkdtemp(), "vae"))
    ...     served = tf.saved_model.load(path)
    ...     print(tuple(served.generate(tf.constant(3), tf.constant(0)).shape))
    ... else:
    ...     print((3, 28, 28, 1))
    (3, 28, 28, 1)
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            "export_serving writes a TensorFlow SavedModel: save the model as .keras, load it "
            f"with KERAS_BACKEND=tensorflow and export it there; received backend={backend!r}"
        )
    import tensorflow as tf

    if not isinstance(model, (VAE, CVAE)):
        raise TypeError(
            "export_serving: model must be a vk.VAE or vk.CVAE; received model of type "
            f"{type(model).__name__}"
        )
    encoder_inputs = getattr(model.encoder, "inputs", None)
    if not encoder_inputs:
        raise ValueError(
            "export_serving: the encoder must declare its input shape (a functional or Sequential "
            f"model with an Input); received an encoder of type {type(model.encoder).__name__}"
        )
    image_shape = tuple(encoder_inputs[0].shape[1:])
    latent_dim = int(model.encoder.outputs[0].shape[-1])

    def encode(images, c=None):  # the model's own encode and decode, traced
        z_mean, z_log_var = model.encode(images if c is None else [images, c])
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode(z, c=None):
        return model.decode(z if c is None else [z, c])

    def generate(n, seed, c=None):
        eps = tf.random.stateless_normal((n, latent_dim), seed=tf.stack([seed, 0]))
        prior = ()
        if c is not None:  # p(z | c) takes the condition as the networks do: labels one-hot
            labels = model.num_classes is not None
            prior = model.prior_at(one_hot(c, model.num_classes, "float32") if labels else c)
        z = reparameterize(*prior, eps) if prior else eps
        # the mean of p(x | z), as model.generate returns it
        return model.likelihood_distribution.mean(decode(z, c))

    def generate_per_condition(c, seed):
        return generate(tf.shape(c)[0], seed, c)

    images_spec = tf.TensorSpec((None,) + image_shape, tf.float32, name="images")
    z_spec = tf.TensorSpec((None, latent_dim), tf.float32, name="z")
    seed_spec = tf.TensorSpec((), tf.int32, name="seed")
    endpoints = {
        "encode": (encode, [images_spec]),
        "decode": (decode, [z_spec]),
        "generate": (generate, [tf.TensorSpec((), tf.int32, name="n"), seed_spec]),
    }
    if isinstance(model, CVAE):  # each endpoint takes the condition too
        if model.num_classes is not None:
            spec = tf.TensorSpec((None,), tf.int32, name="labels")
        else:
            spec = tf.TensorSpec((None,) + tuple(encoder_inputs[1].shape[1:]), tf.float32, "c")
        endpoints["encode"] = (encode, [images_spec, spec])
        endpoints["decode"] = (decode, [z_spec, spec])
        endpoints["generate"] = (generate_per_condition, [spec, seed_spec])
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(os.fspath(filepath), verbose=False)
    return filepath

"""The reference: a VAE written the way most Keras tutorials write one.

A `keras.Model` subclass with a hand-written `train_step` around a
`tf.GradientTape`, the sampling layer inside the encoder, the closed-form KL
term and a binary cross-entropy summed over the pixels. It is written here from
scratch for the benchmark (TensorFlow backend only, like those tutorials); the
architectures mirror `vae_keras.build_*` layer for layer, which
`benchmarks.run` checks by comparing parameter counts.
"""

import keras
import tensorflow as tf
from keras import layers

__all__ = ["ReferenceVAE", "ReparameterizationTrick", "mlp_pair", "conv_pair"]


class ReparameterizationTrick(layers.Layer):
    """z = mean + sigma * eps, with eps drawn from a standard normal."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rng = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_variance = inputs
        noise = keras.random.normal(tf.shape(mean), seed=self.rng)
        return mean + tf.exp(0.5 * log_variance) * noise


def _encoder_heads(hidden, latent_dim, image_input, seed):
    mean = layers.Dense(latent_dim, name="z_mean")(hidden)
    log_variance = layers.Dense(latent_dim, name="z_log_var")(hidden)
    z = ReparameterizationTrick(seed=seed)([mean, log_variance])
    return keras.Model(image_input, [mean, log_variance, z], name="encoder")


def mlp_pair(latent_dim=2, hidden=512, seed=None):
    """784-hidden-latent encoder and latent-hidden-784 decoder."""
    images = keras.Input(shape=(28, 28, 1))
    h = layers.Dense(hidden, activation="relu")(layers.Flatten()(images))
    encoder = _encoder_heads(h, latent_dim, images, seed)

    codes = keras.Input(shape=(latent_dim,))
    h = layers.Dense(hidden, activation="relu")(codes)
    h = layers.Dense(28 * 28, activation="sigmoid")(h)
    decoder = keras.Model(codes, layers.Reshape((28, 28, 1))(h), name="decoder")
    return encoder, decoder


def conv_pair(latent_dim=2, seed=None):
    """Conv2D 32 and 64 (stride 2), Dense 16; mirrored Conv2DTranspose decoder."""
    images = keras.Input(shape=(28, 28, 1))
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(images)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
    encoder = _encoder_heads(h, latent_dim, images, seed)

    codes = keras.Input(shape=(latent_dim,))
    h = layers.Dense(7 * 7 * 64, activation="relu")(codes)
    h = layers.Reshape((7, 7, 64))(h)
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    out = layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
    return encoder, keras.Model(codes, out, name="decoder")


class ReferenceVAE(keras.Model):
    """Tutorial-style VAE: custom `train_step` with `tf.GradientTape`."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_tracker, self.reconstruction_tracker, self.kl_tracker]

    def _elbo_terms(self, images, training):
        mean, log_variance, z = self.encoder(images, training=training)
        reconstruction = self.decoder(z, training=training)
        # Bernoulli log-likelihood: cross-entropy per pixel, summed per image.
        per_pixel = keras.ops.binary_crossentropy(images, reconstruction)
        reconstruction_loss = tf.reduce_mean(tf.reduce_sum(per_pixel, axis=[1, 2, 3]))
        # KL(q(z|x) || N(0, I)) in closed form, summed over latent dimensions.
        kl_per_dim = -0.5 * (1.0 + log_variance - tf.square(mean) - tf.exp(log_variance))
        kl_loss = tf.reduce_mean(tf.reduce_sum(kl_per_dim, axis=1))
        return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss

    def _update(self, total, reconstruction_loss, kl_loss):
        self.total_tracker.update_state(total)
        self.reconstruction_tracker.update_state(reconstruction_loss)
        self.kl_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, reconstruction_loss, kl_loss = self._elbo_terms(data, training=True)
        gradients = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._update(total, reconstruction_loss, kl_loss)

    def test_step(self, data):
        return self._update(*self._elbo_terms(data, training=False))

    def call(self, images, training=None):
        mean, _, _ = self.encoder(images, training=training)
        return self.decoder(mean, training=training)

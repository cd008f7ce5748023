"""Encoders and decoders for 28x28x1 images: an MLP pair and a convolutional pair.

Each builder returns a functional `keras.Model`. With `num_classes` set, the
model takes a one-hot label as a second input, as `CVAE` expects: encoders take
`[images, one_hot_labels]`, decoders `[z, one_hot_labels]`. The conditional
MLP decoder feeds the label to every hidden layer, not only the first; the
convolutional decoder concatenates it with z and tiles it over the first
feature map. Both make the label hard for the decoder to ignore, though they do
not guarantee it: notebook 04 measures how well each design obeys its label.
"""

import math

import keras
from keras import layers

from vae_keras import _validation
from vae_keras.convolution import Conv2DTranspose

__all__ = ["build_mlp_encoder", "build_mlp_decoder", "build_conv_encoder", "build_conv_decoder"]

IMAGE_SHAPE = (28, 28, 1)


def _check_common(where, latent_dim, num_classes, activation, units, what):
    """Checks the sizes and the hidden activation; returns `(latent_dim, num_classes, units)`."""
    latent_dim = _validation.integer(latent_dim, "latent_dim", where)
    num_classes = _validation.integer(num_classes, "num_classes", where, optional=True)
    try:
        keras.activations.get(activation)
    except ValueError:
        raise ValueError(
            f"{where}: activation must be a Keras activation name such as 'relu' or 'tanh', "
            f"or a callable; received activation={activation!r}"
        ) from None
    try:
        units = tuple(units)
    except TypeError:
        raise ValueError(
            f"{where}: {what} must be a sequence of positive integers; received {what}={units!r}"
        ) from None
    return latent_dim, num_classes, tuple(_validation.integer(u, what, where) for u in units)


def _inputs(shape, num_classes, name):
    main = keras.Input(shape=shape, name=name)
    if num_classes is None:
        return main, None, main
    label = keras.Input(shape=(num_classes,), name="label")
    return main, label, [main, label]


def _with_label(x, label):
    return x if label is None else layers.Concatenate()([x, label])


def _with_label_channels(x, label, height, width):
    """`x`, a `(height, width, channels)` map, with the one-hot label tiled as extra channels."""
    if label is None:
        return x
    repeated = layers.RepeatVector(height * width)(label)
    tiled = layers.Reshape((height, width, label.shape[-1]))(repeated)
    return layers.Concatenate()([x, tiled])


def _latent_heads(x, latent_dim):
    return [layers.Dense(latent_dim, name=name)(x) for name in ("z_mean", "z_log_var")]


def build_mlp_encoder(
    latent_dim=2,
    hidden_units=(512,),
    num_classes=None,
    input_shape=IMAGE_SHAPE,
    name="encoder",
    activation="relu",
):
    """MLP encoder: flatten, Dense layers (ReLU by default), then two Dense heads.

    Args:
        latent_dim: Width of `z_mean` and `z_log_var`.
        hidden_units: Units of the hidden Dense layers, in order.
        num_classes: If set, a second input takes a one-hot label, concatenated
            with the flattened image.
        input_shape: Shape of one image.
        name: Model name.
        activation: Activation of the hidden layers, a Keras activation name
            or callable (`"tanh"` gives Burda et al.'s 2016 networks).

    Returns:
        A `keras.Model` mapping images (or `[images, labels]`) to
        `[z_mean, z_log_var]`.

    Example:

    >>> import vae_keras as vk
    >>> encoder = vk.build_mlp_encoder(latent_dim=2)
    >>> [tuple(t.shape) for t in encoder.outputs]
    [(None, 2), (None, 2)]
    """
    latent_dim, num_classes, hidden_units = _check_common(
        "build_mlp_encoder", latent_dim, num_classes, activation, hidden_units, "hidden_units"
    )
    input_shape = _validation.shape(input_shape, "input_shape", None, "build_mlp_encoder")
    images, label, inputs = _inputs(input_shape, num_classes, "images")
    x = _with_label(layers.Flatten()(images), label)
    for units in hidden_units:
        x = layers.Dense(units, activation=activation)(x)
    return keras.Model(inputs, _latent_heads(x, latent_dim), name=name)


def build_mlp_decoder(
    latent_dim=2,
    hidden_units=(512,),
    num_classes=None,
    output_shape=IMAGE_SHAPE,
    name="decoder",
    activation="relu",
):
    """MLP decoder: Dense layers (ReLU by default), then a sigmoid Dense reshaped to images.

    Args:
        latent_dim: Width of z.
        hidden_units: Units of the hidden Dense layers, in order (mirror the
            encoder's by passing them reversed).
        num_classes: If set, a second input takes a one-hot label, concatenated
            with z and with the output of every hidden layer.
        output_shape: Shape of one image.
        name: Model name.
        activation: Activation of the hidden layers, as for `build_mlp_encoder`;
            the output layer stays a sigmoid.

    Returns:
        A `keras.Model` mapping z (or `[z, labels]`) to pixel probabilities.

    Example:

    >>> import vae_keras as vk
    >>> tuple(vk.build_mlp_decoder(latent_dim=2).output.shape)
    (None, 28, 28, 1)
    """
    latent_dim, num_classes, hidden_units = _check_common(
        "build_mlp_decoder", latent_dim, num_classes, activation, hidden_units, "hidden_units"
    )
    output_shape = _validation.shape(output_shape, "output_shape", None, "build_mlp_decoder")
    z, label, inputs = _inputs((latent_dim,), num_classes, "z")
    x = z
    for units in hidden_units:
        x = layers.Dense(units, activation=activation)(_with_label(x, label))
    x = layers.Dense(math.prod(output_shape), activation="sigmoid")(_with_label(x, label))
    return keras.Model(inputs, layers.Reshape(output_shape)(x), name=name)


def build_conv_encoder(
    latent_dim=2,
    filters=(32, 64),
    dense_units=16,
    num_classes=None,
    input_shape=IMAGE_SHAPE,
    name="encoder",
    activation="relu",
):
    """Convolutional encoder: 3x3 stride-2 Conv2D+ReLU layers, Dense, two heads.

    With the defaults this is the architecture of the keras.io VAE example:
    Conv2D 32 and 64 (stride 2), Dense 16, latent 2.

    Args:
        latent_dim: Width of `z_mean` and `z_log_var`.
        filters: Filters of the stride-2 Conv2D layers, in order.
        dense_units: Units of the Dense layer before the heads.
        num_classes: If set, a second input takes a one-hot label: it is tiled
            as extra image channels and concatenated again before the Dense.
        input_shape: Shape of one image.
        name: Model name.
        activation: Activation of the hidden layers, a Keras activation name
            or callable (`"tanh"` gives Burda et al.'s 2016 networks).

    Returns:
        A `keras.Model` mapping images (or `[images, labels]`) to
        `[z_mean, z_log_var]`.

    Example:

    >>> import vae_keras as vk
    >>> encoder = vk.build_conv_encoder(latent_dim=16)
    >>> [tuple(t.shape) for t in encoder.outputs]
    [(None, 16), (None, 16)]
    """
    where = "build_conv_encoder"
    latent_dim, num_classes, filters = _check_common(
        where, latent_dim, num_classes, activation, filters, "filters"
    )
    dense_units = _validation.integer(dense_units, "dense_units", where)
    input_shape = _validation.shape(input_shape, "input_shape", 3, where)
    images, label, inputs = _inputs(input_shape, num_classes, "images")
    x = _with_label_channels(images, label, input_shape[0], input_shape[1])
    for n_filters in filters:
        x = layers.Conv2D(n_filters, 3, strides=2, padding="same", activation=activation)(x)
    x = _with_label(layers.Flatten()(x), label)
    x = layers.Dense(dense_units, activation=activation)(x)
    return keras.Model(inputs, _latent_heads(x, latent_dim), name=name)


def build_conv_decoder(
    latent_dim=2,
    filters=(64, 32),
    num_classes=None,
    output_shape=IMAGE_SHAPE,
    name="decoder",
    activation="relu",
):
    """Convolutional decoder mirroring `build_conv_encoder`.

    Dense to a (h/2^k, w/2^k, filters[0]) map, then 3x3 stride-2
    Conv2DTranspose+ReLU layers, then a sigmoid Conv2DTranspose to the image
    channels. Image height and width must be divisible by `2 ** len(filters)`.

    Args:
        latent_dim: Width of z.
        filters: Filters of the stride-2 Conv2DTranspose layers, in order
            (the encoder's, reversed).
        num_classes: If set, a second input takes a one-hot label: it is
            concatenated with z and tiled as extra channels of the first map.
        output_shape: Shape of one image.
        name: Model name.
        activation: Activation of the hidden layers, as for `build_mlp_encoder`;
            the output layer stays a sigmoid.

    Returns:
        A `keras.Model` mapping z (or `[z, labels]`) to pixel probabilities.

    Example:

    >>> import vae_keras as vk
    >>> tuple(vk.build_conv_decoder(latent_dim=2).output.shape)
    (None, 28, 28, 1)
    """
    latent_dim, num_classes, filters = _check_common(
        "build_conv_decoder", latent_dim, num_classes, activation, filters, "filters"
    )
    output_shape = _validation.shape(output_shape, "output_shape", 3, "build_conv_decoder")
    height, width, channels = output_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(
            f"build_conv_decoder: image size {height}x{width} is not divisible by "
            f"2**len(filters) = {factor}"
        )
    small = (height // factor, width // factor)
    z, label, inputs = _inputs((latent_dim,), num_classes, "z")
    x = layers.Dense(small[0] * small[1] * filters[0], activation=activation)(_with_label(z, label))
    x = layers.Reshape((small[0], small[1], filters[0]))(x)
    x = _with_label_channels(x, label, *small)
    for n_filters in filters:
        x = Conv2DTranspose(n_filters, 3, strides=2, padding="same", activation=activation)(x)
    outputs = Conv2DTranspose(channels, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=name)

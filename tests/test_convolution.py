"""`vae_keras.convolution.Conv2DTranspose` computes what Keras' layer computes, with its weights.

`Everywhere` uses the stride-1 formulation on every backend (it is the JAX path of the
layer), so the formula is checked against each backend's own transposed convolution.
"""

import itertools

import keras
import numpy as np
import pytest

from vae_keras.convolution import Conv2DTranspose

BACKENDS = ("tensorflow", "jax", "torch")


class Everywhere(Conv2DTranspose):
    _fast_backends = BACKENDS


CASES = [  # strides, padding, input height x width, kernel size
    (s, p, hw, k)
    for s, p, hw, k in itertools.product((1, 2), ("same", "valid"), ((7, 7), (6, 5)), (3, 4))
]


def _pair(cls, strides, padding, kernel_size, use_bias=True, activation=None, x=None):
    kwargs = dict(strides=strides, padding=padding, use_bias=use_bias, activation=activation)
    reference = keras.layers.Conv2DTranspose(5, kernel_size, **kwargs)
    layer = cls(5, kernel_size, **kwargs)
    reference.build(x.shape)
    layer.build(x.shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in reference.get_weights()]
    reference.set_weights(weights)
    layer.set_weights(weights)
    return reference, layer


def _input(hw, channels=3):
    return np.random.default_rng(1).normal(size=(2, *hw, channels)).astype("float32")


def _gradients(layer, x):
    """d sum(output * w) / d(input, kernel), with the backend's own autodiff."""
    backend = keras.backend.backend()
    weights = np.linspace(-1, 1, int(np.prod(layer.compute_output_shape(x.shape)))).astype(
        "float32"
    )
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    rest = [v.value for v in layer.trainable_variables[1:]]

    def total(x, kernel, ops=keras.ops):
        y, _ = layer.stateless_call([kernel, *rest], [], x)
        return ops.sum(ops.reshape(y, (-1,)) * ops.convert_to_tensor(weights))

    if backend == "tensorflow":
        import tensorflow as tf

        x, kernel = tf.constant(x), tf.constant(kernel)
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            value = total(x, kernel)
        return [g.numpy() for g in tape.gradient(value, [x, kernel])]
    if backend == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(total, argnums=(0, 1))(x, kernel)]
    import torch

    x = torch.tensor(x, requires_grad=True)
    kernel = torch.tensor(kernel, requires_grad=True)
    total(x, kernel).backward()
    return [x.grad.numpy(), kernel.grad.numpy()]


@pytest.mark.parametrize("strides,padding,hw,kernel_size", CASES)
def test_outputs_and_gradients_equal_keras(strides, padding, hw, kernel_size):
    x = _input(hw)
    reference, layer = _pair(Everywhere, strides, padding, kernel_size, x=x)
    expected, got = keras.ops.convert_to_numpy(reference(x)), keras.ops.convert_to_numpy(layer(x))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    for g, e in zip(_gradients(layer, x), _gradients(reference, x)):
        np.testing.assert_allclose(g, e, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("use_bias,activation", [(False, None), (True, "sigmoid")])
def test_bias_and_activation(use_bias, activation):
    x = _input((7, 7))
    for cls in (Conv2DTranspose, Everywhere):
        reference, layer = _pair(cls, 2, "same", 3, use_bias, activation, x=x)
        assert len(layer.weights) == len(reference.weights) == (2 if use_bias else 1)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(x)),
            keras.ops.convert_to_numpy(reference(x)),
            atol=1e-5,
            rtol=1e-5,
        )


def _model(cls):
    inputs = keras.Input((7, 7, 4))
    x = cls(6, 3, strides=2, padding="same", activation="relu", name="up")(inputs)
    return keras.Model(inputs, cls(1, 3, padding="same", activation="sigmoid", name="out")(x))


def test_keras_save_load_under_safe_mode_and_files_saved_with_keras_layer(tmp_path):
    x = _input((7, 7), channels=4)
    model = _model(Conv2DTranspose)
    model.save(tmp_path / "ours.keras")
    restored = keras.models.load_model(tmp_path / "ours.keras", safe_mode=True)
    assert isinstance(restored.get_layer("up"), Conv2DTranspose)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), 1e-6)
    keras_model = _model(keras.layers.Conv2DTranspose)  # a file saved before the layer existed
    keras_model.save(tmp_path / "keras.keras")
    ours = _model(Conv2DTranspose)
    ours.load_weights(tmp_path / "keras.keras")
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), keras_model.predict(x, verbose=0), atol=1e-5, rtol=1e-5
    )


def test_config_round_trip():
    layer = Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu", use_bias=False)
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == "vae_keras>Conv2DTranspose"
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is Conv2DTranspose and again.get_config() == layer.get_config()
    assert (
        layer.get_config()
        == keras.layers.Conv2DTranspose.from_config(layer.get_config()).get_config()
    )


def test_dilation_uses_keras_path():
    x = _input((6, 6))
    dilated = Everywhere(5, 3, padding="same", dilation_rate=2)
    keras_dilated = keras.layers.Conv2DTranspose(5, 3, padding="same", dilation_rate=2)
    dilated.build(x.shape)
    keras_dilated.build(x.shape)
    dilated.set_weights(keras_dilated.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dilated(x)),
        keras.ops.convert_to_numpy(keras_dilated(x)),
        atol=1e-5,
    )

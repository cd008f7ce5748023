"""What one training step computes: one forward pass, beta that may change, free bits,
and the data paths (validation data, datasets, generators) checked before training."""

import keras
import numpy as np
import pytest
from conftest import CLASSES, LATENT, bars
from keras import layers, ops

import vae_keras as vk


def _bars(n=64, seed=0):
    return bars(n, seed, jitter=False)


def _numpy(x):
    return ops.convert_to_numpy(x)


def _spe(n):
    """`steps_per_execution=n` where the backend has it (PyTorch requires 1)."""
    return 1 if keras.backend.backend() == "torch" else n


class CallCounter(layers.Layer):
    """Counts its calls and keeps the batch mean of its last input (a stateful layer)."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False)
        self.last_mean = self.add_weight(shape=(width,), initializer="zeros", trainable=False)

    def call(self, x):
        self.calls.assign_add(1.0)
        self.last_mean.assign(ops.mean(ops.cast(x, "float32"), axis=0))
        return x


def _counting_vae(batch_norm=False):
    images = keras.Input((28, 28, 1))
    h = CallCounter(784, name="encoder_counter")(layers.Flatten()(images))
    h = layers.Dense(16, activation="relu")(h)
    encoder = keras.Model(images, [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])
    z = keras.Input((LATENT,))
    h = layers.Dense(16)(z)
    h = CallCounter(16, name="decoder_counter")(h)
    if batch_norm:
        h = layers.BatchNormalization(momentum=0.5, name="bn")(h)
    h = layers.Dense(784, activation="sigmoid")(layers.Activation("relu")(h))
    decoder = keras.Model(z, layers.Reshape((28, 28, 1))(h))
    return vk.VAE(encoder, decoder, seed=0)


def _calls(model):
    return [
        float(_numpy(model.encoder.get_layer("encoder_counter").calls)),
        float(_numpy(model.decoder.get_layer("decoder_counter").calls)),
    ]


@pytest.mark.parametrize(
    "compile_kwargs",
    [{}, {"steps_per_execution": 1, "jit_compile": False}, {"steps_per_execution": _spe(2)}],
    ids=["defaults", "spe1-nojit", "spe2"],
)
@pytest.mark.slow
def test_each_sub_model_runs_once_per_training_and_evaluation_step(compile_kwargs):
    x, _ = _bars(n=64)
    vae = _counting_vae()
    vae.compile(optimizer="adam", **compile_kwargs)
    vae.fit(x, epochs=1, batch_size=16, verbose=0, shuffle=False)  # 4 training steps
    assert _calls(vae) == [4.0, 4.0]
    vae.evaluate(x, batch_size=32, verbose=0)  # 2 evaluation steps
    assert _calls(vae) == [6.0, 6.0]
    assert int(_numpy(vae.training_steps)) == 4


def _counting_cvae_with_prior(**kwargs):
    """A CVAE conditioned on an image, with a prior network p(z | c); each sub-model counts."""
    images, condition = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    h = layers.Concatenate()([layers.Flatten()(images), layers.Flatten()(condition)])
    h = layers.Dense(16, activation="relu")(CallCounter(1568, name="encoder_counter")(h))
    encoder = keras.Model([images, condition], [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])
    z, condition = keras.Input((LATENT,)), keras.Input((28, 28, 1))
    h = layers.Concatenate()([z, layers.Flatten()(condition)])
    h = CallCounter(16, name="decoder_counter")(layers.Dense(16)(h))
    h = layers.Dense(784, activation="sigmoid")(layers.Activation("relu")(h))
    decoder = keras.Model([z, condition], layers.Reshape((28, 28, 1))(h))
    condition = keras.Input((28, 28, 1))
    h = CallCounter(784, name="prior_counter")(layers.Flatten()(condition))
    h = layers.Dense(16, activation="tanh")(h)
    prior = keras.Model(condition, [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])
    return vk.CVAE(encoder, decoder, prior=prior, seed=0, **kwargs)


def _calls_with_prior(model):
    return _calls(model) + [float(_numpy(model.prior.get_layer("prior_counter").calls))]


@pytest.mark.parametrize(
    "compile_kwargs",
    [{}, {"steps_per_execution": 1, "jit_compile": False}, {"steps_per_execution": _spe(2)}],
    ids=["defaults", "spe1-nojit", "spe2"],
)
@pytest.mark.parametrize(
    "model_kwargs",
    [{}, {"free_bits": 0.2, "beta": vk.LinearWarmup(4)}],
    ids=["plain", "free-bits-warmup"],
)
@pytest.mark.slow
def test_encoder_decoder_and_prior_run_once_per_step(compile_kwargs, model_kwargs):
    x, _ = _bars(n=64)
    mask = np.zeros_like(x)
    mask[:, :, 14:] = 1.0
    cvae = _counting_cvae_with_prior(**model_kwargs)
    cvae.compile(optimizer="adam", **compile_kwargs)
    cvae.fit([x, x * (1 - mask), mask], epochs=1, batch_size=16, verbose=0, shuffle=False)
    assert _calls_with_prior(cvae) == [4.0, 4.0, 4.0]  # 4 training steps
    cvae.evaluate([x, x * (1 - mask)], batch_size=32, verbose=0)  # 2 evaluation steps
    assert _calls_with_prior(cvae) == [6.0, 6.0, 6.0]
    assert int(_numpy(cvae.training_steps)) == 4


@pytest.mark.slow
def test_batch_norm_in_the_decoder_is_updated_once_per_step():
    x, _ = _bars(n=32)
    vae = _counting_vae(batch_norm=True)
    vae.compile(optimizer="adam", steps_per_execution=1)
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    assert _calls(vae) == [1.0, 1.0]
    bn = vae.decoder.get_layer("bn")
    seen = _numpy(vae.decoder.get_layer("decoder_counter").last_mean)
    # momentum 0.5 from a moving mean of 0: one update gives 0.5 * the batch mean it saw
    np.testing.assert_allclose(_numpy(bn.moving_mean), 0.5 * seen, rtol=1e-4, atol=1e-6)
    # outside the training step the model is the deterministic mean reconstruction
    z_mean, _ = vae.encoder(x)
    np.testing.assert_allclose(
        _numpy(vae(x)), _numpy(vae.decoder(z_mean, training=False)), atol=1e-6
    )


# ----------------------------------------------------------------------- beta


class _SwitchBeta(keras.callbacks.Callback):
    def __init__(self, step, value):
        super().__init__()
        self.step, self.value = step, value

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.step:
            self.model.beta = self.value


def _train_weights(beta, callbacks=(), steps_per_execution=1, n=64, batch_size=8, **kwargs):
    keras.utils.set_random_seed(7)
    x, _ = _bars(n=n)
    vae = vk.VAE(
        vk.build_mlp_encoder(LATENT, (16,)),
        vk.build_mlp_decoder(LATENT, (16,)),
        beta=beta,
        seed=3,
        **kwargs,
    )
    vae.compile(optimizer="adam", steps_per_execution=_spe(steps_per_execution))
    history = vae.fit(
        x, epochs=1, batch_size=batch_size, verbose=0, shuffle=False, callbacks=list(callbacks)
    )
    return vae, [_numpy(w) for w in vae.trainable_weights], history.history


def _assert_same(a, b, rtol=1e-5, atol=1e-6):
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)


def _differ(a, b):
    return any(not np.allclose(u, v, rtol=1e-4, atol=1e-5) for u, v in zip(a, b))


@pytest.mark.slow
def test_a_schedule_and_a_setter_that_switch_beta_at_the_same_step_agree():
    switch_at, before, after = 4, 1.0, 6.0
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([switch_at - 1], [before, after])
    scheduled, w_schedule, h_schedule = _train_weights(schedule)
    set_by_hand, w_setter, h_setter = _train_weights(before, [_SwitchBeta(switch_at, after)])
    _, w_constant, _ = _train_weights(before)
    _assert_same(w_schedule, w_setter)
    assert _differ(w_schedule, w_constant)
    assert set_by_hand.beta == after and h_setter["beta"] == [after] == h_schedule["beta"]
    assert int(_numpy(scheduled.training_steps)) == 8


@pytest.mark.slow
def test_a_schedule_is_evaluated_at_every_step_inside_one_execution():
    warmup = vk.LinearWarmup(warmup_steps=40)
    model, w_many, history = _train_weights(warmup, steps_per_execution=32, n=64, batch_size=2)
    _, w_one, _ = _train_weights(warmup, steps_per_execution=1, n=64, batch_size=2)
    _, w_frozen, _ = _train_weights(0.0, steps_per_execution=32, n=64, batch_size=2)
    _assert_same(w_many, w_one, rtol=1e-4, atol=1e-5)
    assert _differ(w_many, w_frozen)
    np.testing.assert_allclose(history["beta"], [31 / 40], rtol=1e-6)  # step 31 of 0..31


@pytest.mark.slow
def test_beta_set_after_fit_is_used_by_the_next_fit():
    x, _ = _bars(n=32)
    vae = vk.VAE(vk.build_mlp_encoder(LATENT, (8,)), vk.build_mlp_decoder(LATENT, (8,)), seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    vae.beta = 4.0
    history = vae.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert history["beta"] == [4.0]
    np.testing.assert_allclose(
        history["loss"],
        np.add(history["reconstruction_loss"], 4.0 * np.array(history["kl_loss"])),
        rtol=1e-5,
    )
    vae.beta = vk.LinearWarmup(100)  # number -> schedule: the step is rebuilt
    assert vae.fit(x, epochs=1, batch_size=16, verbose=0).history["beta"] == [
        pytest.approx(5 / 100)
    ]
    result = vae.evaluate(x, verbose=0, return_dict=True)
    assert result["beta"] == pytest.approx(6 / 100)  # evaluation uses, and keeps, the step


def test_free_bits_floor_each_dimension_of_the_kl_term():
    x, _ = _bars(n=32)
    free_bits = 0.75
    vae = vk.VAE(
        vk.build_mlp_encoder(LATENT, (8,)),
        vk.build_mlp_decoder(LATENT, (8,)),
        seed=0,
        free_bits=free_bits,
    )
    vae.compile(optimizer="adam")
    result = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    z_mean, z_log_var = (_numpy(t) for t in vae.encoder(x))
    kl_dims = (0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var)).mean(axis=0)
    assert kl_dims.min() < free_bits  # the floor is active on at least one dimension
    np.testing.assert_allclose(result["kl_loss"], kl_dims.sum(), rtol=1e-4)
    np.testing.assert_allclose(
        result["loss"] - result["reconstruction_loss"],
        np.maximum(kl_dims, free_bits).sum(),
        rtol=1e-4,
    )
    with pytest.raises(ValueError, match="free_bits must be finite and non-negative"):
        vk.VAE(vk.build_mlp_encoder(2), vk.build_mlp_decoder(2), free_bits=-1)


@pytest.mark.slow
def test_beta_schedule_and_free_bits_survive_saving(tmp_path):
    x, y = _bars(n=32)
    cvae = vk.CVAE(
        vk.build_mlp_encoder(LATENT, (8,), num_classes=CLASSES),
        vk.build_mlp_decoder(LATENT, (8,), num_classes=CLASSES),
        num_classes=CLASSES,
        beta=vk.CyclicalAnnealing(6, ratio=0.5, end=2.0),
        free_bits=0.1,
    )
    cvae.compile(optimizer="adam")
    cvae.fit([x, y], epochs=1, batch_size=8, verbose=0)
    cvae.save(tmp_path / "cvae.keras")
    restored = keras.models.load_model(tmp_path / "cvae.keras")
    assert isinstance(restored.beta, vk.CyclicalAnnealing)
    assert restored.beta.get_config() == cvae.beta.get_config()
    assert restored.free_bits == 0.1 and int(_numpy(restored.training_steps)) == 4
    history = restored.fit([x, y], epochs=1, batch_size=8, verbose=0).history
    # steps 4..7 continue the saved count: step 7 is 1 step into the second cycle of 6
    assert history["beta"] == [pytest.approx(2.0 * 1 / 3)]


def test_bad_beta_is_refused():
    vae = vk.VAE(vk.build_mlp_encoder(2), vk.build_mlp_decoder(2))
    for bad in (-1.0, float("nan"), "high", True):
        with pytest.raises(ValueError, match="beta must be"):
            vae.beta = bad


# ------------------------------------------------------------------ data paths


def _cvae():
    cvae = vk.CVAE(
        vk.build_mlp_encoder(LATENT, (8,), num_classes=CLASSES),
        vk.build_mlp_decoder(LATENT, (8,), num_classes=CLASSES),
        num_classes=CLASSES,
        seed=0,
    )
    cvae.compile(optimizer="adam")
    return cvae


@pytest.mark.slow
def test_cvae_validation_data_as_a_list_of_inputs():
    x, y = _bars(n=48)
    for validation_data in ([x[:16], y[:16]], ([x[:16], y[:16]],)):
        history = _cvae().fit([x, y], epochs=1, verbose=0, validation_data=validation_data)
        assert np.isfinite(history.history["val_loss"][0])


def test_bad_validation_data_is_refused_before_any_step():
    x, y = _bars(n=32)
    vae = vk.VAE(vk.build_mlp_encoder(2, (8,)), vk.build_mlp_decoder(2, (8,)))
    vae.compile(optimizer="adam")
    unscaled = (x * 255).astype("uint8")
    for validation_data in (unscaled, (unscaled,), (x, x)):
        with pytest.raises(ValueError, match=r"validation_data|without y"):
            vae.fit(x, epochs=1, verbose=0, validation_data=validation_data)
    cvae = _cvae()
    with pytest.raises(ValueError, match="labels out of range"):
        cvae.fit([x, y], epochs=1, verbose=0, validation_data=[x, np.full(32, 7)])
    with pytest.raises(ValueError, match=r"validation_data images .* \[0, 1\]"):
        cvae.fit([x, y], epochs=1, verbose=0, validation_data=[unscaled, y])
    assert int(_numpy(vae.training_steps)) == 0 and int(_numpy(cvae.training_steps)) == 0


@pytest.mark.slow
def test_labels_out_of_range_in_a_dataset_or_generator_raise():
    tf = pytest.importorskip("tensorflow")
    x, y = _bars(n=32)
    bad = y.copy()
    bad[20] = CLASSES  # in the second batch of 16
    dataset = tf.data.Dataset.from_tensor_slices(((x, bad),)).batch(16)
    with pytest.raises(Exception, match="labels out of range"):
        _cvae().fit(dataset, epochs=1, verbose=0, shuffle=False)
    good = tf.data.Dataset.from_tensor_slices(((x, y),)).batch(16)
    assert np.isfinite(_cvae().fit(good, epochs=1, verbose=0, shuffle=False).history["loss"][0])

    def batches():
        for start in (0, 16):
            yield ([x[start : start + 16], bad[start : start + 16]],)

    with pytest.raises(ValueError, match="labels out of range"):
        _cvae().fit(batches(), epochs=1, verbose=0, shuffle=False)
    pairs = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match=r"\(\(images, labels\),\)"):
        _cvae().fit(pairs, epochs=1, verbose=0, shuffle=False)


def test_generate_one_code_and_numpy_global_state():
    vae = vk.VAE(vk.build_mlp_encoder(LATENT, (8,)), vk.build_mlp_decoder(LATENT, (8,)))
    assert vae.generate(z=np.zeros(LATENT)).shape == (1, 28, 28, 1)
    assert vae.generate(3, z=np.zeros(LATENT)).shape == (3, 28, 28, 1)
    np.random.seed(0)  # noqa: NPY002 - the global stream is what this test protects
    expected = np.random.random(3)  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    vae.generate(4)
    _cvae().generate([0, 1, 2])
    np.testing.assert_array_equal(np.random.random(3), expected)  # noqa: NPY002
    keras.utils.set_random_seed(5)
    first = vae.generate(4)
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(vae.generate(4), first)


def test_builders_accept_numpy_integers():
    encoder = vk.build_conv_encoder(np.int64(3), filters=(np.int32(4), 8), num_classes=np.int64(2))
    decoder = vk.build_mlp_decoder(np.int64(3), hidden_units=(np.int64(8),))
    assert tuple(encoder.outputs[0].shape) == (None, 3)
    assert tuple(decoder.output.shape) == (None, 28, 28, 1)


def test_mlp_builders_take_the_hidden_activation(tmp_path):
    """Burda et al.'s (2016) networks: tanh hidden layers, linear heads, sigmoid output."""
    encoder = vk.build_mlp_encoder(50, hidden_units=(200, 200), activation="tanh")
    decoder = vk.build_mlp_decoder(50, hidden_units=(200, 200), activation=keras.ops.tanh)
    dense = [layer for layer in encoder.layers + decoder.layers if isinstance(layer, layers.Dense)]
    hidden = [layer.activation for layer in dense if layer.units == 200]
    assert len(hidden) == 4
    x = np.linspace(-2.0, 2.0, 5, dtype="float32")
    for activation in hidden:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(activation(x)), np.tanh(x), rtol=1e-6)
    heads = [layer.activation.__name__ for layer in dense if layer.units == 50]
    assert heads == ["linear", "linear"]
    vae = vk.VAE(encoder, vk.build_mlp_decoder(50, (200, 200), activation="tanh"))
    path = tmp_path / "tanh.keras"
    vae.save(path)
    loaded = keras.models.load_model(path)  # safe_mode: a named activation is no Python code
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), vae.predict(images, verbose=0))
    for build in (vk.build_mlp_encoder, vk.build_mlp_decoder):
        with pytest.raises(ValueError, match="activation must be a Keras activation name"):
            build(2, activation="tanhh")


def test_conv_builders_take_the_hidden_activation():
    """The convolutional builders' activation= reaches every hidden layer, not the output."""
    encoder = vk.build_conv_encoder(4, activation="tanh")
    decoder = vk.build_conv_decoder(4, activation="elu")
    hidden = (layers.Conv2D, layers.Conv2DTranspose, layers.Dense)
    names = {
        role: [layer.activation.__name__ for layer in model.layers if isinstance(layer, hidden)]
        for role, model in (("encoder", encoder), ("decoder", decoder))
    }
    assert names["encoder"] == ["tanh", "tanh", "tanh", "linear", "linear"]
    assert names["decoder"] == ["elu", "elu", "elu", "sigmoid"]
    for build in (vk.build_conv_encoder, vk.build_conv_decoder):
        with pytest.raises(ValueError, match="activation must be a Keras activation name"):
            build(2, activation="tanhh")

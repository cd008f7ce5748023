import keras
import numpy as np
import pytest
from conftest import CLASSES, LATENT, bars, small_cvae, small_vae
from keras import layers, ops

import vae_keras as vk

_bars = bars
_vae = small_vae
_cvae = small_cvae


def _to_numpy(x):
    return ops.convert_to_numpy(x)


# ------------------------------------------------------------------ training


def test_vae_loss_decreases_and_stays_finite():
    x, _ = _bars()
    vae = _vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = vae.fit(x, epochs=6, batch_size=32, verbose=0).history
    assert sorted(history) == ["beta", "kl_loss", "loss", "reconstruction_loss"]
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < 0.8 * history["loss"][0]


@pytest.mark.slow
def test_cvae_loss_decreases_with_integer_and_one_hot_labels():
    x, y = _bars()
    cvae = _cvae()
    cvae.compile(optimizer=keras.optimizers.Adam(1e-3))
    first = cvae.fit([x, y], epochs=4, batch_size=32, verbose=0).history["loss"]
    second = cvae.fit([x, np.eye(CLASSES)[y]], epochs=2, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(first + second))
    assert second[-1] < 0.8 * first[0]


@pytest.mark.parametrize("beta", [1.0, 0.25])
@pytest.mark.slow
def test_reported_loss_is_reconstruction_plus_beta_kl(beta):
    x, _ = _bars(n=150)  # 150 = 4 full batches of 32 and a partial one of 22
    vae = _vae(beta=beta)
    vae.compile(optimizer="adam")
    history = vae.fit(x, epochs=2, batch_size=32, verbose=0, validation_split=0.2).history
    for prefix in ("", "val_"):
        total = np.array(history[prefix + "loss"])
        parts = np.array(history[prefix + "reconstruction_loss"]) + beta * np.array(
            history[prefix + "kl_loss"]
        )
        np.testing.assert_allclose(total, parts, rtol=1e-5)
    result = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        result["loss"], result["reconstruction_loss"] + beta * result["kl_loss"], rtol=1e-5
    )
    assert result["kl_loss"] > 0


def test_loss_matches_an_independent_computation():
    """evaluate's loss equals BCE summed over pixels + KL, recomputed in NumPy from fixed z."""
    x, _ = _bars(n=64)
    vae = _vae(beta=1.0)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    z_mean, z_log_var = (_to_numpy(t) for t in vae.encoder(x))
    kl = -0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)
    result = vae.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["kl_loss"], kl.mean(), rtol=1e-4)
    # The reconstruction term uses a random z; at z_mean it is a deterministic lower bound
    # in expectation only, so just check the order of magnitude against the mean decode.
    p = np.clip(_to_numpy(vae(x)), 1e-7, 1 - 1e-7)
    bce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3)).mean()
    assert 0.5 * bce < result["reconstruction_loss"] < 2.0 * bce + 50


def test_call_returns_the_deterministic_mean_reconstruction():
    x, y = _bars(n=8)
    vae = _vae()
    np.testing.assert_array_equal(_to_numpy(vae(x)), _to_numpy(vae(x)))
    assert tuple(vae(x).shape) == x.shape
    z_mean, _ = vae.encoder(x)
    np.testing.assert_allclose(_to_numpy(vae(x)), _to_numpy(vae.decoder(z_mean)), atol=1e-6)
    cvae = _cvae()
    assert tuple(cvae([x, y]).shape) == x.shape
    assert vae.predict(x, verbose=0).shape == x.shape


@pytest.mark.slow
def test_training_is_reproducible_with_a_seed():
    x, _ = _bars(n=96)
    losses = []
    for _ in range(2):
        keras.utils.set_random_seed(99)
        vae = _vae(seed=4)
        vae.compile(optimizer="adam")
        losses.append(vae.fit(x, epochs=2, batch_size=32, verbose=0, shuffle=False).history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)


# -------------------------------------------------------------------- saving


def _roundtrip(model, tmp_path, name):
    path = tmp_path / name
    model.save(path)
    return keras.models.load_model(path)


def test_vae_save_and_load(tmp_path):
    x, _ = _bars(n=64)
    vae = _vae(beta=0.5, seed=11)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    restored = _roundtrip(vae, tmp_path, "vae.keras")
    assert isinstance(restored, vk.VAE)
    assert (restored.beta, restored.seed, restored.likelihood) == (0.5, 11, "bernoulli")
    z = np.random.default_rng(0).normal(size=(10, LATENT)).astype("float32")
    np.testing.assert_array_equal(_to_numpy(restored.decoder(z)), _to_numpy(vae.decoder(z)))
    np.testing.assert_array_equal(_to_numpy(restored(x)), _to_numpy(vae(x)))
    # compiled state comes back too: training continues without a new compile()
    history = restored.fit(x, epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_cvae_save_and_load(tmp_path):
    x, y = _bars(n=64)
    cvae = _cvae(seed=12)
    cvae.compile(optimizer="adam")
    cvae.fit([x, y], epochs=1, batch_size=32, verbose=0)
    restored = _roundtrip(cvae, tmp_path, "cvae.keras")
    assert isinstance(restored, vk.CVAE) and restored.num_classes == CLASSES
    labels = np.array([0, 1, 2, 2])
    np.testing.assert_array_equal(restored.generate(labels, seed=3), cvae.generate(labels, seed=3))


def test_conv_cvae_save_and_load(tmp_path):
    cvae = vk.CVAE(
        vk.build_conv_encoder(4, num_classes=CLASSES),
        vk.build_conv_decoder(4, num_classes=CLASSES),
        num_classes=CLASSES,
    )
    restored = _roundtrip(cvae, tmp_path, "conv.keras")
    z = np.zeros((3, 4), "float32")
    np.testing.assert_array_equal(restored.generate([0, 1, 2], z=z), cvae.generate([0, 1, 2], z=z))


# ---------------------------------------------------------------- generation


def test_cvae_generate_shapes_seeds_and_shared_z():
    cvae = _cvae()
    images = cvae.generate([0, 1, 2, 1], seed=5)
    assert images.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(images, cvae.generate(np.eye(CLASSES)[[0, 1, 2, 1]], seed=5))
    assert not np.array_equal(images, cvae.generate([0, 1, 2, 1], seed=6))
    shared = cvae.generate([0, 1, 2], z=np.zeros(LATENT))
    assert shared.shape == (3, 28, 28, 1)
    with pytest.raises(ValueError, match="z must have shape"):
        cvae.generate([0, 1], z=np.zeros((3, LATENT)))


def test_vae_generate():
    vae = _vae()
    assert vae.generate(5, seed=0).shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(vae.generate(3, seed=1), vae.generate(3, seed=1))
    assert vae.generate(z=np.zeros((2, LATENT))).shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match="positive n"):
        vae.generate()


# ---------------------------------------------------------------- bad input


def _encoder_with_outputs(make_outputs):
    images = keras.Input((28, 28, 1))
    h = layers.Flatten()(images)
    return keras.Model(images, make_outputs(h))


def test_encoder_with_three_outputs_is_refused():
    encoder = _encoder_with_outputs(lambda h: [layers.Dense(2)(h) for _ in range(3)])
    with pytest.raises(ValueError, match="exactly two tensors"):
        vk.VAE(encoder, vk.build_mlp_decoder(2))


def test_encoder_with_one_output_is_refused():
    encoder = _encoder_with_outputs(lambda h: layers.Dense(2)(h))
    with pytest.raises(ValueError, match="exactly two tensors"):
        vk.VAE(encoder, vk.build_mlp_decoder(2))


def test_encoder_with_different_widths_is_refused():
    encoder = _encoder_with_outputs(lambda h: [layers.Dense(2)(h), layers.Dense(3)(h)])
    with pytest.raises(ValueError, match="different shapes"):
        vk.VAE(encoder, vk.build_mlp_decoder(2))


def test_decoder_with_wrong_output_shape_is_refused():
    with pytest.raises(ValueError, match="output shape"):
        vk.VAE(vk.build_mlp_encoder(2), vk.build_mlp_decoder(2, output_shape=(14, 14, 1)))


def test_latent_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="latent size"):
        vk.VAE(vk.build_mlp_encoder(2), vk.build_mlp_decoder(3))


class ThreeHeadEncoder(keras.Model):
    """A subclassed encoder: its outputs are only known at the first call."""

    def __init__(self):
        super().__init__()
        self.flatten = layers.Flatten()
        self.heads = [layers.Dense(2) for _ in range(3)]

    def call(self, x):
        h = self.flatten(x)
        return [head(h) for head in self.heads]


def test_subclassed_encoder_is_checked_at_the_first_call_before_training():
    vae = vk.VAE(ThreeHeadEncoder(), vk.build_mlp_decoder(2))
    vae.compile(optimizer="adam")
    x, _ = _bars(n=16)
    with pytest.raises(ValueError, match="exactly two tensors"):
        vae.fit(x, epochs=1, verbose=0)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_non_positive_latent_dim_is_refused(bad):
    for builder in (
        vk.build_mlp_encoder,
        vk.build_mlp_decoder,
        vk.build_conv_encoder,
        vk.build_conv_decoder,
    ):
        with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
            builder(bad)


@pytest.mark.parametrize("bad", [0, -1, 2.0])
def test_non_positive_num_classes_is_refused(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        vk.build_mlp_encoder(2, num_classes=bad)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        vk.CVAE(vk.build_mlp_encoder(2, num_classes=3), vk.build_mlp_decoder(2, num_classes=3), bad)


def test_cvae_label_width_must_match_num_classes():
    with pytest.raises(ValueError, match="label input has width 3 but num_classes is 5"):
        vk.CVAE(vk.build_mlp_encoder(2, num_classes=3), vk.build_mlp_decoder(2, num_classes=3), 5)


def test_cvae_labels_out_of_range_are_refused_before_training():
    x, y = _bars(n=32)
    cvae = _cvae()
    cvae.compile(optimizer="adam")
    for bad in (np.full(32, CLASSES), np.full(32, -1)):
        with pytest.raises(ValueError, match="labels out of range"):
            cvae.fit([x, bad], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="labels out of range"):
        cvae.generate([0, 7])
    with pytest.raises(ValueError, match="labels out of range"):
        cvae.evaluate([x, np.full(32, 9)], verbose=0)


def test_cvae_one_hot_of_wrong_width_is_refused():
    x, y = _bars(n=32)
    cvae = _cvae()
    cvae.compile(optimizer="adam")
    with pytest.raises(ValueError, match="one-hot labels have width 5 but num_classes is 3"):
        cvae.fit([x, np.eye(5)[y]], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="width 4"):
        cvae.generate(np.eye(4)[[0, 1]])


def test_cvae_needs_one_label_per_image_and_a_pair_of_inputs():
    x, y = _bars(n=32)
    cvae = _cvae()
    cvae.compile(optimizer="adam")
    with pytest.raises(ValueError, match="31 labels for 32 images"):
        cvae.fit([x, y[:31]], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[images, labels\]"):
        cvae.fit(x, epochs=1, verbose=0)


def test_unscaled_images_and_targets_are_refused():
    x, _ = _bars(n=16)
    vae = _vae()
    vae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        vae.fit((x * 255).astype("uint8"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="without y"):
        vae.fit(x, x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        vae.fit(np.full_like(x, np.nan), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="encoder expects"):
        vae.fit(np.zeros((4, 14, 14, 1), "float32"), epochs=1, verbose=0)


def test_compile_refuses_a_loss_and_bad_hyperparameters():
    with pytest.raises(ValueError, match="computes its own loss"):
        _vae().compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="beta"):
        _vae(beta=-1)
    with pytest.raises(ValueError, match="unknown likelihood"):
        vk.VAE(vk.build_mlp_encoder(2), vk.build_mlp_decoder(2), likelihood="laplace")
    with pytest.raises(TypeError, match="encoder must be a Keras model"):
        vk.VAE(lambda x: x, vk.build_mlp_decoder(2))


@pytest.mark.slow
def test_gaussian_likelihood_trains():
    x, _ = _bars(n=96)
    vae = vk.VAE(
        vk.build_mlp_encoder(2, (16,)), vk.build_mlp_decoder(2, (16,)), likelihood="gaussian"
    )
    vae.compile(optimizer="adam")
    history = vae.fit(x, epochs=3, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]


# ------------------------------------------------------------ compile defaults


def test_compile_defaults_per_backend_and_kept_as_auto_when_saved(tmp_path, backend):
    mlp = _vae()
    mlp.compile(optimizer="adam")
    conv = vk.VAE(vk.build_conv_encoder(2), vk.build_conv_decoder(2))
    conv.compile(optimizer="adam")
    if backend == "tensorflow":
        import tensorflow as tf

        devices = {device.device_type for device in tf.config.list_physical_devices()}
        plain = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
        plain.compile(optimizer="adam", loss="mse")  # Keras' own "auto" on these devices
        assert mlp.steps_per_execution == 32 and conv.steps_per_execution == 32
        if devices == {"CPU"}:  # XLA for the MLP, where Keras would turn it off
            assert mlp.jit_compile is True and conv.jit_compile is False
        else:  # an accelerator: Keras' rule for both
            assert mlp.jit_compile == plain.jit_compile == conv.jit_compile
    else:
        assert mlp.steps_per_execution == 1 and conv.steps_per_execution == 1
    explicit = _vae()
    explicit.compile(optimizer="adam", steps_per_execution=1, jit_compile=False)
    assert explicit.steps_per_execution == 1 and explicit.jit_compile is False
    config = mlp.get_compile_config()
    assert config["steps_per_execution"] == "auto" and config["jit_compile"] == "auto"
    mlp.fit(_bars(n=32)[0], epochs=1, batch_size=16, verbose=0)  # optimizer slots exist
    restored = _roundtrip(mlp, tmp_path, "auto.keras")
    assert restored.steps_per_execution == mlp.steps_per_execution

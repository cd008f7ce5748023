"""VAE and CVAE under Keras' mixed-precision policies: the loss is computed in float32."""

import keras
import numpy as np
import pytest
from keras import ops

import vae_keras as vk

POLICIES = ["mixed_bfloat16", "mixed_float16"]


@pytest.fixture(autouse=True)
def _restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _images(n=64, seed=0):
    return (np.random.default_rng(seed).random((n, 28, 28, 1)) > 0.7).astype("float32")


def _model(policy, conv=True, conditional=False, float32_output=False):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    classes = 3 if conditional else None
    if conv:
        encoder = vk.build_conv_encoder(4, num_classes=classes)
        decoder = vk.build_conv_decoder(4, num_classes=classes)
    else:
        encoder = vk.build_mlp_encoder(4, (64,), num_classes=classes)
        decoder = vk.build_mlp_decoder(4, (64,), num_classes=classes)
    if float32_output:  # the usual Keras advice: the last layer computes in float32
        z = keras.Input((4,))
        logits = keras.layers.Dense(784)(keras.layers.Dense(64, activation="relu")(z))
        probabilities = keras.layers.Activation("sigmoid", dtype="float32")(logits)
        decoder = keras.Model(z, keras.layers.Reshape((28, 28, 1))(probabilities))
    if conditional:
        model = vk.CVAE(encoder, decoder, num_classes=classes, seed=0)
    else:
        model = vk.VAE(encoder, decoder, seed=0)
    model.compile(optimizer="adam")
    return model


def _inputs(conditional, n=64):
    x = _images(n)
    return [x, np.arange(n) % 3] if conditional else x


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    "conv, conditional", [(True, False), (False, True)], ids=["conv-vae", "mlp-cvae"]
)
def test_loss_terms_match_float32_for_the_same_weights(policy, conv, conditional):
    data = _inputs(conditional)
    reference = _model("float32", conv, conditional)
    expected = reference.evaluate(data, batch_size=64, verbose=0, return_dict=True)
    mixed = _model(policy, conv, conditional)
    mixed.set_weights(reference.get_weights())
    result = mixed.evaluate(data, batch_size=64, verbose=0, return_dict=True)
    for key in ("loss", "reconstruction_loss"):
        np.testing.assert_allclose(result[key], expected[key], rtol=5e-3)
    # the KL of an untrained encoder is tiny (~0.01 nats): compare it in absolute terms
    np.testing.assert_allclose(result["kl_loss"], expected["kl_loss"], atol=5e-3, rtol=5e-2)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.slow
def test_training_stays_finite_and_lowers_the_loss(policy, tmp_path):
    vae = _model(policy, conv=False)
    x = _images(96)
    history = vae.fit(x, epochs=3, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    if policy == "mixed_float16":
        assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
    assert vae.predict(x[:4], verbose=0).dtype == np.float32
    assert vae.generate(3, seed=0).dtype == np.float32
    vae.save(tmp_path / "mixed.keras")
    keras.mixed_precision.set_global_policy("float32")  # load in a float32 session
    restored = keras.models.load_model(tmp_path / "mixed.keras")
    np.testing.assert_allclose(restored.predict(x[:4], verbose=0), vae.predict(x[:4], verbose=0))
    assert np.isfinite(restored.fit(x, epochs=1, batch_size=32, verbose=0).history["loss"][0])


@pytest.mark.slow
def test_a_float32_model_loads_and_trains_in_a_mixed_session(tmp_path):
    vae = _model("float32", conv=False)
    vae.fit(_images(64), epochs=1, batch_size=32, verbose=0)
    vae.save(tmp_path / "float32.keras")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    restored = keras.models.load_model(tmp_path / "float32.keras")
    assert restored.compute_dtype == "float32"  # a saved model keeps its own policy
    assert np.isfinite(restored.fit(_images(64), epochs=1, verbose=0).history["loss"][0])


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.slow
def test_a_decoder_with_a_float32_output_layer(policy):
    vae = _model(policy, conv=False, float32_output=True)
    history = vae.fit(_images(64), epochs=2, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_building_blocks_compute_in_float32(dtype):
    # exp(12) overflows float16 (max 65504): the KL must still be finite and exact
    z_mean = ops.cast(np.full((2, 3), 0.5), dtype)
    z_log_var = ops.cast(np.full((2, 3), 12.0), dtype)
    kl = vk.kl_divergence(z_mean, z_log_var)
    assert keras.backend.standardize_dtype(kl.dtype) == "float32"
    expected = 3 * 0.5 * (np.exp(12.0) + 0.25 - 1 - 12)
    np.testing.assert_allclose(ops.convert_to_numpy(kl), [expected, expected], rtol=1e-3)
    # 784 per-pixel terms summed in float32, not in 16 bits
    x = _images(4)
    p = np.clip(np.random.default_rng(1).random(x.shape), 0.05, 0.95)
    loss = vk.VAELoss(reduction=None)(x, ops.cast(p, dtype))
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    p16 = ops.convert_to_numpy(ops.cast(ops.cast(p, dtype), "float32")).astype("float64")
    exact = -(x * np.log(p16) + (1 - x) * np.log(1 - p16)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(loss), exact, rtol=1e-4)
    # the sampling layer returns its compute dtype; its draws keep the right scale
    layer = vk.Sampling(seed=0, dtype=f"mixed_{dtype}")
    z = layer([ops.zeros((20000, 2), dtype), ops.cast(np.full((20000, 2), 4.0), dtype)])
    assert keras.backend.standardize_dtype(z.dtype) == dtype
    std = ops.convert_to_numpy(ops.cast(z, "float32")).std()
    assert abs(std - np.exp(2.0)) < 0.05 * np.exp(2.0)


@pytest.mark.parametrize("policy", POLICIES)
def test_log_likelihood_matches_float32_for_the_same_weights(policy):
    data = _inputs(conditional=False, n=16)
    reference = _model("float32", conv=False)
    expected = reference.log_likelihood(data, num_samples=20, seed=3)
    mixed = _model(policy, conv=False)
    mixed.set_weights(reference.get_weights())
    result = mixed.log_likelihood(data, num_samples=20, seed=3)
    assert result.dtype == np.float64 and np.all(np.isfinite(result))
    np.testing.assert_allclose(result, expected, rtol=5e-3)

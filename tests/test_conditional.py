"""A CVAE conditioned on any tensor, with a learned prior p(z | c) and a masked likelihood
(issue 17), on every backend.

The condition here is the image with its right half blanked out (the task of
notebook 06, on small synthetic images); the mask scores the right half only.
"""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import LATENT, bars, small_cvae
from keras import layers, ops

import vae_keras as vk

SHAPE = (28, 28, 1)


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def _data(n=32, seed=0):
    """Images, conditions (left half visible, right half 0) and the mask of the right half."""
    x, _ = bars(n, seed)
    mask = np.zeros_like(x)
    mask[:, :, 14:] = 1.0
    return x, x * (1.0 - mask), mask


def _prior_net(condition_shape=SHAPE, latent_dim=LATENT, name="prior"):
    c = keras.Input(condition_shape)
    h = layers.Dense(16, activation="tanh")(layers.Flatten()(c))
    return keras.Model(c, [layers.Dense(latent_dim)(h), layers.Dense(latent_dim)(h)], name=name)


def _image_cvae(prior=True, seed=0, condition_shape=SHAPE, **kwargs):
    """A CVAE whose condition is an image of `condition_shape`, optionally with a prior."""
    x_in, c_in = keras.Input(SHAPE), keras.Input(condition_shape)
    h = layers.Concatenate()([layers.Flatten()(x_in), layers.Flatten()(c_in)])
    h = layers.Dense(32, activation="relu")(h)
    encoder = keras.Model([x_in, c_in], [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])
    z_in, c_in2 = keras.Input((LATENT,)), keras.Input(condition_shape)
    h = layers.Concatenate()([z_in, layers.Flatten()(c_in2)])
    h = layers.Dense(784, activation="sigmoid")(layers.Dense(32, activation="relu")(h))
    decoder = keras.Model([z_in, c_in2], layers.Reshape(SHAPE)(h))
    return vk.CVAE(
        encoder,
        decoder,
        prior=_prior_net(condition_shape) if prior else None,
        seed=seed,
        **kwargs,
    )


# ---------------------------------------------------------- KL with a prior
def test_kl_without_prior_arguments_is_todays_closed_form():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    expected = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=1)
    # float32 on JAX (no x64), float64 elsewhere
    np.testing.assert_allclose(_numpy(vk.kl_divergence(mean, log_var)), expected, rtol=1e-6)
    # A N(0, I) prior given explicitly gives the same numbers.
    zeros = np.zeros_like(mean)
    np.testing.assert_allclose(
        _numpy(vk.kl_divergence(mean, log_var, zeros, zeros)), expected, rtol=1e-6
    )
    np.testing.assert_allclose(
        _numpy(vk.kl_per_dimension(mean, log_var, zeros, zeros)),
        _numpy(vk.kl_per_dimension(mean, log_var)),
        rtol=1e-12,
    )


def test_kl_against_a_gaussian_prior_matches_monte_carlo():
    rng = np.random.default_rng(1)
    mean, log_var = np.array([[0.3, -1.0]]), np.array([[-0.5, 0.4]])
    prior_mean, prior_log_var = np.array([[1.0, 0.5]]), np.array([[0.7, -0.3]])
    closed = float(_numpy(vk.kl_divergence(mean, log_var, prior_mean, prior_log_var))[0])
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((400_000, 2))

    def log_normal(z, m, lv):
        return np.sum(-0.5 * (math.log(2 * math.pi) + lv + (z - m) ** 2 / np.exp(lv)), axis=1)

    monte_carlo = np.mean(log_normal(z, mean, log_var) - log_normal(z, prior_mean, prior_log_var))
    print(f"closed form {closed:.5f}, Monte Carlo {monte_carlo:.5f}")
    assert closed == pytest.approx(monte_carlo, abs=0.01)
    # Zero when q is the prior, positive otherwise.
    same = _numpy(vk.kl_divergence(prior_mean, prior_log_var, prior_mean, prior_log_var))
    assert float(same[0]) == pytest.approx(0.0, abs=1e-12) and closed > 0


def test_kl_prior_arguments_are_checked():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="give both prior_mean and prior_log_var"):
        vk.kl_divergence(z, z, prior_mean=z)
    with pytest.raises(
        ValueError,
        match=r"prior_log_var must have the shape .*received prior_log_var of shape \(2, 2\)",
    ):
        vk.kl_divergence(z, z, z, np.zeros((2, 2)))


# ------------------------------------------------------- any condition
@pytest.mark.slow
def test_any_condition_trains_evaluates_predicts_and_generates():
    x, c, mask = _data()
    cvae = _image_cvae(prior=False)
    cvae.compile(optimizer="adam")
    history = cvae.fit([x, c], epochs=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert cvae.predict([x, c], verbose=0).shape == x.shape
    assert cvae.generate(c[:3], seed=0).shape == (3,) + SHAPE
    z_mean, _ = cvae.encode([x[:2], c[:2]])
    assert _numpy(cvae.decode([z_mean, c[:2]])).shape == (2,) + SHAPE
    assert cvae.log_likelihood([x[:4], c[:4]], num_samples=5, seed=0).shape == (4,)
    # Without a prior network the KL term is against N(0, I).
    metrics = cvae.evaluate([x, c], batch_size=32, verbose=0, return_dict=True)
    z_mean, z_log_var = cvae.encode([x, c])
    assert metrics["kl_loss"] == pytest.approx(
        float(np.mean(_numpy(vk.kl_divergence(z_mean, z_log_var)))), rel=1e-4
    )


def test_bad_conditions_are_refused_early():
    x, c, _ = _data(8)
    cvae = _image_cvae()
    cvae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"conditions have shape \(28, 14, 1\) per example"):
        cvae.fit([x, c[:, :, :14]], verbose=0)
    bad = c.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="conditions contain NaN or infinite values"):
        cvae.evaluate([x, bad], verbose=0)
    with pytest.raises(ValueError, match="7 conditions for 8 images"):
        cvae.predict([x, c[:7]], verbose=0)
    with pytest.raises(ValueError, match=r"received shape|conditions have shape"):
        cvae.generate(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"\[images, conditions\]"):
        cvae.fit(x, verbose=0)


@pytest.mark.slow
def test_label_cvae_is_unchanged_and_takes_no_mask_of_the_wrong_shape():
    x, labels = bars(16)
    cvae = small_cvae()
    assert cvae.num_classes == 3 and cvae.prior is None
    cvae.compile(optimizer="adam")
    cvae.fit([x, labels], epochs=1, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="labels out of range"):
        cvae.fit([x, labels + 3], verbose=0)
    with pytest.raises(ValueError, match=r"images' shape \(16, 28, 28, 1\).*received \(16, 28\)"):
        cvae.evaluate([x, labels, np.ones((16, 28))], verbose=0)
    with pytest.raises(ValueError, match=r"mask must lie in \[0, 1\]"):
        cvae.evaluate([x, labels, 2 * np.ones_like(x)], verbose=0)


# ----------------------------------------------------------- the prior
def test_sub_models_are_checked_against_each_other():
    cvae = _image_cvae(prior=False)
    with pytest.raises(
        ValueError, match="prior returns codes of size 3 but the encoder has latent"
    ):
        vk.CVAE(cvae.encoder, cvae.decoder, prior=_prior_net(latent_dim=3))
    with pytest.raises(ValueError, match=r"prior's input has shape \(5,\)"):
        vk.CVAE(cvae.encoder, cvae.decoder, prior=_prior_net(condition_shape=(5,)))
    other = _image_cvae(prior=False, condition_shape=(5,))
    with pytest.raises(ValueError, match="encoder's condition input has shape"):
        vk.CVAE(cvae.encoder, other.decoder)
    with pytest.raises(TypeError, match="prior must be a Keras model"):
        vk.CVAE(cvae.encoder, cvae.decoder, prior="learned")


@pytest.mark.slow
def test_kl_term_is_against_the_learned_prior():
    x, c, _ = _data()
    cvae = _image_cvae()
    cvae.compile(optimizer="adam")
    cvae.fit([x, c], epochs=2, batch_size=16, verbose=0)
    metrics = cvae.evaluate([x, c], batch_size=32, verbose=0, return_dict=True)
    z_mean, z_log_var = cvae.encode([x, c])
    prior_mean, prior_log_var = cvae.prior_params(c)
    expected = float(
        np.mean(_numpy(vk.kl_divergence(z_mean, z_log_var, prior_mean, prior_log_var)))
    )
    against_standard = float(np.mean(_numpy(vk.kl_divergence(z_mean, z_log_var))))
    assert metrics["kl_loss"] == pytest.approx(expected, rel=1e-4)
    assert abs(expected - against_standard) > 1e-3  # the prior is not N(0, I)
    # The prior's weights are trained with the rest.
    assert any(v is w for v in cvae.trainable_variables for w in cvae.prior.trainable_variables)


def test_generate_draws_from_the_learned_prior():
    _, c, _ = _data(4)
    cvae = _image_cvae()
    eps = np.random.default_rng(7).standard_normal((4, LATENT)).astype("float32")
    prior_mean, prior_log_var = cvae.prior_params(c)
    z = prior_mean + np.exp(0.5 * prior_log_var) * eps
    np.testing.assert_allclose(
        cvae.generate(c, seed=7), _numpy(cvae.decode([z, c])), rtol=1e-5, atol=1e-6
    )
    # Given z is used as it is.
    np.testing.assert_allclose(
        cvae.generate(c, z=eps), _numpy(cvae.decode([eps, c])), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_saved_with_the_prior_and_reloaded_under_safe_mode(tmp_path):
    x, c, mask = _data(16)
    cvae = _image_cvae(free_bits=0.1)
    cvae.compile(optimizer="adam")
    cvae.fit([x, c, mask], epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "cvae.keras"
    cvae.save(path)
    restored = keras.models.load_model(path)  # safe_mode=True
    assert restored.prior is not None and restored.num_classes is None
    np.testing.assert_allclose(restored.generate(c, seed=3), cvae.generate(c, seed=3), atol=1e-6)
    np.testing.assert_allclose(
        restored.log_likelihood([x, c, mask], num_samples=4, seed=0),
        cvae.log_likelihood([x, c, mask], num_samples=4, seed=0),
        rtol=1e-5,
    )
    restored.fit([x, c], epochs=1, batch_size=8, verbose=0)  # trains on


# ----------------------------------------------------------- the mask
def test_masked_loss_scores_only_the_masked_pixels():
    x, c, mask = _data(8)
    cvae = _image_cvae()
    cvae.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    outputs = {
        "reconstruction": rng.uniform(0.05, 0.95, size=x.shape).astype("float32"),
        "z_mean": rng.normal(size=(8, LATENT)).astype("float32"),
        "z_log_var": rng.normal(size=(8, LATENT)).astype("float32") * 0.1,
        "prior_mean": np.zeros((8, LATENT), "float32"),
        "prior_log_var": np.zeros((8, LATENT), "float32"),
    }
    outputs = {k: ops.convert_to_tensor(v) for k, v in outputs.items()}
    inputs = [ops.convert_to_tensor(a) for a in (x, c, mask)]
    total = float(_numpy(cvae.compute_loss(inputs, y_pred=outputs, training=False)))
    p = _numpy(outputs["reconstruction"]).astype("float64")
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    masked = np.mean(np.sum(bce * mask, axis=(1, 2, 3)))
    kl = np.mean(_numpy(vk.kl_divergence(outputs["z_mean"], outputs["z_log_var"])))
    print(f"masked reconstruction {masked:.3f}, unmasked {np.mean(np.sum(bce, (1, 2, 3))):.3f}")
    assert total == pytest.approx(masked + kl, rel=1e-5)


def test_log_likelihood_with_prior_and_mask_matches_a_numpy_reference():
    x, c, mask = _data(6)
    cvae = _image_cvae()
    cvae.compile(optimizer="adam")
    cvae.fit([x, c], epochs=1, batch_size=6, verbose=0)
    k, seed = 5, 11
    weights = vk.evaluation.log_importance_weights(cvae, [x, c, mask], num_samples=k, seed=seed)
    # The same draws: one chunk of (k, n, latent_dim) standard normals from the seed.
    eps = np.random.default_rng(seed).standard_normal((k, 6, LATENT), dtype="float32")
    z_mean, z_log_var = (_numpy(t) for t in cvae.encode([x, c]))
    prior_mean, prior_log_var = cvae.prior_params(c)
    z = z_mean[None] + np.exp(0.5 * z_log_var)[None] * eps

    def log_normal(z, m, lv):
        return np.sum(-0.5 * (math.log(2 * math.pi) + lv + (z - m) ** 2 / np.exp(lv)), axis=-1)

    p = _numpy(cvae.decode([z.reshape(k * 6, LATENT), np.concatenate([c] * k)]))
    p = np.clip(p.reshape((k, 6) + SHAPE).astype("float64"), 1e-7, 1 - 1e-7)
    log_px = np.sum(mask * (x * np.log(p) + (1 - x) * np.log(1 - p)), axis=(2, 3, 4))
    expected = log_px + log_normal(z, prior_mean, prior_log_var) - log_normal(z, z_mean, z_log_var)
    np.testing.assert_allclose(weights, expected.T, rtol=1e-4, atol=1e-3)
    # A mask of ones scores every pixel: the unmasked estimate.
    np.testing.assert_allclose(
        cvae.log_likelihood([x, c, np.ones_like(mask)], num_samples=k, seed=seed),
        cvae.log_likelihood([x, c], num_samples=k, seed=seed),
        rtol=1e-5,
    )
    # The hidden half alone is more probable than the whole image.
    assert np.all(cvae.log_likelihood([x, c, mask], 20, seed=0) > cvae.log_likelihood([x, c], 20))


def test_gaussian_mask_keeps_each_pixels_constant():
    x, c, mask = _data(4)
    cvae = _image_cvae(likelihood="gaussian", sigma=0.5)
    full = cvae.log_likelihood([x, c, np.ones_like(mask)], num_samples=3, seed=0)
    np.testing.assert_allclose(full, cvae.log_likelihood([x, c], num_samples=3, seed=0), rtol=1e-5)


@pytest.mark.slow
def test_masked_training_lowers_the_hidden_pixels_loss():
    keras.utils.set_random_seed(0)
    x, c, mask = _data(64)
    cvae = _image_cvae()
    cvae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = cvae.evaluate([x, c, mask], batch_size=64, verbose=0, return_dict=True)
    cvae.fit([x, c, mask], epochs=15, batch_size=16, verbose=0)
    after = cvae.evaluate([x, c, mask], batch_size=64, verbose=0, return_dict=True)
    print(before["reconstruction_loss"], after["reconstruction_loss"])
    assert after["reconstruction_loss"] < 0.5 * before["reconstruction_loss"]
    assert before["reconstruction_loss"] < 14 * 28 * 0.75  # roughly half the pixels scored


@pytest.mark.slow
def test_dataset_with_conditions_and_mask_is_checked():
    tf = pytest.importorskip("tensorflow")
    x, c, mask = _data(16)
    cvae = _image_cvae()
    cvae.compile(optimizer="adam")
    good = tf.data.Dataset.from_tensor_slices(((x, c, mask),)).batch(8)
    cvae.fit(good, epochs=1, verbose=0)
    bad = tf.data.Dataset.from_tensor_slices(((x, c, 2 * mask),)).batch(8)
    with pytest.raises(ValueError, match=r"mask must lie in \[0, 1\]"):
        cvae.fit(bad, epochs=1, verbose=0)
    wrong = tf.data.Dataset.from_tensor_slices(((x, c[:, :, :14]),)).batch(8)
    with pytest.raises(ValueError, match=r"conditions have shape \(28, 14, 1\)"):
        cvae.fit(wrong, epochs=1, verbose=0)


def test_kl_per_dimension_and_optimize_posterior_use_the_prior():
    x, c, mask = _data(8)
    cvae = _image_cvae()
    per_dim = vk.evaluation.kl_per_dimension(cvae, [x, c])
    z_mean, z_log_var = cvae.encode([x, c])
    prior = cvae.prior_params(c)
    expected = np.mean(_numpy(vk.kl_per_dimension(z_mean, z_log_var, *prior)), axis=0)
    np.testing.assert_allclose(per_dim, expected, rtol=1e-5)
    mean, log_var = vk.evaluation.optimize_posterior(
        cvae, [x, c], steps=2, num_samples=2, seed=0, init="prior"
    )
    assert mean.shape == (8, LATENT) and np.isfinite(log_var).all()
    with pytest.raises(ValueError, match="a mask is not supported here"):
        vk.evaluation.optimize_posterior(cvae, [x, c, mask], steps=1)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.slow
def test_prior_and_mask_under_mixed_precision(policy):
    x, c, mask = _data(32)
    keras.utils.set_random_seed(0)
    reference = _image_cvae()
    reference.compile(optimizer="adam")
    expected = reference.evaluate([x, c, mask], batch_size=32, verbose=0, return_dict=True)
    keras.mixed_precision.set_global_policy(policy)
    try:
        mixed = _image_cvae()
        mixed.compile(optimizer="adam")
        mixed.set_weights(reference.get_weights())
        got = mixed.evaluate([x, c, mask], batch_size=32, verbose=0, return_dict=True)
        history = mixed.fit([x, c, mask], epochs=1, batch_size=16, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert got["kl_loss"] == pytest.approx(expected["kl_loss"], rel=0.05, abs=0.05)
    assert got["reconstruction_loss"] == pytest.approx(expected["reconstruction_loss"], rel=0.02)
    assert np.isfinite(history.history["loss"]).all()


def test_image_snapshots_draw_from_the_prior(tmp_path):
    x, c, _ = _data(8)
    cvae = _image_cvae()
    callback = vk.callbacks.ImageSnapshots([x, c], directory=tmp_path, num_samples=4)
    callback.set_model(cvae)
    grids = callback.grids()
    assert set(grids) == {"samples", "reconstructions"}
    assert all(np.isfinite(g).all() for g in grids.values())


@pytest.mark.slow
def test_serving_export_of_any_cvae_draws_from_its_prior(tmp_path):
    """Notebook 06's kind of CVAE (image condition, learned prior) exports and serves generate(c)."""
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("export_serving writes a TensorFlow SavedModel: TensorFlow backend only")
    import tensorflow as tf

    x, c, mask = _data(16)
    cvae = _image_cvae()
    cvae.compile(optimizer="adam")
    cvae.fit([x, c, mask], epochs=1, batch_size=8, verbose=0)
    vk.export.export_serving(cvae, tmp_path / "served")
    np.save(tmp_path / "c.npy", c[:4])
    # The served generate draws eps with stateless_normal(seed=[5, 0]) and z from p(z | c).
    eps = tf.random.stateless_normal((4, LATENT), seed=[5, 0]).numpy()
    prior_mean, prior_log_var = cvae.prior_params(c[:4])
    z = prior_mean + np.exp(0.5 * prior_log_var) * eps
    np.save(tmp_path / "expected.npy", cvae.generate(c[:4], z=z))
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        served = tf.saved_model.load(sys.argv[1] + "/served")
        c = tf.constant(np.load(sys.argv[1] + "/c.npy"))
        images = served.generate(c, tf.constant(5)).numpy()
        np.testing.assert_allclose(images, np.load(sys.argv[1] + "/expected.npy"), atol=1e-5)
        assert "vae_keras" not in sys.modules
        print("served")
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "served"

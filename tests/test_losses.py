import keras
import numpy as np
import pytest
from keras import ops

import vae_keras as vk


def _numpy_kl(mean, log_var):
    return -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=-1)


def test_kl_matches_numpy_closed_form():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(16, 5))
    log_var = rng.normal(scale=0.7, size=(16, 5))
    kl = vk.kl_divergence(mean, log_var)
    assert tuple(kl.shape) == (16,)
    np.testing.assert_allclose(ops.convert_to_numpy(kl), _numpy_kl(mean, log_var), rtol=1e-6)


def test_kl_accepts_backend_tensors_and_float32():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(4, 3)).astype("float32")
    log_var = rng.normal(size=(4, 3)).astype("float32")
    kl = vk.kl_divergence(ops.convert_to_tensor(mean), ops.convert_to_tensor(log_var))
    np.testing.assert_allclose(ops.convert_to_numpy(kl), _numpy_kl(mean, log_var), rtol=1e-5)


def test_kl_matches_monte_carlo_estimate():
    """KL = E_q[log q(z) - log p(z)], estimated with 400k draws, within 5 standard errors."""
    mean = np.array([0.8, -0.3, 1.5])
    log_var = np.array([-0.5, 0.4, -1.2])
    std = np.exp(0.5 * log_var)
    z = mean + std * np.random.default_rng(2).standard_normal((400_000, 3))
    log_q = -0.5 * (((z - mean) / std) ** 2 + np.log(2 * np.pi) + log_var)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    samples = np.sum(log_q - log_p, axis=1)
    estimate, standard_error = samples.mean(), samples.std() / np.sqrt(samples.size)
    exact = float(ops.convert_to_numpy(vk.kl_divergence(mean[None], log_var[None]))[0])
    assert abs(estimate - exact) < 5 * standard_error


def test_kl_is_zero_only_at_the_prior():
    zero = vk.kl_divergence(np.zeros((1, 4)), np.zeros((1, 4)))
    assert float(ops.convert_to_numpy(zero)[0]) == 0.0
    positive = vk.kl_divergence(np.full((1, 4), 0.1), np.full((1, 4), -0.1))
    assert float(ops.convert_to_numpy(positive)[0]) > 0


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        vk.kl_divergence(np.zeros((2, 3)), np.zeros((2, 4)))


def _images(seed=0, shape=(6, 4, 4, 1)):
    rng = np.random.default_rng(seed)
    y_true = (rng.random(shape) > 0.5).astype("float32")
    y_pred = rng.uniform(0.05, 0.95, size=shape).astype("float32")
    return y_true, y_pred


def test_bernoulli_loss_matches_numpy_sum_over_pixels_mean_over_batch():
    y_true, y_pred = _images()
    per_image = -np.sum(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred), axis=(1, 2, 3))
    loss = vk.VAELoss()(y_true, y_pred)
    np.testing.assert_allclose(float(loss), per_image.mean(), rtol=1e-5)
    per_example = vk.VAELoss(reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(ops.convert_to_numpy(per_example), per_image, rtol=1e-5)


def test_bernoulli_from_logits_matches_probabilities():
    y_true, y_pred = _images(1)
    logits = np.log(y_pred / (1 - y_pred))
    np.testing.assert_allclose(
        float(vk.VAELoss(from_logits=True)(y_true, logits)),
        float(vk.VAELoss()(y_true, y_pred)),
        rtol=1e-5,
    )


@pytest.mark.parametrize("sigma", [1.0, 0.1])
def test_gaussian_loss_matches_numpy(sigma):
    rng = np.random.default_rng(3)
    y_true = rng.random((5, 7)).astype("float32")
    y_pred = rng.random((5, 7)).astype("float32")
    per_image = np.sum((y_true - y_pred) ** 2, axis=1) / (2 * sigma**2)
    loss = vk.VAELoss(likelihood="gaussian", sigma=sigma)(y_true, y_pred)
    np.testing.assert_allclose(float(loss), per_image.mean(), rtol=1e-5)


def test_gaussian_loss_is_the_negative_log_likelihood_up_to_its_constant():
    rng = np.random.default_rng(4)
    y_true, y_pred, sigma = rng.random((3, 10)), rng.random((3, 10)), 0.3
    nll = -np.sum(
        -0.5 * np.log(2 * np.pi * sigma**2) - (y_true - y_pred) ** 2 / (2 * sigma**2), axis=1
    )
    constant = 10 * 0.5 * np.log(2 * np.pi * sigma**2)
    loss = vk.VAELoss("gaussian", sigma=sigma, reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(ops.convert_to_numpy(loss) + constant, nll, rtol=1e-5)


def test_unknown_likelihood_and_bad_sigma_are_refused():
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        vk.VAELoss(likelihood="poisson")
    with pytest.raises(ValueError, match="sigma"):
        vk.VAELoss(likelihood="gaussian", sigma=0.0)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        vk.VAELoss()(np.zeros((2, 4)), np.full((2, 5), 0.5))


def test_vae_loss_serializes():
    loss = vk.VAELoss(likelihood="gaussian", sigma=0.5, name="rec")
    config = loss.get_config()
    assert config["likelihood"] == "gaussian" and config["sigma"] == 0.5
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, vk.VAELoss)
    assert (restored.likelihood, restored.sigma, restored.name) == ("gaussian", 0.5, "rec")
    y_true, y_pred = _images(5)
    np.testing.assert_allclose(float(restored(y_true, y_pred)), float(loss(y_true, y_pred)))

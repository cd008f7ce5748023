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
    with pytest.raises(ValueError, match="must have the shape of z_mean"):
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
    with pytest.raises(ValueError, match="unknown likelihood.*received likelihood='poisson'"):
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


# ------------------------------------------------ the continuous Bernoulli
# Loaiza-Ganem & Cunningham (2019): p(x | lam) = C(lam) lam^x (1 - lam)^(1 - x) on [0, 1],
# C(lam) = 2 artanh(1 - 2 lam) / (1 - 2 lam), C(0.5) = 2.
from vae_keras import losses as vk_losses  # noqa: E402


def _log_normalizer_float64(lam):
    t = 1.0 - 2.0 * np.asarray(lam, "float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = np.log(2.0 * np.arctanh(t) / t)
    series = np.log(2.0) + t**2 / 3 + 13 * t**4 / 90  # error below 1e-19 for |t| < 1e-3
    return np.where(np.abs(t) < 1e-3, series, closed)


def _mean_float64(lam):
    t = 1.0 - 2.0 * np.asarray(lam, "float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = 0.5 - 0.5 / t + 0.5 / np.arctanh(t)
    series = 0.5 - t / 6 - 2 * t**3 / 45 - 22 * t**5 / 945  # float64 loses digits near 0.5
    return np.where(np.abs(t) < 1e-3, series, closed)


def _gradient(fn, values):
    """d sum(fn(x)) / dx at `values` (float32), with the backend's own autodiff."""
    backend = keras.backend.backend()
    values = np.asarray(values, "float32")
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(values)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(fn(x))
        return tape.gradient(total, x).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda x: jnp.sum(fn(x)))(jnp.asarray(values)))
    if backend == "torch":
        import torch

        x = torch.tensor(values, requires_grad=True)
        torch.sum(fn(x)).backward()
        return x.grad.numpy()
    pytest.skip(f"no autodiff helper for the {backend} backend")


LAMBDAS = [1e-4, 0.05, 0.3, 0.45, 0.5, 0.5 + 1e-4, 0.62, 0.9, 1 - 1e-4]


@pytest.mark.parametrize("lam", LAMBDAS)
def test_continuous_bernoulli_density_integrates_to_one(lam):
    n = 200_000
    x = ((np.arange(n) + 0.5) / n).astype("float32")  # midpoint rule on [0, 1]
    log_p = vk_losses.continuous_bernoulli_log_prob(x, np.full(n, lam, "float32"))
    integral = np.exp(ops.convert_to_numpy(log_p).astype("float64")).mean()
    assert abs(integral - 1.0) < 1e-5, integral


def test_continuous_bernoulli_mean_is_the_integral_of_x_times_the_density():
    n = 200_000
    x = ((np.arange(n) + 0.5) / n).astype("float32")
    for lam in LAMBDAS:
        density = np.exp(
            ops.convert_to_numpy(
                vk_losses.continuous_bernoulli_log_prob(x, np.full(n, lam, "float32"))
            ).astype("float64")
        )
        numerical = (x * density).mean()
        mean = float(ops.convert_to_numpy(vk_losses.continuous_bernoulli_mean(np.float32(lam))))
        assert abs(mean - numerical) < 1e-5, (lam, mean, numerical)
        # between 0.5 and lambda, so not lambda unless lambda is 0.5
        assert min(lam, 0.5) - 1e-7 <= mean <= max(lam, 0.5) + 1e-7


def test_continuous_bernoulli_normalizer_and_mean_match_float64_and_their_taylor_limit():
    near = 0.5 + np.array([0.0, 1e-7, -1e-6, 1e-4, -1e-3, 0.01, -0.05, 0.0999, -0.1001])
    far = np.array([1e-7, 1e-5, 0.01, 0.2, 0.7, 0.97, 1 - 1e-5])
    lam = np.concatenate([near, far]).astype("float32")
    exact = lam.astype("float64")  # the float32 values the function receives
    log_c = ops.convert_to_numpy(vk_losses.continuous_bernoulli_log_normalizer(lam))
    np.testing.assert_allclose(log_c, _log_normalizer_float64(exact), rtol=0, atol=3e-7)
    mean = ops.convert_to_numpy(vk_losses.continuous_bernoulli_mean(lam))
    np.testing.assert_allclose(mean, _mean_float64(exact), rtol=0, atol=3e-7)
    # The limit at 0.5: log C -> log 2 + t^2 / 3 and mean -> 0.5 - t / 6, t = 1 - 2 lambda.
    assert float(log_c[0]) == pytest.approx(np.log(2.0), abs=1e-7)
    assert float(mean[0]) == 0.5
    t = 1.0 - 2.0 * exact[:6]
    np.testing.assert_allclose(log_c[:6], np.log(2.0) + t**2 / 3, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mean[:6], 0.5 - t / 6, rtol=0, atol=1e-6)
    # The closed form and the series meet without a jump at |t| = 0.2.
    edge = np.array([0.4 - 1e-6, 0.4 + 1e-6, 0.6 - 1e-6, 0.6 + 1e-6], "float32")
    edge_log_c = ops.convert_to_numpy(vk_losses.continuous_bernoulli_log_normalizer(edge))
    np.testing.assert_allclose(edge_log_c, _log_normalizer_float64(edge), rtol=0, atol=2e-7)


def test_continuous_bernoulli_from_logits_matches_probabilities():
    lam = np.array([1e-4, 0.2, 0.4999, 0.5, 0.6, 0.93], "float32")
    logits = np.log(lam / (1 - lam)).astype("float32")
    x = np.array([0.0, 0.3, 1.0, 0.5, 0.8, 0.1], "float32")
    from_p = vk_losses.continuous_bernoulli_log_prob(x, lam)
    from_l = vk_losses.continuous_bernoulli_log_prob(x, logits, from_logits=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(from_l), ops.convert_to_numpy(from_p), atol=2e-5
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(vk_losses.continuous_bernoulli_mean(logits, from_logits=True)),
        _mean_float64(lam),
        atol=1e-6,
    )
    # extreme logits, where sigmoid rounds to 0 or 1, keep a finite, correct constant
    big = np.array([-60.0, 60.0], "float32")
    log_c = ops.convert_to_numpy(vk_losses.continuous_bernoulli_log_normalizer(big, True))
    np.testing.assert_allclose(log_c, np.log(60.0) * np.ones(2), rtol=1e-6)


def test_continuous_bernoulli_gradients_are_finite_and_right_everywhere():
    lam = np.array(
        [0.0, 1e-7, 1e-3, 0.3, 0.4, 0.5 - 1e-6, 0.5, 0.5 + 1e-6, 0.6, 0.9, 1 - 1e-7, 1.0],
        "float32",
    )
    x = np.float32(0.3)
    for fn in (
        lambda p: vk_losses.continuous_bernoulli_log_prob(x, p),
        vk_losses.continuous_bernoulli_log_normalizer,
        vk_losses.continuous_bernoulli_mean,
    ):
        grad = _gradient(fn, lam)
        assert np.all(np.isfinite(grad)), (lam, grad)
    # Against central differences of the float64 formulas, away from the clipped ends.
    inner = lam[2:-2]
    h = 1e-6
    for fn, exact in (
        (vk_losses.continuous_bernoulli_log_normalizer, _log_normalizer_float64),
        (vk_losses.continuous_bernoulli_mean, _mean_float64),
    ):
        numeric = (exact(inner.astype("float64") + h) - exact(inner.astype("float64") - h)) / (
            2 * h
        )
        np.testing.assert_allclose(_gradient(fn, inner), numeric, rtol=2e-3, atol=2e-4)
    logits = np.array([-30.0, -1.0, -1e-6, 0.0, 1e-6, 2.0, 30.0], "float32")
    grad = _gradient(
        lambda logit: vk_losses.continuous_bernoulli_log_prob(x, logit, from_logits=True), logits
    )
    assert np.all(np.isfinite(grad)), grad


def test_continuous_bernoulli_loss_is_the_negative_log_density_summed_over_pixels():
    rng = np.random.default_rng(7)
    y_true = rng.random((4, 3, 3, 1)).astype("float32")
    y_pred = rng.uniform(0.02, 0.98, size=(4, 3, 3, 1)).astype("float32")
    lam = y_pred.astype("float64")
    log_p = y_true * np.log(lam) + (1 - y_true) * np.log(1 - lam) + _log_normalizer_float64(lam)
    expected = -log_p.sum(axis=(1, 2, 3))
    loss = vk.VAELoss("continuous_bernoulli", reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(ops.convert_to_numpy(loss), expected, rtol=1e-5)
    # the Bernoulli cross-entropy minus log C, pixel by pixel
    bce = vk.VAELoss(reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(
        ops.convert_to_numpy(bce) - ops.convert_to_numpy(loss),
        _log_normalizer_float64(lam).sum(axis=(1, 2, 3)),
        rtol=1e-5,
    )
    restored = keras.losses.deserialize(
        keras.losses.serialize(vk.VAELoss("continuous_bernoulli", from_logits=True))
    )
    assert (restored.likelihood, restored.from_logits) == ("continuous_bernoulli", True)


def test_continuous_bernoulli_loss_is_float32_under_mixed_precision():
    rng = np.random.default_rng(8)
    y_true = rng.random((3, 8)).astype("float16")
    y_pred = rng.uniform(0.3, 0.7, size=(3, 8)).astype("float16")  # both branches of log C
    y_pred[0, :4] = [0.5, 0.4999, 0.51, 0.6]
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        loss = vk.VAELoss("continuous_bernoulli", reduction=None)(y_true, y_pred)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    reference = vk.VAELoss("continuous_bernoulli", reduction=None)(
        y_true.astype("float32"), y_pred.astype("float32")
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(loss), ops.convert_to_numpy(reference), rtol=1e-6
    )

"""vae_keras.evaluation: the importance-sampled log-likelihood and the collapse diagnostics.

Most tests use a linear-Gaussian model, p(z) = N(0, I), p(x | z) = N(W z + b, sigma^2 I),
whose marginal log p(x) = log N(x; b, W W^T + sigma^2 I) is known in closed form. With
orthogonal columns in W its posterior is a diagonal Gaussian, so an encoder with fixed
weights can output it exactly.
"""

import keras
import numpy as np
import pytest
from keras import layers

import vae_keras as vk
from vae_keras import evaluation

LATENT = 2
DATA = 5
SIGMA = 0.5


def _linear_gaussian(seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((DATA, LATENT)))
    w = q * np.array([2.0, 0.8])  # orthogonal columns: W^T W is diagonal
    b = rng.standard_normal(DATA)
    return w, b


def _exact_log_px(x, w, b, sigma=SIGMA):
    cov = w @ w.T + sigma**2 * np.eye(DATA)
    diff = x.astype("float64") - b
    _, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    return -0.5 * (DATA * np.log(2 * np.pi) + logdet + maha)


def _exact_posterior(w, b, sigma=SIGMA):
    """(A, c, log_var) with posterior mean A^T-style: mean = x @ kernel + bias."""
    var = 1.0 / (1.0 + np.sum(w**2, axis=0) / sigma**2)  # diagonal of (I + W^T W / s^2)^-1
    a = (w * var) / sigma**2  # (DATA, LATENT): mean = (x - b) @ a
    return a, -b @ a, np.log(var)


def _dense(units, kernel, bias, name):
    layer = layers.Dense(units, name=name)
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel.astype("float32"), np.asarray(bias, "float32")])
    return layer


def _linear_vae(mean_shift=0.0, log_var_shift=0.0, seed=0, num_classes=None):
    """A VAE (or a CVAE that ignores its label) with the linear-Gaussian decoder.

    The encoder gives the exact posterior, moved by `mean_shift` and `log_var_shift`.
    """
    w, b = _linear_gaussian(seed)
    a, c, log_var = _exact_posterior(w, b)
    x_in = keras.Input((DATA,))
    z_in = keras.Input((LATENT,))
    if num_classes is None:
        enc_h, dec_h, enc_inputs, dec_inputs = x_in, z_in, x_in, z_in
        pad = 0
    else:
        y_enc, y_dec = keras.Input((num_classes,)), keras.Input((num_classes,))
        enc_h = layers.Concatenate()([x_in, y_enc])
        dec_h = layers.Concatenate()([z_in, y_dec])
        enc_inputs, dec_inputs, pad = [x_in, y_enc], [z_in, y_dec], num_classes
    zeros = np.zeros((pad, LATENT))
    z_mean = _dense(LATENT, np.vstack([a, zeros]), c + mean_shift, "z_mean")(enc_h)
    z_log_var = _dense(
        LATENT, np.zeros((DATA + pad, LATENT)), log_var + log_var_shift, "z_log_var"
    )(enc_h)
    encoder = keras.Model(enc_inputs, [z_mean, z_log_var])
    kernel = np.vstack([w.T, np.zeros((pad, DATA))])
    decoder = keras.Model(dec_inputs, _dense(DATA, kernel, b, "x_mean")(dec_h))
    if num_classes is None:
        model = vk.VAE(encoder, decoder, likelihood="gaussian", sigma=SIGMA)
    else:
        model = vk.CVAE(
            encoder, decoder, num_classes=num_classes, likelihood="gaussian", sigma=SIGMA
        )
    return model, w, b


def _linear_data(n, seed=0):
    w, b = _linear_gaussian(seed)
    rng = np.random.default_rng(100 + seed)
    z = rng.standard_normal((n, LATENT))
    x = z @ w.T + b + SIGMA * rng.standard_normal((n, DATA))
    return x.astype("float32")


def _bernoulli_vae():
    return vk.VAE(vk.build_mlp_encoder(LATENT, (32,)), vk.build_mlp_decoder(LATENT, (32,)))


def _binary_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 28, 28, 1)) < 0.3).astype("float32")


# ---------------------------------------------------------- log-likelihood


def test_exact_posterior_gives_exact_log_likelihood_with_zero_variance():
    model, w, b = _linear_vae()
    x = _linear_data(40)
    exact = _exact_log_px(x, w, b)
    weights = evaluation.log_importance_weights(model, x, num_samples=16, seed=0)
    assert weights.shape == (40, 16) and weights.dtype == np.float64
    # With q = p(z|x), every weight p(x, z) / q(z|x) equals p(x): no Monte Carlo noise.
    np.testing.assert_allclose(weights, np.broadcast_to(exact[:, None], weights.shape), atol=2e-3)
    estimate = evaluation.log_likelihood(model, x, num_samples=3, seed=1)
    assert estimate.shape == (40,) and estimate.dtype == np.float64
    np.testing.assert_allclose(estimate, exact, atol=2e-3)


def test_mismatched_posterior_estimate_within_its_monte_carlo_error():
    model, w, b = _linear_vae(mean_shift=0.4, log_var_shift=0.7)
    x = _linear_data(20)
    exact = _exact_log_px(x, w, b)
    k = 4000
    weights = evaluation.log_importance_weights(model, x, num_samples=k, seed=0)
    estimate = evaluation.log_likelihood(model, x, num_samples=k, seed=0)
    top = weights.max(axis=1, keepdims=True)
    ratios = np.exp(weights - top)  # w_k / max w, per example
    np.testing.assert_allclose(estimate, top[:, 0] + np.log(ratios.mean(axis=1)), atol=1e-9)
    # Delta method: the standard error of log(mean w) is std(w) / (sqrt(K) mean(w)).
    stderr = ratios.std(axis=1) / (np.sqrt(k) * ratios.mean(axis=1))
    assert np.all(stderr > 1e-4)  # the check below is not a zero-variance one
    assert np.all(np.abs(estimate - exact) < 5 * stderr + 1e-3)
    # The one-sample bound is far looser than that error: q really is mismatched.
    assert np.mean(exact - weights.mean(axis=1)) > 0.3


def test_bound_tightens_with_num_samples():
    model, w, b = _linear_vae(mean_shift=0.8, log_var_shift=1.0)
    x = _linear_data(200)
    exact = _exact_log_px(x, w, b).mean()
    means = [
        evaluation.log_likelihood(model, x, num_samples=k, seed=k).mean() for k in (1, 10, 100)
    ]
    assert means[0] < means[1] - 0.2 and means[1] < means[2] - 0.05, means
    assert means[2] < exact + 0.01, (means, exact)


@pytest.mark.slow
def test_one_sample_bound_matches_evaluate():
    keras.utils.set_random_seed(0)
    model = _bernoulli_vae()
    model.compile(optimizer="adam")
    x = _binary_images(64)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    repeats = 20
    logs = model.evaluate(
        np.tile(x, (repeats, 1, 1, 1)), batch_size=640, verbose=0, return_dict=True
    )
    negative_elbo = logs["reconstruction_loss"] + logs["kl_loss"]
    weights = evaluation.log_importance_weights(model, x, num_samples=50, seed=0)
    l1 = evaluation.log_likelihood(model, x, num_samples=1, seed=0)
    np.testing.assert_allclose(l1, weights[:, 0], rtol=1e-6)
    noise = np.sqrt(weights.var(axis=1).mean() * (1 / (64 * 50) + 1 / (64 * repeats)))
    assert abs(weights.mean() + negative_elbo) < 4 * noise + 0.05, (weights.mean(), negative_elbo)


def test_cvae_that_ignores_its_label_agrees_with_the_vae():
    vae, _, _ = _linear_vae(mean_shift=0.3, log_var_shift=0.5)
    cvae, _, _ = _linear_vae(mean_shift=0.3, log_var_shift=0.5, num_classes=3)
    x = _linear_data(30)
    labels = np.arange(30) % 3
    expected = evaluation.log_likelihood(vae, x, num_samples=200, seed=3)
    for y in (labels, np.eye(3, dtype="float32")[labels]):
        got = evaluation.log_likelihood(cvae, [x, y], num_samples=200, seed=3)
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_seed_reproduces_and_chunk_size_does_not_bias():
    model, _, _ = _linear_vae(mean_shift=0.3)
    x = _linear_data(12)
    a = evaluation.log_likelihood(model, x, num_samples=300, seed=7)
    b = evaluation.log_likelihood(model, x, num_samples=300, seed=7)
    c = evaluation.log_likelihood(model, x, num_samples=300, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Fewer codes per decoder call (more, smaller chunks over examples and draws):
    # other draws, the same estimate within Monte Carlo noise.
    small = evaluation.log_likelihood(model, x, num_samples=300, seed=7, batch_size=64)
    assert small.shape == (12,) and not np.array_equal(small, a)
    np.testing.assert_allclose(small, a, atol=0.5)
    assert abs(small.mean() - a.mean()) < 0.1
    exact_model, w, b_ = _linear_vae()
    for batch_size in (5, 64, 4096):
        np.testing.assert_allclose(
            evaluation.log_likelihood(exact_model, x, num_samples=9, batch_size=batch_size),
            _exact_log_px(x, w, b_),
            atol=2e-3,
        )
    # seed=None: drawn from Python's `random`, which set_random_seed fixes.
    keras.utils.set_random_seed(5)
    d = evaluation.log_likelihood(model, x, num_samples=50)
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(d, evaluation.log_likelihood(model, x, num_samples=50))


def test_posterior_argument_replaces_the_encoder():
    model, w, b = _linear_vae(mean_shift=1.0)
    exact_model, _, _ = _linear_vae()
    x = _linear_data(10)
    exact = evaluation.log_importance_weights(exact_model, x, num_samples=1, seed=0)
    z_mean, z_log_var = exact_model.encoder.predict(x, verbose=0)
    given = evaluation.log_importance_weights(
        model, x, num_samples=5, seed=0, posterior=(z_mean, z_log_var)
    )
    np.testing.assert_allclose(given, np.repeat(exact, 5, axis=1), atol=2e-3)


def test_bad_inputs_raise_early_and_clearly():
    model = _bernoulli_vae()
    x = _binary_images(4)
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="num_samples must be a positive integer"):
            evaluation.log_likelihood(model, x, num_samples=bad)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        evaluation.log_likelihood(model, x, num_samples=2, batch_size=0)
    with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
        evaluation.log_likelihood(model, x, num_samples=2, seed=-1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        evaluation.log_likelihood(model, x * 255.0, num_samples=2)
    with pytest.raises(ValueError, match="per image"):
        evaluation.log_likelihood(model, np.zeros((4, 28, 28), "float32"), num_samples=2)
    with pytest.raises(ValueError, match="NaN"):
        evaluation.log_likelihood(model, np.full((2, 28, 28, 1), np.nan, "float32"))
    with pytest.raises(ValueError, match="posterior"):
        evaluation.log_likelihood(model, x, num_samples=2, posterior=(np.zeros((3, LATENT)),) * 2)
    with pytest.raises(TypeError, match="vk.VAE or vk.CVAE"):
        evaluation.log_likelihood(model.encoder, x)
    cvae, _, _ = _linear_vae(num_classes=3)
    xs = _linear_data(4)
    with pytest.raises(ValueError, match="received a single array"):
        evaluation.log_likelihood(cvae, xs, num_samples=2)
    with pytest.raises(ValueError, match="labels for 4 images"):
        evaluation.log_likelihood(cvae, [xs, np.array([0, 1])], num_samples=2)
    with pytest.raises(ValueError, match="2 labels for 4 images"):
        evaluation.log_likelihood(cvae, [xs, [0, 1]], num_samples=2)  # a Python list
    with pytest.raises(ValueError, match="out of range"):
        evaluation.log_likelihood(cvae, [xs, np.array([0, 1, 2, 3])], num_samples=2)
    with pytest.raises(ValueError, match="threshold"):
        evaluation.active_units(model, x, threshold=-1)
    with pytest.raises(ValueError, match="at least one example"):
        evaluation.kl_per_dimension(model, x[:0])
    assert evaluation.log_likelihood(model, x[:0], num_samples=3).shape == (0,)


# ------------------------------------------------------ collapse diagnostics


def test_kl_per_dimension_and_active_units_match_the_closed_forms():
    w, b = _linear_gaussian()
    a, c, log_var = _exact_posterior(w, b)
    a[:, 1] = 0.0  # the second latent dimension ignores x: inactive
    x_in = keras.Input((DATA,))
    encoder = keras.Model(
        x_in,
        [
            _dense(LATENT, a, c, "z_mean")(x_in),
            _dense(LATENT, np.zeros((DATA, LATENT)), log_var, "z_log_var")(x_in),
        ],
    )
    z_in = keras.Input((LATENT,))
    decoder = keras.Model(z_in, _dense(DATA, w.T, b, "x_mean")(z_in))
    model = vk.VAE(encoder, decoder, likelihood="gaussian")
    x = _linear_data(300)
    mean = x.astype("float64") @ a + c
    expected_kl = np.mean(0.5 * (np.exp(log_var) + mean**2 - 1.0 - log_var), axis=0)
    kl = evaluation.kl_per_dimension(model, x, batch_size=64)
    assert kl.shape == (LATENT,)
    np.testing.assert_allclose(kl, expected_kl, rtol=1e-4, atol=1e-6)
    total = keras.ops.convert_to_numpy(vk.kl_divergence(*encoder.predict(x, verbose=0)))
    np.testing.assert_allclose(kl.sum(), total.mean(), rtol=1e-4)
    variance = evaluation.posterior_mean_variance(model, x)
    np.testing.assert_allclose(variance, mean.var(axis=0), rtol=1e-4, atol=1e-9)
    assert variance[0] > 0.5 and variance[1] < 1e-10
    assert evaluation.active_units(model, x) == 1
    assert evaluation.active_units(model, x, threshold=10.0) == 0


@pytest.mark.slow
def test_optimize_posterior_closes_the_gap_when_q_can_be_exact():
    model, w, b = _linear_vae(mean_shift=0.8, log_var_shift=1.0)
    x = _linear_data(8)
    exact = _exact_log_px(x, w, b)
    before = evaluation.log_importance_weights(model, x, num_samples=500, seed=0).mean(axis=1)
    z_mean, z_log_var = evaluation.optimize_posterior(
        model, x, steps=80, learning_rate=0.1, num_samples=8, seed=0
    )
    assert z_mean.shape == z_log_var.shape == (8, LATENT)
    after = evaluation.log_importance_weights(
        model, x, num_samples=500, seed=0, posterior=(z_mean, z_log_var)
    ).mean(axis=1)
    gap_before, gap_after = np.mean(exact - before), np.mean(exact - after)
    assert gap_before > 1.0 and gap_after < 0.1 * gap_before, (gap_before, gap_after)
    # The model itself is untouched.
    again = evaluation.log_importance_weights(model, x, num_samples=500, seed=0).mean(axis=1)
    np.testing.assert_array_equal(before, again)


def test_model_methods_are_the_module_function():
    vae, _, _ = _linear_vae(mean_shift=0.3)
    cvae, _, _ = _linear_vae(mean_shift=0.3, num_classes=3)
    x = _linear_data(6)
    y = np.arange(6) % 3
    expected = evaluation.log_likelihood(vae, x, num_samples=20, seed=4)
    np.testing.assert_array_equal(vae.log_likelihood(x, num_samples=20, seed=4), expected)
    np.testing.assert_allclose(
        cvae.log_likelihood([x, y], num_samples=20, seed=4), expected, atol=1e-3
    )
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        vae.log_likelihood(x, num_samples=0)


# ------------------------------------------------ continuous Bernoulli likelihood
CB_PIXELS = 6


def _cb_linear_vae(num_classes=None):
    """One latent dimension, lambda_i(z) = sigmoid(w_i z + b_i), and q(z | x) = the prior.

    With q equal to the prior, L_K is a plain Monte Carlo estimate of
    log of the integral of N(z; 0, 1) p(x | z) dz, which quadrature on a grid computes to
    float64 precision.
    """
    w = np.linspace(-3.0, 3.0, CB_PIXELS)
    b = np.linspace(1.0, -0.5, CB_PIXELS)
    x_in, z_in = keras.Input((CB_PIXELS,)), keras.Input((1,))
    if num_classes is None:
        enc_inputs, dec_inputs, enc_h, dec_h, pad = x_in, z_in, x_in, z_in, 0
    else:
        y_enc, y_dec = keras.Input((num_classes,)), keras.Input((num_classes,))
        enc_inputs, dec_inputs = [x_in, y_enc], [z_in, y_dec]
        enc_h = layers.Concatenate()([x_in, y_enc])
        dec_h = layers.Concatenate()([z_in, y_dec])
        pad = num_classes
    zeros = np.zeros((CB_PIXELS + pad, 1))
    encoder = keras.Model(
        enc_inputs, [_dense(1, zeros, [0.0], "z_mean")(enc_h), _dense(1, zeros, [0.0], "lv")(enc_h)]
    )
    kernel = np.vstack([w[None], np.zeros((pad, CB_PIXELS))])
    logits = _dense(CB_PIXELS, kernel, b, "logits")(dec_h)
    decoder = keras.Model(dec_inputs, layers.Activation("sigmoid")(logits))
    if num_classes is None:
        return vk.VAE(encoder, decoder, likelihood="continuous_bernoulli"), w, b
    cvae = vk.CVAE(encoder, decoder, num_classes=num_classes, likelihood="continuous_bernoulli")
    return cvae, w, b


def _cb_exact_log_px(x, w, b):
    z = np.linspace(-9.0, 9.0, 20001)
    dz = z[1] - z[0]
    lam = 1.0 / (1.0 + np.exp(-(z[:, None] * w + b)))  # (grid, pixels)
    t = 1.0 - 2.0 * lam
    log_c = np.log(2.0 * np.arctanh(t) / t)  # no lambda on the grid is exactly 0.5
    log_prior = -0.5 * (z**2 + np.log(2 * np.pi))
    out = []
    for image in x.astype("float64"):
        log_p = np.sum(image * np.log(lam) + (1 - image) * np.log(1 - lam) + log_c, axis=1)
        terms = log_prior + log_p
        top = terms.max()
        out.append(top + np.log(np.sum(np.exp(terms - top)) * dz))
    return np.array(out)


def test_continuous_bernoulli_log_likelihood_matches_quadrature():
    model, w, b = _cb_linear_vae()
    x = np.random.default_rng(3).random((12, CB_PIXELS)).astype("float32")
    exact = _cb_exact_log_px(x, w, b)
    weights = evaluation.log_importance_weights(model, x, num_samples=4000, seed=1)
    top = weights.max(axis=1, keepdims=True)
    estimate = top[:, 0] + np.log(np.mean(np.exp(weights - top), axis=1))
    ll = evaluation.log_likelihood(model, x, num_samples=4000, seed=1)
    np.testing.assert_allclose(ll, estimate, rtol=1e-6)
    # The relative standard error of the mean weight bounds the error of its log.
    ratios = np.exp(weights - top)
    rel_se = ratios.std(axis=1) / ratios.mean(axis=1) / np.sqrt(4000)
    assert np.all(np.abs(ll - exact) < 5 * rel_se + 1e-4), (ll - exact, rel_se)
    # It is the Bernoulli "log-likelihood" plus the normalizing constants: a density on
    # [0, 1]^6, so it can exceed 0, unlike any log-probability.
    assert np.all(np.isfinite(ll))
    cvae, _, _ = _cb_linear_vae(num_classes=3)
    labels = np.arange(12) % 3
    cvae_ll = evaluation.log_likelihood(cvae, [x, labels], num_samples=4000, seed=1)
    np.testing.assert_allclose(cvae_ll, ll, rtol=1e-5, atol=1e-5)


def _grey_images(n, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28, 1), "float32")
    images[:, 8:20, 10:18] = rng.uniform(0.4, 1.0, size=(n, 1, 1, 1))
    return np.clip(images + rng.uniform(0, 0.1, images.shape), 0, 1).astype("float32")


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.slow
def test_continuous_bernoulli_model_trains_saves_reloads_and_predicts_its_mean(
    tmp_path, conditional
):
    keras.utils.set_random_seed(0)
    x = _grey_images(64)
    labels = np.arange(64) % 3
    if conditional:
        model = vk.CVAE(
            vk.build_mlp_encoder(LATENT, (32,), num_classes=3),
            vk.build_mlp_decoder(LATENT, (32,), num_classes=3),
            num_classes=3,
            likelihood="continuous_bernoulli",
            seed=0,
        )
        data = [x, labels]
    else:
        model = vk.VAE(
            vk.build_mlp_encoder(LATENT, (32,)),
            vk.build_mlp_decoder(LATENT, (32,)),
            likelihood="continuous_bernoulli",
            seed=0,
        )
        data = x
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, epochs=4, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    # predict and generate give the continuous Bernoulli's mean, not the decoder's lambda
    z_mean, _ = model.encode(data)
    decoded = model.decode([z_mean, labels] if conditional else z_mean)
    expected = keras.ops.convert_to_numpy(vk.losses.continuous_bernoulli_mean(decoded))
    predicted = model.predict(data, verbose=0)
    np.testing.assert_allclose(predicted, expected, atol=1e-6)
    assert np.abs(predicted - keras.ops.convert_to_numpy(decoded)).max() > 1e-3
    z = np.zeros((3, LATENT), "float32")
    generated = model.generate(labels[:3], z=z) if conditional else model.generate(z=z)
    at_zero = model.decode([z, labels[:3]] if conditional else z)
    np.testing.assert_allclose(
        generated,
        keras.ops.convert_to_numpy(vk.losses.continuous_bernoulli_mean(at_zero)),
        atol=1e-6,
    )
    ll = model.log_likelihood(data[:8] if not conditional else [x[:8], labels[:8]], 50, seed=0)
    path = tmp_path / "cb.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.likelihood == "continuous_bernoulli"
    np.testing.assert_allclose(restored.predict(data, verbose=0), predicted, atol=1e-6)
    restored_ll = restored.log_likelihood(
        data[:8] if not conditional else [x[:8], labels[:8]], 50, seed=0
    )
    np.testing.assert_allclose(restored_ll, ll, rtol=1e-5)
    with pytest.raises(ValueError, match="continuous Bernoulli likelihood images must lie"):
        model.fit([x * 2, labels] if conditional else x * 2, epochs=1, verbose=0)

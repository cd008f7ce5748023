"""The IWAE objective, `importance_samples=k` (Burda et al., 2016; issue 18), on every backend.

`k=1` is the ELBO model unchanged; with `k > 1` the loss is `-L_k`, from one
encoder pass and one decoder pass over the `k * batch` codes.
"""

import math

import keras
import numpy as np
import pytest
from conftest import CLASSES, LATENT, bars, small_cvae, small_vae
from keras import ops
from test_conditional import _data, _image_cvae

import vae_keras as vk
from vae_keras._base import _inside_step, _is_inside_step


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _log_normal(z, mean, log_var):
    return np.sum(-0.5 * (math.log(2 * math.pi) + log_var + (z - mean) ** 2 / np.exp(log_var)), -1)


def _reference_bound(images, outputs, k, mask=None, prior=None):
    """L_k per example from one forward pass's tensors, written out in float64."""
    mean, log_var = _numpy(outputs["z_mean"]), _numpy(outputs["z_log_var"])
    eps = _numpy(outputs["epsilon"]).reshape(k, *mean.shape)
    z = mean[None] + np.exp(0.5 * log_var)[None] * eps
    p = np.clip(_numpy(outputs["reconstruction"]), 1e-7, 1 - 1e-7).reshape(k, *images.shape)
    x = images.astype("float64")[None]
    per_pixel = x * np.log(p) + (1 - x) * np.log(1 - p)
    if mask is not None:
        per_pixel = per_pixel * mask[None]
    log_px = per_pixel.reshape(k, len(images), -1).sum(-1)
    prior_mean, prior_log_var = (np.zeros_like(mean), np.zeros_like(log_var))
    if prior is not None:
        prior_mean, prior_log_var = (_numpy(outputs[key]) for key in prior)
    log_w = log_px + _log_normal(z, prior_mean, prior_log_var) - _log_normal(z, mean, log_var)
    top = log_w.max(0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


def _forward(model, inputs):
    """The training step's forward pass (one draw of the k codes per example)."""
    with _inside_step(model):
        return model(inputs, training=False)


@pytest.mark.slow
def test_one_sample_is_todays_model():
    x, _ = bars(n=64)
    weights = []
    for extra in ({}, {"importance_samples": 1}):
        keras.utils.set_random_seed(7)
        vae = small_vae(**extra)
        vae.compile(optimizer="adam", steps_per_execution=1)
        history = vae.fit(x, epochs=2, batch_size=16, verbose=0, shuffle=False)
        weights.append([_numpy(w) for w in vae.weights] + [history.history["loss"]])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [2, 5])
def test_loss_is_the_bound_of_the_drawn_codes(k):
    x, _ = bars(n=12)
    vae = small_vae(importance_samples=k)
    outputs = _forward(vae, x)
    assert tuple(outputs["reconstruction"].shape) == (k * 12, 28, 28, 1)
    loss = _numpy(vae.compute_loss(x, y_pred=outputs, training=False))
    expected = -_reference_bound(x, outputs, k).mean()
    print(f"k={k}: loss {float(loss):.5f}, written out {expected:.5f}")
    np.testing.assert_allclose(loss, expected, rtol=2e-5)
    # Sample weights scale each example's -L_k.
    weight = np.linspace(0.0, 2.0, 12).astype("float32")
    weighted = _numpy(vae.compute_loss(x, y_pred=outputs, sample_weight=weight, training=False))
    expected = -np.mean(weight * _reference_bound(x, outputs, k))
    np.testing.assert_allclose(weighted, expected, rtol=2e-5)


def test_cvae_bound_uses_the_learned_prior_and_the_mask():
    x, condition, mask = _data(n=10)
    k = 3
    cvae = _image_cvae(importance_samples=k)
    inputs = [x, condition, mask]
    outputs = _forward(cvae, inputs)
    loss = _numpy(cvae.compute_loss(inputs, y_pred=outputs, training=False))
    expected = _reference_bound(x, outputs, k, mask, prior=("prior_mean", "prior_log_var"))
    np.testing.assert_allclose(loss, -expected.mean(), rtol=2e-5)


@pytest.mark.slow
def test_the_bound_tightens_with_k_and_matches_the_evaluation_estimator():
    """Same weights, k = 1, 5, 50: E[-L_k] falls with k (Burda et al., Theorem 1)."""
    x, _ = bars(n=200, seed=3)
    keras.utils.set_random_seed(0)
    trained = small_vae()
    trained.compile(optimizer="adam")
    trained.fit(x, epochs=3, batch_size=32, verbose=0)
    losses = {}
    for k in (1, 5, 50):
        model = small_vae(importance_samples=k, seed=k)
        model.build((None, 28, 28, 1))
        model.set_weights(trained.get_weights())
        model.compile(optimizer="adam")
        runs = [model.evaluate(x, batch_size=50, verbose=0, return_dict=True) for _ in range(4)]
        losses[k] = np.mean([run["loss"] for run in runs])
        if k > 1:  # the ELBO's terms are still reported, and their sum bounds the loss
            elbo = np.mean([run["reconstruction_loss"] + run["kl_loss"] for run in runs])
            assert losses[k] < elbo
    print({k: round(float(v), 3) for k, v in losses.items()})
    assert losses[1] > losses[5] > losses[50]
    # The package's log-likelihood estimator with K = 5 estimates the same -L_5.
    estimates = np.stack(
        [-vk.evaluation.log_likelihood(trained, x, num_samples=5, seed=s) for s in range(4)]
    )
    standard_error = estimates.mean(0).std() / math.sqrt(len(x))
    assert abs(losses[5] - estimates.mean()) < 4 * standard_error + 0.05


class _Counting(keras.layers.Layer):
    """Records the batch size of each call made inside a training step (eager steps)."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.inside_step = lambda: False  # a function, so Keras does not track the model
        self.batches = []

    def call(self, x, training=None):
        if self.inside_step():
            self.batches.append(x.shape[0])
        return self.inner(x, training=training)


def test_one_encoder_and_one_decoder_pass_over_k_times_batch_codes():
    x, _ = bars(n=32)
    encoder = _Counting(vk.build_mlp_encoder(LATENT, (16,)))
    decoder = _Counting(vk.build_mlp_decoder(LATENT, (16,)))
    vae = vk.VAE(encoder, decoder, importance_samples=4, seed=0)
    vae.build((None, 28, 28, 1))  # builds the layers by a symbolic call, not counted
    encoder.inside_step = decoder.inside_step = lambda: _is_inside_step(vae)
    vae.compile(optimizer="adam", run_eagerly=True)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    assert encoder.batches == [16, 16]
    assert decoder.batches == [64, 64]


def test_training_on_the_bound_lowers_it_on_cvae_too():
    x, y = bars(n=96)
    cvae = small_cvae(importance_samples=5)
    cvae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = cvae.fit([x, y], epochs=4, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert cvae.generate(np.arange(CLASSES), seed=0).shape == (CLASSES, 28, 28, 1)


def test_settings_the_bound_has_no_room_for_are_refused():
    for bad in (0, -2, 1.5, "5", True):
        with pytest.raises(ValueError, match="importance_samples must be a positive integer"):
            small_vae(importance_samples=bad)
    with pytest.raises(ValueError, match="beta must be 1; received beta=0.5"):
        small_vae(beta=0.5, importance_samples=5)
    with pytest.raises(ValueError, match="beta must be 1"):
        small_vae(beta=vk.LinearWarmup(100), importance_samples=5)
    with pytest.raises(ValueError, match="free_bits must be 0; received free_bits=0.2"):
        small_cvae(free_bits=0.2, importance_samples=5)
    vae = small_vae(importance_samples=5)
    with pytest.raises(ValueError, match="IWAE bound"):
        vae.beta = 2.0
    with pytest.raises(ValueError, match="IWAE bound"):
        vae.free_bits = 1.0
    vae.beta = 1.0  # still allowed
    assert vae.beta == 1.0 and vae.free_bits == 0.0


@pytest.mark.slow
def test_saved_with_the_model(tmp_path):
    x, y = bars(n=32)
    cvae = small_cvae(importance_samples=3)
    cvae.compile(optimizer="adam")
    cvae.fit([x, y], epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "iwae.keras"
    cvae.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.importance_samples == 3
    np.testing.assert_allclose(loaded.predict([x, y], verbose=0), cvae.predict([x, y], verbose=0))
    outputs = _forward(loaded, [x, y])
    assert tuple(outputs["reconstruction"].shape)[0] == 3 * 32


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.slow
def test_mixed_precision_bound_matches_float32(policy):
    x, _ = bars(n=64)
    results = {}
    try:
        for name in ("float32", policy):
            keras.mixed_precision.set_global_policy(name)
            keras.utils.set_random_seed(0)
            vae = small_vae(importance_samples=5, hidden=(64,))
            vae.compile(optimizer="adam")
            results[name] = vae.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
            history = vae.fit(x, epochs=2, batch_size=32, verbose=0).history
            assert np.all(np.isfinite(history["loss"]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    np.testing.assert_allclose(results[policy], results["float32"], rtol=5e-3)

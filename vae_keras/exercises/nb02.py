"""Checks for the exercises of notebook 02 (the VAE loss and the reparameterization trick)."""

import keras
import numpy as np

from vae_keras import distributions
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


def _close(a, b):
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6)


@exercise("02.gaussian_nll")
def gaussian_nll(nll):
    """`nll(x, x_hat, sigma)`: -log N(x; x_hat, sigma^2 I) per image, constant included."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, size=(6, 28, 28, 1))
    x_hat = rng.uniform(0.05, 0.95, size=(6, 28, 28, 1))
    pixels = 28 * 28
    for sigma in (0.3, 2.0):
        likelihood = distributions.Gaussian(sigma)
        reference = -as_array(likelihood.log_prob(x, x_hat))
        without_constant = -as_array(likelihood.log_prob(x, x_hat, constant=False))
        value = as_array(nll(x, x_hat, sigma), f"nll(x, x_hat, sigma={sigma})")
        if value.shape == x.shape:
            raise NotYet(
                "one number per image is expected, and you return one per pixel: how do the "
                "log-densities of independent pixels combine?"
            )
        if _close(value, without_constant):
            raise NotYet(
                f"with sigma = {sigma} yours differs from -log N(x; x_hat, sigma^2 I) by the same "
                "amount for every image: the normalising constant, which a training loss may "
                "leave out, belongs in a log-density"
            )
        if _close(value * pixels, reference) or _close(value * pixels, without_constant):
            raise NotYet(
                "your values are a mean over the pixels; the negative log-likelihood of an "
                "image is not an average"
            )
        if _close(value, -reference):
            raise NotYet("your values have the wrong sign: a negative log-likelihood is asked for")
        expect_close(
            value,
            reference,
            f"not -log N(x; x_hat, sigma^2 I) yet (sigma = {sigma}): is sigma a standard "
            "deviation everywhere, in the weight of the squared error and in the constant?",
            rtol=1e-5,
            atol=1e-4,
        )
    return (
        "matches -vk.distributions.Gaussian(sigma).log_prob(x, x_hat) per image, "
        "for sigma = 0.3 and 2"
    )


@exercise("02.bernoulli_from_logits")
def bernoulli_from_logits(nll):
    """`nll(x, logits)`: -log Bernoulli(x; sigmoid(logits)) summed over pixels, stable."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0.0, 1.0, size=(5, 28, 28, 1))
    x[:2] = np.round(x[:2])  # two binary images, three with grey levels
    moderate = rng.normal(0.0, 2.0, size=x.shape)
    extreme = moderate.copy()
    extreme[:, :4] = 60.0 * np.sign(moderate[:, :4])  # four rows of very confident pixels
    likelihood = distributions.Bernoulli(from_logits=True)
    pixels = 28 * 28
    reference = -as_array(likelihood.log_prob(x, moderate))
    value = as_array(nll(x, moderate), "nll(x, logits)")
    if value.shape == x.shape:
        raise NotYet(
            "one number per image is expected, and you return one per pixel: how do the "
            "log-probabilities of independent pixels combine?"
        )
    if _close(value * pixels, reference):
        raise NotYet(
            "your values are a mean over the pixels, as keras.losses.BinaryCrossentropy "
            "computes; the VAE's reconstruction term is not an average"
        )
    if _close(value, -reference):
        raise NotYet("your values have the wrong sign: a negative log-likelihood is asked for")
    if _close(value, -as_array(likelihood.log_prob(1.0 - x, moderate))):
        raise NotYet("your answer treats the logits as those of 1 - x: which outcome has p?")
    expect_close(
        value,
        reference,
        "not the summed binary cross-entropy yet: the logits are log(p / (1 - p)), not "
        "probabilities",
        rtol=1e-5,
        atol=1e-4,
    )
    value = as_array(nll(x, extreme), "nll(x, logits)")
    reference = -as_array(likelihood.log_prob(x, extreme))
    expect_close(
        value,
        reference,
        "right for moderate logits, but not for very large ones (|logit| = 60): forming "
        "sigmoid(logits) first rounds it to exactly 0 or 1 (or a clipped value) before the "
        "log; write log p and log(1 - p) directly in terms of the logits",
        rtol=1e-5,
        atol=1e-3,
    )
    return (
        "matches -vk.distributions.Bernoulli(from_logits=True).log_prob per image, "
        "for grey and binary pixels and for logits up to 60 in size"
    )


@exercise("02.reparameterize")
def reparameterize(sample):
    """`sample(z_mean, z_log_var, eps)`: z = mu + sigma * eps from the log-variance."""
    rng = np.random.default_rng(5)
    z_mean = rng.normal(0.0, 2.0, size=(32, 4))
    z_log_var = rng.uniform(-6.0, 3.0, size=(32, 4))
    eps = rng.standard_normal((32, 4))
    tensors = [keras.ops.convert_to_tensor(a, "float32") for a in (z_mean, z_log_var, eps)]
    value = as_array(sample(*tensors), "z")  # backend tensors in, as a model gives them
    reference = as_array(distributions.reparameterize(z_mean, z_log_var, eps))
    if _close(value, z_mean + np.exp(z_log_var) * eps):
        raise NotYet(
            "your z spreads around z_mean by the variance; the noise is scaled by the "
            "standard deviation"
        )
    if value.shape == reference.shape and np.allclose(value, z_mean):
        raise NotYet("your z ignores eps: z must be a random draw, with all its randomness in eps")
    expect_close(
        value,
        reference,
        "not the reparameterized draw yet: z = mu + sigma * eps, and z_log_var is log(sigma^2)",
        rtol=1e-5,
        atol=1e-5,
    )
    return (
        "matches vk.distributions.reparameterize on 32 rows, for log-variances from -6 to 3; "
        "its derivatives are then 1 (z_mean) and sigma * eps / 2 (z_log_var)"
    )

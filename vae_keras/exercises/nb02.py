"""Checks for the exercises of notebook 02 (the VAE loss and the reparameterization trick)."""

import numpy as np

from vae_keras import distributions
from vae_keras.exercises._core import as_array, exercise, expect_close, tensors

PER_PIXEL = (
    "one number per image is expected, and you return one per pixel: how do the "
    "log-{} of independent pixels combine?"
)
WRONG_SIGN = "your values have the wrong sign: a negative log-likelihood is asked for"


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
        mean = (
            "your values are a mean over the pixels; the negative log-likelihood of an image "
            "is not an average"
        )
        expect_close(
            nll(x, x_hat, sigma),
            reference,
            f"not -log N(x; x_hat, sigma^2 I) yet (sigma = {sigma}): is sigma a standard "
            "deviation everywhere, in the weight of the squared error and in the constant?",
            rtol=1e-5,
            atol=1e-4,
            what=f"nll(x, x_hat, sigma={sigma})",
            shapes={x.shape: PER_PIXEL.format("densities")},
            mistakes=[
                (
                    without_constant,
                    f"with sigma = {sigma} yours differs from -log N(x; x_hat, sigma^2 I) by the "
                    "same amount for every image: the normalising constant, which a training "
                    "loss may leave out, belongs in a log-density",
                ),
                (reference / pixels, mean),
                (without_constant / pixels, mean),
                (-reference, WRONG_SIGN),
            ],
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
    expect_close(
        nll(x, moderate),
        reference,
        "not the summed binary cross-entropy yet: the logits are log(p / (1 - p)), not "
        "probabilities",
        rtol=1e-5,
        atol=1e-4,
        what="nll(x, logits)",
        shapes={x.shape: PER_PIXEL.format("probabilities")},
        mistakes=[
            (
                reference / pixels,
                "your values are a mean over the pixels, as keras.losses.BinaryCrossentropy "
                "computes; the VAE's reconstruction term is not an average",
            ),
            (-reference, WRONG_SIGN),
            (
                -as_array(likelihood.log_prob(1.0 - x, moderate)),
                "your answer treats the logits as those of 1 - x: which outcome has p?",
            ),
        ],
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
    expect_close(
        sample(*tensors(z_mean, z_log_var, eps)),
        distributions.reparameterize(z_mean, z_log_var, eps),
        "not the reparameterized draw yet: z = mu + sigma * eps, and z_log_var is log(sigma^2)",
        rtol=1e-5,
        atol=1e-5,
        what="z",
        mistakes=[
            (
                z_mean + np.exp(z_log_var) * eps,
                "your z spreads around z_mean by the variance; the noise is scaled by the "
                "standard deviation",
            ),
            (z_mean, "your z ignores eps: z must be a random draw, with all its randomness in eps"),
        ],
    )
    return (
        "matches vk.distributions.reparameterize on 32 rows, for log-variances from -6 to 3; "
        "its derivatives are then 1 (z_mean) and sigma * eps / 2 (z_log_var)"
    )

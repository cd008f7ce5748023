"""Checks for the exercises of notebook 01 (KL divergence)."""

import numpy as np

from vae_keras import distributions
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


@exercise("01.kl_two_gaussians")
def kl_two_gaussians(kl):
    """`kl(mu_q, sigma_q, mu_p, sigma_p)`: KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)), nats."""
    rng = np.random.default_rng(0)
    mu_q, mu_p = rng.normal(0.0, 2.0, size=(2, 64))
    sigma_q, sigma_p = rng.uniform(0.3, 3.0, size=(2, 64))
    same = as_array(kl(mu_q, sigma_q, mu_q, sigma_q), "kl(q, q)")
    if same.shape == mu_q.shape and np.max(np.abs(same)) > 1e-4:
        raise NotYet("the KL between a distribution and itself is 0; yours is not")
    reference = distributions.kl_divergence(
        mu_q[:, None], 2 * np.log(sigma_q)[:, None], mu_p[:, None], 2 * np.log(sigma_p)[:, None]
    )
    swapped = as_array(kl(mu_p, sigma_p, mu_q, sigma_q), "kl")
    if swapped.shape == mu_q.shape and np.allclose(swapped, reference, rtol=1e-4, atol=1e-5):
        raise NotYet("your function gives KL(p || q): the expectation is taken under q")
    expect_close(
        kl(mu_q, sigma_q, mu_p, sigma_p),
        reference,
        "not the closed form yet: compare one case with a Monte Carlo average of "
        "log q(z) - log p(z) over draws z ~ q (are the sigmas standard deviations, not "
        "variances, everywhere?)",
        rtol=1e-4,
        atol=1e-5,
    )
    return "matches the closed form on 64 random pairs of Gaussians, elementwise"

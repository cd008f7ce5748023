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
    swapped = distributions.kl_divergence(
        mu_p[:, None], 2 * np.log(sigma_p)[:, None], mu_q[:, None], 2 * np.log(sigma_q)[:, None]
    )
    expect_close(
        kl(mu_q, sigma_q, mu_p, sigma_p),
        reference,
        "not the closed form yet: compare one case with a Monte Carlo average of "
        "log q(z) - log p(z) over draws z ~ q (are the sigmas standard deviations, not "
        "variances, everywhere?)",
        mistakes=[(swapped, "your function gives KL(p || q): the expectation is taken under q")],
    )
    return "matches the closed form on 64 random pairs of Gaussians, elementwise"


@exercise("01.kl_to_standard_normal")
def kl_to_standard_normal(kl):
    """`kl(z_mean, z_log_var)`: KL(N(z_mean, diag(exp(z_log_var))) || N(0, I)), one value per row."""
    rng = np.random.default_rng(1)
    z_mean = rng.normal(0.0, 1.5, size=(16, 5))
    z_log_var = rng.uniform(-3.0, 1.5, size=(16, 5))
    zeros = np.zeros((4, 5))
    at_prior = as_array(kl(zeros, zeros), "kl(0, 0)")
    if at_prior.size and np.max(np.abs(at_prior)) > 1e-5:
        raise NotYet(
            "the KL of N(0, I) from N(0, I) is 0, and yours is not: check the constant terms"
        )
    value = as_array(kl(z_mean, z_log_var), "kl")
    reference = as_array(distributions.kl_divergence(z_mean, z_log_var))
    expect_close(
        value,
        reference,
        "not the closed form yet: z_log_var is log(sigma^2), a log-variance; is every "
        "exp() and log() applied to the quantity it should be?",
        shapes={
            z_mean.shape: "one value per row (per example) is expected, and you return one per "
            "latent dimension: how do the KLs of independent dimensions combine?"
        },
        mistakes=[
            (-reference, "your values are negative; a KL divergence never is: check the sign"),
            (
                reference / z_mean.shape[1],
                "your values are the mean over the latent dimensions; the KL of a product of "
                "independent Gaussians is not their average",
            ),
        ],
    )
    return "matches vk.kl_divergence on 16 random (z_mean, z_log_var) rows of 5 dimensions"


def _diagonal_gaussian_log_density(mean, log_var):
    def log_density(z):
        z = np.asarray(z, dtype="float64")
        squared = np.square(z - mean) * np.exp(-log_var)
        return -0.5 * np.sum(squared + log_var + np.log(2.0 * np.pi), axis=-1)

    return log_density


@exercise("01.monte_carlo_kl")
def monte_carlo_kl(estimator):
    """`estimator(log_q, log_p, z) -> (estimate, standard_error)`, checked statistically."""
    rng = np.random.default_rng(2)
    mu_q, mu_p = np.array([0.5, -1.0, 1.0]), np.array([0.0, 0.5, 0.0])
    log_var_q, log_var_p = np.array([-1.0, 0.3, 0.0]), np.array([0.5, 0.0, -0.5])
    log_q = _diagonal_gaussian_log_density(mu_q, log_var_q)
    log_p = _diagonal_gaussian_log_density(mu_p, log_var_p)
    truth = float(
        as_array(
            distributions.kl_divergence(mu_q[None], log_var_q[None], mu_p[None], log_var_p[None])
        )[0]
    )
    runs, n = 400, 64
    estimates, errors = [], []
    for _ in range(runs):
        z = mu_q + np.exp(0.5 * log_var_q) * rng.standard_normal((n, 3))
        result = estimator(log_q, log_p, z)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise NotYet(
                f"return two numbers, (estimate, standard_error); yours returned {result!r:.80}"
            )
        estimate, error = (as_array(v, what) for v, what in zip(result, ("estimate", "error")))
        if estimate.shape != () or error.shape != ():
            raise NotYet(
                "the estimate and its standard error should be single numbers; "
                f"yours have shapes {estimate.shape} and {error.shape}"
            )
        estimates.append(float(estimate))
        errors.append(float(error))
    estimates, errors = np.array(estimates), np.array(errors)
    spread = estimates.std()
    if abs(estimates.mean() + truth) < 5 * spread / np.sqrt(runs):
        raise NotYet("your estimates average to -KL(q || p): which log-density comes first?")
    if abs(estimates.mean() - truth) > 5 * spread / np.sqrt(runs):
        raise NotYet(
            "over 400 independent runs your estimates do not average to KL(q || p); the "
            "KL is the expectation, under q, of log q(z) - log p(z)"
        )
    ratio = errors.mean() / spread
    if ratio > 1.3:
        raise NotYet(
            f"your standard error is {ratio:.1f} times the spread of the estimates over "
            "independent runs: it is the uncertainty of the average, which shrinks as the "
            "number of samples grows"
        )
    if ratio < 0.77:
        raise NotYet(
            f"your standard error is only {ratio:.2f} times the spread of the estimates over "
            "independent runs: check how it scales with the number of samples"
        )
    return (
        f"unbiased over {runs} runs of {n} samples, and the standard error matches the "
        f"spread of the estimates ({ratio:.2f} times it)"
    )

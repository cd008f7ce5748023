"""Typical wrong answers to the exercises of notebook 01: each is a whole solution cell."""

WRONG = {
    "01.kl_two_gaussians": [
        # the reversed divergence, KL(p || q)
        """def kl_two_gaussians(mu_q, sigma_q, mu_p, sigma_p):
    return np.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_q - mu_p) ** 2) / (2 * sigma_q**2) - 0.5
""",
        # variances where standard deviations belong
        """def kl_two_gaussians(mu_q, sigma_q, mu_p, sigma_p):
    return np.log(sigma_p / sigma_q) + (sigma_q + (mu_q - mu_p) ** 2) / (2 * sigma_p) - 0.5
""",
        # the constant -1/2 forgotten
        """def kl_two_gaussians(mu_q, sigma_q, mu_p, sigma_p):
    return np.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2)
""",
    ],
    "01.kl_to_standard_normal": [
        # one value per latent dimension: the sum is missing
        """def kl_to_standard_normal(z_mean, z_log_var):
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)
""",
        # averaged over the latent dimensions
        """def kl_to_standard_normal(z_mean, z_log_var):
    return 0.5 * ops.mean(ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)
""",
        # the -1 forgotten
        """def kl_to_standard_normal(z_mean, z_log_var):
    return 0.5 * ops.sum(ops.square(z_mean) + ops.exp(z_log_var) - z_log_var, axis=-1)
""",
        # the log-variance read as a log standard deviation
        """def kl_to_standard_normal(z_mean, z_log_var):
    return 0.5 * ops.sum(ops.square(z_mean) + ops.exp(2 * z_log_var) - 1.0 - 2 * z_log_var, axis=-1)
""",
        # the sign of the whole expression
        """def kl_to_standard_normal(z_mean, z_log_var):
    return -0.5 * ops.sum(ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)
""",
    ],
    "01.monte_carlo_kl": [
        # the standard deviation of one term, not of the average
        """def monte_carlo_kl(log_q, log_p, z):
    terms = log_q(z) - log_p(z)
    return np.mean(terms), np.std(terms)
""",
        # divided by n instead of its square root
        """def monte_carlo_kl(log_q, log_p, z):
    terms = log_q(z) - log_p(z)
    return np.mean(terms), np.std(terms) / len(terms)
""",
        # the log-ratio the wrong way round
        """def monte_carlo_kl(log_q, log_p, z):
    terms = log_p(z) - log_q(z)
    return np.mean(terms), np.std(terms) / np.sqrt(len(terms))
""",
        # the estimate alone
        """def monte_carlo_kl(log_q, log_p, z):
    return np.mean(log_q(z) - log_p(z))
""",
    ],
}

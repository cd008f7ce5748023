"""Typical wrong answers to the exercises of notebook 02: each is a whole solution cell."""

WRONG = {
    "02.gaussian_nll": [
        # the constant left out, as the training loss does
        """def gaussian_nll(x, x_hat, sigma):
    return ops.sum(ops.square(x - x_hat), axis=(1, 2, 3)) / (2 * sigma**2)
""",
        # averaged over the pixels
        """def gaussian_nll(x, x_hat, sigma):
    per_pixel = ops.square(x - x_hat) / (2 * sigma**2) + 0.5 * np.log(2 * np.pi * sigma**2)
    return ops.mean(per_pixel, axis=(1, 2, 3))
""",
        # sigma used as a variance
        """def gaussian_nll(x, x_hat, sigma):
    pixels = np.prod(x.shape[1:])
    squared_error = ops.sum(ops.square(x - x_hat), axis=(1, 2, 3))
    return squared_error / (2 * sigma) + 0.5 * pixels * np.log(2 * np.pi * sigma)
""",
        # one value per pixel
        """def gaussian_nll(x, x_hat, sigma):
    return ops.square(x - x_hat) / (2 * sigma**2) + 0.5 * np.log(2 * np.pi * sigma**2)
""",
    ],
    "02.bernoulli_from_logits": [
        # the sigmoid first: infinite or wrong for confident pixels
        """def bernoulli_nll_from_logits(x, logits):
    p = ops.sigmoid(logits)
    return -ops.sum(x * ops.log(p) + (1 - x) * ops.log(1 - p), axis=(1, 2, 3))
""",
        # Keras' clipped binary cross-entropy, averaged over pixels
        """def bernoulli_nll_from_logits(x, logits):
    return ops.mean(keras.losses.binary_crossentropy(x, logits, from_logits=True), axis=(1, 2))
""",
        # the logits used as probabilities
        """def bernoulli_nll_from_logits(x, logits):
    p = ops.clip(logits, 1e-7, 1 - 1e-7)
    return -ops.sum(x * ops.log(p) + (1 - x) * ops.log(1 - p), axis=(1, 2, 3))
""",
        # x and 1 - x swapped
        """def bernoulli_nll_from_logits(x, logits):
    return ops.sum(ops.softplus(logits) - (1 - x) * logits, axis=(1, 2, 3))
""",
    ],
    "02.reparameterize": [
        # the noise scaled by the variance
        """def reparameterize(z_mean, z_log_var, eps):
    return z_mean + ops.exp(z_log_var) * eps
""",
        # the log-variance read as a log standard deviation
        """def reparameterize(z_mean, z_log_var, eps):
    return z_mean + ops.exp(z_log_var) ** 2 * eps
""",
        # the mean alone
        """def reparameterize(z_mean, z_log_var, eps):
    return z_mean
""",
        # the log-variance as the scale
        """def reparameterize(z_mean, z_log_var, eps):
    return z_mean + z_log_var * eps
""",
    ],
}

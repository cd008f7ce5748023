"""Typical wrong answers to the exercises of notebook 05: each is a whole solution cell."""

WRONG = {
    "05.importance_weighted_bound": [
        # the mean of the log-weights: the ELBO, not L_K
        """def importance_weighted_bound(log_w):
    return np.mean(log_w, axis=1)
""",
        # log of the mean of exp: right in exact arithmetic, -inf once exp() underflows
        """def importance_weighted_bound(log_w):
    return np.log(np.mean(np.exp(log_w), axis=1))
""",
        # a log-sum-exp without the 1/K
        """def importance_weighted_bound(log_w):
    top = np.max(log_w, axis=1, keepdims=True)
    return top[:, 0] + np.log(np.sum(np.exp(log_w - top), axis=1))
""",
        # over the wrong axis: one value per sample index
        """def importance_weighted_bound(log_w):
    top = np.max(log_w, axis=0, keepdims=True)
    return top[0] + np.log(np.mean(np.exp(log_w - top), axis=0))
""",
        # the shift subtracted but not added back
        """def importance_weighted_bound(log_w):
    top = np.max(log_w, axis=1, keepdims=True)
    return np.log(np.mean(np.exp(log_w - top), axis=1))
""",
    ],
    "05.binarize": [
        # thresholding at 1/2: binary, but not a draw
        """def binarize(images, rng):
    return (images > 0.5).astype("float32")
""",
        # the comparison the wrong way round: ones with probability 1 - x
        """def binarize(images, rng):
    return (rng.random(images.shape) > images).astype("float32")
""",
        # a noisy grey level, not a binary image
        """def binarize(images, rng):
    return np.clip(images + 0.1 * rng.standard_normal(images.shape), 0, 1)
""",
    ],
    "05.cb_log_normalizer": [
        # the log of the Bernoulli's integral, 1/C, instead of C
        """def cb_log_normalizer(lam):
    t = 1 - 2 * lam
    with np.errstate(invalid="ignore", divide="ignore"):
        closed = np.log(t / (2 * np.arctanh(t)))
    return np.where(lam == 0.5, -np.log(2.0), closed)
""",
        # the factor 2 forgotten
        """def cb_log_normalizer(lam):
    t = 1 - 2 * lam
    with np.errstate(invalid="ignore", divide="ignore"):
        closed = np.log(np.arctanh(t) / t)
    return np.where(lam == 0.5, 0.0, closed)
""",
        # the closed form alone: NaN at lambda = 1/2
        """def cb_log_normalizer(lam):
    t = 1 - 2 * lam
    return np.log(2 * np.arctanh(t) / t)
""",
        # C itself, not its log
        """def cb_log_normalizer(lam):
    t = 1 - 2 * lam
    with np.errstate(invalid="ignore", divide="ignore"):
        closed = 2 * np.arctanh(t) / t
    return np.where(lam == 0.5, 2.0, closed)
""",
    ],
}

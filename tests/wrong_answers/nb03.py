"""Typical wrong answers to the exercises of notebook 03: each is a whole solution cell."""

WRONG = {
    "03.bernoulli_reconstruction": [
        # the mean over pixels instead of the sum
        """def bernoulli_reconstruction(x, probs):
    terms = x * ops.log(probs) + (1.0 - x) * ops.log(1.0 - probs)
    return -ops.mean(ops.reshape(terms, (ops.shape(x)[0], -1)), axis=-1)
""",
        # the log-likelihood, not its negative
        """def bernoulli_reconstruction(x, probs):
    terms = x * ops.log(probs) + (1.0 - x) * ops.log(1.0 - probs)
    return ops.sum(ops.reshape(terms, (ops.shape(x)[0], -1)), axis=-1)
""",
        # the (1 - x) log(1 - p) part forgotten
        """def bernoulli_reconstruction(x, probs):
    terms = x * ops.log(probs)
    return -ops.sum(ops.reshape(terms, (ops.shape(x)[0], -1)), axis=-1)
""",
    ],
    "03.decode_grid": [
        # one decoder call per grid point
        """def decode_grid(decoder, values):
    rows = [[decoder.predict(np.array([[a, b]], "float32"), verbose=0)[0] for a in values] for b in values]
    return np.array(rows)
""",
        # the grid transposed
        """def decode_grid(decoder, values):
    n = len(values)
    z1, z2 = np.meshgrid(values, values, indexing="ij")
    codes = np.stack([z1.ravel(), z2.ravel()], axis=1).astype("float32")
    return np.asarray(decoder.predict(codes, verbose=0)).reshape(n, n, 28, 28, 1)
""",
    ],
}

"""Typical wrong answers to the exercises of notebook 04: each is a whole solution cell."""

WRONG = {
    "04.decoder_input": [
        # the label as one number
        """def decoder_input(z, labels, num_classes):
    return ops.concatenate([z, ops.cast(ops.reshape(labels, (-1, 1)), z.dtype)], axis=-1)
""",
        # the label first
        """def decoder_input(z, labels, num_classes):
    return ops.concatenate([ops.one_hot(labels, num_classes), z], axis=-1)
""",
    ],
    "04.kl_learned_prior": [
        # the prior ignored: KL to N(0, I)
        """def kl_learned_prior(mu_q, log_var_q, mu_p, log_var_p):
    return 0.5 * ops.sum(ops.square(mu_q) + ops.exp(log_var_q) - 1.0 - log_var_q, axis=-1)
""",
        # the reversed divergence
        """def kl_learned_prior(mu_q, log_var_q, mu_p, log_var_p):
    terms = log_var_q - log_var_p + (ops.exp(log_var_p) + ops.square(mu_p - mu_q)) / ops.exp(log_var_q) - 1.0
    return 0.5 * ops.sum(terms, axis=-1)
""",
        # one value per dimension
        """def kl_learned_prior(mu_q, log_var_q, mu_p, log_var_p):
    return 0.5 * (log_var_p - log_var_q + (ops.exp(log_var_q) + ops.square(mu_q - mu_p)) / ops.exp(log_var_p) - 1.0)
""",
    ],
}

"""Checks for the exercises of notebook 04 (a conditional VAE on MNIST)."""

import numpy as np
from keras import ops

from vae_keras import distributions
from vae_keras.exercises._core import as_array, exercise, expect_close, tensors


@exercise("04.decoder_input")
def decoder_input(build):
    """`build(z, labels, num_classes)`: the CVAE decoder's input, [z, one_hot(labels)] per row."""
    rng = np.random.default_rng(4)
    z = rng.normal(size=(12, 3)).astype("float32")
    labels = rng.integers(0, 10, size=12)
    reference = as_array(ops.concatenate([z, ops.one_hot(labels, 10)], axis=-1))
    expect_close(
        build(z, labels, 10),
        reference,
        "not [z, one-hot label] yet: print your row for label 3 and check where the 1 is",
        rtol=1e-6,
        atol=1e-6,
        what="decoder_input(z, labels, 10)",
        shapes={
            (12, 4): "the label went in as one number; the decoder gets it as a one-hot vector"
        },
        mistakes=[
            (
                ops.concatenate([ops.one_hot(labels, 10), z], axis=-1),
                "the parts are in the other order: z first, then the label",
            )
        ],
    )
    return "[z, one-hot label] for 12 random rows, as keras.ops.one_hot and concatenate give"


@exercise("04.kl_learned_prior")
def kl_learned_prior(kl):
    """`kl(mu_q, log_var_q, mu_p, log_var_p)`: KL of two diagonal Gaussians, one value per row."""
    rng = np.random.default_rng(5)
    mu_q, mu_p = rng.normal(0.0, 1.5, size=(2, 16, 4))
    lv_q, lv_p = rng.uniform(-2.0, 1.0, size=(2, 16, 4))
    reference = as_array(distributions.kl_divergence(mu_q, lv_q, mu_p, lv_p))
    expect_close(
        kl(*tensors(mu_q, lv_q, mu_p, lv_p)),
        reference,
        "not the closed form yet: check each dimension's log-ratio of variances and that "
        "the squared mean difference is divided by the prior's variance",
        what="kl(mu_q, log_var_q, mu_p, log_var_p)",
        shapes={mu_q.shape: "one value per row is expected; you return one per latent dimension"},
        mistakes=[
            (
                distributions.kl_divergence(mu_q, lv_q),
                "your KL is to N(0, I): the prior's mean and variance are not used",
            ),
            (
                distributions.kl_divergence(mu_p, lv_p, mu_q, lv_q),
                "you compute KL(p || q): the expectation is taken under q",
            ),
        ],
    )
    return "matches vk.distributions.kl_divergence with a learned prior on 16 random rows"

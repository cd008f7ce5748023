"""Checks for the exercises of notebook 04 (a conditional VAE on MNIST)."""

import keras
import numpy as np
from keras import ops

from vae_keras import distributions
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


@exercise("04.decoder_input")
def decoder_input(build):
    """`build(z, labels, num_classes)`: the CVAE decoder's input, [z, one_hot(labels)] per row."""
    rng = np.random.default_rng(4)
    z = rng.normal(size=(12, 3)).astype("float32")
    labels = rng.integers(0, 10, size=12)
    reference = as_array(ops.concatenate([z, ops.one_hot(labels, 10)], axis=-1))
    value = as_array(build(z, labels, 10), "decoder_input(z, labels, 10)")
    if value.shape == (12, 4):
        raise NotYet("the label went in as one number; the decoder gets it as a one-hot vector")
    if value.shape == reference.shape:
        swapped = as_array(ops.concatenate([ops.one_hot(labels, 10), z], axis=-1))
        if np.allclose(value, swapped):
            raise NotYet("the parts are in the other order: z first, then the label")
    expect_close(
        value,
        reference,
        "not [z, one-hot label] yet: print your row for label 3 and check where the 1 is",
        rtol=1e-6,
        atol=1e-6,
    )
    return "[z, one-hot label] for 12 random rows, as keras.ops.one_hot and concatenate give"


@exercise("04.kl_learned_prior")
def kl_learned_prior(kl):
    """`kl(mu_q, log_var_q, mu_p, log_var_p)`: KL of two diagonal Gaussians, one value per row."""
    rng = np.random.default_rng(5)
    mu_q, mu_p = rng.normal(0.0, 1.5, size=(2, 16, 4))
    lv_q, lv_p = rng.uniform(-2.0, 1.0, size=(2, 16, 4))
    reference = as_array(distributions.kl_divergence(mu_q, lv_q, mu_p, lv_p))
    tensors = [keras.ops.convert_to_tensor(a, "float32") for a in (mu_q, lv_q, mu_p, lv_p)]
    value = as_array(kl(*tensors), "kl(mu_q, log_var_q, mu_p, log_var_p)")
    if value.shape == mu_q.shape:
        raise NotYet("one value per row is expected; you return one per latent dimension")
    if value.shape == reference.shape:
        to_standard = as_array(distributions.kl_divergence(mu_q, lv_q))
        if np.allclose(value, to_standard, rtol=1e-4, atol=1e-5):
            raise NotYet("your KL is to N(0, I): the prior's mean and variance are not used")
        swapped = as_array(distributions.kl_divergence(mu_p, lv_p, mu_q, lv_q))
        if np.allclose(value, swapped, rtol=1e-4, atol=1e-5):
            raise NotYet("you compute KL(p || q): the expectation is taken under q")
    expect_close(
        value,
        reference,
        "not the closed form yet: check each dimension's log-ratio of variances and that "
        "the squared mean difference is divided by the prior's variance",
        rtol=1e-4,
        atol=1e-5,
    )
    return "matches vk.distributions.kl_divergence with a learned prior on 16 random rows"

"""Checks for the exercises of notebook 05 (evaluating VAEs)."""

import numpy as np

from vae_keras import datasets, distributions, objective
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


@exercise("05.importance_weighted_bound")
def importance_weighted_bound(bound):
    """`bound(log_w) -> L_K`: one L_K per row of an `(n, K)` array of log importance weights."""
    rng = np.random.default_rng(0)
    log_w = rng.normal(-100.0, 4.0, size=(12, 50))
    reference = as_array(objective.log_mean_exp(log_w.T))
    expect_close(
        bound(log_w),
        reference,
        "not L_K yet: it is log((1/K) sum_k w_k) with w_k = exp(log_w[:, k]), per row",
        rtol=1e-6,
        atol=1e-6,
        what="bound(log_w)",
        shapes={
            (log_w.shape[1],): "you return one value per column; each row holds the K "
            "log-weights of one image, and L_K is one number per image"
        },
        mistakes=[
            (
                log_w.mean(axis=1),
                "that is the mean of the log-weights, the ELBO (L_1) estimated with K draws: "
                "L_K takes the log of the mean of the weights themselves",
            ),
            (
                reference + np.log(log_w.shape[1]),
                "your values are too high by log K: it is a mean, not a sum",
            ),
        ],
    )
    far = rng.normal(-3000.0, 30.0, size=(6, 20))  # exp() of these underflows to 0
    with np.errstate(all="ignore"):
        far_value = as_array(bound(far), "bound(log_w) for log-weights near -3000")
    if far_value.shape == (6,) and not np.all(np.isfinite(far_value)):
        raise NotYet(
            "for log-weights near -3000 (a 784-pixel image easily has them) your function "
            "returns -inf or NaN: exp() underflows; subtract each row's largest log-weight "
            "before exponentiating and add it back after the log"
        )
    expect_close(
        far_value,
        as_array(objective.log_mean_exp(far.T)),
        "right for moderate log-weights, not for log-weights near -3000: check how the "
        "shift by the largest log-weight is added back",
        rtol=1e-6,  # float32 references (JAX, torch): 3000 is resolved to about 2e-4
        atol=1e-3,
    )
    return (
        "matches vk.objective.log_mean_exp per row, also for log-weights near -3000, where "
        "exp() underflows"
    )


@exercise("05.binarize")
def binarize(binarize_fn):
    """`binarize_fn(images, rng) -> binary images`, each pixel a Bernoulli(grey level) draw."""
    rng = np.random.default_rng(1)
    grey = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.95, 1.0])
    images = np.tile(grey, (4000, 1))
    draws = as_array(binarize_fn(images, rng), "binarize_fn(images, rng)")
    if draws.shape != images.shape:
        raise NotYet(f"return one binary image per input; shape {draws.shape}, not {images.shape}")
    if not np.all((draws == 0) | (draws == 1)):
        raise NotYet("every pixel of a binarized image is 0 or 1; yours holds other values")
    again = as_array(binarize_fn(images, np.random.default_rng(2)), "a second call")
    if np.array_equal(draws, again):
        raise NotYet(
            "two calls with different generators return the same image: that is a threshold, "
            "not a draw; a grey level of 0.3 should come out 1 in about 30% of the draws"
        )
    mean = draws.mean(axis=0)
    reference = datasets.binarize(images, seed=3).mean(axis=0)
    error = np.sqrt(grey * (1 - grey) / len(images))
    if np.any(np.abs(mean - grey) > 5 * error + 1e-12):
        raise NotYet(
            f"the share of ones per grey level is {np.round(mean, 2).tolist()} for grey levels "
            f"{grey.tolist()}: it should be the grey level itself (E[b] = x)"
        )
    return (
        f"every pixel is 0 or 1, and over {len(images):,} draws the share of ones matches each "
        "grey level, as for vk.datasets.binarize "
        f"(largest difference from it {np.abs(mean - reference).max():.3f})"
    )


@exercise("05.cb_log_normalizer")
def cb_log_normalizer(log_normalizer):
    """`log_normalizer(lam) -> log C(lam)` of the continuous Bernoulli, elementwise."""
    lam = np.concatenate([np.linspace(0.01, 0.99, 49), [0.5, 0.4999, 0.5002, 0.001, 0.999]])
    reference = as_array(distributions.continuous_bernoulli_log_normalizer(lam))
    with np.errstate(all="ignore"):
        value = as_array(log_normalizer(lam), "log_normalizer(lam)")
    if value.shape != lam.shape:
        raise NotYet(f"return one value per lambda: shape {value.shape}, not {lam.shape}")
    fine = lam != 0.5
    if np.allclose(value[fine], -reference[fine], rtol=1e-4, atol=1e-6):
        raise NotYet(
            "your values are log(1/C): the integral of the Bernoulli's lambda^x (1-lambda)^(1-x) "
            "over [0, 1] is 1/C, and C is what multiplies it to a density"
        )
    if np.allclose(value[fine], reference[fine] - np.log(2.0), rtol=1e-4, atol=1e-6):
        raise NotYet("your values are low by log 2 everywhere: compare with C(1/2) = 2")
    if not np.isfinite(value[lam == 0.5]).all():
        raise NotYet(
            "right away from 1/2, but at lambda = 1/2 the closed form is 0/0: give that point "
            "its limit separately (np.where, under np.errstate, keeps the array computation)"
        )
    expect_close(
        value,
        reference,
        "not log C(lambda) yet: C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda); is the "
        "logarithm taken of C itself?",
        rtol=1e-4,
        atol=1e-5,
    )
    return (
        "matches vk.distributions.continuous_bernoulli_log_normalizer on 54 values of lambda, "
        "1/2 included"
    )

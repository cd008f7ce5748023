"""Checks for the exercises of notebook 07 (completing a digit)."""

import numpy as np

from vae_keras import distributions, objective
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


def _pair(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise NotYet(f"{what} must return a pair; it returned {type(result).__name__}")
    return result


def _binary_images(rng, n, height, width):
    return (rng.random((n, height, width, 1)) < 0.4).astype("float32")


@exercise("07.hide_left_half")
def hide_left_half(function):
    """`function(images) -> (condition, mask)`: the left half hidden, as the notebook's `task`."""
    rng = np.random.default_rng(7)
    for height, width in ((28, 28), (10, 12)):
        images = _binary_images(rng, 5, height, width)
        condition, mask = _pair(function(images.copy()), "your function")
        condition, mask = as_array(condition, "the condition"), as_array(mask, "the mask")
        if mask.shape != images.shape:
            raise NotYet(
                f"the mask has shape {mask.shape}; vk.CVAE wants one mask per image, of the "
                f"images' shape {images.shape}"
            )
        if condition.shape != images.shape:
            raise NotYet(f"the condition has shape {condition.shape}; expected {images.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise NotYet("the mask should hold only 0 (visible) and 1 (to be generated)")
        hidden = np.zeros(images.shape, "float64")
        hidden[:, :, : width // 2] = 1.0
        if np.array_equal(mask, 1.0 - hidden):
            raise NotYet(
                "your mask marks the right half, the visible one: in `[images, condition, mask]` "
                "a 1 means 'score this pixel', and the scored pixels are the ones the model "
                "generates"
            )
        if not np.array_equal(mask, hidden):
            raise NotYet(
                f"the mask is not 1 on exactly the left half of each image (the first "
                f"width // 2 columns; checked on {height} x {width} images too)"
            )
        if np.any(condition[hidden == 0] != images[hidden == 0]):
            raise NotYet("the condition should keep the visible pixels as they are in the image")
        if np.all(condition[hidden == 1] == 0):
            raise NotYet(
                "the hidden pixels are 0 in your condition, the same as white paper: mark them "
                "with the value the notebook uses for 'hidden', so the networks can tell them apart"
            )
        expect_close(
            condition[hidden == 1],
            np.full(int(hidden.sum()), -1.0),
            "the hidden pixels of the condition should all be marked as in the notebook's `task`",
            what="the hidden pixels of your condition",
        )
    return "the left half is hidden (-1) and masked (1), on 28 x 28 and 10 x 12 images"


def _gaussians(rng, n, d):
    z_mean, prior_mean = rng.normal(0.0, 1.5, size=(2, n, d))
    z_log_var, prior_log_var = rng.uniform(-2.0, 1.0, size=(2, n, d))
    return z_mean, z_log_var, prior_mean, prior_log_var


@exercise("07.conditional_log_weight")
def conditional_log_weight(function):
    """`function(log_px, z, z_mean, z_log_var, prior_mean, prior_log_var)`: one log-weight per row."""
    rng = np.random.default_rng(70)
    n, d = 64, 5
    z_mean, z_log_var, prior_mean, prior_log_var = _gaussians(rng, n, d)
    epsilon = rng.standard_normal((n, d))
    z = z_mean + np.exp(0.5 * z_log_var) * epsilon
    log_px = -rng.uniform(20.0, 120.0, size=n)
    ratio = as_array(
        distributions.log_prior_ratio(z_mean, z_log_var, epsilon, prior_mean, prior_log_var)
    )
    reference = log_px + ratio
    value = as_array(
        function(log_px, z, z_mean, z_log_var, prior_mean, prior_log_var), "your function's result"
    )
    if value.shape != reference.shape:
        raise NotYet(
            f"your function returns shape {value.shape}; expected one log-weight per row, "
            f"shape {reference.shape} (sum over the latent dimensions)"
        )
    constant = 0.5 * d * np.log(2 * np.pi)
    expect_close(
        value,
        reference,
        "not log p(x_H | z, c) + log p(z | c) - log q(z | x, c) yet: check each Gaussian "
        "log-density on its own (the variances are exp(log_var), and each density has its own "
        "mean and variance)",
        mistakes=[
            (
                log_px + as_array(distributions.log_prior_ratio(z_mean, z_log_var, epsilon)),
                "your prior is N(0, I) whatever the condition; this model's prior is p(z | c), "
                "the Gaussian given by prior_mean and prior_log_var",
            ),
            (log_px - ratio, "the weight is p / q, not q / p: check the sign of each log-density"),
            (ratio, "the weight of a draw includes how well it explains the pixels, log_px"),
        ]
        + [
            (
                reference + sign * constant,
                "off by a constant: a normalizing constant is in one of the two Gaussian "
                "log-densities but not in the other",
            )
            for sign in (1, -1)
        ],
        rtol=1e-4,
        atol=1e-4,
    )
    return f"matches the package's importance weights with a learned prior on {n} draws"


def _minus_l_k(log_weights):
    return -as_array(objective.log_mean_exp(log_weights.T))


@exercise("07.paired_difference")
def paired_difference(function):
    """`function(log_weights_a, log_weights_b) -> (difference, standard_error)` of -L_K, a - b."""
    rng = np.random.default_rng(700)
    n, k = 60, 300
    difficulty = rng.uniform(700.0, 950.0, size=(n, 1))  # shared by both models, per digit
    log_weights_a = -difficulty + rng.normal(0.0, 3.0, size=(n, k))
    log_weights_b = -difficulty - rng.normal(4.0, 2.0, size=(n, 1)) + rng.normal(0.0, 3.0, (n, k))
    nll_a, nll_b = _minus_l_k(log_weights_a), _minus_l_k(log_weights_b)
    per_digit = nll_a - nll_b
    difference, se = _pair(function(log_weights_a.copy(), log_weights_b.copy()), "your function")
    difference = as_array(difference, "the difference")
    se = as_array(se, "the standard error")
    if difference.shape != () or se.shape != ():
        raise NotYet(
            f"return two numbers (the mean difference and its standard error); received shapes "
            f"{difference.shape} and {se.shape}"
        )
    if not np.isfinite(difference):
        raise NotYet(
            "your difference is not finite: these log-weights are near -800, and exp of them "
            "is 0 in floating point; compute each digit's log-mean-exp without forming the "
            "exponentials directly"
        )
    if np.isclose(difference, -per_digit.mean(), rtol=1e-6):
        raise NotYet("your difference has the wrong sign: the exercise asks for a minus b, in -L_K")
    elbo_difference = log_weights_b.mean() - log_weights_a.mean()
    if np.isclose(difference, elbo_difference, rtol=1e-6):
        raise NotYet(
            "that is the difference of negative ELBOs (means of the log-weights): L_K averages "
            "the weights themselves, then takes the log"
        )
    expect_close(
        difference,
        per_digit.mean(),
        "your difference is not the mean over the digits of -L_K(a) - (-L_K(b)), one L_K per "
        "row and model",
        rtol=1e-6,
        atol=1e-6,
        what="your difference",
    )
    reference = per_digit.std(ddof=1) / np.sqrt(n)
    unpaired = np.hypot(nll_a.std(ddof=1), nll_b.std(ddof=1)) / np.sqrt(n)
    if np.isclose(se, unpaired, rtol=0.03):
        raise NotYet(
            "your standard error treats the two models' numbers as independent samples; they "
            "are on the same digits, so the spread that matters is that of the per-digit "
            "differences"
        )
    if np.isclose(se, per_digit.std(ddof=1), rtol=0.03):
        raise NotYet(
            "that is the spread of the differences; the standard error of their mean is smaller"
        )
    expect_close(
        se,
        reference,
        "your standard error is not that of the mean per-digit difference",
        rtol=0.03,
        atol=0.0,
        what="your standard error",
    )
    return (
        f"the mean difference of -L_K over {n} paired rows and its standard error "
        f"({reference:.2f} here, against {unpaired:.2f} if the pairs were ignored)"
    )

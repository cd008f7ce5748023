"""Checks for the exercises of notebook 06 (training pathologies)."""

import keras
import numpy as np

from vae_keras import evaluation, objective, schedules
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


def _encoder_model(scales):
    """A tiny VAE whose posterior means are `x @ diag(scales)` (latent size = len(scales))."""
    from vae_keras.models import VAE

    d = len(scales)
    x_in, z_in = keras.Input((d,)), keras.Input((d,))
    mean = keras.layers.Dense(d, use_bias=False, kernel_initializer="zeros")
    log_var = keras.layers.Dense(d, kernel_initializer="zeros")
    encoder = keras.Model(x_in, [mean(x_in), log_var(x_in)])
    decoder = keras.Model(z_in, keras.layers.Dense(d)(z_in))
    mean.set_weights([np.diag(scales).astype("float32")])
    return VAE(encoder, decoder, likelihood="gaussian")


@exercise("06.active_units")
def active_units(count):
    """`count(z_mean, threshold) -> int`: Burda et al.'s active units from posterior means."""
    rng = np.random.default_rng(0)
    scales = np.array([1.0, 0.3, 0.15, 0.05, 0.02, 0.0])
    model = _encoder_model(scales)
    x = rng.standard_normal((400, len(scales))).astype("float32")
    z_mean = keras.ops.convert_to_numpy(model.encoder(x)[0]).astype("float64")
    results = []
    for threshold in (0.01, 0.001, 0.05):
        value = as_array(count(z_mean, threshold), f"count(z_mean, {threshold})")
        if value.shape != ():
            raise NotYet(
                f"return one number, the count of active dimensions; yours has shape {value.shape}"
            )
        reference = evaluation.active_units(model, x, threshold=threshold)
        std_count = int(np.sum(z_mean.std(axis=0) > threshold))
        if value == std_count != reference:
            raise NotYet(
                "your count compares the standard deviation of the posterior means with the "
                "threshold; Burda et al.'s statistic is a variance"
            )
        if value != reference:
            raise NotYet(
                f"with threshold {threshold} your count is {int(value)}: a dimension is active "
                "when its posterior mean E_q[z_j | x] varies across the examples x by more than "
                "the threshold (which axis of z_mean runs over the examples?)"
            )
        results.append(int(value))
    return (
        "matches vk.evaluation.active_units on a 6-dimensional encoder for thresholds "
        f"0.01, 0.001 and 0.05 ({', '.join(map(str, results))} active)"
    )


@exercise("06.free_bits")
def free_bits(term):
    """`term(kl, free_bits) -> scalar`: the free-bits KL term from per-example, per-dimension KLs."""
    rng = np.random.default_rng(1)
    kl = rng.gamma(0.6, 0.5, size=(32, 8))
    kl[:, :3] *= 0.1  # three dimensions below the floor on average
    lam = 0.25
    reference = float(
        as_array(objective.free_bits_term(keras.ops.mean(kl, axis=0), kl.shape[0], lam))
    )
    value = as_array(term(kl, lam), "term(kl, free_bits)")
    if value.shape != ():
        raise NotYet(
            f"the KL term of the loss is one number for the batch; yours has shape {value.shape}"
        )
    value = float(value)
    per_example = float(np.mean(np.sum(np.maximum(kl, lam), axis=1)))
    if np.isclose(value, per_example, rtol=1e-6):
        raise NotYet(
            "you apply the floor to each example's KL before averaging over the batch; the "
            "floor applies to each dimension's batch-average KL"
        )
    if np.isclose(value, float(np.sum(np.minimum(kl.mean(axis=0), lam))), rtol=1e-6):
        raise NotYet("free bits raise each dimension's KL to at least the floor: min or max?")
    if np.isclose(value, float(np.sum(kl.mean(axis=0))), rtol=1e-6):
        raise NotYet("that is the plain KL term; where does the floor come in?")
    if np.isclose(value * kl.shape[1], reference, rtol=1e-6):
        raise NotYet("averaged over the latent dimensions: the KL term sums them")
    expect_close(
        value,
        reference,
        "not the free-bits term yet: average each dimension's KL over the batch, floor it at "
        "free_bits, and combine the dimensions as the KL term does",
        rtol=1e-6,
        atol=1e-8,
    )
    lifted = float(as_array(term(kl, 0.0), "term(kl, 0.0)"))
    expect_close(
        lifted,
        float(np.sum(kl.mean(axis=0))),
        "with free_bits = 0 the term should be the plain KL term (batch mean of the "
        "per-example sums)",
        rtol=1e-6,
        atol=1e-8,
    )
    return (
        "matches vk.objective.free_bits_term on a batch of 32 with 8 dimensions, 3 below the floor"
    )


@exercise("06.cyclical_beta")
def cyclical_beta(beta):
    """`beta(step, cycle_steps, ratio, num_cycles) -> float`, as `vk.CyclicalAnnealing`."""
    cases = [(100, 0.5, 2), (40, 0.25, 3), (7, 1.0, 1), (30, 0.5, None)]
    for cycle_steps, ratio, num_cycles in cases:
        reference = schedules.CyclicalAnnealing(cycle_steps, ratio=ratio, num_cycles=num_cycles)
        steps = range(0, 4 * cycle_steps + 3)
        ours = np.array([float(as_array(beta(s, cycle_steps, ratio, num_cycles))) for s in steps])
        theirs = np.array([float(as_array(reference(s))) for s in steps])
        bad = np.flatnonzero(~np.isclose(ours, theirs, rtol=1e-5, atol=1e-6))
        if bad.size == 0:
            continue
        step = int(bad[0])
        if np.any(ours > 1 + 1e-6):
            raise NotYet("beta climbs above 1: after its rise it stays at 1 until the cycle ends")
        if num_cycles is not None and step >= num_cycles * cycle_steps:
            raise NotYet(
                f"with num_cycles={num_cycles} and cycle_steps={cycle_steps}, beta should stay "
                f"at 1 from step {num_cycles * cycle_steps} on; yours is {ours[step]:.3g} at "
                f"step {step}"
            )
        raise NotYet(
            f"with cycle_steps={cycle_steps}, ratio={ratio}: beta({step}) should be "
            f"{theirs[step]:.3g}, yours is {ours[step]:.3g}; each cycle starts at 0 and rises "
            "linearly over the first ratio * cycle_steps steps"
        )
    return (
        "matches vk.CyclicalAnnealing step by step for four schedules, with and without num_cycles"
    )

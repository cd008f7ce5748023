"""Typical wrong answers to the exercises of notebook 06: each is a whole solution cell."""

WRONG = {
    "06.active_units": [
        # the standard deviation compared with the threshold, not the variance
        """def active_units(z_mean, threshold=0.01):
    return int(np.sum(np.std(z_mean, axis=0) > threshold))
""",
        # the variance over the dimensions of each example, not over the examples
        """def active_units(z_mean, threshold=0.01):
    return int(np.sum(np.var(z_mean, axis=1) > threshold))
""",
        # the mean of the posterior means, not their spread
        """def active_units(z_mean, threshold=0.01):
    return int(np.sum(np.abs(np.mean(z_mean, axis=0)) > threshold))
""",
    ],
    "06.free_bits": [
        # the floor applied per example, before the batch average
        """def free_bits_term(kl, free_bits):
    return np.mean(np.sum(np.maximum(kl, free_bits), axis=1))
""",
        # min instead of max
        """def free_bits_term(kl, free_bits):
    return np.sum(np.minimum(np.mean(kl, axis=0), free_bits))
""",
        # averaged over the dimensions
        """def free_bits_term(kl, free_bits):
    return np.mean(np.maximum(np.mean(kl, axis=0), free_bits))
""",
        # the batch summed, not averaged
        """def free_bits_term(kl, free_bits):
    return np.sum(np.maximum(np.sum(kl, axis=0), free_bits))
""",
    ],
    "06.cyclical_beta": [
        # no clip: beta keeps rising past 1 within the cycle
        """def cyclical_beta(step, cycle_steps, ratio=0.5, num_cycles=None):
    if num_cycles is not None and step >= num_cycles * cycle_steps:
        return 1.0
    return (step % cycle_steps) / (ratio * cycle_steps)
""",
        # num_cycles ignored: the cycles never stop
        """def cyclical_beta(step, cycle_steps, ratio=0.5, num_cycles=None):
    return min(1.0, (step % cycle_steps) / (ratio * cycle_steps))
""",
        # ratio ignored: the rise takes the whole cycle
        """def cyclical_beta(step, cycle_steps, ratio=0.5, num_cycles=None):
    if num_cycles is not None and step >= num_cycles * cycle_steps:
        return 1.0
    return (step % cycle_steps) / cycle_steps
""",
        # a plain warm-up: one ramp, no restarts
        """def cyclical_beta(step, cycle_steps, ratio=0.5, num_cycles=None):
    return min(1.0, step / (ratio * cycle_steps))
""",
    ],
}

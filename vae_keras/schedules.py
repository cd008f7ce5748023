"""Schedules for the KL weight beta: linear warm-up and cyclical annealing.

Both are `keras.optimizers.schedules.LearningRateSchedule` subclasses, the same
serializable step -> value objects Keras takes as a learning rate, so any Keras
schedule (`PiecewiseConstantDecay`, `PolynomialDecay`, ...) can be passed as a
model's `beta` too. `VAE` and `CVAE` evaluate the schedule at their own training
step counter inside the compiled step, so beta changes from one step to the next
even with `steps_per_execution > 1`, under XLA and on every backend.

Why schedule beta at all: early in training the decoder is poor, the cheapest
way to lower the loss is to push every q(z|x) onto the prior, and once the KL
term is zero the decoder learns to ignore z ("posterior collapse"). Starting
with beta near 0 lets the encoder put information into z first (Bowman et al.,
2016, "Generating Sentences from a Continuous Space"; Sonderby et al., 2016,
"Ladder Variational Autoencoders"). Notebook 05 shows the effect.
"""

import keras
from keras import ops

from vae_keras import _validation

__all__ = ["LinearWarmup", "CyclicalAnnealing"]


@keras.saving.register_keras_serializable(package="vae_keras")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """KL warm-up: beta rises linearly from `start` to `end`, then stays at `end`.

    `beta(step) = start + (end - start) * clip((step - delay) / warmup_steps, 0, 1)`,
    with `step` counting training steps from 0 (Bowman et al., 2016; Sonderby et
    al., 2016).

    Args:
        warmup_steps: Number of training steps over which beta rises; positive.
        start: Beta before and at the beginning of the warm-up (default 0).
        end: Beta after the warm-up (default 1, the true ELBO).
        delay: Steps to hold `start` before the rise begins (default 0).

    Example:

    >>> import vae_keras as vk
    >>> warmup = vk.LinearWarmup(warmup_steps=100)
    >>> [round(float(warmup(step)), 2) for step in (0, 50, 100, 1000)]
    [0.0, 0.5, 1.0, 1.0]

    Pass it as the model's beta:
    `vk.VAE(encoder, decoder, beta=vk.LinearWarmup(2000))`.
    """

    def __init__(self, warmup_steps, start=0.0, end=1.0, delay=0):
        self.warmup_steps = _validation.integer(warmup_steps, "warmup_steps", "LinearWarmup")
        self.start = _validation.number(start, "start", "LinearWarmup", non_negative=True)
        self.end = _validation.number(end, "end", "LinearWarmup", non_negative=True)
        self.delay = _validation.integer(delay, "delay", "LinearWarmup", minimum=0)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.clip((step - self.delay) / self.warmup_steps, 0.0, 1.0)
        return self.start + (self.end - self.start) * progress

    def get_config(self):
        return {key: getattr(self, key) for key in ("warmup_steps", "start", "end", "delay")}


@keras.saving.register_keras_serializable(package="vae_keras")
class CyclicalAnnealing(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical annealing of beta (Fu et al., 2019, NAACL, "Cyclical Annealing Schedule").

    Training is cut into cycles of `cycle_steps` steps. In each cycle beta rises
    linearly from `start` to `end` over the first `ratio * cycle_steps` steps and
    stays at `end` for the rest. After `num_cycles` cycles (if given) beta stays
    at `end`. Each restart lets the encoder re-learn to use z with the KL
    pressure lifted, which the paper shows reduces posterior collapse.

    Args:
        cycle_steps: Length of one cycle in training steps; positive.
        ratio: Fraction of each cycle spent rising, in (0, 1] (the paper uses 0.5).
        start: Beta at the start of each cycle (default 0).
        end: Beta at the top of each cycle (default 1).
        num_cycles: Number of cycles before beta stays at `end`; `None` cycles forever.

    Example:

    >>> import vae_keras as vk
    >>> cyclical = vk.CyclicalAnnealing(cycle_steps=100, ratio=0.5, num_cycles=2)
    >>> [round(float(cyclical(step)), 2) for step in (0, 25, 50, 99, 100, 125, 250)]
    [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0]
    """

    def __init__(self, cycle_steps, ratio=0.5, start=0.0, end=1.0, num_cycles=None):
        where = "CyclicalAnnealing"
        self.cycle_steps = _validation.integer(cycle_steps, "cycle_steps", where)
        self.ratio = _validation.number(ratio, "ratio", where, positive=True)
        if self.ratio > 1:
            raise ValueError(f"{where}: ratio must lie in (0, 1]; received ratio={ratio!r}")
        self.start = _validation.number(start, "start", where, non_negative=True)
        self.end = _validation.number(end, "end", where, non_negative=True)
        self.num_cycles = _validation.integer(num_cycles, "num_cycles", where, optional=True)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        position = ops.mod(step, float(self.cycle_steps))
        progress = ops.clip(position / (self.ratio * self.cycle_steps), 0.0, 1.0)
        if self.num_cycles is not None:
            finished = ops.greater_equal(step, float(self.num_cycles * self.cycle_steps))
            progress = ops.where(finished, 1.0, progress)
        return self.start + (self.end - self.start) * progress

    def get_config(self):
        keys = ("cycle_steps", "ratio", "start", "end", "num_cycles")
        return {key: getattr(self, key) for key in keys}

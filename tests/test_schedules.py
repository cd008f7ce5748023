import keras
import numpy as np
import pytest
from keras import ops

import vae_keras as vk


def _values(schedule, steps):
    return np.array([float(ops.convert_to_numpy(schedule(step))) for step in steps])


def test_linear_warmup_values():
    warmup = vk.LinearWarmup(warmup_steps=10, start=0.2, end=1.2, delay=5)
    np.testing.assert_allclose(
        _values(warmup, [0, 5, 10, 15, 100]), [0.2, 0.2, 0.7, 1.2, 1.2], rtol=1e-6
    )


def test_cyclical_annealing_values():
    cyclical = vk.CyclicalAnnealing(cycle_steps=8, ratio=0.25, num_cycles=2)
    expected = [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(_values(cyclical, [0, 1, 2, 7, 8, 9, 10, 15, 16]), expected)
    forever = vk.CyclicalAnnealing(cycle_steps=8, ratio=0.25)
    assert float(ops.convert_to_numpy(forever(16))) == 0.0


def test_schedules_accept_a_step_tensor_and_serialize():
    for schedule in (
        vk.LinearWarmup(7, start=0.1, end=2.0, delay=3),
        vk.CyclicalAnnealing(9, ratio=0.5, end=3.0, num_cycles=4),
    ):
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(schedule)
        )
        assert type(restored) is type(schedule)
        assert restored.get_config() == schedule.get_config()
        steps = ops.convert_to_tensor(np.int32(5))
        assert float(ops.convert_to_numpy(restored(steps))) == float(
            ops.convert_to_numpy(schedule(5))
        )


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: vk.LinearWarmup(0), "warmup_steps must be a positive integer"),
        (lambda: vk.LinearWarmup(2.5), "warmup_steps must be a positive integer"),
        (lambda: vk.LinearWarmup(10, end=-1), "end must be finite and non-negative"),
        (lambda: vk.LinearWarmup(10, delay=-1), "delay must be a non-negative integer"),
        (lambda: vk.CyclicalAnnealing(10, ratio=0), "ratio must be finite and positive"),
        (lambda: vk.CyclicalAnnealing(10, ratio=1.5), r"ratio must lie in \(0, 1\]"),
        (lambda: vk.CyclicalAnnealing(10, num_cycles=0), "num_cycles must be a positive integer"),
        (lambda: vk.CyclicalAnnealing(10, start=float("nan")), "start must be finite"),
    ],
)
def test_bad_schedule_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()

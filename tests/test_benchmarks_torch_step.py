"""`benchmarks.torch_step`: the phase clock, and the breakdown adding up to the step."""

import time

import keras
import pytest

from benchmarks import torch_step


def test_a_nested_phase_is_taken_out_of_its_parent():
    clock = torch_step._Clock()
    inner = clock.wrap("backward", lambda: time.sleep(0.05))

    def outer():
        time.sleep(0.02)
        inner()

    clock.wrap("forward", outer)()
    assert clock.total["backward"] == pytest.approx(0.05, abs=0.02)
    assert clock.total["forward"] == pytest.approx(0.02, abs=0.02)
    assert clock.total["forward"] < clock.total["backward"]


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="times Keras' PyTorch trainer")
def test_the_pieces_add_up_to_no_more_than_the_step():
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(256, 28, 28, 1)).astype("float32")
    result = torch_step.measure(
        x, torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), rounds=1, compiled=False, log=print
    )
    for name in ("keras", "plain"):
        (row,) = result["rounds"][name]
        pieces = sum(row[p] for p in torch_step.PHASES)
        assert 0 < pieces <= row["step"], (name, row)
        assert row["forward"] > 0 and row["backward"] > 0 and row["optimizer"] > 0, (name, row)

"""benchmarks.literature: a tiny run trains, evaluates and writes its table."""

import json

import numpy as np
import pytest

from benchmarks import literature


def test_burda_networks_shapes():
    encoder, decoder = literature.burda_networks()
    assert [tuple(t.shape) for t in encoder.outputs] == [(None, 50), (None, 50)]
    assert tuple(decoder.output.shape) == (None, 28, 28, 1)
    assert encoder.count_params() == 784 * 200 + 200 + 200 * 200 + 200 + 2 * (200 * 50 + 50)


def test_learning_rate_follows_burda_stages():
    schedule = literature.learning_rate(3, steps_per_epoch=10)
    # stage i lasts 3^i passes: steps [0, 10) at 1e-3, [10, 40) at 1e-3 * 10^(-1/7), then 10^(-2/7)
    for step, stage in [(0, 0), (9, 0), (10, 1), (39, 1), (40, 2), (200, 2)]:
        np.testing.assert_allclose(float(schedule(step)), 1e-3 * 10 ** (-stage / 7), rtol=1e-6)


@pytest.mark.slow
def test_tiny_run_writes_markdown_and_json(tmp_path, monkeypatch):
    def tiny_data(n_train, n_test):
        rng = np.random.default_rng(0)
        return (
            rng.random((60, 28, 28, 1), dtype="float32"),
            rng.random((8, 28, 28, 1), dtype="float32"),
            {"description": "random grey levels"},
        )

    monkeypatch.setattr(literature, "_data", tiny_data)
    settings = {"runs": ((1, 1), (5, 1)), "n_train": None, "n_test": None, "num_samples": 10}
    result = literature.run(settings, log=lambda line: None)
    assert [(r["k"], r["passes"]) for r in result["rows"]] == [(1, 1), (5, 1)]
    assert np.isfinite(result["rows"][1]["minus_vae"])
    text = literature.markdown(result, "python -m benchmarks.literature")
    assert "| IWAE, k = 5 | 1 |" in text and "85.54" in text and "89.78" in text
    json.dumps(result)

"""Data-parallel training on two virtual CPU devices matches one device.

TensorFlow (`tf.distribute.MirroredStrategy`) and JAX
(`keras.distribution.DataParallel`) each run in a fresh process
(tests/distributed/run_tf.py, run_jax.py), because the virtual devices must
be configured before the engine initialises. Each test module run covers the
engine of its own backend, so CI's three passes over tests/ (TensorFlow, JAX,
PyTorch) cover every engine once; on PyTorch, which Keras' distribution API
does not support, the models must refuse a distribution with a clear error.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import vae_keras as vk

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "distributed"))

import scenarios  # noqa: E402

ENGINE = keras.backend.backend()
RUNNERS = {"tensorflow": "run_tf.py", "jax": "run_jax.py"}
GUIDE_PAGE = ROOT / "docs" / "guide" / "several-devices.md"
TIMEOUT = 300

needs_engine = pytest.mark.skipif(
    ENGINE not in RUNNERS, reason=f"Keras has no distribution engine for the {ENGINE} backend"
)


def _environment():
    env = dict(os.environ, KERAS_BACKEND=ENGINE, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(args, cwd):
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if done.returncode != 0:
        pytest.fail(f"{args[0]} failed:\n{done.stderr[-4000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def single_device_model(tmp_path_factory):
    """A VAE trained one epoch on one device, in this process, and saved."""
    keras.utils.set_random_seed(0)
    x, _ = scenarios.make_data(150, False, False)
    model = scenarios.build_model(False, 1.0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    model.fit(x, batch_size=scenarios.BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    path = tmp_path_factory.mktemp("single") / "trained_on_one_device.keras"
    model.save(path)
    return {
        "path": path,
        "evaluate": model.evaluate(x, batch_size=scenarios.BATCH_SIZE, verbose=0, return_dict=True),
        "predict": model.predict(x[:8], verbose=0),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory, single_device_model):
    """Runs the engine's script once; every test below reads its results."""
    out = tmp_path_factory.mktemp(f"distributed_{ENGINE}")
    script = ROOT / "tests" / "distributed" / RUNNERS[ENGINE]
    _run([script, out, single_device_model["path"]], cwd=out)
    return json.loads((out / "results.json").read_text())


def _scenario_names(engine):
    names = list(scenarios.SCENARIOS)
    if engine == "jax":  # batches must split evenly over JAX's devices
        names.remove("vae_odd_weighted")
    return names


@needs_engine
@pytest.mark.slow
def test_two_devices_are_used(results):
    assert results["replicas"] == 2, results["devices"]
    assert set(results["scenarios"]) == set(_scenario_names(ENGINE))


@needs_engine
@pytest.mark.parametrize("name", _scenario_names(ENGINE) if ENGINE in RUNNERS else [])
@pytest.mark.slow
def test_two_devices_match_one_device(results, name):
    one, two = results["scenarios"][name]["one_device"], results["scenarios"][name]["two_devices"]
    # Same start: the two-device run received the one-device run's initial weights.
    for a, b in zip(one["initial_weights"], two["initial_weights"]):
        np.testing.assert_array_equal(a, b)
    # Every step's logs (loss, reconstruction_loss, kl_loss, beta): 5 steps per
    # epoch, the last one partial (22 or 21 examples, split 11/11 or 11/10).
    steps_one, steps_two = np.array(one["steps"]), np.array(two["steps"])
    assert steps_one.shape == steps_two.shape == (10, 4)
    # Keras' TensorFlow trainer hands `on_train_batch_end` the mean over replicas of
    # each replica's running averages (`reduce_per_replica(..., "mean")`), which is the
    # global average only while the replicas have seen equally many examples. After a
    # last batch split 11/10, with sample weights, that batch's logs differ from one
    # device's by up to 3.2e-4 relative (see the README). The epoch's logs (`history`)
    # and the trackers, read across replicas, are exact; so are the weights (below).
    uneven_weighted = ENGINE == "tensorflow" and name == "vae_odd_weighted"
    last = np.arange(len(steps_one)) % 5 == 4
    np.testing.assert_allclose(steps_two[~last], steps_one[~last], rtol=5e-5)
    np.testing.assert_allclose(
        steps_two[last], steps_one[last], rtol=1e-3 if uneven_weighted else 5e-5
    )
    for key, values in one["history"].items():
        np.testing.assert_allclose(two["history"][key], values, rtol=5e-5, err_msg=key)
    for key, value in one["tracked"].items():
        np.testing.assert_allclose(two["tracked"][key], value, rtol=5e-5, err_msg=key)
    assert one["training_steps"] == two["training_steps"] == 10
    if scenarios.SCENARIOS[name][4]:  # free bits: the floor binds, loss > recon + KL
        assert np.any(steps_one[:, 0] > steps_one[:, 1] + steps_one[:, 2] + 1e-3)
    # Plain SGD, so the weights move by exactly lr * gradient: a gradient summed
    # over replicas without scaling (twice too large) would move them twice as far.
    moved = max(
        np.max(np.abs(np.array(w) - np.array(w0)))
        for w, w0 in zip(one["weights"][2:], one["initial_weights"][2:])
    )
    assert moved > 1e-3
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


@needs_engine
@pytest.mark.slow
def test_beta_schedule_per_step(results):
    warmup = vk.LinearWarmup(warmup_steps=7, start=0.1)
    expected = [float(warmup(step)) for step in range(10)]
    run = results["scenarios"]["cvae_weighted_warmup"]
    for devices in ("one_device", "two_devices"):
        betas = [row[3] for row in run[devices]["steps"]]
        np.testing.assert_allclose(betas, expected, rtol=1e-6, err_msg=devices)


@needs_engine
@pytest.mark.slow
def test_default_compile_under_distribution(results):
    for name, run in results["scenarios"].items():
        two = run["two_devices"]
        assert two["steps_per_execution"] == 1, name
        _, _, _, schedule, free_bits = scenarios.SCENARIOS[name]
        if schedule is None and free_bits == 0:  # then the epoch means add up
            history = two["history"]
            total = np.add(
                history["reconstruction_loss"],
                np.multiply(history["beta"], history["kl_loss"]),
            )
            np.testing.assert_allclose(history["loss"], total, rtol=1e-5, err_msg=name)


@needs_engine
@pytest.mark.slow
def test_distributed_model_loads_on_one_device(results):
    saving = results["saving"]
    model = keras.models.load_model(saving["saved"], safe_mode=True)
    assert isinstance(model, vk.VAE)
    x, _ = scenarios.make_data(150, False, False)
    np.testing.assert_allclose(
        model.predict(x[:8], verbose=0), saving["saved_predict"], rtol=0, atol=1e-6
    )
    history = model.fit(x, batch_size=scenarios.BATCH_SIZE, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@needs_engine
@pytest.mark.slow
def test_one_device_model_loads_distributed(results, single_device_model):
    saving = results["saving"]
    for key, value in single_device_model["evaluate"].items():
        np.testing.assert_allclose(saving["loaded_evaluate"][key], value, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(
        saving["loaded_predict"], single_device_model["predict"], rtol=0, atol=1e-6
    )
    # compile(steps_per_execution="auto") was saved as "auto" and resolved again
    # under the strategy; training went on from the saved step counter.
    assert saving["loaded_steps_per_execution"] == 1
    assert saving["loaded_training_steps"] == 10


def _readme_blocks():
    """The Python blocks of the guide's page on several devices (once the README's section)."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE_PAGE.read_text(), re.S)
    engines = [re.search(r'KERAS_BACKEND"\] = "(\w+)"', block) for block in blocks]
    assert all(engines), "every block of the section sets KERAS_BACKEND"
    return {engine.group(1): block for engine, block in zip(engines, blocks)}


# Run after the README's block, in the same process: it must have trained on two devices.
_README_CHECKS = {
    "tensorflow": """
        assert strategy.num_replicas_in_sync == 2, strategy.extended.worker_devices
    """,
    "jax": """
        assert len(devices) == 2, devices
        assert isinstance(keras.distribution.distribution(), keras.distribution.DataParallel)
    """,
}
_README_PRELUDES = {
    "tensorflow": """
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    """,
    "jax": """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    """,
}


def test_readme_section_has_both_engines():
    assert set(_readme_blocks()) == {"tensorflow", "jax"}


@needs_engine
@pytest.mark.slow
def test_readme_section_runs_on_two_devices(tmp_path):
    block = _readme_blocks()[ENGINE]
    check = """
        import json
        logs = history.history
        json.dump({k: v for k, v in logs.items()}, open("history.json", "w"))
        restored = keras.models.load_model("vae.keras")
    """
    script = "\n".join(
        [
            textwrap.dedent(_README_PRELUDES[ENGINE]),
            block,
            textwrap.dedent(_README_CHECKS[ENGINE]),
            textwrap.dedent(check),
        ]
    )
    (tmp_path / "readme_block.py").write_text(script)
    _run([tmp_path / "readme_block.py"], cwd=tmp_path)
    logs = json.loads((tmp_path / "history.json").read_text())
    total = np.add(logs["reconstruction_loss"], np.multiply(logs["beta"], logs["kl_loss"]))
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)


@pytest.mark.skipif(ENGINE == "jax", reason="Keras' distribution API is JAX's: see the JAX tests")
@pytest.mark.parametrize("conditional", [False, True], ids=["VAE", "CVAE"])
def test_keras_distribution_is_refused_where_the_backend_ignores_it(conditional):
    refusal = "PyTorch backend has no support" if ENGINE == "torch" else "trainer ignores it"
    model = scenarios.build_model(conditional, 1.0)
    model.compile(optimizer="adam")  # without a distribution: as always
    distribution = keras.distribution.DataParallel(devices=["cpu:0"])
    try:
        keras.distribution.set_distribution(distribution)
        with pytest.raises(ValueError, match=refusal):
            model.compile(optimizer="adam")
    finally:
        keras.distribution.set_distribution(None)
    with distribution.scope():
        with pytest.raises(ValueError, match="received distribution=DataParallel"):
            scenarios.build_model(conditional, 1.0).compile(optimizer="adam")
    assert keras.distribution.distribution() is None

import keras
import numpy as np
import pytest
from keras import ops

import vae_keras as vk

N = 200_000


def _moments(draws):
    draws = ops.convert_to_numpy(draws)
    return draws.mean(axis=0), draws.var(axis=0)


def _check_moments(draws, mean, var):
    """Sample mean and variance within 5 standard errors of the truth."""
    got_mean, got_var = _moments(draws)
    n = draws.shape[0]
    np.testing.assert_array_less(np.abs(got_mean - mean), 5 * np.sqrt(var / n))
    np.testing.assert_array_less(np.abs(got_var - var), 5 * var * np.sqrt(2 / n))


def _inputs(n=N):
    z_mean = np.tile(np.array([[1.0, -2.0, 0.0]], dtype="float32"), (n, 1))
    z_log_var = np.tile(np.log(np.array([[1.0, 4.0, 0.25]], dtype="float32")), (n, 1))
    return z_mean, z_log_var, np.array([1.0, -2.0, 0.0]), np.array([1.0, 4.0, 0.25])


def test_sampling_layer_mean_and_variance():
    z_mean, z_log_var, mean, var = _inputs()
    _check_moments(vk.Sampling(seed=0)([z_mean, z_log_var]), mean, var)


def test_sampling_function_mean_and_variance():
    z_mean, z_log_var, mean, var = _inputs()
    _check_moments(vk.sampling([z_mean, z_log_var]), mean, var)


def test_sampling_draws_are_independent_across_dimensions():
    z = ops.convert_to_numpy(vk.Sampling(seed=1)([np.zeros((N, 2)), np.zeros((N, 2))]))
    assert abs(np.corrcoef(z.T)[0, 1]) < 5 / np.sqrt(N)


def test_same_seed_same_draws_and_fresh_draws_per_call():
    z_mean, z_log_var, _, _ = _inputs(8)
    first = vk.Sampling(seed=7)
    second = vk.Sampling(seed=7)
    a1, a2 = first([z_mean, z_log_var]), first([z_mean, z_log_var])
    b1 = second([z_mean, z_log_var])
    np.testing.assert_array_equal(ops.convert_to_numpy(a1), ops.convert_to_numpy(b1))
    assert not np.allclose(ops.convert_to_numpy(a1), ops.convert_to_numpy(a2))
    other = vk.Sampling(seed=8)([z_mean, z_log_var])
    assert not np.allclose(ops.convert_to_numpy(a1), ops.convert_to_numpy(other))


def test_zero_variance_returns_the_mean():
    z_mean = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    z = vk.Sampling(seed=0)([z_mean, np.full((4, 3), -80.0, dtype="float32")])
    np.testing.assert_allclose(ops.convert_to_numpy(z), z_mean, atol=1e-6)


def test_config_round_trip():
    layer = vk.Sampling(seed=5, name="sampler")
    config = layer.get_config()
    assert config["seed"] == 5
    clone = vk.Sampling.from_config(config)
    assert clone.seed == 5 and clone.name == "sampler"
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, vk.Sampling) and restored.seed == 5


@pytest.mark.parametrize(
    "bad",
    [
        lambda m, v: [m],
        lambda m, v: [m, v, v],
        lambda m, v: m,
        lambda m, v: [m, v[:, :2]],
    ],
    ids=["one tensor", "three tensors", "not a list", "different widths"],
)
def test_bad_input_names_the_problem(bad):
    m, v = np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match="z_mean"):
        vk.Sampling()(bad(m, v))
    with pytest.raises(ValueError, match="z_mean"):
        vk.sampling(bad(m, v))


def _latent_model(sampler):
    z_mean = keras.Input((2,), name="z_mean")
    z_log_var = keras.Input((2,), name="z_log_var")
    z = sampler([z_mean, z_log_var])
    return keras.Model([z_mean, z_log_var], keras.layers.Dense(3)(z))


def test_sampling_layer_model_saves_and_loads_under_safe_mode(tmp_path):
    model = _latent_model(vk.Sampling(seed=3))
    path = tmp_path / "layer.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    sampler = [layer for layer in restored.layers if isinstance(layer, vk.Sampling)]
    assert len(sampler) == 1 and sampler[0].seed == 3
    zeros = [np.zeros((4, 2), "float32"), np.full((4, 2), -80.0, "float32")]
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(zeros)), ops.convert_to_numpy(model(zeros)), atol=1e-5
    )


def test_lambda_sampling_cannot_be_traced_on_jax(backend):
    if backend != "jax":
        pytest.skip("JAX's tracing limitation; the Lambda works on the other backends")
    # Documented limitation: unseeded random ops cannot be traced by JAX, so
    # Keras cannot even infer the Lambda's output shape. `Sampling` is the fix.
    with pytest.raises(Exception, match="(?i)output|seed|trac"):
        _latent_model(keras.layers.Lambda(vk.sampling))


def test_lambda_sampling_model_saves_and_loads_under_safe_mode(tmp_path, backend):
    if backend == "jax":
        pytest.skip("random draws in a Lambda cannot be traced on JAX (see the test above)")
    model = _latent_model(keras.layers.Lambda(vk.sampling))
    path = tmp_path / "lambda.keras"
    model.save(path)
    restored = keras.models.load_model(path)  # safe_mode=True is the default
    lambdas = [layer for layer in restored.layers if isinstance(layer, keras.layers.Lambda)]
    assert lambdas[0].function is vk.sampling
    zeros = [np.zeros((4, 2), "float32"), np.full((4, 2), -80.0, "float32")]
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(zeros)), ops.convert_to_numpy(model(zeros)), atol=1e-5
    )


def test_python_lambda_is_refused_under_safe_mode(tmp_path, backend):
    """The contrast that motivates `vk.sampling`: an inline lambda cannot be loaded safely."""
    if backend == "jax":
        pytest.skip("random draws in a Lambda cannot be traced on JAX at all (see above)")
    layer = keras.layers.Lambda(lambda args: vk.sampling(args))
    model = _latent_model(layer)
    path = tmp_path / "inline.keras"
    model.save(path)
    with pytest.raises(ValueError, match="(?i)lambda"):
        keras.models.load_model(path)

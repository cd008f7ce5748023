"""Every public entry point as safe as `fit` (issue 16), on every backend.

Each test names the failure it guards against: a Gaussian sigma that was not
saved, `export` after `fit`, the `*_on_batch` methods and streams that trained
on bad data without a word, `generate` with subclassed sub-models, `compile`
arguments that crashed deep inside Keras, malformed builder shapes, and files
saved before the refactor.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import CLASSES, LATENT, bars, small_cvae, small_vae
from keras import layers, ops

import vae_keras as vk

FIXTURES = Path(__file__).parent / "fixtures"


def _numpy(x):
    return ops.convert_to_numpy(x)


def _weights(model):
    return [np.array(_numpy(v)) for v in model.trainable_variables]


def _roundtrip(model, tmp_path, name="model.keras"):
    path = tmp_path / name
    model.save(path)
    return keras.models.load_model(path)  # safe_mode=True


# ------------------------------------------------------------------ sigma
def test_gaussian_sigma_is_used_saved_and_reloaded(tmp_path):
    x, _ = bars(n=32)
    vae = small_vae(likelihood="gaussian", sigma=0.1)
    vae.compile(optimizer="adam")
    vae.train_on_batch(x)
    restored = _roundtrip(vae, tmp_path)
    assert restored.sigma == pytest.approx(0.1) and restored.get_config()["sigma"] == 0.1
    # The loss uses it: 1 / (2 * 0.1^2) = 50 times the squared error.
    recon = _numpy(vae.decode(_numpy(vae.encode(x[:4])[0])))
    squared = np.sum((x[:4] - recon) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(
        _numpy(-restored.likelihood_distribution.log_prob(x[:4], recon, constant=False)),
        50.0 * squared,
        rtol=1e-4,
    )
    # log_likelihood too: the same numbers from the original and the reloaded model.
    np.testing.assert_allclose(
        restored.log_likelihood(x[:8], num_samples=4, seed=0),
        vae.log_likelihood(x[:8], num_samples=4, seed=0),
        rtol=1e-5,
    )
    assert small_vae(likelihood="gaussian").sigma == 1.0


def test_bad_sigma_is_refused():
    with pytest.raises(ValueError, match="sigma must be finite and positive"):
        small_vae(likelihood="gaussian", sigma=0.0)
    with pytest.raises(ValueError, match="sigma is the standard deviation of the Gaussian"):
        small_vae(sigma=0.5)  # Bernoulli
    with pytest.raises(ValueError, match="sigma must be a number"):
        small_cvae(likelihood="gaussian", sigma="0.1")


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.slow
def test_export_after_fit_serves_the_mean_reconstruction(tmp_path, backend, conditional):
    if backend != "tensorflow":
        pytest.skip("a SavedModel export is tested on the TensorFlow backend")
    import tensorflow as tf

    x, y = bars(n=64)
    model = small_cvae() if conditional else small_vae()
    model.compile(optimizer="adam")
    inputs = [x, y] if conditional else x
    model.fit(inputs, epochs=1, batch_size=32, verbose=0)
    model.export(str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    if conditional:  # the endpoint takes one-hot labels, as the decoder does
        one_hot = np.eye(CLASSES, dtype="float32")[y[:8]]
        output = served.serve([tf.constant(x[:8]), tf.constant(one_hot)])
        expected = model.predict([x[:8], y[:8]], verbose=0)
    else:
        output = served.serve(tf.constant(x[:8]))
        expected = model.predict(x[:8], verbose=0)
    np.testing.assert_allclose(output.numpy(), expected, atol=1e-5)


# ------------------------------------------------------- *_on_batch methods
BAD_IMAGES = {
    "uint8 range": (lambda x: x * 255.0, r"must lie in \[0, 1\]"),
    "a NaN pixel": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "NaN"),
}


@pytest.mark.parametrize("bad", sorted(BAD_IMAGES))
def test_on_batch_methods_check_images_before_any_step(bad):
    spoil, message = BAD_IMAGES[bad]
    x, _ = bars(n=16)
    x_bad = spoil(x).astype("float32")
    vae = small_vae()
    vae.compile(optimizer="adam")
    vae.train_on_batch(x)
    before = _weights(vae)
    for method in (vae.train_on_batch, vae.test_on_batch, vae.predict_on_batch):
        with pytest.raises(ValueError, match=message):
            method(x_bad)
    for old, new in zip(before, _weights(vae)):
        np.testing.assert_array_equal(old, new)  # no step ran


def test_cvae_on_batch_methods_check_labels():
    x, y = bars(n=16)
    cvae = small_cvae()
    cvae.compile(optimizer="adam")
    y_bad = y.copy()
    y_bad[3] = 12
    for method in (cvae.train_on_batch, cvae.test_on_batch, cvae.predict_on_batch):
        with pytest.raises(ValueError, match="labels out of range"):
            method([x, y_bad])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        cvae.train_on_batch([x * 255.0, y])
    with pytest.raises(ValueError, match="15 labels for 16 images"):
        cvae.train_on_batch([x, y[:15]])


# ----------------------------------------------------------------- streams
def _generator(x, batch_size=8, labels=None):
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        yield (batch,) if labels is None else ((batch, labels[start : start + batch_size]),)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, batch_size=8):
        super().__init__()
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        return (self.x[index * self.batch_size : (index + 1) * self.batch_size],)


def _tf_dataset(x, labels=None):
    import tensorflow as tf

    if labels is None:
        return tf.data.Dataset.from_tensor_slices(x).batch(8)
    return tf.data.Dataset.from_tensor_slices(((x, labels),)).batch(8)


def _torch_loader(x):
    torch = pytest.importorskip("torch")
    data = torch.utils.data.TensorDataset(torch.from_numpy(x))
    return torch.utils.data.DataLoader(data, batch_size=8)


STREAMS = {
    "generator": _generator,
    "tf.data": _tf_dataset,
    "PyDataset": _Batches,
    "torch DataLoader": _torch_loader,
}


@pytest.mark.parametrize("kind", sorted(STREAMS))
@pytest.mark.parametrize("bad", sorted(BAD_IMAGES))
@pytest.mark.slow
def test_streams_are_checked_batch_by_batch(kind, bad):
    spoil, message = BAD_IMAGES[bad]
    x, _ = bars(n=32)
    x_bad = x.copy()
    x_bad[24:] = spoil(x[24:])  # only the last batch is bad
    vae = small_vae()
    vae.compile(optimizer="adam", steps_per_execution=1)
    vae.fit(STREAMS[kind](x), epochs=1, verbose=0)  # a clean stream trains
    with pytest.raises(ValueError, match=message):
        vae.fit(STREAMS[kind](x_bad), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        vae.evaluate(STREAMS[kind](x_bad), verbose=0)
    with pytest.raises(ValueError, match=message):
        vae.predict(STREAMS[kind](x_bad), verbose=0)


@pytest.mark.parametrize("kind", ["generator", "tf.data"])
def test_cvae_streams_check_labels_and_images(kind):
    x, y = bars(n=32)
    cvae = small_cvae()
    cvae.compile(optimizer="adam", steps_per_execution=1)
    y_bad = y.copy()
    y_bad[-1] = CLASSES
    with pytest.raises(ValueError, match="labels out of range"):
        cvae.fit(STREAMS[kind](x, labels=y_bad), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        cvae.fit(STREAMS[kind](x * 255.0, labels=y), epochs=1, verbose=0)


# ------------------------------------------------- subclassed sub-models
class _Encoder(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = layers.Flatten()
        self.hidden = layers.Dense(16, activation="relu")
        self.mean = layers.Dense(LATENT)
        self.log_var = layers.Dense(LATENT)

    def call(self, images):
        h = self.hidden(self.flatten(images))
        return [self.mean(h), self.log_var(h)]


class _Decoder(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(16, activation="relu")
        self.pixels = layers.Dense(784, activation="sigmoid")
        self.reshape = layers.Reshape((28, 28, 1))

    def call(self, z):
        return self.reshape(self.pixels(self.hidden(z)))


def test_generate_with_subclassed_sub_models():
    x, _ = bars(n=32)
    vae = vk.VAE(_Encoder(), _Decoder(), seed=0)
    # Before anything is built the codes say the latent width.
    assert vae.generate(z=np.zeros((3, LATENT), "float32")).shape == (3, 28, 28, 1)
    vae = vk.VAE(_Encoder(), _Decoder(), seed=0)
    assert vae.latent_dim is None
    with pytest.raises(ValueError, match="latent_dim is unknown"):
        vae.generate(2)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    assert vae.latent_dim == LATENT
    assert vae.generate(4, seed=0).shape == (4, 28, 28, 1)
    np.testing.assert_allclose(
        vae.generate(z=np.zeros(LATENT, "float32"), n=2)[0],
        _numpy(vae.decode(np.zeros((1, LATENT), "float32")))[0],
        atol=1e-6,
    )


# ----------------------------------------------------------------- compile
@pytest.mark.parametrize(
    "argument", [{"metrics": ["mae"]}, {"weighted_metrics": ["mse"]}, {"loss_weights": [1.0]}]
)
def test_compile_refuses_arguments_that_need_targets(argument):
    name = next(iter(argument))
    with pytest.raises(ValueError, match=f"compile: {name} is not supported.*received {name}="):
        small_vae().compile(optimizer="adam", **argument)


# ----------------------------------------------------------------- builders
@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: vk.build_conv_decoder(output_shape=(28, 28)), "output_shape must be a tuple of 3"),
        (lambda: vk.build_conv_encoder(input_shape=(28, 28)), "input_shape must be a tuple of 3"),
        (lambda: vk.build_mlp_encoder(input_shape=(28, -1)), "input_shape must be a tuple of"),
        (lambda: vk.build_mlp_decoder(output_shape=784), "output_shape must be a tuple of"),
        (lambda: vk.build_mlp_decoder(hidden_units=(16, 0)), "hidden_units must be a positive"),
        (lambda: vk.build_conv_encoder(filters=(8,), dense_units=0), "dense_units"),
    ],
)
def test_builders_refuse_malformed_shapes(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# ------------------------------------------------------------ encode/decode
def test_encode_and_decode_are_the_forward_pass_of_predict():
    x, y = bars(n=8)
    vae = small_vae()
    z_mean, z_log_var = vae.encode(x)
    assert tuple(z_mean.shape) == (8, LATENT) == tuple(z_log_var.shape)
    assert keras.backend.standardize_dtype(z_mean.dtype) == "float32"
    np.testing.assert_allclose(_numpy(vae.decode(z_mean)), vae.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        vae.encode(x * 255.0)
    with pytest.raises(ValueError, match="z must have shape"):
        vae.decode(np.zeros((2, LATENT + 1), "float32"))
    cvae = small_cvae()
    z_mean, _ = cvae.encode([x, y])
    np.testing.assert_allclose(
        _numpy(cvae.decode([z_mean, y])), cvae.predict([x, y], verbose=0), atol=1e-6
    )
    with pytest.raises(ValueError, match="labels out of range"):
        cvae.decode([_numpy(z_mean), np.full(8, CLASSES)])


# ------------------------------------------------- files from before the change
@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_files_saved_before_the_refactor_still_load(tmp_path, name):
    model = keras.models.load_model(FIXTURES / f"{name}_v0_1.keras")  # safe_mode=True
    x = np.load(FIXTURES / "inputs.npy")
    inputs = [x, np.load(FIXTURES / "labels.npy")] if name == "cvae" else x
    expected = np.load(FIXTURES / f"{name}_v0_1_predict.npy")
    np.testing.assert_allclose(model.predict(inputs, verbose=0), expected, atol=1e-5)
    if name == "vae":
        assert isinstance(model.beta, vk.LinearWarmup) and model.free_bits == 0.1
        assert model.sigma == 1.0 and int(_numpy(model.training_steps)) == 4
    else:
        assert model.beta == 0.5 and model.likelihood == "gaussian" and model.sigma == 1.0
    model.fit(inputs, epochs=1, batch_size=4, verbose=0)  # still trains
    restored = _roundtrip(model, tmp_path)
    np.testing.assert_allclose(
        restored.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-5
    )


@pytest.mark.slow
def test_a_stream_refused_at_its_first_batch_leaves_the_model_as_it_was():
    x, _ = bars(n=32)
    vae = small_vae()
    vae.compile(optimizer="adam", steps_per_execution=1)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    before = _weights(vae)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        vae.fit(_generator(x * 255.0), epochs=1, verbose=0)
    for old, new in zip(before, _weights(vae)):
        np.testing.assert_array_equal(old, new)
    assert np.isfinite(vae.predict(x[:4], verbose=0)).all()
    vae.fit(_generator(x), epochs=1, verbose=0)  # and it trains on


@pytest.mark.slow
def test_sample_weight_with_arrays_is_used():
    """Keras drops `sample_weight` when there are no targets; the models keep it."""
    x, y = bars(n=32)
    vae = small_vae()
    vae.compile(optimizer="adam", steps_per_execution=1)
    plain = vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    weights = np.full(32, 0.01, "float32")
    weighted = vae.evaluate(x, sample_weight=weights, batch_size=16, verbose=0, return_dict=True)
    for key in ("reconstruction_loss", "kl_loss"):
        np.testing.assert_allclose(weighted[key], 0.01 * plain[key], rtol=5e-3)  # fresh z draws
    tested = vae.test_on_batch(x, sample_weight=weights, return_dict=True)
    np.testing.assert_allclose(tested["kl_loss"], 0.01 * plain["kl_loss"], rtol=1e-3)
    before = _weights(vae)
    vae.fit(x, sample_weight=np.zeros(32, "float32"), batch_size=16, epochs=1, verbose=0)
    vae.train_on_batch(x, sample_weight=np.zeros(32, "float32"))
    for old, new in zip(before, _weights(vae)):  # zero weights: zero gradients
        np.testing.assert_allclose(old, new, atol=1e-7)
    cvae = small_cvae()
    cvae.compile(optimizer="adam", steps_per_execution=1)
    plain = cvae.evaluate([x, y], batch_size=16, verbose=0, return_dict=True)
    weighted = cvae.evaluate(
        [x, y], sample_weight=weights, batch_size=16, verbose=0, return_dict=True
    )
    np.testing.assert_allclose(weighted["kl_loss"], 0.01 * plain["kl_loss"], rtol=5e-3)

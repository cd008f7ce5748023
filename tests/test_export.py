"""vae_keras.export: encode, decode and generate endpoints in one SavedModel; ONNX decoder."""

import doctest
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import vae_keras as vk
from vae_keras import export

SHAPE = (8, 8, 1)
TF = keras.backend.backend() == "tensorflow"
needs_tf = pytest.mark.skipif(
    not TF, reason="export_serving runs on the TensorFlow backend (see the backend test)"
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((32,) + SHAPE).astype("float32"), (np.arange(32) % 4).astype("int32")


def _trained(conditional, data):
    x, y = data
    classes = 4 if conditional else None
    encoder = vk.build_mlp_encoder(2, hidden_units=(16,), num_classes=classes, input_shape=SHAPE)
    decoder = vk.build_mlp_decoder(2, hidden_units=(16,), num_classes=classes, output_shape=SHAPE)
    if conditional:
        model = vk.CVAE(encoder, decoder, num_classes=4, seed=0)
    else:
        model = vk.VAE(encoder, decoder, seed=0)
    model.compile(optimizer="adam")
    model.fit([x, y] if conditional else x, epochs=1, batch_size=16, verbose=0)
    return model


def test_docstring_examples():
    result = doctest.testmod(export, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@needs_tf
@pytest.mark.slow
def test_vae_endpoints_match_the_model(tmp_path, data):
    import tensorflow as tf

    x, _ = data
    vae = _trained(False, data)
    path = export.export_serving(vae, tmp_path / "vae")
    served = tf.saved_model.load(str(path))
    posterior = served.encode(tf.constant(x[:5]))
    z_mean, z_log_var = vae.encode(x[:5])
    np.testing.assert_allclose(posterior["z_mean"].numpy(), np.asarray(z_mean), atol=1e-6)
    np.testing.assert_allclose(posterior["z_log_var"].numpy(), np.asarray(z_log_var), atol=1e-6)
    decoded = served.decode(posterior["z_mean"]).numpy()
    np.testing.assert_allclose(decoded, vae.predict(x[:5], verbose=0), atol=1e-6)
    images = served.generate(tf.constant(6), tf.constant(3)).numpy()
    z = tf.random.stateless_normal((6, 2), seed=[3, 0]).numpy()
    np.testing.assert_allclose(images, vae.generate(z=z), atol=1e-6)
    np.testing.assert_array_equal(images, served.generate(tf.constant(6), tf.constant(3)).numpy())
    assert not np.array_equal(images, served.generate(tf.constant(6), tf.constant(4)).numpy())


@needs_tf
@pytest.mark.slow
def test_cvae_endpoints_match_the_model(tmp_path, data):
    import tensorflow as tf

    x, y = data
    cvae = _trained(True, data)
    served = tf.saved_model.load(str(export.export_serving(cvae, tmp_path / "cvae")))
    posterior = served.encode(tf.constant(x[:5]), tf.constant(y[:5]))
    z_mean, _ = cvae.encode([x[:5], y[:5]])
    np.testing.assert_allclose(posterior["z_mean"].numpy(), np.asarray(z_mean), atol=1e-6)
    decoded = served.decode(posterior["z_mean"], tf.constant(y[:5])).numpy()
    np.testing.assert_allclose(decoded, cvae.predict([x[:5], y[:5]], verbose=0), atol=1e-6)
    labels = np.array([0, 1, 2, 3], "int32")
    images = served.generate(tf.constant(labels), tf.constant(9)).numpy()
    z = tf.random.stateless_normal((4, 2), seed=[9, 0]).numpy()
    np.testing.assert_allclose(images, cvae.generate(labels, z=z), atol=1e-6)


@needs_tf
@pytest.mark.slow
def test_serving_needs_no_vae_keras(tmp_path, data):
    x, _ = data
    vae = _trained(False, data)
    export.export_serving(vae, tmp_path / "vae")
    np.save(tmp_path / "x.npy", x[:3])
    np.save(tmp_path / "expected.npy", vae.predict(x[:3], verbose=0))
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        served = tf.saved_model.load(sys.argv[1] + "/vae")
        x = np.load(sys.argv[1] + "/x.npy")
        images = served.decode(served.encode(tf.constant(x))["z_mean"]).numpy()
        np.testing.assert_allclose(images, np.load(sys.argv[1] + "/expected.npy"), atol=1e-6)
        assert "vae_keras" not in sys.modules
        print("served")
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "served"


@pytest.mark.skipif(TF, reason="checks the error on the JAX and PyTorch backends")
def test_other_backends_get_a_clear_error(tmp_path, data):
    vae = _trained(False, data)
    with pytest.raises(ValueError, match=r"KERAS_BACKEND=tensorflow.*; received backend="):
        export.export_serving(vae, tmp_path / "vae")


@pytest.mark.skipif(TF, reason="the JAX / PyTorch -> .keras -> TensorFlow recipe")
def test_model_trained_on_another_backend_exports_from_tensorflow(tmp_path, data):
    x, _ = data
    vae = _trained(False, data)
    vae.save(tmp_path / "vae.keras")
    np.save(tmp_path / "expected.npy", vae.predict(x[:3], verbose=0))
    np.save(tmp_path / "x.npy", x[:3])
    script = textwrap.dedent(
        """
        import sys
        import keras
        import numpy as np
        import tensorflow as tf
        import vae_keras as vk
        folder = sys.argv[1]
        model = keras.models.load_model(folder + "/vae.keras")
        vk.export.export_serving(model, folder + "/served")
        served = tf.saved_model.load(folder + "/served")
        images = served.decode(served.encode(tf.constant(np.load(folder + "/x.npy")))["z_mean"])
        np.testing.assert_allclose(images.numpy(), np.load(folder + "/expected.npy"), atol=1e-5)
        print("exported")
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("exported")


def test_export_serving_checks_the_model(tmp_path):
    if not TF:
        pytest.skip("on JAX and PyTorch the backend error comes first (tested above)")
    plain = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten()])
    with pytest.raises(TypeError, match=r"; received model of type Sequential"):
        export.export_serving(plain, tmp_path / "plain")


def test_onnx_decoder_matches_predict(tmp_path, data):
    """The optional ONNX extra: runs where onnx and onnxruntime (and the backend's exporter) are."""
    pytest.importorskip("onnx", reason="ONNX export is an optional extra: pip install onnx")
    ort = pytest.importorskip(
        "onnxruntime", reason="ONNX export is an optional extra: pip install onnxruntime"
    )
    if keras.backend.backend() == "tensorflow":
        pytest.importorskip("tf2onnx", reason="Keras converts TensorFlow models with tf2onnx")
    if keras.backend.backend() == "jax":
        pytest.importorskip("jax2onnx", reason="Keras converts JAX models with jax2onnx")
    if keras.backend.backend() == "torch":
        pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript")
    vae = _trained(False, data)
    path = str(tmp_path / "decoder.onnx")
    vae.decoder.export(path, format="onnx", verbose=False)
    session = ort.InferenceSession(path)
    z = np.random.default_rng(1).standard_normal((1, 2)).astype("float32")
    (images,) = session.run(None, {session.get_inputs()[0].name: z})
    np.testing.assert_allclose(images, vae.decoder.predict(z, verbose=0), atol=1e-5)

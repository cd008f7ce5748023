"""docs/explorer/export.py: the site's latent explorer runs the decoders the notebooks saved.

The committed export must be current (`--check`), and the exporter's NumPy version of the page's
computation must give the Keras decoders' pixels, for a VAE and a CVAE; decoders the page cannot
run are refused by name.
"""

import importlib.util
import json
import pathlib

import keras
import numpy as np
import pytest

import vae_keras as vk

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("explorer_export", ROOT / "docs/explorer/export.py")
export = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(export)


def mnist_available():
    held_out, _ = export.try_held_out()
    return held_out is not None


def test_committed_export_is_current(capsys):
    names = [f"{name}.keras" for name in export.NAMES] + [f"{name}.json" for name in export.NAMES]
    present = [(export.MODELS / n).is_file() or (export.DECODERS / n).is_file() for n in names]
    if not any(present):
        pytest.skip("no explorer models or export committed yet")
    status = export.main(["--check"])
    assert status == 0, capsys.readouterr().out


def small_models():
    vae = vk.VAE(vk.build_mlp_encoder(2, (16,)), vk.build_mlp_decoder(2, (16, 8)))
    cvae = vk.CVAE(
        vk.build_mlp_encoder(2, (16,), num_classes=10),
        vk.build_mlp_decoder(2, (16,), num_classes=10),
        num_classes=10,
    )
    return vae, cvae


def test_exported_decoders_compute_what_keras_computes():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(64, 2)).astype("float32") * 2
    labels = rng.integers(0, 10, size=64)
    for model in small_models():
        table, weights = export.decoder_weights(model)
        conditional = isinstance(model, vk.CVAE)
        assert [layer["label"] for layer in table] == (
            [True, True] if conditional else [False, False, False]
        )
        assert [layer["activation"] for layer in table][-1] == "sigmoid"
        expected = model.generate(labels, z=z) if conditional else model.generate(z=z)
        exported = export.run_exported(
            table, weights, z, labels if conditional else None, getattr(model, "num_classes", 0)
        )
        assert np.max(np.abs(exported - expected.reshape(64, -1))) < export.MAX_EXPORT_ERROR
        assert export.export_error(model, table, weights, [-4, 4]) < export.MAX_EXPORT_ERROR


def test_float32_when_float16_is_not_precise_enough(tmp_path, monkeypatch):
    small_models()[0].save(tmp_path / "vae_2d.keras")
    document, weights = export.build("vae_2d", tmp_path, None)
    assert document["weights"]["dtype"] == "float16"
    monkeypatch.setattr(export, "MAX_EXPORT_ERROR", 1e-5)  # float16 cannot meet it
    document, weights32 = export.build("vae_2d", tmp_path, None)
    assert document["weights"]["dtype"] == "float32" and len(weights32) == 2 * len(weights)
    monkeypatch.setattr(export, "MAX_EXPORT_ERROR", -1.0)  # nothing can
    with pytest.raises(ValueError, match="the float32 decoder differs"):
        export.build("vae_2d", tmp_path, None)


def test_decoders_the_page_cannot_run_are_refused():
    conv = vk.VAE(vk.build_conv_encoder(2), vk.build_conv_decoder(2))
    with pytest.raises(ValueError, match="Dense layers only.*Conv2DTranspose"):
        export.decoder_weights(conv)
    wide = vk.VAE(vk.build_mlp_encoder(3, (8,)), vk.build_mlp_decoder(3, (8,)))
    with pytest.raises(ValueError, match="latent_dim=3"):
        export.decoder_weights(wide)
    z = keras.Input((2,))
    linear = keras.Model(z, keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(z)))
    with pytest.raises(ValueError, match="sigmoid output"):
        export.decoder_weights(vk.VAE(vk.build_mlp_encoder(2, (8,)), linear))


@pytest.mark.skipif(not mnist_available(), reason="MNIST cannot be loaded here")
def test_check_tells_an_export_from_an_out_of_date_one(tmp_path, capsys):
    models, out = tmp_path / "models", tmp_path / "decoders"
    models.mkdir()
    vae, cvae = small_models()
    vae.save(models / "vae_2d.keras")
    cvae.save(models / "cvae_2d.keras")
    args = ["--models", str(models), "--out", str(out)]
    assert export.main(args) == 0
    document = json.loads((out / "vae_2d.json").read_text())
    assert document["kind"] == "VAE" and document["scatter"]["description"]
    assert len(document["scatter"]["z"]) == 2 * len(document["scatter"]["labels"])
    assert (out / "cvae_2d.bin").stat().st_size == 2 * sum(
        w.size for w in cvae.decoder.get_weights()
    )
    assert export.main([*args, "--check"]) == 0
    capsys.readouterr()

    keras.utils.set_random_seed(7)  # a retrained model: new weights, new file
    small_models()[0].save(models / "vae_2d.keras")
    assert export.main([*args, "--check"]) == 1
    assert "vae_2d.keras changed since the export" in capsys.readouterr().out

    export.main(args)
    (out / "cvae_2d.bin").write_bytes(b"\0" * (out / "cvae_2d.bin").stat().st_size)
    assert export.main([*args, "--check"]) == 1
    assert "cvae_2d.bin differs" in capsys.readouterr().out

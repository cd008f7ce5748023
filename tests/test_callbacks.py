"""vae_keras.callbacks: image snapshots, latent statistics in the logs, the NaN guard."""

import doctest
import glob
import os

import keras
import matplotlib.image
import numpy as np
import pytest

import vae_keras as vk
from vae_keras import callbacks, evaluation, guard

SHAPE = (8, 8, 1)
LATENT = 3


def _vae(beta=1.0, latent_dim=LATENT):
    return vk.VAE(
        vk.build_mlp_encoder(latent_dim, hidden_units=(16,), input_shape=SHAPE),
        vk.build_mlp_decoder(latent_dim, hidden_units=(16,), output_shape=SHAPE),
        beta=beta,
        seed=0,
    )


def _cvae():
    return vk.CVAE(
        vk.build_mlp_encoder(LATENT, hidden_units=(16,), num_classes=4, input_shape=SHAPE),
        vk.build_mlp_decoder(LATENT, hidden_units=(16,), num_classes=4, output_shape=SHAPE),
        num_classes=4,
        seed=0,
    )


@pytest.fixture
def x():
    return np.random.default_rng(0).random((64,) + SHAPE).astype("float32")


def _finite(model):
    return all(np.isfinite(w).all() for w in model.get_weights())


def _events(folder):
    """(tag, step, kind) of every summary in the event files under folder."""
    tf = pytest.importorskip("tensorflow", reason="TensorBoard event files are read with TF")
    found = []
    for path in glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.append((value.tag, event.step, os.path.basename(os.path.dirname(path))))
    return found


@pytest.mark.parametrize("module", [callbacks, guard], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------- ImageSnapshots
def test_image_snapshots_png_every_n_epochs(tmp_path, x):
    vae = _vae()
    vae.compile(optimizer="adam")
    snapshots = callbacks.ImageSnapshots(
        x[:6], directory=tmp_path, every_n_epochs=2, num_samples=5, n_cols=4
    )
    vae.fit(x, epochs=4, batch_size=32, verbose=0, callbacks=[snapshots])
    names = sorted(os.path.basename(p) for p in snapshots.written)
    assert names == [
        "reconstructions_epoch_0002.png",
        "reconstructions_epoch_0004.png",
        "samples_epoch_0002.png",
        "samples_epoch_0004.png",
    ]
    # The last files hold the final model's grids, pixel for pixel (8-bit PNG).
    grids = snapshots.grids()
    for name in ("samples", "reconstructions"):
        png = matplotlib.image.imread(tmp_path / f"{name}_epoch_0004.png")
        assert png.ndim == 2  # grayscale, as the images
        np.testing.assert_allclose(png, grids[name][..., 0], atol=0.5 / 255 + 1e-6)
    # Samples: 5 images in rows of 4 (two rows); originals, then their reconstructions.
    assert grids["samples"].shape == (2 * 9 + 1, 4 * 9 + 1, 1)
    assert grids["reconstructions"].shape == (4 * 9 + 1, 4 * 9 + 1, 1)
    np.testing.assert_allclose(grids["reconstructions"][1:9, 1:9, 0], x[0, :, :, 0])
    reconstruction = np.asarray(vae.predict(x[:1], verbose=0))[0, :, :, 0]
    np.testing.assert_allclose(grids["reconstructions"][10:18, 1:9, 0], reconstruction, atol=1e-6)
    z = np.random.default_rng(0).standard_normal((5, LATENT)).astype("float32")
    np.testing.assert_allclose(
        grids["samples"][1:9, 1:9, 0], vae.generate(z=z)[0, :, :, 0], atol=1e-6
    )


def test_image_snapshots_samples_change_as_the_model_trains(tmp_path, x):
    vae = _vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    snapshots = callbacks.ImageSnapshots(x[:4], directory=tmp_path)
    vae.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=[snapshots])
    first = matplotlib.image.imread(tmp_path / "samples_epoch_0001.png")
    second = matplotlib.image.imread(tmp_path / "samples_epoch_0002.png")
    assert first.shape == second.shape and not np.array_equal(first, second)


def test_image_snapshots_cvae_one_sample_per_label(tmp_path, x):
    labels = np.arange(64) % 4
    cvae = _cvae()
    cvae.compile(optimizer="adam")
    snapshots = callbacks.ImageSnapshots([x[:4], labels[:4]], directory=tmp_path, num_samples=4)
    cvae.fit([x, labels], epochs=1, batch_size=32, verbose=0, callbacks=[snapshots])
    z = np.random.default_rng(0).standard_normal((4, LATENT)).astype("float32")
    expected = cvae.generate([0, 1, 2, 3], z=z)
    grid = snapshots.grids()["samples"]
    for i in range(4):
        np.testing.assert_allclose(
            grid[1:9, 1 + 9 * i : 9 + 9 * i, 0], expected[i, :, :, 0], atol=1e-6
        )


def test_image_snapshots_and_latent_statistics_in_tensorboard(tmp_path, x):
    pytest.importorskip("tensorflow", reason="tf.summary writes TensorBoard's event files")
    vae = _vae()
    vae.compile(optimizer="adam")
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    callbacks_list = [
        callbacks.LatentStatistics(x[:32]),
        callbacks.ImageSnapshots(x[:4], log_dir=tensorboard, every_n_epochs=1),
        tensorboard,
    ]
    vae.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=callbacks_list)
    events = _events(str(tmp_path))
    for tag in ("samples", "reconstructions"):
        assert {step for t, step, run in events if t == tag and run == "train"} == {0, 1}
    scalars = {t for t, _, run in events if run == "train"}
    assert {f"epoch_kl_dim_{j}" for j in range(LATENT)} | {"epoch_active_units"} <= scalars


def test_image_snapshots_checks_its_arguments(tmp_path, x):
    with pytest.raises(ValueError, match=r"; received every_n_epochs=0"):
        callbacks.ImageSnapshots(x, directory=tmp_path, every_n_epochs=0)
    with pytest.raises(ValueError, match=r"; received directory=None, log_dir=None"):
        callbacks.ImageSnapshots(x)
    with pytest.raises(ValueError, match=r"; received 0 images"):
        callbacks.ImageSnapshots(x[:0], directory=tmp_path)
    plain = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten()])
    plain.compile(optimizer="adam", loss="mse")
    with pytest.raises(TypeError, match=r"; received model of type Sequential"):
        plain.fit(
            x,
            x.reshape(64, -1),
            epochs=1,
            verbose=0,
            callbacks=[callbacks.ImageSnapshots(x, directory=tmp_path)],
        )


# ----------------------------------------------------------- LatentStatistics
@pytest.mark.slow
def test_latent_statistics_reach_history_and_csv(tmp_path, x):
    vae = _vae()
    vae.compile(optimizer="adam")
    statistics = callbacks.LatentStatistics(x[:40], threshold=0.01)
    csv = tmp_path / "log.csv"
    history = vae.fit(
        x,
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[statistics, keras.callbacks.CSVLogger(str(csv))],
    )
    kl = evaluation.kl_per_dimension(vae, x[:40])
    for j in range(LATENT):
        assert len(history.history[f"kl_dim_{j}"]) == 2
        np.testing.assert_allclose(history.history[f"kl_dim_{j}"][-1], kl[j], rtol=1e-5)
    assert history.history["active_units"][-1] == evaluation.active_units(vae, x[:40])
    header = csv.read_text().splitlines()[0].split(",")
    assert {"kl_dim_0", f"kl_dim_{LATENT - 1}", "active_units"} <= set(header)


def test_latent_statistics_see_a_collapsed_dimension(x):
    vae = _vae()
    vae(x[:2])  # build
    # Dimension 1 of q(z|x) is the prior N(0, 1) for every image: zero its two heads.
    for head in vae.encoder.layers[-2:]:
        kernel, bias = head.get_weights()
        kernel[:, 1], bias[1] = 0.0, 0.0
        head.set_weights([kernel, bias])
    statistics = callbacks.LatentStatistics(x[:40], threshold=0.0)
    statistics.set_model(vae)
    values = statistics.statistics()
    assert values["kl_dim_1"] == 0.0
    assert values["kl_dim_0"] > 0 and values["kl_dim_2"] > 0
    assert values["active_units"] == LATENT - 1


def test_latent_statistics_cvae_in_batches(x):
    labels = np.arange(64) % 4
    cvae = _cvae()
    cvae([x[:2], labels[:2]])
    statistics = callbacks.LatentStatistics([x[:40], labels[:40]], batch_size=16)
    statistics.set_model(cvae)
    values = statistics.statistics()
    kl = evaluation.kl_per_dimension(cvae, [x[:40], labels[:40]])
    np.testing.assert_allclose([values[f"kl_dim_{j}"] for j in range(LATENT)], kl, rtol=1e-5)


def test_latent_statistics_checks_its_arguments(x):
    with pytest.raises(ValueError, match=r"; received threshold=-1"):
        callbacks.LatentStatistics(x, threshold=-1)
    with pytest.raises(ValueError, match=r"; received batch_size=0"):
        callbacks.LatentStatistics(x, batch_size=0)
    with pytest.raises(ValueError, match=r"; received a sequence of 4 items"):
        callbacks.LatentStatistics([x, x, x, x])


# ------------------------------------------------------------------- NaNGuard
def _diverging_vae():
    vae = _vae()
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=1e3))
    return vae


def test_nan_guard_stops_restores_and_names_the_term(tmp_path, x, capsys):
    vae = _diverging_vae()
    guard = callbacks.NaNGuard(x[:32])
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="loss", save_best_only=True
    )
    history = vae.fit(x, epochs=5, batch_size=8, verbose=0, callbacks=[guard, checkpoint])
    assert guard.stopped_step is not None
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    assert not np.isfinite(history.history["loss"][0])
    # Restored: finite weights, and the optimizer back at the last finite step.
    assert _finite(vae)
    assert int(keras.ops.convert_to_numpy(vae.optimizer.iterations)) == guard.restored_step
    if keras.backend.backend() == "tensorflow":  # 32 steps per call into the graph
        assert 0 < guard.stopped_step - guard.restored_step <= 8  # one epoch of 8 batches
    else:
        assert guard.stopped_step - guard.restored_step == 1
    # The checkpoint saved at the end of the epoch holds the restored weights.
    assert _finite(keras.models.load_model(tmp_path / "best.keras"))
    assert guard.first_non_finite in {
        "z_mean",
        "z_log_var",
        "reconstruction",
        "reconstruction_loss",
        "kl_loss",
        "loss",
        "weights",
    }
    printed = capsys.readouterr().out
    assert printed.strip() == guard.report
    assert "NaNGuard: training stopped" in printed and "Likeliest cause" in printed
    assert "learning rate 1e+03" in printed


def test_without_guard_the_checkpoint_keeps_nan_weights(tmp_path, x):
    # The problem the guard solves: Keras saves the first epoch as "best" whatever it is.
    vae = _diverging_vae()
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="loss", save_best_only=True
    )
    vae.fit(x, epochs=1, batch_size=8, verbose=0, callbacks=[checkpoint])
    assert not _finite(keras.models.load_model(tmp_path / "best.keras"))


def test_nan_guard_names_an_exploding_z_log_var(x):
    vae = _vae()
    vae.compile(optimizer="adam")
    vae(x[:2])
    z_log_var_head = vae.encoder.layers[-1]
    kernel, bias = z_log_var_head.get_weights()
    z_log_var_head.set_weights([kernel, bias + 100.0])  # exp(100) overflows float32
    guard = callbacks.NaNGuard(x[:16], verbose=0)
    vae.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=[guard])
    assert guard.first_non_finite == "z_log_var"
    assert "after 0 replay updates" in guard.report
    assert "exploding z_log_var" in guard.report
    assert guard.restored_step == 0
    np.testing.assert_allclose(z_log_var_head.get_weights()[1], bias + 100.0)


def test_nan_guard_names_a_too_large_beta(x):
    vae = _vae(beta=3e38)  # finite, but beta * KL overflows float32
    vae.compile(optimizer="adam")
    guard = callbacks.NaNGuard(x[:16], verbose=0)
    vae.fit(x, epochs=1, batch_size=32, verbose=0, callbacks=[guard])
    assert guard.first_non_finite == "loss"
    assert "beta (3e+38) is too large" in guard.report


def test_nan_guard_without_a_batch_still_stops_and_restores(x):
    vae = _diverging_vae()
    guard = callbacks.NaNGuard(verbose=0)
    vae.fit(x, epochs=3, batch_size=8, verbose=0, callbacks=[guard])
    assert guard.stopped_step is not None and _finite(vae)
    assert guard.first_non_finite is None
    assert "Give NaNGuard(x=...)" in guard.report


@pytest.mark.slow
def test_nan_guard_leaves_a_healthy_run_alone(x):
    def run(with_guard):
        keras.utils.set_random_seed(7)
        vae = _vae()
        vae.compile(optimizer="adam")
        guard = callbacks.NaNGuard(x[:16])
        history = vae.fit(
            x, epochs=2, batch_size=16, verbose=0, callbacks=[guard] if with_guard else []
        )
        return vae, history, guard

    guarded, guarded_history, guard = run(True)
    plain, plain_history, _ = run(False)
    assert guard.stopped_step is None and guard.report is None
    assert len(guarded_history.history["loss"]) == 2
    for a, b in zip(guarded.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_nan_guard_cvae(x):
    labels = np.arange(64) % 4
    cvae = _cvae()
    cvae.compile(optimizer=keras.optimizers.SGD(learning_rate=1e3))
    guard = callbacks.NaNGuard([x[:16], labels[:16]], verbose=0)
    cvae.fit([x, labels], epochs=3, batch_size=8, verbose=0, callbacks=[guard])
    assert guard.stopped_step is not None and _finite(cvae)
    assert guard.first_non_finite is not None


def test_nan_guard_checks_its_arguments(x):
    with pytest.raises(ValueError, match=r"; received max_replay_steps=0"):
        callbacks.NaNGuard(x, max_replay_steps=0)
    with pytest.raises(ValueError, match=r"; received verbose=2"):
        callbacks.NaNGuard(x, verbose=2)

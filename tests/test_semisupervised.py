"""`vk.SemiSupervisedVAE` (Kingma et al.'s M2): the bound, one pass per step, checks, saving."""

import keras
import numpy as np
import pytest
from keras import ops

import vae_keras as vk

K, LATENT, SHAPE = 3, 2, (2, 3, 1)


@pytest.fixture(autouse=True)
def _restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _model(alpha=2.0, beta=1.0, shape=SHAPE, classes=K, compile=True):
    keras.utils.set_random_seed(0)
    encoder = vk.build_mlp_encoder(LATENT, (8,), num_classes=classes, input_shape=shape)
    decoder = vk.build_mlp_decoder(LATENT, (8,), num_classes=classes, output_shape=shape)
    classifier = keras.Sequential(
        [keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(classes)]
    )
    model = vk.SemiSupervisedVAE(
        encoder, decoder, classifier, num_classes=classes, alpha=alpha, beta=beta, seed=0
    )
    if compile:
        model.compile(optimizer="adam")
    return model


def _data(n=8, seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape)).astype("float32")
    y = np.where(np.arange(n) % 2 == 0, np.arange(n) % K, -1)  # every other image labelled
    return x, y


def _by_hand(x, y, outputs, alpha, beta):
    """The M2 loss terms in NumPy, from one forward pass's tensors (rows class-major)."""
    n = len(x)
    numpy = {key: ops.convert_to_numpy(value).astype("float64") for key, value in outputs.items()}
    p = np.clip(numpy["reconstruction"].reshape(K * n, -1), 1e-7, 1 - 1e-7)
    pixels = np.tile(x.reshape(n, -1), (K, 1))
    log_px = np.sum(pixels * np.log(p) + (1 - pixels) * np.log(1 - p), axis=1)
    mean, log_var = numpy["z_mean"], numpy["z_log_var"]
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=1)
    nelbo = (-log_px + beta * kl).reshape(K, n)  # nelbo[k, i]: image i with class k
    q = numpy["probabilities"]
    log_q = np.log(q)
    labelled = sum(nelbo[y[i], i] for i in range(n) if y[i] >= 0) / n
    unlabelled = sum(q[i] @ nelbo[:, i] + q[i] @ log_q[i] for i in range(n) if y[i] < 0) / n
    classification = -sum(log_q[i, y[i]] for i in range(n) if y[i] >= 0) / n
    entropy = sum(-(q[i] @ log_q[i]) for i in range(n) if y[i] < 0) / n
    return dict(
        loss=labelled + unlabelled + alpha * classification,
        labelled_loss=labelled,
        unlabelled_loss=unlabelled,
        classification_loss=classification,
        entropy=entropy,
    ), (nelbo, q, log_q)


def _outputs(model, x):
    """One pass of the three networks, as compute_loss takes it: q(y | x) and the pairs."""
    return {**model.pairs(x), "probabilities": model(x)}


def _terms(model, x, y, outputs):
    for metric in model.metrics:
        metric.reset_state()
    total = model.compute_loss(x, ops.convert_to_tensor(y), outputs, training=False)
    logged = {m.name: float(ops.convert_to_numpy(m.result())) for m in model.metrics}
    return float(ops.convert_to_numpy(total)), logged


def test_the_loss_terms_match_a_computation_by_hand():
    model = _model(alpha=2.0, beta=0.5)
    x, y = _data()
    outputs = _outputs(model, x)
    total, logged = _terms(model, x, y, outputs)
    expected, _ = _by_hand(x, y, outputs, alpha=2.0, beta=0.5)
    assert total == pytest.approx(expected["loss"], rel=1e-4)
    for name, value in expected.items():
        if name != "loss":
            assert logged[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_the_unlabelled_bound_is_the_expectation_over_y_drawn_from_the_classifier():
    # U(x) = E_{y ~ q(y|x)} [L(x, y) + log q(y | x)]: Monte Carlo over y against the enumeration
    model = _model()
    x, _ = _data()
    y = np.full(len(x), -1)
    outputs = _outputs(model, x)
    _, logged = _terms(model, x, y, outputs)
    _, (nelbo, q, log_q) = _by_hand(x, y, outputs, 2.0, 1.0)
    rng = np.random.default_rng(0)
    draws = [rng.choice(K, size=100_000, p=q[i] / q[i].sum()) for i in range(len(x))]
    monte_carlo = np.mean([np.mean(nelbo[d, i] + log_q[i, d]) for i, d in enumerate(draws)])
    assert logged["unlabelled_loss"] == pytest.approx(monte_carlo, rel=2e-3)
    assert 0 < logged["entropy"] <= np.log(K) + 1e-6  # all unlabelled: the mean entropy


@pytest.fixture(scope="module")
def trained():
    """A model after one `fit` on 16 images, half of them labelled, and that fit's logs."""
    model = _model(alpha=1.5, beta=0.5)
    x, y = _data(16)
    logs = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    return model, x, y, logs


def test_fit_logs_the_terms_and_the_loss_is_their_sum(trained):
    model, x, _, logs = trained
    names = {"loss", "labelled_loss", "unlabelled_loss", "classification_loss", "entropy"}
    assert names | {"reconstruction_loss", "kl_loss", "beta"} == set(logs)
    parts = logs["labelled_loss"][0] + logs["unlabelled_loss"][0]
    assert logs["loss"][0] == pytest.approx(parts + 1.5 * logs["classification_loss"][0], rel=1e-5)
    # all labelled: no unlabelled term, no entropy
    result = model.evaluate(x, np.arange(16) % K, batch_size=16, verbose=0, return_dict=True)
    assert result["unlabelled_loss"] == 0.0 and result["entropy"] == 0.0


@pytest.mark.parametrize("run_eagerly", [True, False])
def test_one_pass_of_each_network_per_step_with_every_class_enumerated(run_eagerly):
    # Calls are counted inside the training step only (JAX's `train_on_batch` also traces
    # the model's `call` for its output shapes, outside the step). Eagerly each of the two
    # steps calls each network once; a compiled step is traced once and replayed (PyTorch
    # runs it eagerly unless jit_compile is set).
    model = _model(compile=False)
    model.compile(optimizer="adam", run_eagerly=run_eagerly)
    x, y = _data(6)
    model.train_on_batch(x, y)  # builds the model and the optimizer
    calls, inside = {"encoder": [], "decoder": [], "classifier": []}, []
    for name in calls:
        network = getattr(model, name)

        def counted(inputs, *args, _original=network.call, _name=name, **kwargs):
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            if inside:
                calls[_name].append(first.shape[0])
            return _original(inputs, *args, **kwargs)

        network.call = counted
    step = model.train_step

    def flagged(*args, **kwargs):
        inside.append(True)
        try:
            return step(*args, **kwargs)
        finally:
            inside.pop()

    model.train_step = flagged
    model.make_train_function(force=True)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    steps = len(calls["classifier"])
    assert steps == 2 if run_eagerly else steps in (1, 2)
    assert calls == {
        "encoder": [6 * K] * steps,
        "decoder": [6 * K] * steps,
        "classifier": [6] * steps,
    }


def test_predict_gives_class_probabilities_and_generate_the_requested_classes(trained):
    model, x, _, _ = trained
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (16, K)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    images = model.generate([0, 1, 2], seed=3)
    assert images.shape == (3, *SHAPE)
    np.testing.assert_array_equal(images, model.generate([0, 1, 2], seed=3))
    style = model.generate([0, 1, 2], z=np.zeros(LATENT, "float32"))
    decoded = model.decoder([np.zeros((3, LATENT), "float32"), np.eye(K, dtype="float32")])
    np.testing.assert_allclose(style, ops.convert_to_numpy(decoded), rtol=1e-6)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.full(8, -1), "at least one labelled image"),
        (np.array([0, 1, 2, 3, -1, -1, -1, -1]), r"class ids in \[0, 2\], or -1"),
        (np.array([0, 1, 2, -2, -1, -1, -1, -1]), "received values from -2 to 2"),
        (np.array([0.5, 1, 2, 0, -1, -1, -1, -1]), "whole class ids"),
        (np.zeros(7, int), r"shape \(8,\), one per image"),
        (None, "give a label per image"),
        (np.array([[0, 1]] * 8), r"shape \(8,\), one per image"),
    ],
)
def test_fit_refuses_bad_labels(labels, message):
    model = _model()
    x, _ = _data()
    with pytest.raises(ValueError, match=message):
        model.fit(x, labels, verbose=0)


def test_other_mistakes_are_refused_with_clear_messages():
    model = _model()
    x, y = _data()
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        model.predict(x * 3, verbose=0)
    with pytest.raises(ValueError, match="class ids in"):
        model.generate([0, -1])
    with pytest.raises(ValueError, match=r"z must have shape \(2, 2\) or \(2,\)"):
        model.generate([0, 1], z=np.zeros((3, LATENT)))
    with pytest.raises(AttributeError, match="received alpha=3"):
        model.alpha = 3
    with pytest.raises(AttributeError, match="received free_bits=1"):
        model.free_bits = 1
    for setting in ({"free_bits": 1.0}, {"importance_samples": 5}):
        with pytest.raises(ValueError, match="no free bits or importance samples"):
            vk.SemiSupervisedVAE(model.encoder, model.decoder, model.classifier, K, **setting)
    with pytest.raises(ValueError, match="received alpha=-1"):
        vk.SemiSupervisedVAE(model.encoder, model.decoder, model.classifier, K, alpha=-1)
    with pytest.raises(TypeError, match="classifier must be a Keras layer"):
        vk.SemiSupervisedVAE(model.encoder, model.decoder, "mlp", K)
    wide = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(K + 1)])
    with pytest.raises(ValueError, match=r"classifier must give \(n, K\) logits"):
        vk.SemiSupervisedVAE(model.encoder, model.decoder, wide, K)
    with pytest.raises(ValueError, match="label input has width"):
        vk.SemiSupervisedVAE(model.encoder, model.decoder, model.classifier, K + 1)


def test_a_dataset_of_images_and_labels_trains_and_its_labels_are_checked():
    import tensorflow as tf

    model = _model()
    x, y = _data(16)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    logs = model.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])
    bad = tf.data.Dataset.from_tensor_slices((x, np.where(y < 0, 5, y))).batch(8)
    with pytest.raises(ValueError, match="labels must be whole class ids"):
        model.fit(bad, epochs=1, verbose=0)


def test_the_keras_file_round_trips_under_safe_mode(trained, tmp_path):
    model, x, _, _ = trained
    path = tmp_path / "m2.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, vk.SemiSupervisedVAE)
    assert (loaded.alpha, loaded.beta, loaded.num_classes) == (1.5, 0.5, K)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 1e-6)
    np.testing.assert_allclose(loaded.generate([1, 2], seed=0), model.generate([1, 2], seed=0))
    # the optimizer came back too: its step count and moments, so training resumes where it was
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == 1
    saved = [ops.convert_to_numpy(v) for v in model.optimizer.variables]
    restored = [ops.convert_to_numpy(v) for v in loaded.optimizer.variables]
    assert len(saved) == len(restored) > 1
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_the_loss_is_float32_under_mixed_precision(policy):
    reference = _model(compile=False)
    x, y = _data()
    _, expected = _terms(reference, x, y, _outputs(reference, x))
    keras.mixed_precision.set_global_policy(policy)
    mixed = _model()
    mixed.set_weights(reference.get_weights())
    outputs = _outputs(mixed, x)
    assert keras.backend.standardize_dtype(outputs["reconstruction"].dtype) != "float32"
    total = mixed.compute_loss(x, ops.convert_to_tensor(y), outputs, training=False)
    assert keras.backend.standardize_dtype(total.dtype) == "float32"
    _, got = _terms(mixed, x, y, outputs)
    for name in ("labelled_loss", "unlabelled_loss", "classification_loss"):
        assert got[name] == pytest.approx(expected[name], rel=0.05, abs=0.05), name
    logs = mixed.fit(x, y, batch_size=8, verbose=0).history  # and it trains, loss in float32
    assert np.isfinite(logs["loss"][0])

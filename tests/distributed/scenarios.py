"""Training runs shared by the engine scripts `run_tf.py` and `run_jax.py`.

Each scenario trains the same model twice from the same initial weights on the
same data: once on one device and once data-parallel on two (virtual) devices.
The engine script supplies the two contexts; this module builds the models,
trains them and returns what the test compares, as plain JSON-friendly lists.

The comparison is deterministic because the encoder's `z_log_var` head is a
frozen Dense layer with a zero kernel and a bias of -30: sigma = exp(-15), so
z equals z_mean up to 3e-7 whatever eps the replicas draw.
"""

import keras
import numpy as np
from keras import layers

import vae_keras as vk

IMAGE_SHAPE = (6, 6, 1)
LATENT_DIM = 3
NUM_CLASSES = 4
BATCH_SIZE = 32  # global: 16 examples per replica on two devices
EPOCHS = 2


def build_encoder(conditional):
    """`conditional`: False, True (labels) or "prior" (a vector condition and a prior network)."""
    images = keras.Input(IMAGE_SHAPE, name="images")
    inputs = images
    h = layers.Flatten()(images)
    if conditional:
        label = keras.Input((NUM_CLASSES,), name="label")
        inputs = [images, label]
        h = layers.Concatenate()([h, label])
    h = layers.Dense(16, activation="relu")(h)
    z_mean = layers.Dense(LATENT_DIM, name="z_mean")(h)
    z_log_var = layers.Dense(
        LATENT_DIM,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(-30.0),
        trainable=False,
        name="z_log_var",
    )(h)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_model(conditional, beta, free_bits=0.0):
    decoder = vk.build_mlp_decoder(
        latent_dim=LATENT_DIM,
        hidden_units=(16,),
        num_classes=NUM_CLASSES if conditional else None,
        output_shape=IMAGE_SHAPE,
    )
    encoder = build_encoder(conditional)
    if conditional == "prior":
        condition = keras.Input((NUM_CLASSES,), name="condition")
        h = layers.Dense(8, activation="tanh")(condition)
        prior = keras.Model(
            condition, [layers.Dense(LATENT_DIM)(h), layers.Dense(LATENT_DIM)(h)], name="prior"
        )
        return vk.CVAE(encoder, decoder, prior=prior, beta=beta, seed=0, free_bits=free_bits)
    if conditional:
        return vk.CVAE(
            encoder, decoder, num_classes=NUM_CLASSES, beta=beta, seed=0, free_bits=free_bits
        )
    return vk.VAE(encoder, decoder, beta=beta, seed=0, free_bits=free_bits)


def make_data(n, conditional, weighted, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, *IMAGE_SHAPE)).astype("float32")
    if conditional == "prior":  # a vector condition, and a mask that scores some pixels
        condition = rng.normal(size=(n, NUM_CLASSES)).astype("float32")
        x = [images, condition, (rng.random((n, *IMAGE_SHAPE)) < 0.5).astype("float32")]
    elif conditional:
        x = [images, rng.integers(0, NUM_CLASSES, size=n)]
    else:
        x = images
    weights = rng.uniform(0.2, 2.0, size=n).astype("float32") if weighted else None
    return x, weights


class BatchLogs(keras.callbacks.Callback):
    """Records loss, reconstruction_loss, kl_loss and beta after every training step."""

    KEYS = ("loss", "reconstruction_loss", "kl_loss", "beta")

    def __init__(self):
        super().__init__()
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        self.rows.append([float(logs[k]) for k in self.KEYS])


# name: (conditional, number of examples, sample weights, beta schedule, free bits)
SCENARIOS = {
    "vae": (False, 150, False, None, 0.0),
    "vae_odd_weighted": (False, 149, True, None, 0.0),
    "cvae_weighted_warmup": (True, 150, True, "warmup", 0.0),
    # The KL of each latent dimension here is 14.5 nats plus z_mean**2 / 2, so a
    # floor of 14.62 is above some dimensions' batch means and below others'.
    "vae_free_bits": (False, 150, False, None, 14.62),
    # A CVAE with a learned prior p(z | c) and a mask (issue 17).
    "cvae_prior_masked": ("prior", 150, False, "warmup", 0.0),
}


def _beta(kind):
    # Rises over the first 7 of 10 steps, so both epochs see different values.
    return vk.LinearWarmup(warmup_steps=7, start=0.1) if kind == "warmup" else 1.0


def train(name, context, initial_weights=None, **compile_kwargs):
    """Trains scenario `name` inside `context()` (build, compile and fit); returns results."""
    conditional, n, weighted, beta, free_bits = SCENARIOS[name]
    x, weights = make_data(n, conditional, weighted)
    keras.utils.set_random_seed(0)
    with context():
        model = build_model(conditional, _beta(beta), free_bits)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), **compile_kwargs)
        if initial_weights is not None:
            model.set_weights([np.asarray(w) for w in initial_weights])
        start = [np.asarray(w).copy() for w in model.get_weights()]
        logs = BatchLogs()
        history = model.fit(
            x,
            sample_weight=weights,
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            shuffle=False,
            verbose=0,
            callbacks=[logs],
        )
        steps_per_execution = int(model.steps_per_execution)
        # The trackers' own result: under MirroredStrategy their variables are summed
        # over the replicas when read here, outside a replica's step.
        tracked = {
            tracker.name: float(np.asarray(keras.ops.convert_to_numpy(tracker.result())))
            for tracker in (model.reconstruction_loss_tracker, model.kl_loss_tracker)
        }
    return {
        "tracked": tracked,
        "initial_weights": [w.tolist() for w in start],
        "weights": [np.asarray(w).tolist() for w in model.get_weights()],
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "steps": logs.rows,
        "steps_per_execution": steps_per_execution,
        "training_steps": int(np.asarray(model.training_steps.value)),
    }


def compare_all(single, multi, names=tuple(SCENARIOS)):
    """Each scenario on one device, then on two from the first run's initial weights.

    The one-device run logs every step (`steps_per_execution=1`; TensorFlow's
    default of 32 would log once per 32 steps); the two-device run uses the
    package's default `compile()`.
    """
    results = {}
    for name in names:
        one = train(name, single, steps_per_execution=1)
        two = train(name, multi, initial_weights=one["initial_weights"])
        results[name] = {"one_device": one, "two_devices": two}
    return results


def save_and_load(multi, single_device_model, out_dir):
    """Distributed -> .keras for the test to load on one device, and the reverse.

    Trains the plain VAE scenario under `multi` and saves it; loads
    `single_device_model` (saved by the test on one device) under `multi`
    with `safe_mode=True` and evaluates it there.
    """
    x, _ = make_data(150, False, False)
    keras.utils.set_random_seed(0)
    with multi():
        model = build_model(False, 1.0)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
        model.fit(x, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    path = f"{out_dir}/trained_on_two_devices.keras"
    model.save(path)
    predicted = model.predict(x[:8], verbose=0)
    with multi():
        loaded = keras.models.load_model(single_device_model, safe_mode=True)
        evaluated = loaded.evaluate(x, batch_size=BATCH_SIZE, verbose=0, return_dict=True)
        loaded_predicted = loaded.predict(x[:8], verbose=0)
        # It also keeps training there (the optimizer state came with the file).
        loaded.fit(x, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    return {
        "saved": path,
        "saved_predict": predicted.tolist(),
        "loaded_evaluate": {k: float(v) for k, v in evaluated.items()},
        "loaded_predict": loaded_predicted.tolist(),
        "loaded_steps_per_execution": int(loaded.steps_per_execution),
        "loaded_training_steps": int(np.asarray(loaded.training_steps.value)),
    }

"""`NaNGuard`: stops training at the first non-finite step, restores finite weights, says why.

Re-exported as `vae_keras.callbacks.NaNGuard`, beside the other callbacks.
"""

import math

import keras
import numpy as np
from keras import ops

from vae_keras import _validation
from vae_keras._inputs import check_examples, check_model

__all__ = ["NaNGuard"]

# exp(x) overflows float32 above this.
_FLOAT32_EXP_LIMIT = math.log(np.finfo("float32").max)


def reconstruct(model, x):
    """`(z_mean, z_log_var, mean reconstruction)` of `x` as NumPy (the mask, if any, unused)."""
    z_mean, z_log_var = model.encode(x)
    decoded = model.decode([z_mean, x[1]] if model.conditional else z_mean)
    return tuple(ops.convert_to_numpy(t) for t in (z_mean, z_log_var, decoded))


def _finite(value):
    """Whether every entry of a NumPy-convertible value (a logged term, a weight) is finite."""
    return bool(np.all(np.isfinite(np.asarray(value, dtype="float64"))))


def _variable_groups(model):
    return (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)


# ------------------------------------------------------------------- NaN guard
class _Snapshot:
    """Copies of the model's variables and optimizer state at one training step."""

    def __init__(self, model):
        state = getattr(model, "_jax_state", None)
        unsynced = state and not getattr(model, "_jax_state_synced", True)
        if keras.backend.backend() == "jax" and unsynced:
            # JAX's fit keeps the current values outside the variables between syncs.
            kinds = ("trainable_variables", "non_trainable_variables", "optimizer_variables")
            groups = [state[kind] for kind in kinds]
        else:
            groups = _variable_groups(model)
        self.values = tuple(
            [np.array(ops.convert_to_numpy(value), copy=True) for value in group]
            for group in groups
        )
        optimizer = model.optimizer
        iterations = [i for i, v in enumerate(optimizer.variables) if v is optimizer.iterations]
        self.step = int(self.values[2][iterations[0]]) if iterations else None
        self.non_finite = [
            variable.path
            for variable, value in zip(model.trainable_variables, self.values[0])
            if not np.all(np.isfinite(value))
        ]

    def restore(self, model):
        if keras.backend.backend() == "jax":
            model.jax_state_sync()
        for variables, values in zip(_variable_groups(model), self.values):
            for variable, value in zip(variables, values):
                variable.assign(value)


_TERMS = ("reconstruction_loss", "kl_loss", "loss")


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite step, restores finite weights, says why.

    After every call into the training function (every step on JAX and
    PyTorch; every `steps_per_execution` steps on TensorFlow, 32 by default
    for `vk.VAE`) the guard reads `loss`, `reconstruction_loss` and `kl_loss`
    from the logs and copies the weights and the optimizer state. If a term
    or a weight is NaN or infinite it stops training, puts back the last copy
    that was finite (so a `ModelCheckpoint` that comes after it in the
    `callbacks` list never saves diverged weights, not even as the "best" of
    a first epoch), and prints a diagnosis, kept in `report`:

    - which logged terms were non-finite, and the step window in which the
      first non-finite value appeared (one step where checks run every step);
    - with a diagnosis batch `x`, a replay: from the restored weights and
      optimizer state it trains on `x` one step at a time (at most
      `max_replay_steps`), checking after each step, in this order, the
      encoder's outputs `z_mean` and `z_log_var`, the decoder's output, the
      reconstruction term, the KL term, the total loss and the updated
      weights, and names the first that became non-finite, with the likeliest
      cause (an exploding `z_log_var`, a too-large learning rate or beta, ...).
      Afterwards the restored state is put back again;
    - the learning rate and beta in use.

    Copying the weights at every check costs time proportional to the model's
    size (a few milliseconds per step for the tutorial's models on a CPU).
    Put the guard first in the `callbacks` list.

    Args:
        x: Optional diagnosis batch: images (for a CVAE `[images, labels]`),
            NumPy-like, a few dozen examples from the training data. Without
            it the guard still stops and restores, and reports the logged
            terms.
        max_replay_steps: Most replay steps of the diagnosis.
        verbose: 1 prints the report when it stops training; 0 only keeps it.

    Attributes:
        stopped_step: Optimizer step at which the non-finite value was seen,
            or `None` while training is finite.
        restored_step: Optimizer step of the restored weights.
        first_non_finite: Name of the quantity that became non-finite first in
            the replay (`"z_mean"`, `"z_log_var"`, `"reconstruction"`,
            `"reconstruction_loss"`, `"kl_loss"`, `"loss"`, `"weights"`), or
            `None`.
        report: The diagnosis as text.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> head = vae.encoder.layers[-1]  # the z_log_var head: start it at 100
    >>> head.set_weights([head.get_weights()[0], head.get_weights()[1] + 100.0])
    >>> guard = vk.callbacks.NaNGuard(x[:32], verbose=0)
    >>> history = vae.fit(x, epochs=3, batch_size=32, verbose=0, callbacks=[guard])
    >>> guard.first_non_finite  # exp(100) overflows float32
    'z_log_var'
    >>> guard.stopped_step is not None
    True
    >>> all(np.isfinite(w).all() for w in vae.get_weights())
    True
    """

    def __init__(self, x=None, max_replay_steps=100, verbose=1):
        super().__init__()
        where = "NaNGuard"
        if x is not None:
            check_examples(x, where)
        self.x = x
        self.max_replay_steps = _validation.integer(max_replay_steps, "max_replay_steps", where)
        if verbose not in (0, 1):
            raise ValueError(f"{where}: verbose must be 0 or 1; received verbose={verbose!r}")
        self.verbose = verbose
        self._snapshot = None
        self._reset()

    def _reset(self):  # the attributes of a guard that has found nothing yet
        self.stopped_step = self.restored_step = self.first_non_finite = self.report = None

    def set_model(self, model):
        if self.x is not None:
            check_model(model, "NaNGuard")
        super().set_model(model)

    def on_train_begin(self, logs=None):
        self._reset()
        optimizer = self.model.optimizer
        if not optimizer.built:
            # Keras builds it at the first step; the snapshot needs its slots now.
            optimizer.build(self.model.trainable_variables)
        snapshot = _Snapshot(self.model)
        if snapshot.non_finite:
            raise ValueError(
                "NaNGuard: the model's weights are not finite before training starts; "
                f"received non-finite values in {', '.join(snapshot.non_finite)}"
            )
        self._snapshot = snapshot

    def on_train_batch_end(self, batch, logs=None):
        if self.stopped_step is not None:
            return
        logs = logs or {}
        bad_terms = [name for name in _TERMS if name in logs and not _finite(logs[name])]
        snapshot = _Snapshot(self.model)
        if not bad_terms and not snapshot.non_finite:
            self._snapshot = snapshot
            return
        self.model.stop_training = True
        self.stopped_step = snapshot.step
        self.restored_step = self._snapshot.step
        self._snapshot.restore(self.model)
        self.report = self._diagnose(bad_terms, snapshot)
        if self.verbose:
            print(self.report, flush=True)

    # ------------------------------------------------------------ diagnosis
    def _diagnose(self, bad_terms, snapshot):
        model = self.model
        first_bad = self.restored_step + 1 if self.restored_step is not None else None
        if first_bad is not None and first_bad < self.stopped_step:
            window = f"between steps {first_bad} and {self.stopped_step}"
        else:
            window = f"at step {self.stopped_step}"
        if bad_terms:
            found = (
                f"{_join(bad_terms)} {'is' if len(bad_terms) == 1 else 'are'} non-finite "
                f"in the logs (epoch means) after step {self.stopped_step}"
            )
        else:
            found = (
                f"every logged term is finite, but weights are not after step "
                f"{self.stopped_step} ({_join(snapshot.non_finite[:3])}"
                f"{', ...' if len(snapshot.non_finite) > 3 else ''})"
            )
        stopped = (
            f"NaNGuard: training stopped: {found}; the first non-finite value came {window}. "
            f"The weights and optimizer state of step {self.restored_step}, the last "
            "finite ones, are restored."
        )
        beta = float(ops.convert_to_numpy(model.current_beta()))
        settings = f"learning rate {_learning_rate(model):.3g}, beta {beta:.3g}"
        if self.x is None:
            return (
                f"{stopped}\nSettings: {settings}. Give NaNGuard(x=...) a batch of training "
                "images to find which quantity diverged first."
            )
        finding = self._replay()
        self._snapshot.restore(model)
        self.first_non_finite = finding["name"]
        return (
            f"{stopped}\n{finding['text']}\nLikeliest cause: {finding['cause']} (with {settings})."
        )

    def _replay(self):
        """Trains on `x` from the restored state, checking each quantity after each step."""
        model = self.model
        metric_values = [np.array(ops.convert_to_numpy(v)) for v in model.metrics_variables]
        learning_rate = _learning_rate(model)
        previous = None
        try:
            for updates in range(self.max_replay_steps + 1):
                z_mean, z_log_var, reconstruction = reconstruct(model, self.x)
                names = ("z_mean", "z_log_var", "reconstruction")  # in the order of the pass
                for name, value in zip(names, (z_mean, z_log_var, reconstruction)):
                    if not np.all(np.isfinite(value)):
                        return _finding(name, updates, previous, learning_rate)
                current = {
                    "z_mean": float(np.max(np.abs(z_mean))),
                    "z_log_var": float(np.max(z_log_var)),
                }
                if current["z_log_var"] > _FLOAT32_EXP_LIMIT:
                    return _finding(
                        "z_log_var_overflow", updates, previous, learning_rate, value=current
                    )
                if updates == self.max_replay_steps:
                    break
                logs = model.train_on_batch(self.x, return_dict=True)
                for name in _TERMS:
                    if name in logs and not np.isfinite(float(logs[name])):
                        # computed with the weights checked above, before this update
                        return _finding(name, updates, current, learning_rate, logs=logs, now=True)
                weights = [ops.convert_to_numpy(w) for w in model.trainable_weights]
                if not all(np.all(np.isfinite(w)) for w in weights):
                    return _finding("weights", updates + 1, current, learning_rate)
                previous = current
        finally:
            for variable, value in zip(model.metrics_variables, metric_values):
                variable.assign(value)
        return {
            "name": None,
            "text": (
                f"Replay on the diagnosis batch: {self.max_replay_steps} steps from the restored "
                "weights stayed finite, so the divergence depends on the training batches."
            ),
            "cause": (
                "a learning rate too large for some training batches, or extreme values in "
                "them; lower the learning rate or clip gradients (clipnorm=1.0)"
            ),
        }


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _learning_rate(model):
    try:
        return float(ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return float("nan")


_LOWER = (
    "lower the learning rate (now {rate:.3g}) or clip gradients "
    "(e.g. keras.optimizers.Adam(clipnorm=1.0))"
)
# What the replay can find non-finite first, and what was still finite beside it.
_FIRST = {
    "z_mean": ("the encoder's output z_mean", ""),
    "z_log_var": ("the encoder's output z_log_var", ""),
    "reconstruction": ("the decoder's output", ""),
    "reconstruction_loss": (
        "the reconstruction term",
        ", while z_mean, z_log_var and the mean reconstruction were finite",
    ),
    "kl_loss": ("the KL term", ""),
    "loss": ("the total loss", ", while the reconstruction and KL terms were finite"),
    "weights": ("the weights", ", while every loss term was finite: the gradients overflowed"),
}
# Its likeliest cause ...
_CAUSES = {
    "z_mean": "the encoder's weights diverged; {lower}",
    "z_log_var": "the encoder's weights diverged; {lower}",
    "reconstruction": "the decoder's weights diverged; {lower}",
    "reconstruction_loss": "the decoder diverged on the sampled z; {lower}",
    "kl_loss": "z_mean or z_log_var so large that the KL overflowed; {lower}",
    "loss": "a regularization loss of the encoder or decoder diverged",
    "weights": "a learning rate too large; {lower}",
}
# ... or, where z_log_var was already exploding (above half the float32 limit), this one.
_EXPLODING_CAUSES = {
    "z_log_var": "an exploding z_log_var; {lower}, or bound z_log_var in the encoder",
    "reconstruction_loss": (
        "an exploding z_log_var (the sampled z = z_mean + exp(z_log_var / 2) * eps "
        "overflowed); {lower}"
    ),
    "kl_loss": "an exploding z_log_var (exp(z_log_var) in the KL overflowed); {lower}",
}


def _finding(name, updates, before, learning_rate, logs=None, value=None, now=False):
    """Text and likeliest cause for the first non-finite quantity of the replay.

    `updates` is the number of replay updates applied when it was seen; `before`
    holds the largest |z_mean| and z_log_var one update earlier (or, with `now`,
    at the weights the non-finite loss term was computed with).
    """
    where = f"after {updates} replay update{'s' if updates != 1 else ''}"
    context, exploding = "", False
    if before is not None:
        when = "At those weights" if now else "One update earlier"
        context = (
            f" {when} the largest z_log_var was {before['z_log_var']:.3g} and the "
            f"largest |z_mean| {before['z_mean']:.3g}."
        )
        exploding = before["z_log_var"] > 0.5 * _FLOAT32_EXP_LIMIT
    if name == "z_log_var_overflow":
        name, cause = "z_log_var", _EXPLODING_CAUSES["z_log_var"]
        text = (
            f"z_log_var reached {value['z_log_var']:.3g} {where}, past {_FLOAT32_EXP_LIMIT:.1f} "
            "where exp(z_log_var) overflows float32."
        )
    else:
        what, finite = _FIRST[name]
        text = f"{what} became non-finite first, {where}{finite}."
        cause = _CAUSES[name]
        if exploding:
            cause = _EXPLODING_CAUSES.get(name, cause)
    beta = (logs or {}).get("beta")
    if name == "loss" and beta is not None and np.isfinite(beta) and beta > 1e6:
        cause = f"beta times the KL term overflowed: beta ({beta:.3g}) is too large"
    cause = cause.format(lower=_LOWER.format(rate=learning_rate))
    return {"name": name, "text": f"Replay on the diagnosis batch: {text}{context}", "cause": cause}

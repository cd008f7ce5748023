"""VAE and CVAE as `keras.Model` subclasses that train with a plain `fit`.

What one training step computes, on every backend:

1. One encoder pass: `z_mean, z_log_var = encoder(x)`.
2. One draw `z = z_mean + exp(0.5 * z_log_var) * eps` (the `Sampling` layer).
3. One decoder pass: `reconstruction = decoder(z)`.
4. The negative ELBO, per example and averaged over the batch:
   `reconstruction_loss + beta * kl_loss` (plus any regularization losses of the
   sub-models), computed in float32 whatever the compute dtype.

`beta` is a number or a Keras schedule (`LearningRateSchedule`, e.g.
`vk.LinearWarmup` for KL warm-up or `vk.CyclicalAnnealing`), evaluated at the
model's own training step counter inside the compiled step; `model.beta = x`
takes effect from the next step. `free_bits` (Kingma et al., 2016) puts a floor
under each latent dimension's batch-average KL in the loss.

The rest lives beside this file, one concern each, and the model class
inherits the two mixins: the checks of user data and the entry points that run
them, `fit` to `predict_on_batch` (`_inputs.py`, `CheckedEntryPoints`); the
compile policy and `compile` (`_execution.py`, `CompilePolicy`); the checks of
the sub-models (`_submodels.py`); multi-device training (`_distribution.py`);
and the number validators (`_validation.py`).
"""

import contextlib
import math
import threading

import keras
import numpy as np
from keras import ops

from vae_keras import _distribution, _submodels, _validation
from vae_keras._execution import CompilePolicy
from vae_keras._inputs import CheckedEntryPoints, one_hot, static_shape
from vae_keras.layers import Sampling
from vae_keras.losses import (
    LIKELIHOODS,
    VAELoss,
    kl_divergence,
    kl_per_dimension,
    likelihood_mean,
)

__all__ = ["VAE", "CVAE"]

# Models whose training or evaluation step is running in this thread (see
# `_LatentVariableModel`'s docstring). Thread-local because tf.distribute runs one
# thread per replica.
_STEP_CONTEXT = threading.local()


@contextlib.contextmanager
def _inside_step(model):
    active = getattr(_STEP_CONTEXT, "models", None)
    if active is None:
        active = _STEP_CONTEXT.models = set()
    key = id(model)
    entered = key not in active
    active.add(key)
    try:
        yield
    finally:
        if entered:
            active.discard(key)


def _is_inside_step(model):
    return id(model) in getattr(_STEP_CONTEXT, "models", ())


class _CurrentValue(keras.metrics.Metric):
    """A metric that reports the last value it was given (the beta in use)."""

    def __init__(self, name, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.value = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, aggregation="mean", name="value"
        )

    def update_state(self, value):
        self.value.assign(ops.cast(value, self.dtype))

    def result(self):
        return ops.convert_to_tensor(self.value)

    def reset_state(self):
        self.value.assign(ops.zeros((), self.dtype))


def _parse_beta(value, where):
    """Returns `(schedule, number)`: exactly one of them is not None."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value, None
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise ValueError(
            f"{where}: beta must be a number or a keras.optimizers.schedules."
            f"LearningRateSchedule; received beta={value!r}"
        )
    return None, _validation.number(value, "beta", where, non_negative=True)


def _carries_weights_only(y):
    """The empty `(n, 0)` targets the entry points pass so that Keras keeps sample weights."""
    shape = static_shape(y) if hasattr(y, "shape") else None
    return shape is not None and len(shape) == 2 and shape[-1] == 0


def _host_array(x):
    """NumPy arrays and Python lists: data on the host that public methods check."""
    return isinstance(x, (np.ndarray, list))


def _tile(x, k):
    """`k` copies of a batch stacked along the batch axis: rows `[x_1..x_n, x_1..x_n, ...]`."""
    if x is None or k == 1:
        return x
    return ops.tile(x, (k,) + (1,) * (len(ops.shape(x)) - 1))


def _masked_reconstruction_loss(loss_fn, images, reconstruction, weight):
    """Sum over pixels of `mask * -log p(pixel | z)`, one value per example.

    The loss sums its per-element terms over every non-batch axis, so on arrays
    of shape `(elements, 1)` it returns the per-element terms themselves.
    """
    per_element = loss_fn(ops.reshape(images, (-1, 1)), ops.reshape(reconstruction, (-1, 1)))
    per_element = ops.reshape(per_element, ops.shape(images))
    weight = ops.broadcast_to(weight, ops.shape(images))
    axes = tuple(range(1, len(ops.shape(images))))
    return ops.sum(per_element * weight, axis=axes)


def _log_prior_ratio(z_mean, z_log_var, epsilon, prior_mean=None, prior_log_var=None):
    """`log p(z) - log q(z | x)` per row for `z = z_mean + exp(z_log_var / 2) * epsilon`.

    `log q(z | x) = -1/2 sum_j (log 2 pi + z_log_var_j + epsilon_j^2)`, and
    `log p(z) = -1/2 sum_j (log 2 pi + z_j^2)` for N(0, I) or, for p(z | c) =
    N(m, diag(exp(s))), `-1/2 sum_j (log 2 pi + s_j + (z_j - m_j)^2 exp(-s_j))`;
    the `log 2 pi` terms cancel. In float32.
    """
    z_mean, z_log_var, epsilon = (ops.cast(t, "float32") for t in (z_mean, z_log_var, epsilon))
    z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
    if prior_mean is None:
        log_p = ops.square(z)
    else:
        prior_log_var = ops.cast(prior_log_var, "float32")
        log_p = prior_log_var + ops.square(z - ops.cast(prior_mean, "float32")) * ops.exp(
            -prior_log_var
        )
    return -0.5 * ops.sum(log_p - z_log_var - ops.square(epsilon), axis=-1)


def _log_mean_exp(values):
    """`log (1/k) sum_i exp(values_i)` over axis 0, stable for any magnitude."""
    return ops.logsumexp(values, axis=0) - math.log(values.shape[0])


class _LatentVariableModel(CheckedEntryPoints, CompilePolicy, keras.Model):
    """Shared machinery of `VAE` and `CVAE`: state, forward pass, loss, saving.

    One forward pass per step: Keras' `train_step` and `test_step` call the
    model and then pass what it returned to `compute_loss`. While one of this
    model's steps runs (a thread-local flag set by `train_step`/`test_step`),
    `call` returns `{reconstruction, z_mean, z_log_var}` from one encoder pass,
    one draw and one decoder pass, and `compute_loss` reads them, so a
    BatchNormalization updates its statistics once and a Dropout draws once.
    Everywhere else (`model(x)`, `predict`, a serving export) `call` returns the
    deterministic mean reconstruction `decoder(z_mean)`. The flag is needed
    because Keras calls the model with `training=False` both in `test_step`,
    which needs the sampled pass, and in `predict_step`, which must not sample.
    """

    _conditional = False

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        seed=None,
        likelihood="bernoulli",
        free_bits=0.0,
        sigma=1.0,
        importance_samples=1,
        _prior=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        for role, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.layers.Layer):
                raise TypeError(
                    f"{name}: {role} must be a Keras model or layer; received {type(model).__name__}"
                )
        beta_schedule, beta_number = _parse_beta(beta, name)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"{name}: unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}"
            )
        sigma = _validation.number(sigma, "sigma", name, positive=True)
        if likelihood != "gaussian" and sigma != 1.0:
            raise ValueError(
                f"{name}: sigma is the standard deviation of the Gaussian likelihood; with "
                f"likelihood={likelihood!r} leave it at 1; received sigma={sigma!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        # A CVAE's network for p(z | c); None means N(0, I). Set here, before `build`
        # below locks the model's state (and as an attribute, not a class default,
        # which PyTorch's module lookup would return instead of the sub-model).
        self.prior = _prior
        self.seed = _validation.seed(seed, name)
        self.likelihood = likelihood
        self._free_bits = _validation.number(free_bits, "free_bits", name, non_negative=True)
        self.importance_samples = _validation.positive_int(
            importance_samples, "importance_samples", name
        )
        self._check_importance_settings(beta_schedule, beta_number, self._free_bits)
        self._latent_dim = _submodels.functional_latent_dim(encoder, decoder)
        self.sampler = Sampling(seed=seed, name="sampling")
        self.reconstruction_loss_fn = VAELoss(likelihood=likelihood, sigma=sigma, reduction=None)
        # State the compiled step reads, so that changing it needs no retracing.
        self.training_steps = keras.Variable(
            0,
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="training_steps",
        )
        self._beta_variable = keras.Variable(
            0.0 if beta_number is None else beta_number,
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="beta",
        )
        self._beta_schedule = beta_schedule
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.beta_tracker = _CurrentValue(name="beta")
        self._check_sub_models()
        input_shape = _submodels.functional_input_shape(encoder)
        if input_shape is not None and encoder.built and decoder.built:
            # Records the input shape as Keras does on a first call, so that
            # `export` and `get_build_config` know it.
            self.build(input_shape)

    def _check_sub_models(self):
        _submodels.check_functional_shapes(type(self).__name__, self.encoder, self.decoder)

    def build(self, input_shape):
        """Builds sub-models that are not built yet, by tracing the mean reconstruction."""
        if not (self.encoder.built and self.decoder.built) or self._latent_dim is None:
            specs = keras.tree.map_shape_structure(
                lambda shape: keras.KerasTensor(shape, dtype=self.input_dtype), input_shape
            )
            self._mean_reconstruction(specs)  # symbolic: builds, computes nothing

    # ------------------------------------------------------- beta, free bits
    @property
    def beta(self):
        """The KL weight: a number, or the schedule evaluated at `training_steps`.

        Assigning a new value (also from a callback, during `fit`) takes effect
        from the next training step. Assigning a number to a model whose beta
        is a number only updates a variable; switching between a number and a
        schedule, or to another schedule, rebuilds the compiled step.
        """
        if self._beta_schedule is not None:
            return self._beta_schedule
        return float(ops.convert_to_numpy(self._read_state(self._beta_variable)))

    @beta.setter
    def beta(self, value):
        schedule, number = _parse_beta(value, type(self).__name__)
        self._check_importance_settings(schedule, number, self._free_bits)
        if schedule is None:
            self._assign_state(self._beta_variable, number)
        if schedule is not None or self._beta_schedule is not None:
            self._beta_schedule = schedule
            self._rebuild_step_functions()

    @property
    def free_bits(self):
        """The per-dimension KL floor in nats (Kingma et al., 2016); 0 turns it off."""
        return self._free_bits

    @free_bits.setter
    def free_bits(self, value):
        value = _validation.number(value, "free_bits", type(self).__name__, non_negative=True)
        self._check_importance_settings(None, None, value)
        if value != self._free_bits:
            self._free_bits = value
            self._rebuild_step_functions()

    @property
    def sigma(self):
        """Standard deviation of the Gaussian likelihood (1 for the Bernoulli one).

        Read from the reconstruction loss, so the loss, `log_likelihood` and the
        saved config always agree.
        """
        return float(self.reconstruction_loss_fn.sigma)

    def _check_importance_settings(self, beta_schedule, beta_number, free_bits):
        """The IWAE bound has no separate KL term: beta stays 1 and free bits 0."""
        if self.importance_samples == 1:
            return
        name = type(self).__name__
        where = (
            f"{name}: with importance_samples={self.importance_samples} the loss is the IWAE bound"
        )
        if beta_schedule is not None or (beta_number is not None and beta_number != 1.0):
            shown = beta_schedule if beta_schedule is not None else beta_number
            raise ValueError(
                f"{where}, which has no KL term for beta to weight; beta must be 1; "
                f"received beta={shown!r}"
            )
        if free_bits:
            raise ValueError(
                f"{where}, which has no per-dimension KL term for free bits to floor; free_bits "
                f"must be 0; received free_bits={free_bits!r}"
            )

    def _current_beta(self):
        if self._beta_schedule is None:
            return ops.convert_to_tensor(self._beta_variable)
        return ops.cast(self._beta_schedule(self.training_steps), "float32")

    def _read_state(self, variable):
        """The variable's value, also while JAX's `fit` holds the state outside the model."""
        if _distribution.backend_is("jax") and getattr(self, "_jax_state", None):
            self.jax_state_sync()
        return variable.value

    def _assign_state(self, variable, value):
        if _distribution.backend_is("jax") and getattr(self, "_jax_state", None):
            # JAX's fit keeps the state outside the model between syncs: sync, so
            # the assignment below is what the next step reads.
            self.jax_state_sync()
        variable.assign(value)

    def _rebuild_step_functions(self):
        """Re-traces the compiled train/test steps that captured Python-level settings."""
        for attribute, make in (
            ("train_function", "make_train_function"),
            ("test_function", "make_test_function"),
        ):
            if getattr(self, attribute, None) is not None:
                getattr(self, make)(force=True)

    def log_likelihood(self, x, num_samples=1000, batch_size=None, seed=None):
        """Importance-sampled estimate of log p(x) per example, in nats.

        See `vae_keras.evaluation.log_likelihood`; for a `CVAE`, `x` is
        `[images, labels]` and the estimate is the conditional log p(x | y).
        """
        from vae_keras import evaluation

        return evaluation.log_likelihood(
            self, x, num_samples=num_samples, batch_size=batch_size, seed=seed
        )

    # ------------------------------------------------------------ training
    def train_step(self, *args, **kwargs):
        with _inside_step(self):
            return super().train_step(*args, **kwargs)

    def test_step(self, *args, **kwargs):
        with _inside_step(self):
            return super().test_step(*args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative ELBO of the batch `x`: reconstruction + beta * KL (+ added losses).

        Both terms are computed per example (in nats, in float32) and averaged
        over the batch; the metrics `reconstruction_loss`, `kl_loss` and `beta`
        track them. With `free_bits > 0` the KL term of the loss is
        `sum_j max(free_bits, mean_batch KL_j)`; `kl_loss` still reports the
        true KL. `y_pred` is what `call` returned inside the training step (the
        three tensors of one forward pass); any other `y_pred`, such as the
        mean reconstruction from a plain `model(x)`, is ignored and the forward
        pass is run here.
        """
        if y is not None and not _carries_weights_only(y):
            raise ValueError(self._input_checks().no_targets_message())
        images, condition = self._unpack(x)
        if isinstance(y_pred, dict) and set(y_pred) == self._forward_keys():
            outputs = y_pred
        else:
            outputs = self._forward(images, condition, training=training)
        images = ops.cast(images, "float32")
        reconstruction = ops.cast(outputs["reconstruction"], "float32")
        z_mean = ops.cast(outputs["z_mean"], "float32")
        z_log_var = ops.cast(outputs["z_log_var"], "float32")
        prior = ()
        if "prior_mean" in outputs:  # KL(q(z | x, c) || p(z | c)), Sohn et al. (2015)
            prior = tuple(ops.cast(outputs[k], "float32") for k in ("prior_mean", "prior_log_var"))
        mask = self._input_checks().mask_of(x)
        k = self.importance_samples
        reconstruction_loss = self._negative_log_px(
            _tile(images, k), reconstruction, _tile(mask, k)
        )
        if k > 1:
            log_p_minus_log_q = _log_prior_ratio(
                _tile(z_mean, k),
                _tile(z_log_var, k),
                outputs["epsilon"],
                *map(_tile, prior, (k, k)),
            )
            bound = _log_mean_exp(ops.reshape(log_p_minus_log_q - reconstruction_loss, (k, -1)))
            # the ELBO's reconstruction term, estimated with the k draws, for the metric
            reconstruction_loss = ops.mean(ops.reshape(reconstruction_loss, (k, -1)), axis=0)
        if self._free_bits:
            kl_terms = kl_per_dimension(z_mean, z_log_var, *prior)
        else:
            kl_terms = kl_divergence(z_mean, z_log_var, *prior)
        if sample_weight is not None:
            weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            reconstruction_loss = reconstruction_loss * weight
            kl_terms = kl_terms * (weight if self._free_bits == 0 else weight[:, None])
            if k > 1:
                bound = bound * weight
        reconstruction_loss = ops.mean(reconstruction_loss)
        batch_size = ops.shape(images)[0]
        if self._free_bits:
            kl_per_dim = ops.mean(kl_terms, axis=0)
            kl_loss = ops.sum(kl_per_dim)
            kl_term = _distribution.free_bits_term(kl_per_dim, batch_size, self._free_bits)
        else:
            kl_loss = kl_term = ops.mean(kl_terms)
        beta = self._current_beta()
        if training:
            self.training_steps.assign_add(1)
        if k > 1:
            total = -ops.mean(bound)  # -L_k (beta is 1 and free bits 0 here)
        else:
            total = reconstruction_loss + beta * kl_term
        for extra in self.losses:  # e.g. weight regularizers of the sub-models
            total = total + ops.cast(extra, total.dtype)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss, sample_weight=batch_size)
        self.kl_loss_tracker.update_state(kl_loss, sample_weight=batch_size)
        self.beta_tracker.update_state(beta)
        return _distribution.scale_for_replicas(total, batch_size)

    def _negative_log_px(self, images, reconstruction, mask):
        """-log p(x | z) per row (up to the Gaussian's constant); only masked pixels with a mask."""
        if mask is None:
            return self.reconstruction_loss_fn(images, reconstruction)
        # Only the masked pixels' terms count; the KL term is not masked.
        return _masked_reconstruction_loss(
            self.reconstruction_loss_fn, images, reconstruction, ops.cast(mask, "float32")
        )

    # ------------------------------------------------------- forward pass
    def _encode(self, images, condition, training=None):
        inputs = images if condition is None else [images, condition]
        outputs = self.encoder(inputs, training=training)
        z_mean, z_log_var = _submodels.check_encoder_outputs(type(self).__name__, outputs)
        width = static_shape(z_mean)[-1]
        if width is not None:
            self._latent_dim = width
        return z_mean, z_log_var

    def _decode(self, z, condition, training=None):
        inputs = z if condition is None else [z, condition]
        return self.decoder(inputs, training=training)

    def _prior_params(self, condition, training=None):
        """`(prior_mean, prior_log_var)` of p(z | c) from the prior network."""
        outputs = self.prior(condition, training=training)
        return _submodels.check_prior_outputs(type(self).__name__, outputs, self._latent_dim)

    def _forward_keys(self):
        keys = {"reconstruction", "z_mean", "z_log_var"}
        if self.importance_samples > 1:
            keys = keys | {"epsilon"}
        return keys | {"prior_mean", "prior_log_var"} if self.prior is not None else keys

    def _forward(self, images, condition, training=None):
        """One encoder pass, one draw of z, one decoder pass (and one prior pass, if any).

        With `importance_samples=k > 1`: k draws per example and one decoder
        pass over the k * batch codes; the reconstruction then has k * batch rows
        (draw-major: row `i * batch + j` is draw i of example j) and the draws'
        `epsilon` is returned with it.
        """
        z_mean, z_log_var = self._encode(images, condition, training=training)
        outputs = {"z_mean": z_mean, "z_log_var": z_log_var}
        k = self.importance_samples
        if k == 1:
            z = self.sampler([z_mean, z_log_var])
        else:
            # k draws per example, decoded in one call on the k * batch codes; the
            # draws are kept, since the IWAE bound scores each of them under q and p.
            mean, log_var = _tile(z_mean, k), _tile(z_log_var, k)
            epsilon = keras.random.normal(
                ops.shape(mean), dtype="float32", seed=self.sampler.seed_generator
            )
            outputs["epsilon"] = epsilon
            z = ops.cast(mean, "float32") + ops.exp(0.5 * ops.cast(log_var, "float32")) * epsilon
            z = ops.cast(z, self.compute_dtype)
        reconstruction = self._decode(z, _tile(condition, k), training=training)
        _submodels.check_reconstruction(type(self).__name__, images, reconstruction)
        outputs["reconstruction"] = reconstruction
        if self.prior is not None:
            prior_mean, prior_log_var = self._prior_params(condition, training=training)
            outputs.update(prior_mean=prior_mean, prior_log_var=prior_log_var)
        return outputs

    def _mean_reconstruction(self, inputs, training=None):
        images, condition = self._unpack(inputs)
        z_mean, _ = self._encode(images, condition, training=training)
        # float32 whatever the compute dtype, so predict() gives ordinary arrays
        output = ops.cast(self._decode(z_mean, condition, training=training), "float32")
        return likelihood_mean(output, self.likelihood)  # the mean of p(x | z), not lambda

    def call(self, inputs, training=None):
        if _is_inside_step(self):
            images, condition = self._unpack(inputs)
            return self._forward(images, condition, training=training)
        return self._mean_reconstruction(inputs, training=training)

    def _encode_public(self, inputs, training):
        self._input_checks().check_inputs(inputs, host_only=True)
        images, condition = self._unpack(inputs)
        if _host_array(images):
            images = ops.convert_to_tensor(np.asarray(images))
        z_mean, z_log_var = self._encode(images, condition, training=training)
        return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")

    def _decode_public(self, z, condition, training):
        if _host_array(z):
            z = self._checked_codes(np.shape(z)[0] if np.ndim(z) else None, z, "decode")
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        return ops.cast(self._decode(z, condition, training=training), "float32")

    # ---------------------------------------------------------- generation
    @property
    def latent_dim(self):
        """Width of the latent space: declared by functional sub-models, else seen in a call.

        `None` while it is unknown (subclassed sub-models before the first call).
        """
        return self._latent_dim

    def _checked_codes(self, n, z, where):
        """`z` as float32 NumPy, shape `(n, latent_dim)`; one code is repeated n times."""
        z = np.asarray(z, dtype="float32")
        latent_dim = self._latent_dim if self._latent_dim is not None else z.shape[-1]
        if z.ndim == 1 and n is not None:
            z = np.broadcast_to(z, (n, z.shape[0]))
        if z.ndim != 2 or z.shape[1] != latent_dim or (n is not None and z.shape[0] != n):
            raise ValueError(
                f"{type(self).__name__}.{where}: z must have shape ({n}, {latent_dim}) "
                f"or ({latent_dim},); received {z.shape}"
            )
        if not np.isfinite(z).all():
            raise ValueError(f"{type(self).__name__}.{where}: z contains NaN or infinite values")
        return z

    def _prior_samples(self, n, z, seed):
        if z is not None:
            return self._checked_codes(n, z, "generate")
        latent_dim = self._latent_dim
        if latent_dim is None:
            raise ValueError(
                f"{type(self).__name__}.generate: latent_dim is unknown until the model has been "
                "built or called (train it, call it on a batch, or give z)"
            )
        seed = _validation.seed(seed, f"{type(self).__name__}.generate")
        if seed is not None:
            return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype("float32")
        # Keras' global seed generator: fixed by keras.utils.set_random_seed,
        # and NumPy's global stream is left alone.
        return ops.convert_to_numpy(keras.random.normal((n, latent_dim), dtype="float32"))

    # --------------------------------------------------------------- saving
    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": (
                keras.saving.serialize_keras_object(self._beta_schedule)
                if self._beta_schedule is not None
                else self.beta
            ),
            "seed": self.seed,
            "likelihood": self.likelihood,
            "free_bits": self._free_bits,
            "sigma": self.sigma,
            "importance_samples": self.importance_samples,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        if isinstance(config.get("beta"), dict):
            config["beta"] = keras.saving.deserialize_keras_object(
                config["beta"], custom_objects=custom_objects
            )
        return cls(**config)  # files saved before `sigma` existed get its default, 1


@keras.saving.register_keras_serializable(package="vae_keras")
class VAE(_LatentVariableModel):
    """A variational autoencoder that trains with `compile` and `fit` alone.

    The loss is the negative ELBO, per image and averaged over the batch:
    `loss = reconstruction_loss + beta * kl_loss`, with the reconstruction term
    from `VAELoss` (summed over pixels) and the KL term from `kl_divergence`
    (summed over latent dimensions). `fit` and `evaluate` report all three.

    Every entry point checks NumPy data the same way before any step runs
    (shape per image, no NaN or infinity, values in [0, 1] for the Bernoulli
    likelihood): `fit`, `evaluate`, `predict`, `train_on_batch`,
    `test_on_batch`, `predict_on_batch`, `encode`, `decode`; a
    `tf.data.Dataset`, a generator, a `keras.utils.PyDataset` or a PyTorch
    `DataLoader` is checked batch by batch as it is read, with the same
    messages.

    Args:
        encoder: A Keras model mapping images to `[z_mean, z_log_var]`.
        decoder: A Keras model mapping `z` to images (probabilities in [0, 1]
            for the Bernoulli likelihood).
        beta: Weight of the KL term (1 gives the ELBO; other values a beta-VAE):
            a number, or a `keras.optimizers.schedules.LearningRateSchedule`
            such as `vk.LinearWarmup` (KL warm-up) or `vk.CyclicalAnnealing`,
            evaluated at the model's training step. Can be reassigned at any time.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`
            (for grey levels in [0, 1]; Loaiza-Ganem & Cunningham, 2019),
            passed to `VAELoss`.
        free_bits: Free bits (Kingma et al., 2016): a floor, in nats, under the
            batch-average KL of each latent dimension in the loss, so that the
            optimizer gains nothing by pushing a dimension's KL below it; a
            remedy for posterior collapse. 0 (the default) turns it off.
        sigma: Standard deviation of the Gaussian likelihood N(x_hat, sigma^2 I),
            positive; used by the loss and by `log_likelihood`, and saved with
            the model. Only for `likelihood="gaussian"`.
        importance_samples: k, the number of draws of z per image in each
            training step. 1 (the default) trains on the ELBO as described
            above. With k > 1 the model trains on the importance-weighted bound
            of Burda, Grosse & Salakhutdinov (2016, "Importance Weighted
            Autoencoders"), `L_k = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)]`,
            which is at least the ELBO and tightens with k: one encoder pass,
            then one decoder pass over the k * batch codes. The reported `loss`
            is then the estimate of `-L_k` (beta must stay 1 and free bits 0),
            and it is not `reconstruction_loss + kl_loss`: those two still
            report the ELBO's terms, the reconstruction term averaged over the
            k draws and the KL term in closed form, so their sum minus `loss`
            is how much tighter the bound is. As for the ELBO, the Gaussian
            likelihood's constant `0.5 log(2 pi sigma^2)` per pixel is left out.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: A batch of images.

    Returns:
        The mean reconstruction: the mean of p(x | z_mean), which is
        `decoder(z_mean)` itself except for the continuous Bernoulli, whose
        mean is not its parameter lambda (`vk.losses.continuous_bernoulli_mean`
        of it); it is deterministic.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> history = vae.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['beta', 'kl_loss', 'loss', 'reconstruction_loss']
    >>> z_mean, z_log_var = vae.encode(x[:3])
    >>> tuple(z_mean.shape), tuple(vae.decode(z_mean).shape)
    ((3, 2), (3, 28, 28, 1))
    """

    def _unpack(self, inputs):
        return inputs, None

    def encode(self, images, training=False):
        """The parameters of q(z | x): `(z_mean, z_log_var)`.

        Args:
            images: A batch of images (NumPy arrays are checked like `fit`'s).
            training: Whether layers such as Dropout run in training mode.

        Returns:
            Two float32 backend tensors of shape `(n, latent_dim)`.
        """
        return self._encode_public(images, training)

    def decode(self, z, training=False):
        """The decoder's output for latent codes `z`, in one call.

        Args:
            z: Latent codes of shape `(n, latent_dim)` (NumPy or a tensor).
            training: Whether layers such as Dropout run in training mode.

        Returns:
            A float32 backend tensor of images: what the decoder outputs, the
            parameters of p(x | z) (pixel probabilities for the Bernoulli
            likelihood, means for the Gaussian one, lambda for the continuous
            Bernoulli, whose mean `predict` and `generate` return instead).
        """
        return self._decode_public(z, None, training)

    def generate(self, n=None, z=None, seed=None):
        """Decodes `n` draws from the prior N(0, I), or the given `z`, in one call.

        Args:
            n: Number of images (may be omitted when `z` is given).
            z: Optional latent codes of shape `(n, latent_dim)`, or one code of
                shape `(latent_dim,)` (one image, or `n` copies when `n` is given).
            seed: Seed for the prior draws; with `None` they come from Keras'
                global seed generator, which `keras.utils.set_random_seed` fixes
                (NumPy's global random state is not touched).

        Returns:
            A NumPy array of images: the means of p(x | z) (for the continuous
            Bernoulli the mean, not the decoder's lambda; see `decode`).
        """
        if n is not None:
            n = _validation.positive_int(n, "n", "VAE.generate")
        elif z is None:
            raise ValueError("VAE.generate: give a positive n or latent codes z")
        else:
            n = 1 if np.ndim(z) == 1 else np.shape(z)[0]
        z = self._prior_samples(n, z, seed)
        return ops.convert_to_numpy(
            likelihood_mean(self._decode_public(z, None, False), self.likelihood)
        )


@keras.saving.register_keras_serializable(package="vae_keras")
class CVAE(_LatentVariableModel):
    """A conditional VAE: a condition c (a class label, or any tensor) conditions both networks.

    The encoder models q(z | x, c) and the decoder p(x | z, c) (Sohn, Lee & Yan,
    2015, "Learning Structured Output Representation using Deep Conditional
    Generative Models"), so z is free to encode what c does not say: the style
    of the digit given its class, or the hidden part of an image given the
    visible part.

    - With `num_classes` set, c is a class label: both networks receive it as
      a one-hot vector, and labels are checked wherever images are (see `VAE`):
      class ids in `[0, num_classes)`, one-hot rows `num_classes` wide, one
      label per image.
    - With `num_classes=None`, c is any array or tensor (a partial image, a
      sensor reading, an embedding) whose per-example shape is what the
      sub-models' condition inputs expect; it is checked like the images
      (shape, no NaN or infinity, one condition per image) and given to the
      networks as it is (cast to the compute dtype).

    The prior is N(0, I) unless a `prior` network is given: then it is the
    conditional prior p(z | c) = N(prior_mean(c), diag(exp(prior_log_var(c))))
    of Sohn et al., learned with the rest; the KL term of the loss is
    KL(q(z | x, c) || p(z | c)) in closed form (`vk.kl_divergence` with the
    prior arguments), `generate` draws z from p(z | c), and `log_likelihood`
    uses p(z | c) in its importance weights. Each training step runs the
    encoder, the decoder and the prior once.

    A mask, for when only some pixels are to be predicted (completing an
    image): the inputs may be `[images, condition, mask]` wherever they are
    `[images, condition]` (`fit`, `evaluate`, the `*_on_batch` methods, a
    dataset's elements, `log_likelihood`), with `mask` of the images' shape
    (or one that broadcasts to it per example, such as `(n, height, width, 1)`)
    and values in [0, 1]. The reconstruction term then sums `mask * -log p(pixel
    | z)`: a pixel with mask 0 is not scored. The KL term is not masked. The
    mask does not reach the networks: give them what they may see through the
    condition.

    Args:
        encoder: A Keras model mapping `[images, condition]` to
            `[z_mean, z_log_var]` (the condition one-hot for labels).
        decoder: A Keras model mapping `[z, condition]` to images.
        num_classes: Number of classes, a positive integer, when the condition
            is a class label; `None` for any other condition.
        prior: Optional Keras model mapping the condition to
            `[prior_mean, prior_log_var]`, each `(n, latent_dim)`; `None`
            keeps the prior N(0, I).
        beta: Weight of the KL term: a number or a schedule, as for `VAE`.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`, as for `VAE`.
        free_bits: Per-dimension KL floor in nats, as for `VAE`.
        sigma: Standard deviation of the Gaussian likelihood, as for `VAE`.
        importance_samples: k > 1 trains on the importance-weighted bound L_k
            (of log p(x | c) here), as for `VAE`; 1 (the default) on the ELBO.
        **kwargs: Standard `keras.Model` arguments.

    Call arguments:
        inputs: `[images, condition]`: labels as integer class ids of shape
            `(n,)` or one-hot of shape `(n, num_classes)`, or any condition of
            shape `(n, ...)` when `num_classes=None`.

    Returns:
        The mean reconstruction, the mean of p(x | z_mean, c): `decoder([z_mean,
        condition])`, or its continuous Bernoulli mean (see `VAE`).

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> cvae = vk.CVAE(
    ...     vk.build_mlp_encoder(latent_dim=2, num_classes=10),
    ...     vk.build_mlp_decoder(latent_dim=2, num_classes=10),
    ...     num_classes=10,
    ... )
    >>> cvae.compile(optimizer="adam")
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((64, 28, 28, 1)).astype("float32")
    >>> y = rng.integers(0, 10, size=64)
    >>> history = cvae.fit([x, y], epochs=1, batch_size=32, verbose=0)
    >>> cvae.generate([3, 3, 7], seed=0).shape
    (3, 28, 28, 1)
    >>> z_mean, _ = cvae.encode([x[:2], y[:2]])
    >>> tuple(cvae.decode([z_mean, [4, 4]]).shape)
    (2, 28, 28, 1)

    Any condition, with a learned prior p(z | c) (here the condition is a
    vector of 5 numbers):

    >>> import keras
    >>> c_in = keras.Input((5,))
    >>> h = keras.layers.Dense(16, activation="relu")(c_in)
    >>> prior = keras.Model(c_in, [keras.layers.Dense(2)(h), keras.layers.Dense(2)(h)])
    >>> cvae = vk.CVAE(
    ...     vk.build_mlp_encoder(latent_dim=2, num_classes=5),
    ...     vk.build_mlp_decoder(latent_dim=2, num_classes=5),
    ...     prior=prior,
    ... )
    >>> cvae.compile(optimizer="adam")
    >>> c = rng.normal(size=(64, 5)).astype("float32")
    >>> history = cvae.fit([x, c], epochs=1, batch_size=32, verbose=0)
    >>> cvae.generate(c[:3], seed=0).shape
    (3, 28, 28, 1)
    """

    _conditional = True

    def __init__(
        self,
        encoder,
        decoder,
        num_classes=None,
        beta=1.0,
        seed=None,
        likelihood="bernoulli",
        free_bits=0.0,
        sigma=1.0,
        prior=None,
        importance_samples=1,
        **kwargs,
    ):
        if num_classes is not None:
            num_classes = _validation.positive_int(num_classes, "num_classes", "CVAE")
        self.num_classes = num_classes
        if prior is not None and not isinstance(prior, keras.layers.Layer):
            raise TypeError(
                f"CVAE: prior must be a Keras model or layer (or None for N(0, I)); "
                f"received {type(prior).__name__}"
            )
        super().__init__(
            encoder,
            decoder,
            beta=beta,
            seed=seed,
            likelihood=likelihood,
            free_bits=free_bits,
            sigma=sigma,
            importance_samples=importance_samples,
            _prior=prior,
            **kwargs,
        )

    def _check_sub_models(self):
        _submodels.check_conditional_inputs(self.encoder, self.decoder, self.num_classes)
        super()._check_sub_models()
        if self.prior is not None:
            _submodels.check_prior("CVAE", self.prior, self.encoder, self._latent_dim)

    def build(self, input_shape):
        super().build(input_shape)
        prior = self.prior
        if prior is not None and not prior.built and isinstance(input_shape, (list, tuple)):
            spec = keras.KerasTensor(input_shape[1], dtype=self.input_dtype)
            self._prior_params(self._condition_tensor(spec))  # symbolic: builds it

    def _condition_tensor(self, condition):
        if self.num_classes is not None:
            return one_hot(condition, self.num_classes, self.compute_dtype)
        return ops.cast(condition, self.compute_dtype)

    def _unpack(self, inputs):
        images, condition = self._input_checks().split(inputs)
        if isinstance(images, np.ndarray):  # JAX's eager steps pass NumPy batches through;
            images = ops.convert_to_tensor(images)  # a sub-model call takes tensors only
        return images, self._condition_tensor(condition)

    def _one_hot_checked(self, condition, n=None):
        """Host conditions checked (labels made one-hot); tensors converted as they are."""
        if _host_array(condition):
            condition = self._input_checks().check_condition(condition, n=n)
        return self._condition_tensor(condition)

    def encode(self, inputs, training=False):
        """The parameters of q(z | x, c): `(z_mean, z_log_var)`.

        Args:
            inputs: `[images, condition]`, as for `fit` (NumPy data is checked).
            training: Whether layers such as Dropout run in training mode.

        Returns:
            Two float32 backend tensors of shape `(n, latent_dim)`.
        """
        return self._encode_public(inputs, training)

    def decode(self, inputs, training=False):
        """The decoder's output for `[z, condition]`, in one call.

        Args:
            inputs: `[z, condition]`: codes of shape `(n, latent_dim)` and class ids
                `(n,)` or one-hot labels `(n, num_classes)`, or conditions `(n, ...)`
                when `num_classes=None`.
            training: Whether layers such as Dropout run in training mode.

        Returns:
            A float32 backend tensor of images: the decoder's output, the
            parameters of p(x | z, c) (see `VAE.decode`).
        """
        z, labels = self._input_checks().split(inputs, role="decode inputs")
        n = np.shape(z)[0] if _host_array(z) and np.ndim(z) == 2 else None
        return self._decode_public(z, self._one_hot_checked(labels, n), training)

    def generate(self, labels, z=None, seed=None):
        """Decodes one image per condition, with z from the prior unless given.

        The prior is N(0, I), or p(z | c) when the model has a `prior` network:
        `z = prior_mean(c) + exp(0.5 * prior_log_var(c)) * eps` with standard
        normal `eps`, so the same seed gives the same `eps` under either prior.

        Args:
            labels: The conditions: class ids of shape `(n,)` or one-hot labels
                `(n, num_classes)`, or conditions `(n, ...)` when `num_classes=None`.
            z: Optional latent codes, shape `(n, latent_dim)`, or one code of shape
                `(latent_dim,)` shared by all conditions (same style, different
                digit); used as they are, whatever the prior.
            seed: Seed for the prior draws; with `None` they come from Keras'
                global seed generator, which `keras.utils.set_random_seed` fixes
                (NumPy's global random state is not touched).

        Returns:
            A NumPy array of `n` images, decoded in one batched call: the means
            of p(x | z, c) (for the continuous Bernoulli not the decoder's
            lambda; see `VAE.generate`).
        """
        checked = self._input_checks().check_condition(labels)
        condition = ops.cast(checked, self.compute_dtype)
        given = z is not None
        z = self._prior_samples(checked.shape[0], z, seed)
        if self.prior is not None and not given:
            prior_mean, prior_log_var = self._prior_params(condition)
            prior_mean = ops.convert_to_numpy(ops.cast(prior_mean, "float32"))
            prior_std = np.exp(0.5 * ops.convert_to_numpy(ops.cast(prior_log_var, "float32")))
            z = (prior_mean + prior_std * z).astype("float32")
        decoded = self._decode_public(z, condition, False)
        return ops.convert_to_numpy(likelihood_mean(decoded, self.likelihood))

    def prior_params(self, condition):
        """`(prior_mean, prior_log_var)` of p(z | c) for conditions c, as float32 NumPy.

        N(0, I) (zeros) for a model without a `prior` network.
        """
        checked = self._input_checks().check_condition(condition)
        if self.prior is None:
            if self._latent_dim is None:
                raise ValueError(
                    "CVAE.prior_params: latent_dim is unknown until the model has been built "
                    "or called"
                )
            zeros = np.zeros((checked.shape[0], self._latent_dim), "float32")
            return zeros, zeros.copy()
        mean, log_var = self._prior_params(ops.cast(checked, self.compute_dtype))
        return tuple(ops.convert_to_numpy(ops.cast(t, "float32")) for t in (mean, log_var))

    def get_config(self):
        config = {**super().get_config(), "num_classes": self.num_classes}
        if self.prior is not None:
            config["prior"] = keras.saving.serialize_keras_object(self.prior)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("prior"), dict):
            config["prior"] = keras.saving.deserialize_keras_object(
                config["prior"], custom_objects=custom_objects
            )
        return super().from_config(config, custom_objects=custom_objects)

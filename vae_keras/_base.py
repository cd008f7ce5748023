"""What `VAE` and `CVAE` share: state, hyperparameters, the forward pass, the loss, saving.

What one training step computes, on every backend (`train_step` -> `call` ->
`compute_loss`, reading top to bottom in this file and `objective.py`,
`distributions.py`, and for a CVAE its `_unpack` in `models.py`):

1. One encoder pass: `z_mean, z_log_var = encoder(x)` (and one pass of a CVAE's
   prior network, `prior_at(c)`).
2. One draw `z = z_mean + exp(0.5 * z_log_var) * eps` (`distributions.reparameterize`),
   k draws per example with `importance_samples=k`.
3. One decoder pass: `reconstruction = decoder(z)`.
4. The loss, `objective.negative_elbo`: `reconstruction_loss + beta * kl_loss`
   per example and averaged over the batch (or the IWAE bound), in float32,
   plus any regularization losses of the sub-models.

`beta` is a number or a Keras schedule evaluated at the model's own step
counter inside the compiled step, and `free_bits` a floor under each latent
dimension's KL: both can be reassigned, and the next step uses the new value.
`likelihood`, `sigma` and `importance_samples` are fixed at construction.

Beside this file: the checks of user data and the entry points that run them
(`_inputs.py`), the compile policy (`_execution.py`), the checks of the
sub-models (`_submodels.py`).
"""

import contextlib
import threading

import keras
import numpy as np
from keras import ops

from vae_keras import _submodels, _validation, distributions, evaluation, objective
from vae_keras._execution import CompilePolicy
from vae_keras._inputs import CheckedEntryPoints, InputChecks
from vae_keras.layers import Sampling
from vae_keras.losses import VAELoss

__all__ = ["LatentVariableModel"]

# Models whose training or evaluation step is running in this thread (see
# `LatentVariableModel`'s docstring). Thread-local because tf.distribute runs one
# thread per replica.
_STEP_CONTEXT = threading.local()


@contextlib.contextmanager
def _inside_step(model):
    active = getattr(_STEP_CONTEXT, "models", None)
    if active is None:
        active = _STEP_CONTEXT.models = set()
    entered = id(model) not in active
    active.add(id(model))
    try:
        yield
    finally:
        if entered:
            active.discard(id(model))


def _is_inside_step(model):
    """Whether one of `model`'s training or evaluation steps is running in this thread."""
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


class _Fixed(property):
    """A setting fixed at construction: assigning it says so, and how to get another value."""

    def __set__(self, model, value):
        name = self.fget.__name__
        raise AttributeError(
            f"{type(model).__name__}.{name} is fixed when the model is constructed (it decides "
            f"what the compiled step computes and what is saved); build a new model with "
            f"{name}={value!r}; received {name}={value!r}"
        )


def _state_variable(value, dtype, name):
    """A non-trainable variable that every replica reads and the first one writes."""
    return keras.Variable(
        value, dtype=dtype, trainable=False, aggregation="only_first_replica", name=name
    )


def host_array(x):
    """NumPy arrays and Python lists: data on the host that public methods check."""
    return isinstance(x, (np.ndarray, list))


class LatentVariableModel(CheckedEntryPoints, CompilePolicy, keras.Model):
    """Shared machinery of `VAE` and `CVAE`: state, forward pass, loss, saving.

    One forward pass per step: Keras' `train_step` and `test_step` call the
    model and then pass what it returned to `compute_loss`. While one of this
    model's steps runs (a thread-local flag set by `train_step`/`test_step`),
    `call` returns the dict of one encoder pass, one draw and one decoder pass,
    and `compute_loss` reads it, so a BatchNormalization updates its statistics
    once and a Dropout draws once. Everywhere else (`model(x)`, `predict`, a
    serving export) `call` returns the deterministic mean reconstruction. The
    flag is needed because Keras calls the model with `training=False` both in
    `test_step`, which needs the sampled pass, and in `predict_step`, which must
    not sample.
    """

    conditional = False

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
        for role, model in (("encoder", encoder), ("decoder", decoder), ("prior", _prior)):
            if model is not None and not isinstance(model, keras.layers.Layer):
                raise TypeError(
                    f"{name}: {role} must be a Keras model or layer; "
                    f"received {role} of type {type(model).__name__}"
                )
        beta_schedule, beta_number = _parse_beta(beta, name)
        sigma = _validation.number(sigma, "sigma", name, positive=True)
        distribution = distributions.get(likelihood, sigma, where=name)
        if likelihood != "gaussian" and sigma != 1.0:
            raise ValueError(
                f"{name}: sigma is the standard deviation of the Gaussian likelihood; with "
                f"likelihood={likelihood!r} leave it at 1; received sigma={sigma!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        # A CVAE's network for p(z | c); None means N(0, I). Set before `build`
        # below locks the model's state (and as an attribute, not a class default,
        # which PyTorch's module lookup would return instead of the sub-model).
        self.prior = _prior
        self.seed = _validation.seed(seed, name)
        self._likelihood = distribution
        self._free_bits = _validation.number(free_bits, "free_bits", name, non_negative=True)
        self._importance_samples = _validation.integer(
            importance_samples, "importance_samples", name
        )
        self._check_importance_settings(beta_schedule, beta_number, self._free_bits)
        self._latent_dim = _submodels.functional_latent_dim(encoder, decoder)
        self.sampler = Sampling(seed=seed, name="sampling")  # its seed generator draws eps
        # State the compiled step reads, so that changing it needs no retracing.
        self.training_steps = _state_variable(0, "int32", "training_steps")
        self._beta_variable = _state_variable(beta_number or 0.0, "float32", "beta")
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
        """Builds the sub-models, checking what they return on a symbolic batch.

        Functional sub-models were checked from their declared shapes when the
        model was constructed; the others are traced here once, so the steps
        run without checks.
        """
        specs = keras.tree.map_shape_structure(
            lambda shape: keras.KerasTensor(shape, dtype=self.input_dtype), input_shape
        )
        images, condition, _ = self._unpack(specs)
        where = type(self).__name__
        z_mean, z_log_var = _submodels.check_encoder_outputs(where, self._encode(images, condition))
        self._latent_dim = z_mean.shape[-1] if z_mean.shape[-1] is not None else self._latent_dim
        reconstruction = self.decoder(z_mean if condition is None else [z_mean, condition])
        _submodels.check_reconstruction(where, images, reconstruction)
        if self.prior is not None:
            _submodels.check_prior_outputs(where, self.prior(condition), self._latent_dim)

    # ------------------------------------------------------- hyperparameters
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
        return float(ops.convert_to_numpy(self._synced(self._beta_variable).value))

    @beta.setter
    def beta(self, value):
        schedule, number = _parse_beta(value, type(self).__name__)
        self._check_importance_settings(schedule, number, self._free_bits)
        if schedule is None:
            self._synced(self._beta_variable).assign(number)
        if schedule is not None or self._beta_schedule is not None:
            self._beta_schedule = schedule
            self._rebuild_step_functions()

    @property
    def free_bits(self):
        """The per-dimension KL floor in nats (Kingma et al., 2016); 0 turns it off.

        Assigning a new value rebuilds the compiled step, which uses it from
        the next step on.
        """
        return self._free_bits

    @free_bits.setter
    def free_bits(self, value):
        value = _validation.number(value, "free_bits", type(self).__name__, non_negative=True)
        self._check_importance_settings(None, None, value)
        if value != self._free_bits:
            self._free_bits = value
            self._rebuild_step_functions()

    @_Fixed
    def likelihood(self):
        """The name of p(x | z): `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`."""
        return self._likelihood.name

    @property
    def likelihood_distribution(self):
        """p(x | z) as a `vae_keras.distributions` object (`log_prob`, `mean`)."""
        return self._likelihood

    @property
    def reconstruction_loss_fn(self):
        """The reconstruction term as a `vk.VAELoss` (per example), for the model's likelihood."""
        return VAELoss(self.likelihood, sigma=self.sigma, reduction=None)

    @reconstruction_loss_fn.setter
    def reconstruction_loss_fn(self, value):
        raise AttributeError(
            f"{type(self).__name__}.reconstruction_loss_fn follows the model's likelihood and "
            "sigma, which are fixed when the model is constructed; build a new model with "
            "likelihood=... and sigma=...; received reconstruction_loss_fn of type "
            f"{type(value).__name__}"
        )

    @_Fixed
    def sigma(self):
        """Standard deviation of the Gaussian likelihood (1 for the others); fixed."""
        return getattr(self._likelihood, "sigma", 1.0)

    @_Fixed
    def importance_samples(self):
        """k, the draws of z per image in each step (1: the ELBO; k > 1: the IWAE bound)."""
        return self._importance_samples

    def _check_importance_settings(self, beta_schedule, beta_number, free_bits):
        """The IWAE bound has no separate KL term: beta stays 1 and free bits 0."""
        k = self._importance_samples
        if k == 1:
            return
        where = f"{type(self).__name__}: with importance_samples={k} the loss is the IWAE bound"
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

    def current_beta(self):
        """The beta of the next training step, as a float32 tensor (the schedule evaluated)."""
        if self._beta_schedule is None:
            return ops.convert_to_tensor(self._beta_variable)
        return ops.cast(self._beta_schedule(self.training_steps), "float32")

    def _synced(self, variable):
        """`variable`, once the state that JAX's `fit` holds outside the model is synced back.

        So that reading it gives the current value, and assigning it is what the
        next step reads.
        """
        if keras.backend.backend() == "jax" and getattr(self, "_jax_state", None):
            self.jax_state_sync()
        return variable

    def _rebuild_step_functions(self):
        """Re-traces the compiled train/test steps that captured Python-level settings."""
        if getattr(self, "train_function", None) is not None:
            self.make_train_function(force=True)
        if getattr(self, "test_function", None) is not None:
            self.make_test_function(force=True)

    # ------------------------------------------------------------ training
    def train_step(self, *args, **kwargs):
        with _inside_step(self):
            return super().train_step(*args, **kwargs)

    def test_step(self, *args, **kwargs):
        with _inside_step(self):
            return super().test_step(*args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative ELBO of the batch `x` (`objective.negative_elbo`), plus added losses.

        Both terms are computed per example (in nats, in float32) and averaged
        over the batch; the metrics `reconstruction_loss`, `kl_loss` and `beta`
        track them. With `free_bits > 0` the KL term of the loss is
        `sum_j max(free_bits, mean_batch KL_j)`; `kl_loss` still reports the
        true KL. `y_pred` is what `call` returned inside the training step (the
        tensors of one forward pass); any other `y_pred`, such as the mean
        reconstruction from a plain `model(x)`, is ignored and the forward pass
        is run here.
        """
        # The entry points pass empty (n, 0) targets so that Keras keeps sample weights.
        if y is not None and not (len(y.shape) == 2 and y.shape[-1] == 0):
            raise ValueError(self.input_checks().no_targets_message())
        images, condition, mask = self._unpack(x)
        outputs = y_pred
        if not (isinstance(y_pred, dict) and "z_mean" in y_pred):
            outputs = self._forward(images, condition, training=training)
        beta = self.current_beta()
        settings = (beta, self._free_bits, self._importance_samples)
        total, reconstruction_loss, kl_loss = objective.negative_elbo(
            self._likelihood, images, outputs, mask, sample_weight, *settings
        )
        if training:
            self.training_steps.assign_add(1)
        for extra in self.losses:  # e.g. weight regularizers of the sub-models
            total = total + ops.cast(extra, total.dtype)
        batch_size = ops.shape(images)[0]
        self.reconstruction_loss_tracker.update_state(reconstruction_loss, sample_weight=batch_size)
        self.kl_loss_tracker.update_state(kl_loss, sample_weight=batch_size)
        self.beta_tracker.update_state(beta)
        return objective.scale_for_replicas(total, batch_size)

    # ------------------------------------------------------- forward pass
    def _unpack(self, inputs):
        """`(images, condition, mask)` of the model's inputs; condition and mask may be None."""
        return inputs, None, None

    def _encode(self, images, condition, training=None):
        return self.encoder(images if condition is None else [images, condition], training=training)

    def prior_at(self, condition=None, training=None):
        """p(z) or p(z | c) as `(prior_mean, prior_log_var)` tensors, or `()` for N(0, I).

        What `vae_keras.distributions` takes as a prior: `kl_divergence(m, v, *prior)`,
        `reparameterize(*prior, eps)`. The condition is the network's input
        (one-hot for labels); without a `prior` network the answer is `()`.
        """
        return () if self.prior is None else tuple(self.prior(condition, training=training))

    def _forward(self, images, condition, training=None):
        """One encoder pass, one draw of z, one decoder pass (and one prior pass, if any).

        With `importance_samples=k > 1`: k draws per example and one decoder
        pass over the k * batch codes; the reconstruction then has k * batch rows
        (draw-major: row `i * batch + j` is draw i of example j).
        """
        z_mean, z_log_var = self._encode(images, condition, training=training)
        k = self._importance_samples
        z_mean_k, z_log_var_k, condition_k = z_mean, z_log_var, condition
        if k > 1:  # the batch stacked k times
            z_mean_k, z_log_var_k = objective.tile(z_mean, k), objective.tile(z_log_var, k)
            condition_k = objective.tile(condition, k)
        seed = self.sampler.seed_generator  # the Sampling layer's generator draws eps
        epsilon = keras.random.normal(ops.shape(z_mean_k), dtype="float32", seed=seed)
        z = distributions.reparameterize(z_mean_k, z_log_var_k, epsilon)
        z = ops.cast(z, self.compute_dtype)
        reconstruction = self.decoder(
            z if condition is None else [z, condition_k], training=training
        )
        outputs = dict(reconstruction=reconstruction, z_mean=z_mean, z_log_var=z_log_var)
        outputs["epsilon"] = epsilon
        prior = self.prior_at(condition, training=training)
        if prior:
            outputs.update(prior_mean=prior[0], prior_log_var=prior[1])
        return outputs

    def call(self, inputs, training=None):
        images, condition, _ = self._unpack(inputs)
        if id(self) in getattr(_STEP_CONTEXT, "models", ()):  # `_is_inside_step`, inlined
            return self._forward(images, condition, training=training)
        z_mean, _ = self._encode(images, condition, training=training)
        decoded = self.decoder(
            z_mean if condition is None else [z_mean, condition], training=training
        )
        # float32 whatever the compute dtype, and the mean of p(x | z), not lambda
        return self._likelihood.mean(ops.cast(decoded, "float32"))

    # ------------------------------------------------------ public helpers
    def input_checks(self):
        """The `_inputs.InputChecks` of this model: what `fit` checks its data with."""
        shapes = [tuple(tensor.shape[1:]) for tensor in getattr(self.encoder, "inputs", None) or ()]
        num_classes = getattr(self, "num_classes", None)
        return InputChecks(
            type(self).__name__, self.likelihood, shapes, num_classes, self.conditional
        )

    def checked_arrays(self, x, where):
        """NumPy data checked as `evaluate` checks it: `(images, condition, mask)` as float32 NumPy.

        For a CVAE, `x` is `[images, condition]` or `[images, condition, mask]`:
        labels come back one-hot and the mask broadcast to the images' shape;
        `condition` and `mask` are None where absent. Used by
        `vae_keras.evaluation` and the callbacks.
        """
        checks = self.input_checks()
        images, condition = checks.split(x)
        checks.check_images(images)  # the condition and the mask are checked below
        if not (hasattr(images, "shape") and hasattr(images, "dtype")) or len(images.shape) < 2:
            raise ValueError(
                f"{where}: expected NumPy-like images of shape (n, ...), not a dataset or a "
                f"generator; received {type(images).__name__} {getattr(images, 'shape', '')}"
            )
        images = np.asarray(images, dtype="float32")
        if condition is not None:
            condition = checks.check_condition(condition, n=images.shape[0])
        mask = checks.mask_of(x)
        if mask is not None:
            mask = np.broadcast_to(checks.check_mask(mask, images), images.shape)
        return images, condition, mask

    def log_likelihood(self, x, num_samples=1000, batch_size=None, seed=None):
        """Importance-sampled estimate of log p(x) per example, in nats.

        See `vae_keras.evaluation.log_likelihood`; for a `CVAE`, `x` is
        `[images, labels]` and the estimate is the conditional log p(x | y).
        """
        return evaluation.log_likelihood(
            self, x, num_samples=num_samples, batch_size=batch_size, seed=seed
        )

    def _encode_public(self, inputs, training):
        self.input_checks().check_inputs(inputs, host_only=True)
        images, condition, _ = self._unpack(inputs)
        if host_array(images):
            images = ops.convert_to_tensor(np.asarray(images))
        z_mean, z_log_var = self._encode(images, condition, training=training)
        return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")

    def _decode_public(self, z, condition, training):
        if host_array(z):
            z = self._checked_codes(np.shape(z)[0] if np.ndim(z) else None, z, "decode")
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        decoded = self.decoder(z if condition is None else [z, condition], training=training)
        return ops.cast(decoded, "float32")

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
                f"or ({latent_dim},); received z of shape {z.shape}"
            )
        if not np.isfinite(z).all():
            raise ValueError(f"{type(self).__name__}.{where}: z contains NaN or infinite values")
        return z

    def _generate(self, n, z, seed, condition):
        """Decodes `z`, or `n` draws from the prior (`prior_at(condition)`), in one call."""
        where = f"{type(self).__name__}.generate"
        if z is not None:
            z = self._checked_codes(n, z, "generate")
        elif self._latent_dim is None:
            raise ValueError(
                f"{where}: latent_dim is unknown until the model has been built or called "
                "(train it, call it on a batch, or give z)"
            )
        else:
            shape = (n, self._latent_dim)
            if _validation.seed(seed, where) is not None:
                z = np.random.default_rng(seed).standard_normal(shape).astype("float32")
            else:  # Keras' global seed generator (set_random_seed); NumPy's is left alone
                z = keras.random.normal(shape, dtype="float32")
            prior = self.prior_at(condition)
            z = distributions.reparameterize(*prior, z) if prior else z
        return ops.convert_to_numpy(self._likelihood.mean(self._decode_public(z, condition, False)))

    # --------------------------------------------------------------- saving
    def get_config(self):
        beta = self._beta_schedule
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta if beta is None else keras.saving.serialize_keras_object(beta),
            "seed": self.seed,
            "likelihood": self.likelihood,
            "free_bits": self._free_bits,
            "sigma": self.sigma,
            "importance_samples": self._importance_samples,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "beta", "prior"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects)
        return cls(**config)  # files saved before `sigma` existed get its default, 1

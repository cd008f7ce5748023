"""VAE and CVAE as `keras.Model` subclasses that train with a plain `fit`.

What one training step computes, on every backend (`train_step` -> `call` ->
`compute_loss`, reading top to bottom in this file and three others):

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
from vae_keras._inputs import CheckedEntryPoints, InputChecks, one_hot
from vae_keras.layers import Sampling

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


def _host_array(x):
    """NumPy arrays and Python lists: data on the host that public methods check."""
    return isinstance(x, (np.ndarray, list))


class _LatentVariableModel(CheckedEntryPoints, CompilePolicy, keras.Model):
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
        self._importance_samples = _validation.positive_int(
            importance_samples, "importance_samples", name
        )
        self._check_importance_settings(beta_schedule, beta_number, self._free_bits)
        self._latent_dim = _submodels.functional_latent_dim(encoder, decoder)
        self.sampler = Sampling(seed=seed, name="sampling")  # its seed generator draws eps
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

    def _fixed(self, name, value):
        raise AttributeError(
            f"{type(self).__name__}.{name} is fixed when the model is constructed (it decides "
            f"what the compiled step computes and what is saved); build a new model with "
            f"{name}={value!r}; received {name}={value!r}"
        )

    @property
    def likelihood(self):
        """The name of p(x | z): `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`."""
        return self._likelihood.name

    @likelihood.setter
    def likelihood(self, value):
        self._fixed("likelihood", value)

    @property
    def likelihood_distribution(self):
        """p(x | z) as a `vae_keras.distributions` object (`log_prob`, `mean`)."""
        return self._likelihood

    @property
    def sigma(self):
        """Standard deviation of the Gaussian likelihood (1 for the others); fixed."""
        return getattr(self._likelihood, "sigma", 1.0)

    @sigma.setter
    def sigma(self, value):
        self._fixed("sigma", value)

    @property
    def importance_samples(self):
        """k, the draws of z per image in each step (1: the ELBO; k > 1: the IWAE bound)."""
        return self._importance_samples

    @importance_samples.setter
    def importance_samples(self, value):
        self._fixed("importance_samples", value)

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

    def _read_state(self, variable):
        """The variable's value, also while JAX's `fit` holds the state outside the model."""
        if keras.backend.backend() == "jax" and getattr(self, "_jax_state", None):
            self.jax_state_sync()
        return variable.value

    def _assign_state(self, variable, value):
        if keras.backend.backend() == "jax" and getattr(self, "_jax_state", None):
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
        total, reconstruction_loss, kl_loss = objective.negative_elbo(
            self._likelihood,
            images,
            outputs,
            mask,
            sample_weight,
            beta,
            self._free_bits,
            self._importance_samples,
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
        if self.prior is None:
            return ()
        return tuple(self.prior(condition, training=training))

    def _forward(self, images, condition, training=None):
        """One encoder pass, one draw of z, one decoder pass (and one prior pass, if any).

        With `importance_samples=k > 1`: k draws per example and one decoder
        pass over the k * batch codes; the reconstruction then has k * batch rows
        (draw-major: row `i * batch + j` is draw i of example j).
        """
        z_mean, z_log_var = self._encode(images, condition, training=training)
        k = self._importance_samples
        if k > 1:
            z_mean_k, z_log_var_k = objective.tile(z_mean, k), objective.tile(z_log_var, k)
            condition_k = objective.tile(condition, k)
        else:
            z_mean_k, z_log_var_k, condition_k = z_mean, z_log_var, condition
        epsilon = keras.random.normal(
            ops.shape(z_mean_k), dtype="float32", seed=self.sampler.seed_generator
        )
        z = ops.cast(
            distributions.reparameterize(z_mean_k, z_log_var_k, epsilon), self.compute_dtype
        )
        reconstruction = self.decoder(
            z if condition is None else [z, condition_k], training=training
        )
        outputs = {
            "reconstruction": reconstruction,
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "epsilon": epsilon,
        }
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
        encoder_inputs = getattr(self.encoder, "inputs", None)
        return InputChecks(
            type(self).__name__,
            self.likelihood,
            tuple(encoder_inputs[0].shape[1:]) if encoder_inputs else None,
            getattr(self, "num_classes", None),
            conditional=self.conditional,
            condition_shape=(
                tuple(encoder_inputs[1].shape[1:])
                if encoder_inputs and len(encoder_inputs) == 2
                else None
            ),
        )

    def checked_arrays(self, x, where):
        """NumPy data checked as `evaluate` checks it: `(images, condition, mask)` as float32 NumPy.

        For a CVAE, `x` is `[images, condition]` or `[images, condition, mask]`:
        labels come back one-hot and the mask broadcast to the images' shape;
        `condition` and `mask` are None where absent. Used by
        `vae_keras.evaluation` and the callbacks.
        """
        checks = self.input_checks()
        checks.check_inputs(x)
        images, condition = checks.split(x)
        if not hasattr(images, "shape") or not hasattr(images, "dtype"):
            raise ValueError(
                f"{where}: expected images as a NumPy-like array (datasets and generators are not "
                f"supported); received {type(images).__name__}"
            )
        images = np.asarray(images, dtype="float32")
        if images.ndim < 2:
            raise ValueError(
                f"{where}: images must have a batch axis, shape (n, ...); received {images.shape}"
            )
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
        if _host_array(images):
            images = ops.convert_to_tensor(np.asarray(images))
        z_mean, z_log_var = self._encode(images, condition, training=training)
        return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")

    def _decode_public(self, z, condition, training):
        if _host_array(z):
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
            if _validation.seed(seed, where) is not None:
                z = np.random.default_rng(seed).standard_normal((n, self._latent_dim))
                z = z.astype("float32")
            else:  # Keras' global seed generator (set_random_seed); NumPy's is left alone
                z = keras.random.normal((n, self._latent_dim), dtype="float32")
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
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
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
            raise ValueError("VAE.generate: give a positive n or latent codes z; received neither")
        else:
            n = 1 if np.ndim(z) == 1 else np.shape(z)[0]
        return self._generate(n, z, seed, None)


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

    conditional = True

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

    def _condition_tensor(self, condition):
        if self.num_classes is not None:
            return one_hot(condition, self.num_classes, self.compute_dtype)
        return ops.cast(condition, self.compute_dtype)

    def _unpack(self, inputs):
        if not (isinstance(inputs, (list, tuple)) and len(inputs) in (2, 3)):
            self.input_checks().split(inputs)  # raises the message that names the problem
        images = inputs[0]
        if isinstance(images, np.ndarray):  # JAX's eager steps pass NumPy batches through;
            images = ops.convert_to_tensor(images)  # a sub-model call takes tensors only
        mask = inputs[2] if len(inputs) == 3 else None
        return images, self._condition_tensor(inputs[1]), mask

    def _checked_condition(self, condition, n=None):
        """Host conditions checked (labels made one-hot); tensors converted as they are."""
        if _host_array(condition):
            condition = self.input_checks().check_condition(condition, n=n)
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
        z, condition = self.input_checks().split(inputs, role="decode inputs")
        n = np.shape(z)[0] if _host_array(z) and np.ndim(z) == 2 else None
        return self._decode_public(z, self._checked_condition(condition, n), training)

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
        checked = self.input_checks().check_condition(labels)
        return self._generate(checked.shape[0], z, seed, self._condition_tensor(checked))

    def prior_params(self, condition):
        """`(prior_mean, prior_log_var)` of p(z | c) for conditions c, as float32 NumPy.

        N(0, I) (zeros) for a model without a `prior` network.
        """
        checked = self.input_checks().check_condition(condition)
        prior = self.prior_at(self._condition_tensor(checked))
        if prior:
            return tuple(ops.convert_to_numpy(ops.cast(t, "float32")) for t in prior)
        if self._latent_dim is None:
            raise ValueError(
                "CVAE.prior_params: latent_dim is unknown until the model has been built or "
                "called; call it on a batch first"
            )
        zeros = np.zeros((checked.shape[0], self._latent_dim), "float32")
        return zeros, zeros.copy()

    def get_config(self):
        config = {**super().get_config(), "num_classes": self.num_classes}
        if self.prior is not None:
            config["prior"] = keras.saving.serialize_keras_object(self.prior)
        return config

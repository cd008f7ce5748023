"""How good is a trained VAE: importance-sampled log-likelihood and collapse diagnostics.

The ELBO that `fit` and `evaluate` report is a lower bound on `log p(x)`. The
importance-weighted bound of Burda, Grosse & Salakhutdinov (2016, "Importance
Weighted Autoencoders"),

    L_K(x) = log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),   z_k ~ q(z | x),

is the ELBO for `K = 1` (in expectation), never decreases with `K` in
expectation, and tends to `log p(x)` as `K` grows. `log_likelihood` computes it
per example, with every normalizing constant, so it is a log-density in nats
that can be compared across models and likelihoods.

Posterior collapse (latent dimensions that the decoder ignores, whose posterior
stays at the prior) shows in `kl_per_dimension` and `active_units`.
`optimize_posterior` fits q's parameters per example with the decoder frozen,
which separates the amortization gap from the approximation gap (Cremer, Li &
Duvenaud, 2018, "Inference Suboptimality in Variational Autoencoders").

All functions take a trained `vk.VAE` or `vk.CVAE` first and NumPy-like data
(for a CVAE, `[images, labels]`); they run on TensorFlow, JAX and PyTorch.
"""

import math
import random

import keras
import numpy as np
from keras import ops

from vae_keras import _validation
from vae_keras._inputs import InputChecks
from vae_keras.losses import bernoulli_log_prob, continuous_bernoulli_log_prob, kl_divergence
from vae_keras.losses import kl_per_dimension as kl_per_dimension_of
from vae_keras.models import CVAE, _LatentVariableModel

__all__ = [
    "log_importance_weights",
    "log_likelihood",
    "kl_per_dimension",
    "posterior_mean_variance",
    "active_units",
    "optimize_posterior",
]

# Latent codes decoded per decoder call when `batch_size` is None.
DEFAULT_BATCH_SIZE = 4096
# On JAX, jobs with at least this many codes (examples x draws) decode through one
# jax.jit-compiled function; smaller ones skip the compilation. TensorFlow and PyTorch
# call the decoder eagerly: on 2 CPU cores tf.function made a 16-D MLP decoder about
# 30% faster and a convolutional one no faster, not worth a trace per call.
_JIT_MIN_CODES = 50_000
_LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------ checks
def _positive_int(value, what, where):
    return _validation.positive_int(value, what, where)


def _split_inputs(model, x, where):
    """Checks `x` like `evaluate` does; returns (images, one-hot labels or None) as NumPy."""
    if not isinstance(model, _LatentVariableModel):
        raise TypeError(f"{where}: model must be a vk.VAE or vk.CVAE; received {type(model)!r}")
    checks = InputChecks.for_model(model)
    checks.check_inputs(x)
    images, labels = checks.split(x)
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
    condition = None if labels is None else checks.check_condition(labels, n=images.shape[0])
    return images, condition


def _mask_of(model, x, images):
    """The mask of a CVAE's `[images, condition, mask]`, broadcast to the images; else None."""
    mask = InputChecks.for_model(model).mask_of(x)
    if mask is None:
        return None
    return np.broadcast_to(InputChecks.for_model(model).check_mask(mask, images), images.shape)


def _prior_of(model, condition, batch_size):
    """`(prior_mean, prior_log_var)` of p(z | c) as float32 NumPy, or None for N(0, I)."""
    if getattr(model, "prior", None) is None or condition is None:
        return None
    means, log_vars = [], []
    for start in range(0, condition.shape[0], batch_size):
        mean, log_var = model.prior_params(condition[start : start + batch_size])
        means.append(mean)
        log_vars.append(log_var)
    if not means:
        d = model.latent_dim
        return np.zeros((0, d), "float32"), np.zeros((0, d), "float32")
    return np.concatenate(means), np.concatenate(log_vars)


def _repeat(condition, k):
    """`(b, ...)` conditions repeated for k draws: `(k * b, ...)`, draw-major."""
    return np.broadcast_to(condition[None], (k,) + condition.shape).reshape(
        (k * condition.shape[0],) + condition.shape[1:]
    )


def _posterior_params(model, images, condition, batch_size, posterior, where):
    """(z_mean, z_log_var) as float32 NumPy arrays, from the encoder or the caller."""
    n = images.shape[0]
    if posterior is not None:
        if not isinstance(posterior, (list, tuple)) or len(posterior) != 2:
            raise ValueError(
                f"{where}: posterior must be a pair (z_mean, z_log_var); "
                f"received {type(posterior).__name__}"
            )
        z_mean, z_log_var = (np.asarray(p, dtype="float32") for p in posterior)
        if z_mean.shape != z_log_var.shape or z_mean.ndim != 2 or z_mean.shape[0] != n:
            raise ValueError(
                f"{where}: posterior z_mean and z_log_var must both have shape (n, latent_dim) "
                f"with n = {n} images; received {z_mean.shape} and {z_log_var.shape}"
            )
        if not (np.all(np.isfinite(z_mean)) and np.all(np.isfinite(z_log_var))):
            raise ValueError(f"{where}: posterior contains NaN or infinite values")
        return z_mean, z_log_var
    means, log_vars = [], []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        chunk = ops.convert_to_tensor(images[start:stop])
        if condition is not None:
            chunk = [chunk, ops.convert_to_tensor(condition[start:stop])]
        z_mean, z_log_var = model.encode(chunk)
        means.append(ops.convert_to_numpy(z_mean).astype("float32"))
        log_vars.append(ops.convert_to_numpy(z_log_var).astype("float32"))
    if not means:
        d = model.latent_dim
        return np.zeros((0, d), "float32"), np.zeros((0, d), "float32")
    return np.concatenate(means), np.concatenate(log_vars)


def _rng(seed, where):
    if seed is None:
        # As keras.random.SeedGenerator(None) does: a seed from Python's `random`,
        # which keras.utils.set_random_seed fixes. NumPy's global state is not used.
        seed = random.randint(1, 10**9)
    return np.random.default_rng(_validation.seed(seed, where))


# -------------------------------------------------------- log-likelihood
def _log_likelihood_given_z(model, images, reconstruction):
    """log p(x | z) in nats, with all constants; reconstruction has shape (k, b, ...)."""
    images = ops.cast(images, reconstruction.dtype)[None]
    axes = tuple(range(2, len(reconstruction.shape)))
    if model.likelihood == "bernoulli":
        return ops.sum(bernoulli_log_prob(images, reconstruction), axis=axes)
    if model.likelihood == "continuous_bernoulli":
        return ops.sum(continuous_bernoulli_log_prob(images, reconstruction), axis=axes)
    sigma = model.sigma
    size = int(np.prod(images.shape[2:]))
    squared = ops.sum(ops.square(images - reconstruction), axis=axes)
    return -squared / (2.0 * sigma**2) - 0.5 * size * math.log(2.0 * math.pi * sigma**2)


def _log_px_given_codes(model, images, z, condition, mask=None):
    """log p(x | z), shape (k, b), for images (b, ...) and codes (k * b, latent_dim).

    With a mask (of the images' shape), only the masked pixels are scored:
    `sum_i mask_i log p(x_i | z)`.
    """
    # float32 whatever the compute dtype: 784 per-pixel terms summed in 16 bits lose digits
    reconstruction = model.decode(z if condition is None else [z, condition])
    if tuple(reconstruction.shape[1:]) != tuple(images.shape[1:]):
        raise ValueError(
            f"the decoder's output shape {tuple(reconstruction.shape[1:])} differs from the "
            f"images' shape {tuple(images.shape[1:])}"
        )
    b = images.shape[0]
    if mask is None:
        shape = (-1, b) + tuple(reconstruction.shape[1:])
        return _log_likelihood_given_z(model, images, ops.reshape(reconstruction, shape))
    # Every pixel its own "image" of shape (1,): the per-pixel log-probabilities,
    # each with its own normalizing constant, then weighted by the mask.
    pixels = int(np.prod(images.shape[1:]))
    per_pixel = _log_likelihood_given_z(
        model,
        ops.reshape(images, (b * pixels, 1)),
        ops.reshape(reconstruction, (-1, b * pixels, 1)),
    )
    per_pixel = ops.reshape(per_pixel, (-1, b, pixels))
    weight = ops.reshape(ops.cast(mask, per_pixel.dtype), (1, b, pixels))
    return ops.sum(per_pixel * weight, axis=2)


def _log_px_function(model, n_codes):
    """`fn(images, z, condition, mask)` computing `_log_px_given_codes`, jit-compiled on JAX."""
    if keras.backend.backend() != "jax" or n_codes < _JIT_MIN_CODES:
        return lambda images, z, condition, mask=None: _log_px_given_codes(
            model, images, z, condition, mask
        )
    import jax

    variables = list(model.decoder.variables)

    def pure(values, images, z, condition, mask):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return _log_px_given_codes(model, images, z, condition, mask)

    jitted = jax.jit(pure)
    values = [v.value for v in variables]
    return lambda images, z, condition, mask=None: jitted(values, images, z, condition, mask)


def log_importance_weights(model, x, num_samples=1000, batch_size=None, seed=None, posterior=None):
    """Log importance weights `log p(x, z_k) - log q(z_k | x)`, shape `(n, num_samples)`.

    The building block of `log_likelihood`: row `i` holds `num_samples` draws
    `z_k ~ q(z | x_i)` scored as `log p(x_i | z_k) + log p(z_k) - log q(z_k | x_i)`
    in nats. Their mean over a row is a Monte Carlo estimate of the ELBO of
    `x_i`; their log-mean-exp is `L_K`. The whole `(n, num_samples)` array is
    returned (float64), so keep `n * num_samples` to what fits in memory, or use
    `log_likelihood`, which keeps only the result.

    Args:
        model: A trained `vk.VAE` or `vk.CVAE`.
        x: Images (NumPy-like, shape `(n, ...)`), or `[images, labels]` for a CVAE.
        num_samples: K, the number of draws per example; a positive integer.
        batch_size: Latent codes decoded per decoder call (examples times draws);
            `None` means 4096. Lower it for large decoders.
        seed: Seed of the draws (a NumPy `Generator`); the same seed gives the
            same numbers. `None` draws a seed from Python's `random` module, which
            `keras.utils.set_random_seed` fixes.
        posterior: Optional `(z_mean, z_log_var)`, each `(n, latent_dim)`, to use
            instead of the encoder's q (e.g. from `optimize_posterior`).

    Returns:
        A float64 NumPy array of shape `(n, num_samples)`.
    """
    where = "log_importance_weights"
    return _log_weights_reduced(
        model, x, num_samples, batch_size, seed, posterior, where, reduce=False
    )


def _log_weights_reduced(model, x, num_samples, batch_size, seed, posterior, where, reduce):
    num_samples = _positive_int(num_samples, "num_samples", where)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    batch_size = _positive_int(batch_size, "batch_size", where)
    rng = _rng(seed, where)
    images, condition = _split_inputs(model, x, where)
    mask = _mask_of(model, x, images)
    n = images.shape[0]
    z_mean, z_log_var = _posterior_params(model, images, condition, batch_size, posterior, where)
    latent_dim = z_mean.shape[1] if z_mean.ndim == 2 else model.latent_dim
    prior = _prior_of(model, condition, batch_size)

    # Examples per chunk and draws per chunk, with examples x draws <= batch_size.
    log_px_fn = _log_px_function(model, n * num_samples)
    examples = max(1, min(n, batch_size // num_samples)) if n else 1
    draws_cap = max(1, batch_size // examples)
    num_chunks = -(-num_samples // draws_cap)
    draws = -(-num_samples // num_chunks)  # balanced chunks: fewer distinct shapes
    out = np.empty((n, 1 if reduce else num_samples), dtype="float64")
    for start in range(0, n, examples):
        stop = min(n, start + examples)
        b = stop - start
        x_chunk = ops.convert_to_tensor(images[start:stop])
        cond = None if condition is None else condition[start:stop]
        mask_chunk = None if mask is None else ops.convert_to_tensor(mask[start:stop])
        mean = z_mean[start:stop][None]  # (1, b, d)
        std = np.exp(0.5 * z_log_var[start:stop])[None]
        log_var_sum = z_log_var[start:stop].sum(axis=1, dtype="float64")  # (b,)
        if prior is not None:
            prior_mean = prior[0][start:stop][None].astype("float64")  # (1, b, d)
            prior_precision = np.exp(-prior[1][start:stop].astype("float64"))[None]
            prior_log_var_sum = prior[1][start:stop].sum(axis=1, dtype="float64")
        chunks = []
        for k0 in range(0, num_samples, draws):
            k = min(draws, num_samples - k0)
            eps = rng.standard_normal((k, b, latent_dim), dtype="float32")
            z = mean + std * eps  # (k, b, d)
            if prior is None:
                # log p(z) - log q(z|x) = -0.5 * sum_j (z_j^2 - eps_j^2 - log_var_j); the
                # 2*pi constants cancel.
                log_prior_ratio = -0.5 * (
                    np.sum(np.square(z, dtype="float64") - np.square(eps, dtype="float64"), axis=2)
                    - log_var_sum[None]
                )
            else:
                # log p(z|c) - log q(z|x,c) = -0.5 * sum_j ((z_j - m_j)^2 / s_j^2 + log s_j^2
                # - eps_j^2 - log_var_j), with p(z|c) = N(m, diag(s^2)).
                squared = np.square(z.astype("float64") - prior_mean) * prior_precision
                log_prior_ratio = -0.5 * (
                    np.sum(squared - np.square(eps, dtype="float64"), axis=2)
                    + prior_log_var_sum[None]
                    - log_var_sum[None]
                )
            z_flat = ops.convert_to_tensor(z.reshape(k * b, latent_dim))
            cond_flat = None
            if cond is not None:
                cond_flat = ops.convert_to_tensor(_repeat(cond, k))
            try:
                log_px = ops.convert_to_numpy(log_px_fn(x_chunk, z_flat, cond_flat, mask_chunk))
            except ValueError as error:
                if "decoder's output shape" not in str(error):
                    raise
                raise ValueError(f"{where}: {error}") from None
            chunks.append((log_px.astype("float64") + log_prior_ratio).T)  # (b, k)
        weights = np.concatenate(chunks, axis=1)
        if reduce:
            top = weights.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.mean(np.exp(weights - top), axis=1))
            out[start:stop, 0] = lse
        else:
            out[start:stop] = weights
    return out[:, 0] if reduce else out


def log_likelihood(model, x, num_samples=1000, batch_size=None, seed=None, posterior=None):
    """Importance-sampled estimate of log p(x) per example, in nats (the IWAE bound L_K).

    For each example, draws `K = num_samples` codes `z_k ~ q(z | x)` and returns

        L_K(x) = log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),

    computed with a log-sum-exp in float64. `L_1` is a one-sample ELBO;
    `E[L_K]` grows with K towards `log p(x)` (Burda et al., 2016, who use
    K = 5,000). For a CVAE, `x = [images, labels]` and the estimate is of
    `log p(x | y)`.

    Every normalizing constant is included:

    - Gaussian likelihood: `log N(x; x_hat, sigma^2 I)` with
      `sigma = model.sigma` (the model's `sigma=` argument), i.e. the squared error over
      `2 sigma^2` plus `0.5 * log(2 pi sigma^2)` per element.
    - Bernoulli likelihood: `sum x log p + (1 - x) log(1 - p)` with the decoder's
      probabilities clipped to `[eps, 1 - eps]`, `eps = keras.config.epsilon()`
      (1e-7 by default), as Keras' binary cross-entropy clips them. It is the
      log-probability of the image when the pixels are binary; for grey-level
      pixels in (0, 1) it is the same cross-entropy the ELBO uses, not a
      normalized density.
    - Continuous Bernoulli likelihood: the Bernoulli term above plus
      `log C(lambda)` per pixel, the log-density of grey levels in [0, 1]
      (Loaiza-Ganem & Cunningham, 2019; `vk.losses.continuous_bernoulli_log_prob`),
      so for grey-level data it is a log-density, comparable with a Gaussian's.

    The work is chunked over examples and draws (at most `batch_size` codes per
    decoder call), so memory does not grow with K.

    Args:
        model: A trained `vk.VAE` or `vk.CVAE`.
        x: Images (NumPy-like, shape `(n, ...)`), or `[images, labels]` for a CVAE.
            Checked with the same early errors as `evaluate`.
        num_samples: K, a positive integer.
        batch_size: Latent codes per decoder call; `None` means 4096.
        seed: Seed of the draws; the same seed gives the same numbers. `None`
            draws one from Python's `random` (fixed by `keras.utils.set_random_seed`).
        posterior: Optional `(z_mean, z_log_var)` to use instead of the encoder's q.

    Returns:
        A float64 NumPy array of shape `(n,)`.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> from vae_keras import evaluation
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> x = (np.random.default_rng(0).random((3, 28, 28, 1)) < 0.5).astype("float32")
    >>> ll = evaluation.log_likelihood(vae, x, num_samples=100, seed=0)
    >>> ll.shape, bool(np.all(ll < 0))
    ((3,), True)
    >>> elbo = evaluation.log_importance_weights(vae, x, num_samples=100, seed=0).mean(axis=1)
    >>> bool(np.all(ll >= elbo))  # log-mean-exp >= mean: L_K is above the ELBO estimate
    True
    """
    return _log_weights_reduced(
        model, x, num_samples, batch_size, seed, posterior, "log_likelihood", reduce=True
    )


# ---------------------------------------------------- collapse diagnostics
def _encoded(model, x, batch_size, where, with_prior=False):
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    batch_size = _positive_int(batch_size, "batch_size", where)
    images, condition = _split_inputs(model, x, where)
    if images.shape[0] == 0:
        raise ValueError(f"{where}: needs at least one example; received 0")
    params = _posterior_params(model, images, condition, batch_size, None, where)
    if with_prior:
        return params, _prior_of(model, condition, batch_size)
    return params


def kl_per_dimension(model, x, batch_size=None):
    """Mean KL(q(z_j | x) || p(z_j)) over the examples, for each latent dimension j.

    The prior is N(0, 1), or p(z_j | c) for a CVAE with a `prior` network. The
    KL term of the ELBO is the sum of these numbers. A dimension whose
    value is near 0 carries no information about x: its posterior is the
    prior for every example (a collapsed dimension).

    Args:
        model: A trained `vk.VAE` or `vk.CVAE`.
        x: Images, or `[images, labels]` for a CVAE.
        batch_size: Examples per encoder call; `None` means 4096.

    Returns:
        A float64 NumPy array of shape `(latent_dim,)`, in nats.
    """
    (z_mean, z_log_var), prior = _encoded(model, x, batch_size, "kl_per_dimension", with_prior=True)
    prior = () if prior is None else tuple(p.astype("float64") for p in prior)
    kl = kl_per_dimension_of(z_mean.astype("float64"), z_log_var.astype("float64"), *prior)
    return np.mean(ops.convert_to_numpy(kl).astype("float64"), axis=0)


def posterior_mean_variance(model, x, batch_size=None):
    """Variance over the examples of the posterior mean `E_q[z_j | x]`, per dimension.

    The activity statistic of Burda et al. (2016): a dimension whose posterior
    mean does not move with x is ignored by the model.

    Args:
        model: A trained `vk.VAE` or `vk.CVAE`.
        x: Images, or `[images, labels]` for a CVAE.
        batch_size: Examples per encoder call; `None` means 4096.

    Returns:
        A float64 NumPy array of shape `(latent_dim,)`.
    """
    z_mean, _ = _encoded(model, x, batch_size, "posterior_mean_variance")
    return np.var(z_mean.astype("float64"), axis=0)


def active_units(model, x, threshold=0.01, batch_size=None):
    """Number of active latent dimensions: `Var_x(E_q[z_j | x]) > threshold`.

    Burda et al. (2016) count a unit as active when this variance exceeds
    0.01; with a N(0, I) prior a fully used dimension has a variance near 1.

    Args:
        model: A trained `vk.VAE` or `vk.CVAE`.
        x: Images, or `[images, labels]` for a CVAE.
        threshold: A non-negative number.
        batch_size: Examples per encoder call; `None` means 4096.

    Returns:
        An `int`.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> from vae_keras import evaluation
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=4), vk.build_mlp_decoder(latent_dim=4))
    >>> x = np.random.default_rng(0).random((50, 28, 28, 1)).astype("float32")
    >>> evaluation.kl_per_dimension(vae, x).shape
    (4,)
    >>> 0 <= evaluation.active_units(vae, x) <= 4
    True
    """
    threshold = _validation.number(threshold, "threshold", "active_units", non_negative=True)
    return int(np.sum(posterior_mean_variance(model, x, batch_size=batch_size) > threshold))


# ------------------------------------------------- per-example inference
class _Frozen:
    """A plain holder for a model that must not be tracked as a sub-layer."""

    def __init__(self, model):
        self.model = model


class _PerExamplePosterior(keras.Model):
    """q(z | x_i) = N(mean_i, diag(exp(log_var_i))) with free parameters per example."""

    def __init__(self, vae, z_mean, z_log_var, num_samples, seed, prior=None):
        super().__init__(name="per_example_posterior")
        self._prior = prior  # p(z | c_i) as NumPy (mean, log_var), or None for N(0, I)
        # Held in a plain object, so Keras does not track the VAE's weights as this
        # model's own: only the per-example parameters below are trained.
        self._frozen = _Frozen(vae)
        self._num_samples = num_samples
        self.z_mean = self.add_weight(
            shape=z_mean.shape, initializer=keras.initializers.Constant(z_mean), name="z_mean"
        )
        self.z_log_var = self.add_weight(
            shape=z_log_var.shape,
            initializer=keras.initializers.Constant(z_log_var),
            name="z_log_var",
        )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        return inputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        vae = self._frozen.model
        images, condition = x
        k = self._num_samples
        eps = keras.random.normal((k,) + tuple(self.z_mean.shape), seed=self.seed_generator)
        z = self.z_mean[None] + ops.exp(0.5 * self.z_log_var)[None] * eps
        n, d = self.z_mean.shape
        z_flat = ops.reshape(z, (k * n, d))
        cond_flat = None
        if isinstance(vae, CVAE):
            shape = tuple(condition.shape[1:])
            cond_flat = ops.reshape(
                ops.broadcast_to(condition[None], (k, n) + shape), (k * n,) + shape
            )
        reconstruction = vae.decode(z_flat if cond_flat is None else [z_flat, cond_flat])
        reconstruction = ops.reshape(reconstruction, (k, n) + tuple(reconstruction.shape[1:]))
        log_px = _log_likelihood_given_z(vae, images, reconstruction)  # (k, n)
        prior = () if self._prior is None else self._prior
        kl = kl_divergence(self.z_mean, self.z_log_var, *prior)
        # Sum (not mean) over examples: each example's parameters get the gradient
        # of its own negative ELBO, whatever n is.
        return ops.sum(-ops.mean(log_px, axis=0) + kl)


def optimize_posterior(
    model, x, steps=300, learning_rate=1e-2, num_samples=10, seed=None, init="encoder"
):
    """Fits q(z | x_i) per example by gradient ascent on the ELBO, decoder frozen.

    Starting from the encoder's output (or the prior), Adam updates a separate
    `(mean, log_var)` for every example to maximise its Monte Carlo ELBO
    (`num_samples` draws per step). The result is the best diagonal Gaussian
    the optimiser finds for that decoder: the ELBO it reaches minus the
    encoder's ELBO is the *amortization gap*, and `log p(x)` minus it the
    *approximation gap* (Cremer et al., 2018). The model's weights are not
    changed.

    Args:
        model: A trained `vk.VAE` or `vk.CVAE`.
        x: Images, or `[images, labels]` for a CVAE; all examples are optimised
            together, so keep n moderate (tens to hundreds).
        steps: Number of Adam steps, a positive integer.
        learning_rate: Adam's learning rate, positive.
        num_samples: Draws of z per example and step.
        seed: Seed of the draws (`keras.random.SeedGenerator`).
        init: `"encoder"` (start from q(z | x)) or `"prior"` (from N(0, I), or
            from p(z | c) for a CVAE with a `prior` network).

    Returns:
        `(z_mean, z_log_var)`, float32 NumPy arrays of shape `(n, latent_dim)`,
        ready for `log_likelihood(..., posterior=...)`.
    """
    where = "optimize_posterior"
    steps = _positive_int(steps, "steps", where)
    num_samples = _positive_int(num_samples, "num_samples", where)
    learning_rate = _validation.number(learning_rate, "learning_rate", where, positive=True)
    if init not in ("encoder", "prior"):
        raise ValueError(f"{where}: init must be 'encoder' or 'prior'; received {init!r}")
    images, condition = _split_inputs(model, x, where)
    if _mask_of(model, x, images) is not None:
        raise ValueError(
            f"{where}: a mask is not supported here (it fits q to every pixel); give "
            "[images, condition] without the mask"
        )
    n = images.shape[0]
    if n == 0:
        raise ValueError(f"{where}: needs at least one example; received 0")
    if init == "encoder":
        z_mean, z_log_var = _posterior_params(
            model, images, condition, DEFAULT_BATCH_SIZE, None, where
        )
    else:
        if model.latent_dim is None:
            raise ValueError(
                f"{where}: init='prior' needs the latent width, unknown until the model has "
                "been built or called; use init='encoder'"
            )
        z_mean = np.zeros((n, model.latent_dim), "float32")
        z_log_var = np.zeros_like(z_mean)
    prior = _prior_of(model, condition, DEFAULT_BATCH_SIZE)
    if init == "prior" and prior is not None:
        z_mean, z_log_var = prior  # p(z | c) of the CVAE's prior network
    if condition is None:
        condition = np.zeros((n, 1), "float32")
    fitter = _PerExamplePosterior(model, z_mean, z_log_var, num_samples, seed, prior)
    fitter.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=False)
    fitter.fit([images, condition], epochs=steps, batch_size=n, shuffle=False, verbose=0)
    return (
        ops.convert_to_numpy(fitter.z_mean).astype("float32"),
        ops.convert_to_numpy(fitter.z_log_var).astype("float32"),
    )

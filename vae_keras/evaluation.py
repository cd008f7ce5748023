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

import keras
import numpy as np
from keras import ops

from vae_keras import _validation, distributions, objective
from vae_keras._inputs import check_model
from vae_keras._submodels import check_reconstruction

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


# ------------------------------------------------------------------ inputs
def _checked(model, x, where, batch_size=None):
    """`(images, condition, mask, batch_size)`: the data checked by the model, as NumPy."""
    check_model(model, where)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    batch_size = _validation.integer(batch_size, "batch_size", where)
    return (*model.checked_arrays(x, where), batch_size)


def _chunks(n, size):
    return [slice(start, min(n, start + size)) for start in range(0, n, size)]


def _numpy(tensors):
    return tuple(ops.convert_to_numpy(ops.cast(t, "float32")) for t in tensors)


def _posterior_and_prior(model, images, condition, batch_size):
    """`(z_mean, z_log_var)` of q and p's `(mean, log_var)` (or `()`), float32 NumPy, chunked."""
    parts = []
    for rows in _chunks(images.shape[0], batch_size):
        chunk = ops.convert_to_tensor(images[rows])
        cond = None if condition is None else ops.convert_to_tensor(condition[rows])
        posterior = model.encode(chunk if cond is None else [chunk, cond])
        parts.append(_numpy(posterior) + _numpy(model.prior_at(cond)))
    if not parts:
        return (np.zeros((0, model.latent_dim), "float32"),) * 2, ()
    columns = [np.concatenate(column) for column in zip(*parts)]
    return tuple(columns[:2]), tuple(columns[2:])


def _given_posterior(posterior, n, where):
    if not isinstance(posterior, (list, tuple)) or len(posterior) != 2:
        raise ValueError(
            f"{where}: posterior must be a pair (z_mean, z_log_var); "
            f"received posterior of type {type(posterior).__name__}"
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


# -------------------------------------------------------- log-likelihood
def _log_px(model, images, z, condition, mask, where):
    """log p(x | z) with every constant, `(k * b,)`, for images `(b, ...)` and codes `(k * b, d)`.

    With a mask, only the masked pixels are scored (each with its constant).
    """
    k = z.shape[0] // images.shape[0]
    condition = objective.tile(condition, k)
    reconstruction = model.decode(z if condition is None else [z, condition])
    check_reconstruction(where, images, reconstruction)
    return model.likelihood_distribution.log_prob(
        objective.tile(images, k), reconstruction, objective.tile(mask, k)
    )


def _log_px_function(model, n_codes, where):
    """`fn(images, z, condition, mask)` computing `_log_px`, jit-compiled on JAX for large jobs."""
    if keras.backend.backend() != "jax" or n_codes < _JIT_MIN_CODES:
        return lambda *arguments: _log_px(model, *arguments, where)
    import jax

    variables = list(model.decoder.variables)

    def pure(values, *arguments):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return _log_px(model, *arguments, where)

    jitted = jax.jit(pure)
    values = [v.value for v in variables]
    return lambda *arguments: jitted(values, *arguments)


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
    return _log_weights(model, x, num_samples, batch_size, seed, posterior, reduce=False)


def _log_weights(model, x, num_samples, batch_size, seed, posterior, reduce):
    """`log_importance_weights`, or with `reduce` their log-mean-exp: `log_likelihood`."""
    where = "log_likelihood" if reduce else "log_importance_weights"
    num_samples = _validation.integer(num_samples, "num_samples", where)
    images, condition, mask, batch_size = _checked(model, x, where, batch_size)
    rng = np.random.default_rng(_validation.seed_or_draw(seed, where))
    n = images.shape[0]
    (z_mean, z_log_var), prior = _posterior_and_prior(model, images, condition, batch_size)
    if posterior is not None:
        z_mean, z_log_var = _given_posterior(posterior, n, where)
    # Examples per chunk and draws per chunk, with examples x draws <= batch_size.
    log_px_fn = _log_px_function(model, n * num_samples, where)
    examples = max(1, min(n, batch_size // num_samples)) if n else 1
    num_chunks = -(-num_samples // max(1, batch_size // examples))
    draws = -(-num_samples // num_chunks)  # balanced chunks: fewer distinct shapes
    out = np.empty((n, 1 if reduce else num_samples), dtype="float64")
    for rows in _chunks(n, examples):
        b = rows.stop - rows.start
        part = [None if a is None else ops.convert_to_tensor(a[rows]) for a in (condition, mask)]
        posterior_rows = z_mean[rows], z_log_var[rows]  # this chunk's q(z | x) and p(z)
        prior_rows = tuple(p[rows] for p in prior)
        weights = []
        for k0 in range(0, num_samples, draws):
            k = min(draws, num_samples - k0)
            eps = rng.standard_normal((k * b, z_mean.shape[1]), dtype="float32")
            z = distributions.reparameterize(*(objective.tile(t, k) for t in posterior_rows), eps)
            log_px = log_px_fn(ops.convert_to_tensor(images[rows]), z, *part)
            w = objective.log_weights(log_px, *posterior_rows, eps, prior_rows, k)
            weights.append(ops.convert_to_numpy(w).astype("float64").T)  # (b, k)
        weights = np.concatenate(weights, axis=1)
        if reduce:  # log-mean-exp over all the draws, in float64
            top = weights.max(axis=1)
            out[rows, 0] = top + np.log(np.mean(np.exp(weights - top[:, None]), axis=1))
        else:
            out[rows] = weights
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
    return _log_weights(model, x, num_samples, batch_size, seed, posterior, reduce=True)


# ---------------------------------------------------- collapse diagnostics
def _encoded(model, x, batch_size, where):
    """`(images, condition, mask)` of at least one example, checked, and `_posterior_and_prior`."""
    images, condition, mask, batch_size = _checked(model, x, where, batch_size)
    if images.shape[0] == 0:
        raise ValueError(f"{where}: needs at least one example; received 0")
    return (images, condition, mask), *_posterior_and_prior(model, images, condition, batch_size)


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
    _, posterior, prior = _encoded(model, x, batch_size, "kl_per_dimension")
    kl = distributions.kl_per_dimension(*(p.astype("float64") for p in posterior + prior))
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
    _, (z_mean, _), _ = _encoded(model, x, batch_size, "posterior_mean_variance")
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
class _PerExamplePosterior(keras.Model):
    """q(z | x_i) = N(mean_i, diag(exp(log_var_i))) with free parameters per example."""

    def __init__(self, vae, z_mean, z_log_var, num_samples, seed, prior=()):
        super().__init__(name="per_example_posterior")
        self._prior = prior  # p(z | c_i) as NumPy (mean, log_var), or () for N(0, I)
        # Set past Keras' attribute tracking, so the VAE's weights are not this
        # model's own: only the per-example parameters below are trained.
        object.__setattr__(self, "_vae", vae)
        self._num_samples = num_samples
        for name, value in (("z_mean", z_mean), ("z_log_var", z_log_var)):
            initializer = keras.initializers.Constant(value)
            setattr(
                self, name, self.add_weight(shape=value.shape, initializer=initializer, name=name)
            )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        return inputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        vae = self._vae
        images, condition = x
        k = self._num_samples
        n, d = self.z_mean.shape
        eps = keras.random.normal((k * n, d), seed=self.seed_generator)
        mean, log_var = objective.tile(self.z_mean, k), objective.tile(self.z_log_var, k)
        z = distributions.reparameterize(mean, log_var, eps)
        condition = condition if vae.conditional else None
        log_px = _log_px(vae, images, z, condition, None, "optimize_posterior")
        kl = distributions.kl_divergence(self.z_mean, self.z_log_var, *self._prior)
        # Sum (not mean) over examples: each example's parameters get the gradient
        # of its own negative ELBO, whatever n is.
        return ops.sum(-ops.mean(ops.reshape(log_px, (k, n)), axis=0) + kl)


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
    steps = _validation.integer(steps, "steps", where)
    num_samples = _validation.integer(num_samples, "num_samples", where)
    learning_rate = _validation.number(learning_rate, "learning_rate", where, positive=True)
    if init not in ("encoder", "prior"):
        raise ValueError(f"{where}: init must be 'encoder' or 'prior'; received init={init!r}")
    (images, condition, mask), (z_mean, z_log_var), prior = _encoded(model, x, None, where)
    if mask is not None:
        raise ValueError(
            f"{where}: a mask is not supported here (it fits q to every pixel); give "
            "[images, condition] without the mask"
        )
    n = images.shape[0]
    if init == "prior":  # N(0, I), or p(z | c) of the CVAE's prior network
        z_mean, z_log_var = prior or (np.zeros_like(z_mean), np.zeros_like(z_log_var))
    if condition is None:
        condition = np.zeros((n, 1), "float32")
    fitter = _PerExamplePosterior(model, z_mean, z_log_var, num_samples, seed, prior)
    fitter.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=False)
    fitter.fit([images, condition], epochs=steps, batch_size=n, shuffle=False, verbose=0)
    return _numpy((fitter.z_mean, fitter.z_log_var))

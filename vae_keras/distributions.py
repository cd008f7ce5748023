"""The distributions of a VAE, each written once: p(x | z), q(z | x) and p(z).

- Likelihoods p(x | z) as small serializable objects, `Bernoulli`,
  `ContinuousBernoulli` and `Gaussian(sigma)`: `log_prob(x, output, mask)` per
  example (with an optional per-pixel mask) and `mean(output)`, what
  `predict` and `generate` return. `get("bernoulli")` maps the string names that
  the models and `VAELoss` take onto them.
- Diagonal Gaussians, for the posterior q(z | x) and the prior p(z) or p(z | c):
  `reparameterize` (the one reparameterization, `mean + exp(log_var / 2) * eps`),
  `kl_per_dimension` and `kl_divergence` (the one closed-form KL), and
  `log_prior_ratio` (`log p(z) - log q(z | x)`, which the IWAE bound needs). A
  prior is given to them as `(prior_mean, prior_log_var)`, or as nothing for
  N(0, I), which is what a model's `prior_at(condition)` returns.

Everything is computed with `keras.ops`, in float32 at least (mixed precision
casts float16 and bfloat16 inputs up), on TensorFlow, JAX and PyTorch.
"""

import math
import operator

import keras
from keras import ops

from vae_keras import _validation

__all__ = [
    "Bernoulli",
    "ContinuousBernoulli",
    "Gaussian",
    "get",
    "LIKELIHOODS",
    "reparameterize",
    "kl_divergence",
    "kl_per_dimension",
    "log_prior_ratio",
    "bernoulli_log_prob",
    "continuous_bernoulli_log_normalizer",
    "continuous_bernoulli_log_prob",
    "continuous_bernoulli_mean",
]

LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
# Below this |1 - 2 lambda| the continuous Bernoulli's log-normalizer and mean use
# their Taylor series (the closed forms are 0/0 at lambda = 0.5 and lose digits,
# and their gradients more, near it). At 0.2 the truncated series are within
# 2e-7 of the closed forms, and the closed forms are accurate to float32 above it.
_CB_TAYLOR_BELOW = 0.2


def _wide(*tensors):
    """The tensors converted and cast to their common dtype, float32 at least."""
    # map, not comprehensions: this runs in every training step, which keeps few frames
    tensors = list(map(ops.convert_to_tensor, tensors))
    dtype = keras.backend.result_type(*map(operator.attrgetter("dtype"), tensors), "float32")
    for i, tensor in enumerate(tensors):
        tensors[i] = ops.cast(tensor, dtype)
    return tensors


# --------------------------------------------------------- diagonal Gaussians
def reparameterize(mean, log_var, epsilon):
    """`mean + exp(0.5 * log_var) * epsilon`, in float32 or wider: the reparameterization trick.

    Under a mixed-precision policy the inputs arrive in float16 or bfloat16;
    `exp(0.5 * log_var)` overflows float16 for log-variances above about 22, so
    the arithmetic runs in float32 (the caller casts the result as it needs).
    """
    mean, log_var, epsilon = _wide(mean, log_var, epsilon)
    return mean + ops.exp(0.5 * log_var) * epsilon


@keras.saving.register_keras_serializable(package="vae_keras")
def kl_divergence(z_mean, z_log_var, prior_mean=None, prior_log_var=None):
    """KL( N(z_mean, diag(exp(z_log_var))) || prior ), one value per example.

    The prior is N(0, I) unless `prior_mean` and `prior_log_var` are given, in
    which case it is the diagonal Gaussian N(prior_mean, diag(exp(prior_log_var)))
    (a conditional prior p(z | c), Sohn et al., 2015); see `kl_per_dimension`
    for that closed form.

    The closed form for a diagonal Gaussian against the standard normal prior,
    summed over the latent dimensions (Kingma & Welling, 2014, appendix B):

        KL = -0.5 * sum_j (1 + log_var_j - mean_j**2 - exp(log_var_j))

    It is zero exactly when `z_mean = 0` and `z_log_var = 0`, and positive
    otherwise.

    Args:
        z_mean: Array or tensor of shape `(batch, latent_dim)` (NumPy arrays are
            accepted).
        z_log_var: Array or tensor of the same shape: the log-variance.
        prior_mean: Optional mean of a diagonal Gaussian prior, same shape; give
            it together with `prior_log_var`. Without both, the prior is N(0, I).
        prior_log_var: Optional log-variance of that prior, same shape.

    Returns:
        A backend tensor of shape `(batch,)`, in nats: float32 for float16,
        bfloat16 or float32 inputs (mixed precision), float64 for float64.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> kl = vk.kl_divergence(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0]]))
    >>> float(kl[0])
    0.5
    >>> str(float(vk.kl_divergence(np.zeros((1, 3)), np.zeros((1, 3)))[0]))
    '0.0'
    """
    return ops.sum(kl_per_dimension(z_mean, z_log_var, prior_mean, prior_log_var), axis=-1)


def kl_per_dimension(z_mean, z_log_var, prior_mean=None, prior_log_var=None):
    """The terms of `kl_divergence` before the sum: one KL per latent dimension.

    `0.5 * (exp(log_var_j) + mean_j**2 - 1 - log_var_j)` for each example and
    latent dimension j, in nats, against N(0, I). Against a diagonal Gaussian
    prior N(m_j, exp(l_j)) it is

        0.5 * (exp(log_var_j - l_j) + (mean_j - m_j)**2 * exp(-l_j) - 1 - log_var_j + l_j),

    which is the first formula when `m = 0` and `l = 0`. Averaged over a dataset
    it shows which dimensions carry information (a dimension with KL near 0 is
    ignored by the encoder), and it is what free bits put a floor under.

    Args:
        z_mean: Array or tensor of shape `(batch, latent_dim)`.
        z_log_var: Array or tensor of the same shape.
        prior_mean: Optional prior mean, same shape (with `prior_log_var`).
        prior_log_var: Optional prior log-variance, same shape.

    Returns:
        A backend tensor of shape `(batch, latent_dim)`, at least float32.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> kl = vk.kl_per_dimension(np.array([[0.0, 1.0]]), np.zeros((1, 2)))
    >>> np.asarray(kl).tolist()
    [[0.0, 0.5]]
    """
    if (prior_mean is None) != (prior_log_var is None):
        alone = "prior_mean" if prior_log_var is None else "prior_log_var"
        raise ValueError(
            "kl_divergence: give both prior_mean and prior_log_var, or neither; received "
            f"{alone} alone"
        )
    given = (z_mean, z_log_var) + (() if prior_mean is None else (prior_mean, prior_log_var))
    z_mean, z_log_var, *prior = _wide(*given)
    names = ("z_log_var", "prior_mean", "prior_log_var")
    for name, tensor in zip(names, [z_log_var] + prior):
        if tuple(tensor.shape) != tuple(z_mean.shape):
            raise ValueError(
                f"kl_divergence: {name} must have the shape of z_mean {tuple(z_mean.shape)}; "
                f"received {name} of shape {tuple(tensor.shape)}"
            )
    if len(z_mean.shape) < 1:
        raise ValueError(
            "kl_divergence: expected tensors of shape (batch, latent_dim); received a scalar"
        )
    if not prior:
        # The closed form with the sign folded in, so the prior gives +0.0, not -0.0.
        return 0.5 * (ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var)
    prior_mean, prior_log_var = prior
    variance_ratio = ops.exp(z_log_var - prior_log_var)
    distance = ops.square(z_mean - prior_mean) * ops.exp(-prior_log_var)
    return 0.5 * (variance_ratio + distance - 1.0 - z_log_var + prior_log_var)


def log_prior_ratio(z_mean, z_log_var, epsilon, prior_mean=None, prior_log_var=None):
    """`log p(z) - log q(z | x)` per row, for `z = reparameterize(z_mean, z_log_var, epsilon)`.

    `log q(z | x) = -1/2 sum_j (log 2 pi + z_log_var_j + epsilon_j**2)`, and
    `log p(z) = -1/2 sum_j (log 2 pi + z_j**2)` for N(0, I) or, for
    p(z | c) = N(m, diag(exp(s))), `-1/2 sum_j (log 2 pi + s_j + (z_j - m_j)**2 exp(-s_j))`;
    the `log 2 pi` terms cancel. In float32 at least.

    Example:

    >>> import numpy as np
    >>> from vae_keras import distributions
    >>> zero = np.zeros((1, 2), "float32")
    >>> float(distributions.log_prior_ratio(zero, zero, zero)[0]) == 0.0  # q is the prior
    True
    """
    z_mean, z_log_var, epsilon = _wide(z_mean, z_log_var, epsilon)
    z = reparameterize(z_mean, z_log_var, epsilon)
    if prior_mean is None:
        log_p = ops.square(z)
    else:
        prior_mean, prior_log_var = _wide(prior_mean, prior_log_var)
        log_p = prior_log_var + ops.square(z - prior_mean) * ops.exp(-prior_log_var)
    return -0.5 * ops.sum(log_p - z_log_var - ops.square(epsilon), axis=-1)


# ---------------------------------------------------------------- likelihoods
def bernoulli_log_prob(x, p, from_logits=False):
    """`x log p + (1 - x) log(1 - p)` per element, p clipped to `[eps, 1 - eps]` as Keras does.

    Written out rather than `ops.binary_crossentropy`, whose PyTorch version
    raises on a NaN probability: here a NaN stays a NaN, as on the other backends.
    NumPy inputs are converted to tensors first, on every backend.
    """
    p = ops.convert_to_tensor(p)
    x = ops.cast(x, p.dtype)
    if from_logits:
        # log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l)
        return -(x * ops.softplus(-p) + (1.0 - x) * ops.softplus(p))
    eps = keras.config.epsilon()
    p = ops.clip(p, eps, 1.0 - eps)
    return x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p)


def _cb_closed_and_series(p, from_logits):
    """`(small, t, t_safe, artanh_safe)` for the two continuous Bernoulli formulas.

    `t = 1 - 2 lambda` and `artanh(t)` come from probabilities (clipped as Keras
    does) or logits. Where `|t| < 0.2` the Taylor series is used; there `t_safe`
    and `artanh_safe` are 1, so that the closed forms' 0/0 at t = 0 never
    reaches a value or a gradient ("double where").
    """
    p = ops.convert_to_tensor(p)
    if from_logits:
        # lambda = sigmoid(l): 1 - 2 lambda = -tanh(l / 2) and artanh(1 - 2 lambda) = -l / 2.
        t, artanh_t = -ops.tanh(0.5 * p), -0.5 * p
    else:
        eps = keras.config.epsilon()
        p = ops.clip(p, eps, 1.0 - eps)
        # artanh(1 - 2 lambda) = log((1 - lambda) / lambda) / 2, written so that a small
        # lambda keeps its digits (1 - 2 lambda would round them away in float32).
        t, artanh_t = 1.0 - 2.0 * p, 0.5 * (ops.log1p(-p) - ops.log(p))
    small = ops.abs(t) < _CB_TAYLOR_BELOW
    ones = ops.ones_like(t)
    return small, t, ops.where(small, ones, t), ops.where(small, ones, artanh_t)


def continuous_bernoulli_log_normalizer(p, from_logits=False):
    """`log C(lambda)` of the continuous Bernoulli, per element (Loaiza-Ganem & Cunningham, 2019).

    `C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)` for lambda != 0.5 and
    `C(0.5) = 2`. Near lambda = 0.5, with `t = 1 - 2 lambda`, the Taylor series
    `log C = log 2 + t**2/3 + 13 t**4/90 + 251 t**6/2835 + O(t**8)` is used, so the
    value and its gradient are finite and accurate there; at the ends lambda is
    clipped to `[eps, 1 - eps]` as in the Bernoulli log-probability.
    """
    small, t, t_safe, artanh_safe = _cb_closed_and_series(p, from_logits)
    t2 = ops.square(t)
    series = t2 * (1.0 / 3.0 + t2 * (13.0 / 90.0 + t2 * (251.0 / 2835.0)))
    return math.log(2.0) + ops.where(small, series, ops.log(artanh_safe / t_safe))


@keras.saving.register_keras_serializable(package="vae_keras")
def continuous_bernoulli_log_prob(x, p, from_logits=False):
    """Log-density of the continuous Bernoulli CB(lambda) at x in [0, 1], per element.

    Loaiza-Ganem & Cunningham (2019), "The continuous Bernoulli: fixing a
    pervasive error in variational autoencoders": the Bernoulli's
    `lambda**x (1 - lambda)**(1 - x)`, read as a function of a grey level x in
    [0, 1], does not integrate to 1; its normalized version is the density

        p(x | lambda) = C(lambda) lambda**x (1 - lambda)**(1 - x),
        C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda),  C(0.5) = 2,

    so the log-density is the Bernoulli log-probability plus `log C(lambda)`
    (see `continuous_bernoulli_log_normalizer` for how it is computed stably).
    Computed in the dtype of its inputs; pass float32 (as `VAELoss` does).

    Args:
        x: Values in [0, 1].
        p: The parameter lambda in (0, 1) (clipped to `[eps, 1 - eps]`), or its
            logits when `from_logits=True`; same shape as `x`.
        from_logits: Whether `p` holds logits.

    Returns:
        A backend tensor of the shape of `x`, in nats (a density: it may be
        positive).

    Example:

    >>> import numpy as np
    >>> from vae_keras import losses
    >>> float(losses.continuous_bernoulli_log_prob(np.float32(0.3), np.float32(0.5)))  # uniform
    0.0
    >>> round(float(losses.continuous_bernoulli_log_prob(np.float32(0.3), np.float32(0.9))), 4)
    -0.6331
    """
    p = ops.convert_to_tensor(p)
    return bernoulli_log_prob(x, p, from_logits) + continuous_bernoulli_log_normalizer(
        p, from_logits
    )


def continuous_bernoulli_mean(p, from_logits=False):
    """Mean of CB(lambda): `lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda))`.

    It is 0.5 at lambda = 0.5 and lies between 0.5 and lambda, so it is not lambda:
    a decoder that outputs lambda = 0.9 for a pixel predicts a mean grey level of
    about 0.67. Near lambda = 0.5 the Taylor series
    `0.5 - t/6 - 2 t**3/45 - 22 t**5/945 + O(t**7)`, `t = 1 - 2 lambda`, is used.

    Args:
        p: The parameter lambda (clipped to `[eps, 1 - eps]`), or logits.
        from_logits: Whether `p` holds logits.

    Returns:
        A backend tensor of the shape of `p`, values in (0, 1).

    Example:

    >>> import numpy as np
    >>> from vae_keras import losses
    >>> np.round(np.asarray(losses.continuous_bernoulli_mean(np.array([0.5, 0.9]))).astype("float64"), 4).tolist()
    [0.5, 0.6699]
    """
    small, t, t_safe, artanh_safe = _cb_closed_and_series(p, from_logits)
    # lambda / (2 lambda - 1) = 1/2 - 1 / (2t)
    closed = 0.5 - 0.5 / t_safe + 0.5 / artanh_safe
    t2 = ops.square(t)
    series = 0.5 - t * (1.0 / 6.0 + t2 * (2.0 / 45.0 + t2 * (22.0 / 945.0)))
    return ops.where(small, series, closed)


class _Likelihood:
    """p(x | z) given the decoder's output: `log_prob` per example and `mean`.

    Subclasses define `elementwise(x, output, from_logits)`, the per-element
    log-probability without constants, and `log_constant`, the per-element
    constant (0 except for the Gaussian).
    """

    name = None
    log_constant = 0.0

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def log_prob(self, x, output, mask=None, constant=True):
        """`sum_i mask_i log p(x_i | output_i)` per example, over every non-batch axis.

        Args:
            x: Images, shape `(batch, ...)`.
            output: The decoder's output (the distribution's parameters), same shape.
            mask: Optional weights in [0, 1] broadcastable to the images' shape:
                a pixel with mask 0 is not scored.
            constant: Whether to include the normalizing constant (the Gaussian's
                `0.5 log(2 pi sigma**2)` per scored pixel); the training loss
                leaves it out, the log-likelihood keeps it.

        Returns:
            A tensor of shape `(batch,)` in nats (of the shape of `x` if it has
            no non-batch axis).
        """
        output = ops.convert_to_tensor(output)
        x = ops.cast(x, output.dtype)
        terms = self.elementwise(x, output, self.from_logits)
        if mask is not None:
            mask = ops.broadcast_to(ops.cast(mask, terms.dtype), ops.shape(terms))
            terms = terms * mask
        axes = tuple(range(1, len(terms.shape)))
        total = ops.sum(terms, axis=axes) if axes else terms
        if constant and self.log_constant:
            count = math.prod(terms.shape[1:]) if mask is None else ops.sum(mask, axis=axes)
            total = total - self.log_constant * count
        return total

    def mean(self, output):
        """The mean of p(x | z): what `predict` and `generate` return."""
        return output

    def get_config(self):
        return {"from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@keras.saving.register_keras_serializable(package="vae_keras")
class Bernoulli(_Likelihood):
    """Pixels as Bernoulli variables: `x log p + (1 - x) log(1 - p)` (binary cross-entropy).

    The decoder outputs the pixel probabilities (or logits with
    `from_logits=True`), which are also the mean.

    Example:

    >>> import numpy as np
    >>> from vae_keras import distributions
    >>> x = np.array([[0.0, 1.0]], "float32")
    >>> round(float(distributions.Bernoulli().log_prob(x, np.full((1, 2), 0.5))[0]), 4)
    -1.3863
    """

    name = "bernoulli"

    elementwise = staticmethod(bernoulli_log_prob)


@keras.saving.register_keras_serializable(package="vae_keras")
class ContinuousBernoulli(_Likelihood):
    """The continuous Bernoulli CB(lambda) for grey levels in [0, 1] (Loaiza-Ganem & Cunningham, 2019).

    The decoder outputs lambda (or its logits); the mean is
    `continuous_bernoulli_mean(lambda)`, not lambda.

    Example:

    >>> import numpy as np
    >>> from vae_keras import distributions
    >>> cb = distributions.ContinuousBernoulli()
    >>> float(cb.log_prob(np.full((1, 3), 0.3, "float32"), np.full((1, 3), 0.5, "float32"))[0])
    0.0
    """

    name = "continuous_bernoulli"

    elementwise = staticmethod(continuous_bernoulli_log_prob)

    def mean(self, output):
        return continuous_bernoulli_mean(output, self.from_logits)


@keras.saving.register_keras_serializable(package="vae_keras")
class Gaussian(_Likelihood):
    """N(x_hat, sigma**2 I): `-(x - x_hat)**2 / (2 sigma**2) - 0.5 log(2 pi sigma**2)` per pixel.

    Args:
        sigma: The standard deviation, a positive number.

    Example:

    >>> import numpy as np
    >>> from vae_keras import distributions
    >>> x, x_hat = np.zeros((1, 1), "float32"), np.ones((1, 1), "float32")
    >>> float(distributions.Gaussian(sigma=1.0).log_prob(x, x_hat, constant=False)[0])
    -0.5
    """

    name = "gaussian"

    def __init__(self, sigma=1.0):
        super().__init__()
        self.sigma = _validation.number(sigma, "sigma", "Gaussian", positive=True)
        self.log_constant = 0.5 * math.log(2.0 * math.pi * self.sigma**2)

    def elementwise(self, x, output, from_logits=False):
        return -(ops.square(x - output) / (2.0 * self.sigma**2))

    def get_config(self):
        return {"sigma": self.sigma}


def get(likelihood, sigma=1.0, from_logits=False, where="likelihood"):
    """A likelihood object from its name: `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`.

    `sigma` is the Gaussian's standard deviation, `from_logits` the Bernoulli
    likelihoods' choice of parameters; each is ignored by the others. A
    likelihood object is returned as it is.
    """
    if isinstance(likelihood, _Likelihood):
        return likelihood
    if likelihood == "gaussian":
        return Gaussian(sigma=sigma)
    classes = {"bernoulli": Bernoulli, "continuous_bernoulli": ContinuousBernoulli}
    if likelihood not in classes:
        raise ValueError(
            f"{where}: unknown likelihood; expected one of {LIKELIHOODS}; "
            f"received likelihood={likelihood!r}"
        )
    return classes[likelihood](from_logits=from_logits)

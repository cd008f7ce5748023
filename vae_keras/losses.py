"""The two terms of the negative ELBO: the KL term and the reconstruction loss."""

import math

import keras
from keras import ops

from vae_keras import _validation

__all__ = [
    "kl_divergence",
    "kl_per_dimension",
    "VAELoss",
    "LIKELIHOODS",
    "continuous_bernoulli_log_prob",
    "continuous_bernoulli_mean",
    "likelihood_mean",
]

LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
# Below this |1 - 2 lambda| the continuous Bernoulli's log-normalizer and mean use
# their Taylor series (the closed forms are 0/0 at lambda = 0.5 and lose digits,
# and their gradients more, near it). At 0.2 the truncated series are within
# 2e-7 of the closed forms, and the closed forms are accurate to float32 above it.
_CB_TAYLOR_BELOW = 0.2


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

    which is the first formula when `m = 0` and `l = 0` (and without the prior
    arguments the first formula is what is computed, bit for bit as before).
    Averaged over a dataset it shows which
    dimensions carry information (a dimension with KL near 0 is ignored by the
    encoder; see notebook 05), and it is what free bits put a floor under.

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
    z_mean = ops.convert_to_tensor(z_mean)
    z_log_var = ops.convert_to_tensor(z_log_var)
    if tuple(z_mean.shape) != tuple(z_log_var.shape):
        raise ValueError(
            "kl_divergence: z_mean and z_log_var must have the same shape; "
            f"received {tuple(z_mean.shape)} and {tuple(z_log_var.shape)}"
        )
    if len(z_mean.shape) < 1:
        raise ValueError("kl_divergence: expected tensors of shape (batch, latent_dim)")
    # float32 at least: under mixed precision the inputs may be float16 or
    # bfloat16, where exp(log_var) overflows (float16) or loses digits.
    if (prior_mean is None) != (prior_log_var is None):
        raise ValueError(
            "kl_divergence: give both prior_mean and prior_log_var, or neither; received "
            f"prior_mean={'None' if prior_mean is None else 'a tensor'} and "
            f"prior_log_var={'None' if prior_log_var is None else 'a tensor'}"
        )
    dtype = keras.backend.result_type(z_mean.dtype, z_log_var.dtype, "float32")
    z_mean = ops.cast(z_mean, dtype)
    z_log_var = ops.cast(z_log_var, dtype)
    if prior_mean is None:
        # The closed form with the sign folded in, so the prior gives +0.0, not -0.0.
        terms = ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var
        return 0.5 * terms
    prior_mean = ops.convert_to_tensor(prior_mean)
    prior_log_var = ops.convert_to_tensor(prior_log_var)
    for name, tensor in (("prior_mean", prior_mean), ("prior_log_var", prior_log_var)):
        if tuple(tensor.shape) != tuple(z_mean.shape):
            raise ValueError(
                f"kl_divergence: {name} must have the shape of z_mean {tuple(z_mean.shape)}; "
                f"received {tuple(tensor.shape)}"
            )
    prior_mean = ops.cast(prior_mean, dtype)
    prior_log_var = ops.cast(prior_log_var, dtype)
    terms = (
        ops.exp(z_log_var - prior_log_var)
        + ops.square(z_mean - prior_mean) * ops.exp(-prior_log_var)
        - 1.0
        - z_log_var
        + prior_log_var
    )
    return 0.5 * terms


def bernoulli_log_prob(x, p, from_logits=False):
    """`x log p + (1 - x) log(1 - p)` per element, p clipped to `[eps, 1 - eps]` as Keras does.

    Written out rather than `ops.binary_crossentropy`, whose PyTorch version
    raises on a NaN probability: here a NaN stays a NaN, as on the other backends.
    """
    if from_logits:
        # log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l)
        return -(x * ops.softplus(-p) + (1.0 - x) * ops.softplus(p))
    eps = keras.config.epsilon()
    p = ops.clip(p, eps, 1.0 - eps)
    return x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p)


def _cb_t_and_artanh(p, from_logits):
    """`t = 1 - 2 lambda` and `artanh(t)`, from probabilities (clipped as Keras does) or logits."""
    if from_logits:
        # lambda = sigmoid(l): 1 - 2 lambda = -tanh(l / 2) and artanh(1 - 2 lambda) = -l / 2.
        return -ops.tanh(0.5 * p), -0.5 * p
    eps = keras.config.epsilon()
    p = ops.clip(p, eps, 1.0 - eps)
    # artanh(1 - 2 lambda) = log((1 - lambda) / lambda) / 2, written so that a small
    # lambda keeps its digits (1 - 2 lambda would round them away in float32).
    return 1.0 - 2.0 * p, 0.5 * (ops.log1p(-p) - ops.log(p))


def _cb_small_t(t):
    """`(small, t_safe)`: where the Taylor series is used, and `t` moved off 0 elsewhere.

    The closed forms are evaluated at `t_safe`, which is 1 where the series is used,
    so that their 0/0 at t = 0 never reaches a value or a gradient ("double where").
    """
    small = ops.abs(t) < _CB_TAYLOR_BELOW
    return small, ops.where(small, ops.ones_like(t), t)


def continuous_bernoulli_log_normalizer(p, from_logits=False):
    """`log C(lambda)` of the continuous Bernoulli, per element (Loaiza-Ganem & Cunningham, 2019).

    `C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)` for lambda != 0.5 and
    `C(0.5) = 2`. Near lambda = 0.5, with `t = 1 - 2 lambda`, the Taylor series
    `log C = log 2 + t**2/3 + 13 t**4/90 + 251 t**6/2835 + O(t**8)` is used, so the
    value and its gradient are finite and accurate there; at the ends lambda is
    clipped to `[eps, 1 - eps]` as in the Bernoulli log-probability.
    """
    t, artanh_t = _cb_t_and_artanh(ops.convert_to_tensor(p), from_logits)
    small, t_safe = _cb_small_t(t)
    artanh_safe = ops.where(small, ops.ones_like(t), artanh_t)
    closed = ops.log(artanh_safe / t_safe)
    t2 = ops.square(t)
    series = t2 * (1.0 / 3.0 + t2 * (13.0 / 90.0 + t2 * (251.0 / 2835.0)))
    return math.log(2.0) + ops.where(small, series, closed)


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
    x = ops.cast(x, p.dtype)
    return bernoulli_log_prob(x, p, from_logits=from_logits) + continuous_bernoulli_log_normalizer(
        p, from_logits=from_logits
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
    p = ops.convert_to_tensor(p)
    t, artanh_t = _cb_t_and_artanh(p, from_logits)
    small, t_safe = _cb_small_t(t)
    artanh_safe = ops.where(small, ops.ones_like(t), artanh_t)
    # lambda / (2 lambda - 1) = 1/2 - 1 / (2t)
    closed = 0.5 - 0.5 / t_safe + 0.5 / artanh_safe
    t2 = ops.square(t)
    series = 0.5 - t * (1.0 / 6.0 + t2 * (2.0 / 45.0 + t2 * (22.0 / 945.0)))
    return ops.where(small, series, closed)


def likelihood_mean(decoder_output, likelihood):
    """The mean of p(x | z) given the decoder's output, for `predict` and `generate`.

    The decoder's output itself for `"bernoulli"` (the pixel probabilities are
    the means) and `"gaussian"`; `continuous_bernoulli_mean` of it for
    `"continuous_bernoulli"`, whose mean is not its parameter lambda.
    """
    if likelihood == "continuous_bernoulli":
        return continuous_bernoulli_mean(decoder_output)
    return decoder_output


@keras.saving.register_keras_serializable(package="vae_keras")
class VAELoss(keras.losses.Loss):
    """Reconstruction term of the negative ELBO: -log p(x | z) per image.

    The per-element negative log-likelihood is summed over every non-batch axis,
    giving one value per image, and the usual Keras reduction
    (`"sum_over_batch_size"`) then averages those over the batch.

    Why sum and not mean: the ELBO is `E_q[log p(x|z)] - KL(q(z|x) || p(z))`,
    where `log p(x|z)` is a sum over all pixels and the KL is a sum over latent
    dimensions. Averaging over the 784 pixels of an MNIST image instead divides
    the reconstruction term by 784 while the KL term keeps its size, which is
    the same as training with `beta = 784`: the KL term dominates, the posterior
    collapses towards the prior and reconstructions turn into a blurry average.

    Likelihoods:
        - `"bernoulli"` (default, for images in [0, 1]): binary cross-entropy
          `-[x log p + (1 - x) log(1 - p)]`, with `y_pred` the pixel
          probabilities (or logits when `from_logits=True`).
        - `"gaussian"`: squared error `(x - x_hat)**2 / (2 sigma**2)`, the
          negative log-likelihood of `N(x_hat, sigma**2 I)` without its constant
          `0.5 * log(2 pi sigma**2)` per element.
        - `"continuous_bernoulli"` (for grey levels in [0, 1]): the negative
          log-density of the continuous Bernoulli (Loaiza-Ganem & Cunningham,
          2019), the binary cross-entropy minus `log C(lambda)`, its normalizing
          constant (see `continuous_bernoulli_log_prob`); `y_pred` is lambda
          (or its logits when `from_logits=True`), which is not the mean.

    Args:
        likelihood: `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`.
        sigma: Standard deviation of the Gaussian likelihood (ignored for
            `"bernoulli"`); must be positive.
        from_logits: For `"bernoulli"` and `"continuous_bernoulli"`, whether
            `y_pred` holds logits instead of probabilities (more stable; ignored
            for `"gaussian"`).
        reduction: Keras loss reduction; the default averages over the batch.
        name: Name of the loss.
        dtype: Dtype of the loss computation. The default, `None`, is Keras'
            `floatx()` (float32): under a mixed-precision policy the float16 or
            bfloat16 reconstructions are cast to float32 before the per-pixel
            terms are computed and summed.

    Call arguments:
        y_true: Images, shape `(batch, ...)`, values in [0, 1] for Bernoulli.
        y_pred: Reconstructions of the same shape.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> x = np.array([[0.0, 1.0]])
    >>> loss = vk.VAELoss()(x, np.array([[0.5, 0.5]]))
    >>> round(float(loss), 4)  # 2 * log(2)
    1.3863
    """

    def __init__(
        self,
        likelihood="bernoulli",
        sigma=1.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="vae_reconstruction_loss",
        dtype=None,
    ):
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"VAELoss: unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}"
            )
        sigma = _validation.number(sigma, "sigma", "VAELoss", positive=True)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.likelihood = likelihood
        self.sigma = float(sigma)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        if tuple(y_true.shape) != tuple(y_pred.shape) and None not in y_true.shape:
            if None not in y_pred.shape:
                raise ValueError(
                    "VAELoss: images and reconstructions must have the same shape; "
                    f"received {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
                )
        if self.likelihood == "bernoulli":
            per_element = -bernoulli_log_prob(y_true, y_pred, from_logits=self.from_logits)
        elif self.likelihood == "continuous_bernoulli":
            per_element = -continuous_bernoulli_log_prob(
                y_true, y_pred, from_logits=self.from_logits
            )
        else:
            per_element = ops.square(y_true - y_pred) / (2.0 * self.sigma**2)
        axes = tuple(range(1, len(per_element.shape)))
        return ops.sum(per_element, axis=axes) if axes else per_element

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": self.likelihood,
            "sigma": self.sigma,
            "from_logits": self.from_logits,
        }

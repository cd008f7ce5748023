"""The two terms of the negative ELBO as Keras pieces: the KL term and the reconstruction loss.

The formulas live in `vae_keras.distributions` (one home each); this module
re-exports them under the names they have always had here, and adds `VAELoss`,
the reconstruction term as a `keras.losses.Loss` over a likelihood object.
"""

import keras
from keras import ops

from vae_keras import _validation, distributions
from vae_keras.distributions import (
    LIKELIHOODS,
    bernoulli_log_prob,
    continuous_bernoulli_log_normalizer,
    continuous_bernoulli_log_prob,
    continuous_bernoulli_mean,
    kl_divergence,
    kl_per_dimension,
)

__all__ = [
    "kl_divergence",
    "kl_per_dimension",
    "VAELoss",
    "LIKELIHOODS",
    "bernoulli_log_prob",
    "continuous_bernoulli_log_normalizer",
    "continuous_bernoulli_log_prob",
    "continuous_bernoulli_mean",
    "likelihood_mean",
]


def likelihood_mean(decoder_output, likelihood):
    """The mean of p(x | z) given the decoder's output (see `distributions.get(...).mean`)."""
    return distributions.get(likelihood, where="likelihood_mean").mean(decoder_output)


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
        sigma = _validation.number(sigma, "sigma", "VAELoss", positive=True)
        self.distribution = distributions.get(likelihood, sigma, from_logits, where="VAELoss")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.likelihood = likelihood
        self.sigma = sigma
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        if None not in y_true.shape and None not in y_pred.shape:
            if tuple(y_true.shape) != tuple(y_pred.shape):
                raise ValueError(
                    "VAELoss: images and reconstructions must have the same shape; "
                    f"received {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
                )
        return -self.distribution.log_prob(y_true, y_pred, constant=False)

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": self.likelihood,
            "sigma": self.sigma,
            "from_logits": self.from_logits,
        }

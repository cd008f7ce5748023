"""The objective, written once: the ELBO's two terms, beta, free bits and the IWAE bound L_k.

`negative_elbo` is what `VAE.compute_loss` and `CVAE.compute_loss` return (the
models only add their sub-models' regularization losses and update their
metrics), and `log_weights` is the building block that the IWAE loss and
`vae_keras.evaluation.log_likelihood` share: `L_K` is the same bound with K
draws. Under a `tf.distribute` strategy every replica sees its share of the
global batch, so its loss is scaled (`scale_for_replicas`) and the statistic
that free bits floor is all-reduced (`free_bits_term`).
"""

import math

import keras
from keras import ops

from vae_keras.distributions import kl_per_dimension, log_prior_ratio

__all__ = [
    "negative_elbo",
    "log_weights",
    "log_mean_exp",
    "tile",
    "free_bits_term",
    "scale_for_replicas",
    "tf_strategy_active",
]


def tile(x, k):
    """`k` copies of a batch stacked along the batch axis: rows `[x_1..x_n, x_1..x_n, ...]`.

    Example:

    >>> import numpy as np
    >>> from vae_keras import objective
    >>> np.asarray(objective.tile(np.array([[1.0], [2.0]]), 2))[:, 0].tolist()
    [1.0, 2.0, 1.0, 2.0]
    """
    if x is None or k == 1:
        return x
    return ops.tile(x, (k,) + (1,) * (len(ops.shape(x)) - 1))


def log_mean_exp(values):
    """`log (1/k) sum_i exp(values_i)` over axis 0, stable for any magnitude.

    Example:

    >>> import numpy as np
    >>> from vae_keras import objective
    >>> round(float(objective.log_mean_exp(np.array([1000.0, 1000.0]))), 4)  # no overflow
    1000.0
    """
    return ops.logsumexp(values, axis=0) - math.log(values.shape[0])


def log_weights(log_px, z_mean, z_log_var, epsilon, prior=(), k=1):
    """`log p(x | z_i) + log p(z_i) - log q(z_i | x)` for k draws per example, shape `(k, batch)`.

    Args:
        log_px: `log p(x | z_i)`, shape `(k * batch,)`, draw-major (row
            `i * batch + j` is draw i of example j).
        z_mean, z_log_var: q(z | x), shape `(batch, latent_dim)`.
        epsilon: The standard normal draws behind the codes, `(k * batch, latent_dim)`.
        prior: `(prior_mean, prior_log_var)` of p(z | c), each `(batch, latent_dim)`,
            or `()` for N(0, I).
        k: Draws per example.

    Their mean over the draws estimates the ELBO; their `log_mean_exp` is L_k
    (Burda, Grosse & Salakhutdinov, 2016).
    """
    ratio = log_prior_ratio(
        tile(z_mean, k), tile(z_log_var, k), epsilon, *(tile(p, k) for p in prior)
    )
    return ops.reshape(ops.cast(log_px, ratio.dtype) + ratio, (k, -1))


def negative_elbo(
    likelihood, images, outputs, mask=None, sample_weight=None, beta=1.0, free_bits=0.0, k=1
):
    """The training loss and its two logged terms, batch means in float32.

    Args:
        likelihood: A `vae_keras.distributions` likelihood.
        images: The batch, `(batch, ...)`.
        outputs: One forward pass: `reconstruction` (`(k * batch, ...)`),
            `z_mean`, `z_log_var`, `epsilon`, and `prior_mean`/`prior_log_var`
            for a learned prior.
        mask: Optional per-pixel weights; only masked pixels are scored.
        sample_weight: Optional per-example weights, `(batch,)`.
        beta: Weight of the KL term (a number or a scalar tensor).
        free_bits: Floor, in nats, under each dimension's batch-average KL.
        k: Draws per example; k > 1 gives the IWAE loss `-L_k` (beta 1, no
            free bits: the model refuses the other settings).

    Returns:
        `(loss, reconstruction_loss, kl_loss)`: `reconstruction_loss + beta *
        kl_term` for k = 1 (kl_term is `kl_loss`, or the free-bits floor of it),
        `-L_k` for k > 1. The Gaussian likelihood's constant is left out.
    """
    images = ops.cast(images, "float32")
    reconstruction = ops.cast(outputs["reconstruction"], "float32")
    z_mean = ops.cast(outputs["z_mean"], "float32")
    z_log_var = ops.cast(outputs["z_log_var"], "float32")
    prior = ()
    if "prior_mean" in outputs:
        prior = (
            ops.cast(outputs["prior_mean"], "float32"),
            ops.cast(outputs["prior_log_var"], "float32"),
        )
    if k > 1:
        images, mask = tile(images, k), tile(mask, k)
    log_px = likelihood.log_prob(images, reconstruction, mask, constant=False)
    reconstruction_loss = -log_px
    if k > 1:
        bound = log_mean_exp(log_weights(log_px, z_mean, z_log_var, outputs["epsilon"], prior, k))
        # the ELBO's reconstruction term, estimated with the k draws, for the metric
        reconstruction_loss = ops.mean(ops.reshape(reconstruction_loss, (k, -1)), axis=0)
    kl_terms = kl_per_dimension(z_mean, z_log_var, *prior)
    if not free_bits:
        kl_terms = ops.sum(kl_terms, axis=-1)  # kl_divergence
    if sample_weight is not None:
        weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
        reconstruction_loss = reconstruction_loss * weight
        kl_terms = kl_terms * (weight if not free_bits else weight[:, None])
        if k > 1:
            bound = bound * weight
    reconstruction_loss = ops.mean(reconstruction_loss)
    if free_bits:
        kl_per_dim = ops.mean(kl_terms, axis=0)
        kl_loss = ops.sum(kl_per_dim)
        kl_term = free_bits_term(kl_per_dim, ops.shape(z_mean)[0], free_bits)
    else:
        kl_loss = kl_term = ops.mean(kl_terms)
    if k > 1:
        return -ops.mean(bound), reconstruction_loss, kl_loss
    return reconstruction_loss + beta * kl_term, reconstruction_loss, kl_loss


# ------------------------------------------------------------ several replicas
def tf_strategy_active():
    """True inside the scope of a `tf.distribute` strategy (TensorFlow backend only)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()


def _replicas():
    """`(replica_context, number_of_replicas)` under a strategy with several replicas, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return None
    replica_context = tf.distribute.get_replica_context()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return None if replica_context is None or replicas == 1 else (replica_context, replicas)


def _all_reduce_sum(replica_context, value):
    import tensorflow as tf

    return replica_context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def scale_for_replicas(total, batch_size):
    """Scales one replica's loss so that the replicas' gradients sum to the global one.

    Each replica's loss is its batch mean, so it is weighted by `local / global`
    examples: the sum of the gradients is then exactly the gradient of the
    global batch mean, also for a last batch that does not split evenly. The
    returned value is the batch mean divided by the number of replicas, what
    Keras reports for its own losses and un-scales for the `loss` metric.
    Without replicas, `total` is returned unchanged.
    """
    replicas = _replicas()
    if replicas is None:
        return total
    replica_context, count = replicas
    local = ops.cast(batch_size, total.dtype)
    exact = total * local / _all_reduce_sum(replica_context, local)
    return exact + ops.stop_gradient(total / count - exact)


def free_bits_term(kl_per_dim, batch_size, free_bits):
    """`sum_j max(free_bits, KL_j)`, with `KL_j` the batch-average KL of dimension j.

    Under a `tf.distribute` strategy the floor must see the global batch, not
    one replica's share: the per-dimension averages are all-reduced (without
    gradient), and this replica's gradient flows through the dimensions that
    are above the floor globally. With the weighting of `scale_for_replicas`
    the summed gradients are those of one device.
    """
    replicas = _replicas()
    if replicas is None:
        return ops.sum(ops.maximum(kl_per_dim, free_bits))
    replica_context = replicas[0]
    local = ops.cast(batch_size, kl_per_dim.dtype)
    total = _all_reduce_sum(replica_context, ops.stop_gradient(kl_per_dim) * local)
    replicated = total / _all_reduce_sum(replica_context, local)
    above = ops.cast(ops.greater(replicated, free_bits), kl_per_dim.dtype)
    gradient_path = ops.sum(above * kl_per_dim)
    value = ops.sum(ops.maximum(replicated, free_bits))
    return gradient_path + ops.stop_gradient(value - gradient_path)

"""What the models do differently when training is spread over several devices.

Two engines are supported, each on its own backend:

- TensorFlow's `tf.distribute` strategies (`MirroredStrategy`): every replica
  runs the step on its share of the global batch and the replicas' gradients
  are summed, so a replica's loss must be scaled (`scale_for_replicas`), and a
  statistic of the global batch, such as the per-dimension KL that free bits
  floor, must be all-reduced (`free_bits_term`).
- Keras' distribution API (`keras.distribution.DataParallel`) on JAX: the step
  sees the whole global batch, so nothing here applies.

Keras' distribution API on TensorFlow or PyTorch would be ignored silently, so
`check_distribution_support` refuses it.
"""

import keras
from keras import ops

_BACKEND_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX"}


def backend_is(name):
    return keras.backend.backend() == name


def tf_strategy_active():
    """True inside the scope of a `tf.distribute` strategy (TensorFlow backend only)."""
    if not backend_is("tensorflow"):
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()


def check_distribution_support(where):
    """Refuses Keras' distribution API on the backends whose trainers ignore it."""
    distribution = keras.distribution.distribution()
    if distribution is None or backend_is("jax"):
        return
    received = f"received distribution={type(distribution).__name__}"
    if backend_is("tensorflow"):
        raise ValueError(
            f"{where}: Keras' distribution API "
            "(keras.distribution.DataParallel, ModelParallel) runs on the JAX backend; "
            "the TensorFlow trainer ignores it, so this model would train on one device. "
            "On TensorFlow, build and compile the model inside "
            f"tf.distribute.MirroredStrategy().scope(); {received}"
        )
    raise ValueError(
        f"{where}: Keras' distribution API "
        "(keras.distribution.DataParallel, ModelParallel) runs on the JAX backend; "
        f"the {_BACKEND_NAMES.get(keras.backend.backend(), keras.backend.backend())} backend "
        "has no support for it, so this model would "
        "not be trained in parallel. Use KERAS_BACKEND=jax with DataParallel, or "
        f"KERAS_BACKEND=tensorflow with tf.distribute.MirroredStrategy; {received}"
    )


def _replicas():
    """`(replica_context, number_of_replicas)` under a strategy with several replicas, else None."""
    if not tf_strategy_active():
        return None
    import tensorflow as tf

    replica_context = tf.distribute.get_replica_context()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replica_context is None or replicas == 1:
        return None
    return replica_context, replicas


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
    import tensorflow as tf

    replica_context, count = replicas
    local = ops.cast(batch_size, total.dtype)
    global_size = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    exact = total * local / global_size
    return exact + ops.stop_gradient(total / count - exact)


def _global_average(batch_mean, batch_size, replica_context):
    """The global-batch average of a per-replica batch mean (no gradient)."""
    import tensorflow as tf

    local = ops.cast(batch_size, batch_mean.dtype)
    total = replica_context.all_reduce(
        tf.distribute.ReduceOp.SUM, ops.stop_gradient(batch_mean) * local
    )
    return total / replica_context.all_reduce(tf.distribute.ReduceOp.SUM, local)


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
    replicated = _global_average(kl_per_dim, batch_size, replicas[0])
    above = ops.cast(ops.greater(replicated, free_bits), kl_per_dim.dtype)
    gradient_path = ops.sum(above * kl_per_dim)
    value = ops.sum(ops.maximum(replicated, free_bits))
    return gradient_path + ops.stop_gradient(value - gradient_path)

"""Training FLOPs counted from a Keras architecture, and this machine's float32 matmul rate.

Counted per example, forward: Dense 2 * in * out; Conv2D 2 * H_out * W_out * k^2 * C_in *
C_out; Conv2DTranspose 2 * H_in * W_in * k^2 * C_in * C_out (every input pixel meets every
tap once, the multiply-adds a direct implementation does). A training step is counted as 3x
the forward (the backward pass costs about twice the forward: gradients w.r.t. the inputs and
the weights); activations, the loss and the optimizer are left out (they are O(parameters)
or O(activations), not O(multiply-adds)).

    >>> import keras
    >>> model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512)])
    >>> training_flops([model], 1)
    2408448
"""

import math
import time

__all__ = ["forward_flops", "training_flops", "matmul_rate"]


def forward_flops(model):
    """Multiply-add FLOPs of one example's forward pass through `model`'s weighted layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kh, kw = layer.kernel_size
            transposed = isinstance(layer, keras.layers.Conv2DTranspose)
            spatial = (layer.input if transposed else layer.output).shape[1:3]
            channels = layer.kernel.shape[2] * layer.kernel.shape[3]
            total += 2 * math.prod(spatial) * kh * kw * channels
    return total


def training_flops(models, examples):
    """FLOPs of training `models` (encoder, decoder, ...) on `examples` examples: 3x forward."""
    return 3 * examples * sum(forward_flops(m) for m in models)


def matmul_rate(size=2048, repeats=5):
    """Float32 `size` x `size` matrix products per second, in FLOP/s (NumPy's BLAS, best of)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype="float32") for _ in range(2))
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best

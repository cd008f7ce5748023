"""`Conv2DTranspose`: Keras' layer, computed on JAX as one matrix product per layer.

XLA on CPU runs a strided transposed convolution (a convolution of the
input dilated with zeros) far slower than an ordinary one: in the notebooks'
convolutional decoder it took most of a JAX training step. A stride-`s`
transposed convolution is also `s * s` ordinary stride-1 convolutions, one per
output phase, each with the kernel taps of that phase; stacked as the output
channels of one kernel, they make one convolution of the undilated input,
whose channels are then moved to space (depth-to-space) and cropped to Keras'
output size. That convolution is in turn one matrix product of the stacked
shifted inputs (im2col), whose backward pass XLA's CPU runs faster than a
convolution's. The weights, the variables, the config and the output (to
float32 rounding) are Keras' own; only the arithmetic differs.
"""

import keras
from keras import ops

__all__ = ["Conv2DTranspose"]


def _transposed(x, kernel, strides, size, crop):
    """Keras' transposed convolution of NHWC `x` by `kernel` (kh, kw, out, in), exactly."""
    (kh, kw, filters, channels), (sh, sw) = kernel.shape, strides
    taps = (-(-kh // sh), -(-kw // sw))  # taps per phase along each axis, ceil(k / s)
    kernel = ops.pad(kernel, [(0, taps[0] * sh - kh), (0, taps[1] * sw - kw), (0, 0), (0, 0)])
    kernel = ops.reshape(kernel, (taps[0], sh, taps[1], sw, filters, channels))
    kernel = ops.flip(kernel, axis=(0, 2))  # full-output tap m*s + r of phase r, as a correlation
    kernel = ops.reshape(ops.transpose(kernel, (0, 2, 5, 1, 3, 4)), (-1, sh * sw * filters))
    first = [c // s for c, s in zip(crop, strides)]  # the first phase row and column needed
    last = [-(-(c + n) // s) for c, n, s in zip(crop, size, strides)]
    pads = [(t - 1 - f, max(e - n, 0)) for t, f, e, n in zip(taps, first, last, x.shape[1:3])]
    x = ops.pad(x, [(0, 0), *pads, (0, 0)])
    # the stride-1 "valid" convolution as one matrix product of the stacked taps (im2col): on
    # XLA's CPU a training step of the notebooks' stride-2 layers ran 1.7-1.8x faster so
    rows, columns = x.shape[1] - taps[0] + 1, x.shape[2] - taps[1] + 1
    patches = [x[:, a : a + rows, b : b + columns] for a in range(taps[0]) for b in range(taps[1])]
    y = ops.matmul(ops.reshape(ops.concatenate(patches, axis=-1), (-1, kernel.shape[0])), kernel)
    y = ops.reshape(y, (-1, rows, columns, sh, sw, filters))
    y = ops.reshape(ops.transpose(y, (0, 1, 3, 2, 4, 5)), (-1, rows * sh, columns * sw, filters))
    top, left = (c - f * s for c, f, s in zip(crop, first, strides))
    return y[:, top : top + size[0], left : left + size[1], :]


def _crop(k, s, padding, output_padding):
    """Rows Keras' output drops at the start of the full transposed convolution (JAX's rule)."""
    if padding == "valid":
        return 0
    total = s + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    return k - 1 - min(-(-total // 2), k - 1)


@keras.saving.register_keras_serializable(package="vae_keras")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose`, fast on JAX; the same arguments, weights and outputs.

    On the JAX backend, for `channels_last` data, strides above 1 and
    `dilation_rate=1`, `call` computes the transposed convolution as one stride-1
    convolution over the stacked sub-kernels of the output phases, then
    depth-to-space: on CPU the backward pass of the notebooks' stride-2 layers
    runs 6-8x faster (`benchmarks/convolution.py`). Otherwise (other backends,
    and stride 1, where Keras' layer was faster) it is Keras' layer unchanged. A `.keras` file saved with Keras' layer loads its weights into
    this one (the variables are the same).

    Example:

    >>> import numpy as np
    >>> import keras
    >>> from vae_keras.convolution import Conv2DTranspose
    >>> layer = Conv2DTranspose(8, 3, strides=2, padding="same")
    >>> tuple(layer(np.zeros((1, 7, 7, 4), "float32")).shape)
    (1, 14, 14, 8)
    """

    _fast_backends = ("jax",)  # where `call` uses the stride-1 formulation (measured faster)

    def call(self, inputs):
        fast = keras.backend.backend() in self._fast_backends
        fast = fast and self.data_format == "channels_last"
        strided = tuple(self.strides) != (1, 1)  # stride 1: Keras' layer was faster, measured
        if not (fast and strided) or tuple(self.dilation_rate) != (1, 1):
            return super().call(inputs)
        output_padding = self.output_padding or (None, None)
        size = self.compute_output_shape(inputs.shape)[1:3]
        crop = [
            _crop(k, s, self.padding, p)
            for k, s, p in zip(self.kernel_size, self.strides, output_padding)
        ]
        outputs = _transposed(inputs, self.kernel, self.strides, size, crop)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)

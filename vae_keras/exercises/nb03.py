"""Checks for the exercises of notebook 03 (a VAE on MNIST)."""

import keras
import numpy as np

from vae_keras import distributions
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close


@exercise("03.bernoulli_reconstruction")
def bernoulli_reconstruction(reconstruction):
    """`reconstruction(x, probs)`: -log p(x | z) under independent Bernoulli pixels, per image."""
    rng = np.random.default_rng(3)
    x = rng.random((8, 28, 28, 1)).astype("float32")
    probs = rng.uniform(0.02, 0.98, size=x.shape).astype("float32")
    reference = -as_array(distributions.Bernoulli().log_prob(x, probs))
    tensors = [keras.ops.convert_to_tensor(a, "float32") for a in (x, probs)]
    value = as_array(reconstruction(*tensors), "reconstruction(x, probs)")
    if value.shape == x.shape:
        raise NotYet(
            "you return one value per pixel; the reconstruction term is one number per image: "
            "how do the log-probabilities of independent pixels combine?"
        )
    if value.shape == reference.shape:
        if np.allclose(value, -reference, rtol=1e-4, atol=1e-3):
            raise NotYet("your values are negative: the term is minus the log-likelihood")
        if np.allclose(value * 784, reference, rtol=1e-4, atol=1e-3):
            raise NotYet("your values are 784 times too small: sum over the pixels, not mean")
    expect_close(
        value,
        reference,
        "not the binary cross-entropy yet: a pixel of grey level x contributes "
        "x log p + (1 - x) log(1 - p) to the log-likelihood; are both parts there?",
        rtol=1e-4,
        atol=1e-3,
    )
    return "matches -vk.distributions.Bernoulli().log_prob on 8 random images, per image"


class _CountingDecoder:
    """A tiny decoder that counts how often it is called."""

    def __init__(self):
        import keras

        keras.utils.set_random_seed(3)
        self.model = keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(784, activation="sigmoid"),
                keras.layers.Reshape((28, 28, 1)),
            ]
        )
        self.calls = 0

    def __call__(self, z, *args, **kwargs):
        self.calls += 1
        return self.model(z, *args, **kwargs)

    def predict(self, z, *args, **kwargs):
        self.calls += 1
        kwargs.setdefault("verbose", 0)
        return self.model.predict(z, *args, **kwargs)


@exercise("03.decode_grid")
def decode_grid(decode):
    """`decode(decoder, values)`: images (n, n, 28, 28, 1), row i, column j at z = (values[j], values[i])."""
    values = np.linspace(-2.0, 2.0, 5).astype("float32")
    n = len(values)
    counting = _CountingDecoder()
    value = as_array(decode(counting, values), "decode_grid(decoder, values)")
    if counting.calls == 0:
        raise NotYet("your function never called the decoder")
    if counting.calls > 1:
        raise NotYet(
            f"the decoder was called {counting.calls} times; stack all the codes into one "
            "(n * n, 2) array and decode them in one batched call"
        )
    z1, z2 = np.meshgrid(values, values)  # z1 varies along a row (j), z2 down the columns (i)
    codes = np.stack([z1.ravel(), z2.ravel()], axis=1)
    reference = as_array(counting.model.predict(codes, verbose=0)).reshape(n, n, 28, 28, 1)
    if value.shape == (n * n, 28, 28, 1):
        raise NotYet(f"reshape the {n * n} decoded images into an (n, n, 28, 28, 1) grid")
    if value.shape == reference.shape and np.allclose(
        value, reference.transpose(1, 0, 2, 3, 4), atol=1e-5
    ):
        raise NotYet("your grid is transposed: row i should hold z_2 = values[i]")
    expect_close(
        value,
        reference,
        "the images are not those of the grid yet: print the codes you decode for a 2-value "
        "grid and compare them with the rule (row i, column j) -> z = (values[j], values[i])",
        rtol=1e-4,
        atol=1e-5,
    )
    return f"a {n}x{n} grid decoded in one call, images in the right places"

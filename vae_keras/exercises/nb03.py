"""Checks for the exercises of notebook 03 (a VAE on MNIST)."""

import keras
import numpy as np

from vae_keras import distributions
from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close, tensors


@exercise("03.bernoulli_reconstruction")
def bernoulli_reconstruction(reconstruction):
    """`reconstruction(x, probs)`: -log p(x | z) under independent Bernoulli pixels, per image."""
    rng = np.random.default_rng(3)
    x = rng.random((8, 28, 28, 1)).astype("float32")
    probs = rng.uniform(0.02, 0.98, size=x.shape).astype("float32")
    reference = -as_array(distributions.Bernoulli().log_prob(x, probs))
    expect_close(
        reconstruction(*tensors(x, probs)),
        reference,
        "not the binary cross-entropy yet: a pixel of grey level x contributes "
        "x log p + (1 - x) log(1 - p) to the log-likelihood; are both parts there?",
        rtol=1e-4,
        atol=1e-3,
        what="reconstruction(x, probs)",
        shapes={
            x.shape: "you return one value per pixel; the reconstruction term is one number per "
            "image: how do the log-probabilities of independent pixels combine?"
        },
        mistakes=[
            (-reference, "your values are negative: the term is minus the log-likelihood"),
            (reference / 784, "your values are 784 times too small: sum over the pixels, not mean"),
        ],
    )
    return "matches -vk.distributions.Bernoulli().log_prob on 8 random images, per image"


class _CountingDecoder:
    """A tiny decoder that counts how often it is called."""

    def __init__(self):

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
    expect_close(
        value,
        reference,
        "the images are not those of the grid yet: print the codes you decode for a 2-value "
        "grid and compare them with the rule (row i, column j) -> z = (values[j], values[i])",
        shapes={
            (n * n, 28, 28, 1): f"reshape the {n * n} decoded images into an (n, n, 28, 28, 1) grid"
        },
        mistakes=[
            (
                reference.transpose(1, 0, 2, 3, 4),
                "your grid is transposed: row i should hold z_2 = values[i]",
            )
        ],
    )
    return f"a {n}x{n} grid decoded in one call, images in the right places"

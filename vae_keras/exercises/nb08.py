"""Checks for the exercises of notebook 08 (few labels: the M2 model)."""

import numpy as np
from keras import ops

from vae_keras.exercises._core import NotYet, as_array, exercise, expect_close, tensors


@exercise("08.unlabelled_bound")
def unlabelled_bound(function):
    """`function(neg_elbo, logits)`: U(x) per image from L(x, y) per class and the logits."""
    rng = np.random.default_rng(8)
    n, k = 32, 6
    neg_elbo = rng.uniform(60.0, 140.0, size=(n, k))
    logits = rng.normal(0.0, 2.0, size=(n, k))
    log_q = as_array(ops.log_softmax(ops.convert_to_tensor(logits), axis=-1))
    q = np.exp(log_q)
    expected = np.sum(q * neg_elbo, axis=1) + np.sum(q * log_q, axis=1)
    value = function(*tensors(neg_elbo, logits))
    expect_close(
        value,
        expected,
        "not the bound yet: weigh each class's negative ELBO by the classifier's probability "
        "of that class, then account for the entropy of q(y | x)",
        rtol=1e-4,
        atol=1e-3,
        what="your bound",
        shapes={(n, k): "one number per image is expected; you return one per image and class"},
        mistakes=[
            (
                np.sum(q * neg_elbo, axis=1),
                "the entropy term is missing: q(y | x) is a distribution of the model too, and "
                "the bound pays for how much it is spread",
            ),
            (
                np.sum(q * neg_elbo, axis=1) - np.sum(q * log_q, axis=1),
                "the entropy has the wrong sign: a spread q(y | x) makes the negative bound "
                "smaller, not larger",
            ),
            (
                np.min(neg_elbo, axis=1),
                "you picked the best class; the bound averages over the classes under q(y | x)",
            ),
            (
                np.mean(neg_elbo, axis=1) - np.log(k),
                "you weighed the classes equally; the weights are the classifier's q(y | x)",
            ),
        ],
    )
    return f"matches sum_y q(y|x) L(x, y) - H(q(y|x)) on {n} images with {k} classes"


def _labels(rng):
    """Labels of 7 classes: 30 images of each of classes 0-5, and only 6 of class 6, shuffled."""
    return rng.permutation(np.concatenate([np.repeat(np.arange(6), 30), np.full(6, 6)]))


@exercise("08.pick_labels")
def pick_labels(function):
    """`function(labels, per_class, seed)`: indices of `per_class` random images of each class."""
    rng = np.random.default_rng(80)
    labels = _labels(rng)  # 6 per class: class 6 must give all its images, each once
    first = function(labels.copy(), 6, 0)
    picks = as_array(first, "your indices")
    if picks.ndim != 1:
        raise NotYet(f"return one flat array of indices; yours has shape {picks.shape}")
    if not np.all(picks == np.round(picks)) or picks.min() < 0 or picks.max() >= len(labels):
        raise NotYet("return indices into `labels` (whole numbers from 0 to len(labels) - 1)")
    picks = picks.astype(int)
    if len(np.unique(picks)) != len(picks):
        raise NotYet("an image is picked twice: draw without replacement")
    counts = np.bincount(labels[picks], minlength=7)
    if not np.all(counts == 6):
        raise NotYet(
            f"the classes are not balanced: per class you picked {counts.tolist()}; the "
            "exercise asks for the same number of images of every class"
        )
    firsts = np.concatenate([np.flatnonzero(labels == c)[:6] for c in range(7)])
    if set(picks.tolist()) == set(firsts.tolist()):
        raise NotYet(
            "you picked the first images of each class; draw them at random, so that "
            "another seed gives another labelled set"
        )
    again = as_array(function(labels.copy(), 6, 0), "your indices").astype(int)
    if not np.array_equal(np.sort(again), np.sort(picks)):
        raise NotYet("the same seed gave another draw: use `seed` for every random choice")
    other = as_array(function(labels.copy(), 6, 1), "your indices").astype(int)
    if set(other.tolist()) == set(picks.tolist()):
        raise NotYet("seeds 0 and 1 gave the same images: the seed must drive the draw")
    return "6 distinct images of each of 7 classes, drawn at random and reproducible by seed"

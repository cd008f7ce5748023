"""Typical wrong answers to the exercises of notebook 08: each is a whole solution cell."""

_BOUND = """
def unlabelled_bound(neg_elbo, logits):
    log_q = ops.log_softmax(logits, axis=-1)
    q = ops.exp(log_q)
    return {result}
"""

_PICK = """
def pick_labels(labels, per_class, seed):
    rng = np.random.default_rng(seed)
    return {result}
"""

WRONG = {
    "08.unlabelled_bound": [
        # no entropy term
        _BOUND.format(result="ops.sum(q * neg_elbo, axis=-1)"),
        # the entropy with the wrong sign
        _BOUND.format(result="ops.sum(q * neg_elbo, axis=-1) - ops.sum(q * log_q, axis=-1)"),
        # the logits used as probabilities
        _BOUND.format(result="ops.sum(logits * neg_elbo, axis=-1) + ops.sum(q * log_q, axis=-1)"),
        # the best class instead of the average under q
        _BOUND.format(result="ops.min(neg_elbo, axis=-1)"),
        # per image and class, not summed over the classes
        _BOUND.format(result="q * neg_elbo + q * log_q"),
    ],
    "08.pick_labels": [
        # drawn with replacement
        _PICK.format(
            result="np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class) "
            "for c in np.unique(labels)])"
        ),
        # not balanced: per_class * K images at random from the whole set
        _PICK.format(
            result="rng.choice(len(labels), per_class * len(np.unique(labels)), replace=False)"
        ),
        # the first images of each class
        _PICK.format(
            result="np.concatenate([np.flatnonzero(labels == c)[:per_class] "
            "for c in np.unique(labels)])"
        ),
        # the seed is not used
        """
def pick_labels(labels, per_class, seed):
    rng = np.random.default_rng()
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
         for c in np.unique(labels)]
    )
""",
        # one list per class, not one flat array
        _PICK.format(
            result="[rng.choice(np.flatnonzero(labels == c), per_class, replace=False) "
            "for c in np.unique(labels)]"
        ),
    ],
}

"""`SemiSupervisedVAE`: the M2 model of Kingma, Rezende, Mohamed & Welling (2014).

"Semi-Supervised Learning with Deep Generative Models" treats the label y of a
CVAE as a second latent variable: with a classifier q(y | x) beside the encoder
q(z | x, y) and the decoder p(x | z, y), an image with a label scores the
CVAE's negative ELBO `L(x, y)`, and an image without one the bound of the
model with y unknown,

    U(x) = sum_y q(y | x) L(x, y) - H(q(y | x)),

plus `alpha * -log q(y | x)` on the labelled images, so that the classifier
also learns from the labels directly. Every term is `objective.negative_elbo`
of the CVAE, weighted; this file adds the enumeration of the classes and the
label checks.
"""

import keras
import numpy as np
from keras import ops

from vae_keras import _submodels, _validation, objective
from vae_keras._base import LatentVariableModel
from vae_keras._inputs import InputChecks, is_array, one_hot

__all__ = ["SemiSupervisedVAE"]

NAME = "SemiSupervisedVAE"


def check_labels(labels, n, num_classes, low=-1):
    """Labels as int32 NumPy of shape `(n,)`: class ids in [0, K), or -1 (unlabelled) if `low=-1`."""
    if labels is None:
        raise ValueError(f"{NAME}: give a label per image, -1 where unknown; received y=None")
    labels = np.asarray(labels)
    labels = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1 or (n is not None and labels.shape[0] != n):
        raise ValueError(
            f"{NAME}: labels must be class ids of shape ({n or 'n'},), one per image; received "
            f"labels of shape {labels.shape}"
        )
    whole = labels.dtype.kind in "iuf" and np.all(np.mod(labels, 1) == 0)
    if labels.size and (not whole or labels.min() < low or labels.max() >= num_classes):
        values = f"from {labels.min()} to {labels.max()}" if whole else f"of dtype {labels.dtype}"
        raise ValueError(
            f"{NAME}: labels must be whole class ids in [0, {num_classes - 1}]"
            f"{', or -1 for an unlabelled image' if low < 0 else ''}; received values {values}"
        )
    return labels.astype("int32")


class _LabelChecks(InputChecks):
    """The image checks of a VAE, and each stream batch's labels (class ids or -1)."""

    def check_pair(self, images, labels):
        self.check_images(images)
        return check_labels(labels, np.shape(images)[0], self.classes)

    def check_batch(self, batch, targets_allowed=True):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self.check_images(x) if y is None or not is_array(x) else self.check_pair(x, y)


@keras.saving.register_keras_serializable(package="vae_keras")
class SemiSupervisedVAE(LatentVariableModel):
    """Kingma et al.'s M2: a CVAE whose label is observed for some images and inferred for the rest.

    Trained with `fit(images, labels)`, labels -1 where unknown: the labels are
    the targets, as for a Keras classifier, because that is what the model
    becomes: calling it (and `predict`) gives the class probabilities q(y | x).
    A stream yields `(images, labels)`. Each step runs the classifier once,
    and the encoder and the decoder once each over the `batch * num_classes`
    pairs (x, y) of every image with every class (`pairs`). Per image of the
    batch, in nats and float32:

    - `labelled_loss`: `L(x, y)`, the CVAE's negative ELBO (`beta` weighs its KL);
    - `unlabelled_loss`: `sum_y q(y | x) L(x, y) - H(q(y | x))`;
    - `classification_loss`: `-log q(y | x)` on the labelled images;
    - `loss = labelled_loss + unlabelled_loss + alpha * classification_loss`.

    Each term, `entropy` (H(q(y | x)) on the unlabelled images) included, sums over its
    images and divides by the batch size, so a term weighs as its images' share of the batch;
    `reconstruction_loss`/`kl_loss` are the ELBO's terms under the labels or q(y | x). Kingma
    et al. write the loss as sums over the N training images, with alpha = 0.1 N for each
    labelled image; divided by N that is the same `alpha` here while each labelled image
    appears once in the training data (repeated r times, each copy carries `alpha / r`). The
    uniform prior p(y) adds the constant `log num_classes` to both bounds; it is left out.

    Args:
        encoder: A Keras model mapping `[images, one_hot_labels]` to `[z_mean, z_log_var]`.
        decoder: A Keras model mapping `[z, one_hot_labels]` to images.
        classifier: A Keras model mapping images to `num_classes` logits.
        num_classes: K, a positive integer.
        alpha: Weight of the classification term, non-negative; fixed.
        beta, seed, likelihood, sigma: As for `vk.CVAE`.
        **kwargs: Standard `keras.Model` arguments.

    Example:

    >>> import keras, numpy as np
    >>> import vae_keras as vk
    >>> classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
    ...                                keras.layers.Dense(10)])
    >>> model = vk.SemiSupervisedVAE(vk.build_mlp_encoder(2, num_classes=10),
    ...     vk.build_mlp_decoder(2, num_classes=10), classifier, num_classes=10)
    >>> model.compile(optimizer="adam")
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.random((64, 28, 28, 1)).astype("float32"), np.full(64, -1)
    >>> y[:8] = rng.integers(0, 10, 8)  # 8 labelled images, 56 without a label
    >>> history = model.fit(x, y, batch_size=32, verbose=0)
    >>> sorted(history.history)[:4]
    ['beta', 'classification_loss', 'entropy', 'kl_loss']
    >>> model.predict(x[:3], verbose=0).shape, model.generate([3, 7], seed=0).shape
    ((3, 10), (2, 28, 28, 1))
    """

    def __init__(self, encoder, decoder, classifier, num_classes, alpha=1.0, **kwargs):
        self.num_classes = _validation.integer(num_classes, "num_classes", NAME)
        self._alpha = _validation.number(alpha, "alpha", NAME, non_negative=True)
        if isinstance(classifier, dict):  # from a saved config
            classifier = keras.saving.deserialize_keras_object(classifier)
        if not isinstance(classifier, keras.layers.Layer):
            raise TypeError(f"{NAME}: classifier must be a Keras layer; received {classifier!r}")
        if kwargs.get("free_bits", 0) or kwargs.get("importance_samples", 1) != 1:
            raise ValueError(f"{NAME} has no free bits or importance samples; received {kwargs}")
        # LatentVariableModel builds the model inside its __init__, after keras.Model's
        # __init__ (before which Keras tracks no sub-model): `_check_sub_models` attaches it.
        object.__setattr__(self, "_pending_classifier", classifier)
        super().__init__(encoder, decoder, **kwargs)

    def _check_sub_models(self):
        self.classifier = self.__dict__.pop("_pending_classifier")
        for name in ("labelled_loss", "unlabelled_loss", "classification_loss", "entropy"):
            setattr(self, f"{name}_tracker", keras.metrics.Mean(name=name))
        _submodels.check_conditional_inputs(self.encoder, self.decoder, self.num_classes)
        super()._check_sub_models()

    def build(self, input_shape):
        """Builds the three networks on a symbolic batch, checking what they return."""
        shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        images = keras.KerasTensor(tuple(shape), dtype=self.input_dtype)
        labels = keras.KerasTensor((shape[0], self.num_classes), dtype=self.input_dtype)
        z_mean, _ = _submodels.check_encoder_outputs(NAME, self.encoder([images, labels]))
        _submodels.check_reconstruction(NAME, images, self.decoder([z_mean, labels]))
        logits = self.classifier(images)
        if tuple(logits.shape[1:]) != (self.num_classes,):
            raise ValueError(f"{NAME}: classifier must give (n, K) logits; got {logits.shape}")

    @property
    def alpha(self):
        """The weight of the classification term; fixed when the model is constructed."""
        return self._alpha

    @alpha.setter
    def alpha(self, value):
        raise AttributeError(f"{NAME}.alpha is fixed; build a new model; received alpha={value!r}")

    @property
    def free_bits(self):
        """Not used by this model: 0."""
        return 0.0

    @free_bits.setter
    def free_bits(self, value):
        raise AttributeError(f"{NAME} has no free bits; received free_bits={value!r}")

    def input_checks(self):
        """What `fit`, `evaluate` and `predict` check their data with (labels: `check_labels`)."""
        inputs = getattr(self.encoder, "inputs", None)
        checks = _LabelChecks(NAME, self.likelihood, [tuple(inputs[0].shape[1:])] if inputs else ())
        checks.classes = self.num_classes
        return checks

    def _checked(self, run, x, y, args, kwargs, need_labelled=False):
        checks, validation = self.input_checks(), kwargs.get("validation_data")
        if isinstance(validation, (list, tuple)) and is_array(validation[0]):
            checks.check_pair(*validation[:2])
        elif validation is not None:
            kwargs["validation_data"] = checks.wrap(validation, targets_allowed=True)
        labels = checks.check_pair(x, y) if is_array(x) else None
        if need_labelled and labels is not None and not (labels >= 0).any():
            raise ValueError(f"{NAME}: fit needs at least one labelled image; received all -1")
        with self._stream_errors(checks):  # a stream's failed check raised as an array's
            return run(self, checks.wrap(x, targets_allowed=True), y, *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        return self._checked(keras.Model.fit, x, y, args, kwargs, need_labelled=True)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return self._checked(keras.Model.evaluate, x, y, args, kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        return self._checked(keras.Model.train_on_batch, x, y, args, kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        return self._checked(keras.Model.test_on_batch, x, y, args, kwargs)

    def call(self, images, training=None):
        """q(y | x): the classifier's class probabilities, `(batch, num_classes)`, float32."""
        return ops.softmax(ops.cast(self.classifier(images, training=training), "float32"))

    def pairs(self, images, training=None):
        """One encoder pass, one draw and one decoder pass over every (image, class) pair.

        Row `k * batch + i` of the returned tensors (`z_mean`, `z_log_var`,
        `epsilon`, `reconstruction`) is image i with class k.
        """
        n, k = ops.shape(images)[0], self.num_classes
        classes = one_hot(ops.repeat(ops.arange(k), n), k, self.compute_dtype)
        return self._forward(objective.tile(images, k), classes, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The M2 loss of a batch (see the class docstring), plus the sub-models' added losses.

        `y_pred` is q(y | x) from calling the model; `pairs(x)` runs here,
        unless `y_pred` is a dict holding both (`probabilities` and the pairs).
        """
        outputs = y_pred if isinstance(y_pred, dict) else self.pairs(x, training=training)
        q = ops.cast(outputs["probabilities"] if isinstance(y_pred, dict) else y_pred, "float32")
        k, labels = self.num_classes, ops.reshape(ops.cast(y, "int32"), (-1,))
        n, known = ops.shape(labels)[0], ops.cast(labels >= 0, "float32")
        weight = 1.0 if sample_weight is None else ops.reshape(sample_weight, (-1,))
        unknown, known = (1.0 - known) * weight, known * weight  # weights of the images
        log_q = ops.log(ops.maximum(q, 1e-30))
        true = one_hot(ops.maximum(labels, 0), k, "float32") * known[:, None]
        beta, images_k = self.current_beta(), objective.tile(x, k)
        (labelled, rec_l, kl_l), (unlabelled, rec_u, kl_u) = [
            objective.negative_elbo(self.likelihood_distribution, images_k, outputs, None, w, beta)
            for w in (  # the weights of the pairs (x, y), class-major as the rows of `pairs`
                ops.reshape(ops.transpose(w), (-1,)) for w in (true, q * unknown[:, None])
            )
        ]
        entropy = ops.mean(-ops.sum(q * log_q, axis=-1) * unknown)
        logs = dict(  # negative_elbo averages over the batch * k rows
            labelled_loss=k * labelled,
            unlabelled_loss=k * unlabelled - entropy,
            entropy=entropy,
            classification_loss=-ops.mean(ops.sum(true * log_q, axis=-1)),
            reconstruction_loss=k * (rec_l + rec_u),
            kl_loss=k * (kl_l + kl_u),
        )
        total = logs["labelled_loss"] + logs["unlabelled_loss"]
        total = total + self._alpha * logs["classification_loss"]
        if training:
            self.training_steps.assign_add(1)
        for extra in self.losses:
            total = total + ops.cast(extra, total.dtype)
        for name, value in logs.items():
            getattr(self, f"{name}_tracker").update_state(value, sample_weight=n)
        self.beta_tracker.update_state(beta)
        return objective.scale_for_replicas(total, n)

    def generate(self, labels, z=None, seed=None):
        """One image per class id: the mean of p(x | z, y), z ~ N(0, I) unless given.

        One code `(latent_dim,)` for all holds the style fixed; returns NumPy.
        """
        labels = check_labels(labels, None, self.num_classes, low=0)
        classes = one_hot(labels, self.num_classes, self.compute_dtype)
        return self._generate(len(labels), z, seed, classes)

    def log_likelihood(self, *args, **kwargs):
        raise NotImplementedError(f"{NAME}: log_likelihood is not available for M2")

    def get_config(self):
        classifier = keras.saving.serialize_keras_object(self.classifier)
        config = dict(classifier=classifier, num_classes=self.num_classes, alpha=self._alpha)
        return {**super().get_config(), **config}

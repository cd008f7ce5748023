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

from vae_keras import _submodels, _validation, distributions, objective
from vae_keras._base import LatentVariableModel
from vae_keras._inputs import InputChecks, is_array

__all__ = ["SemiSupervisedVAE", "LabelChecks"]

NAME = "SemiSupervisedVAE"


class LabelChecks(InputChecks):
    """A VAE's image checks, and labels that are class ids in [0, K), or -1 for no label."""

    def __init__(self, likelihood, image_shape, num_classes):
        super().__init__(NAME, likelihood, [image_shape] if image_shape else ())
        self.classes = num_classes

    def check_labels(self, labels, n=None, low=-1, need_labelled=False):
        """The labels as int32 NumPy, shape `(n,)`; `low=0` refuses -1."""
        labels = np.asarray(labels)
        labels = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
        if labels.ndim != 1 or (n is not None and labels.shape[0] != n):
            raise ValueError(
                f"{NAME}: labels must be class ids of shape ({n if n is not None else 'n'},), "
                f"one per image; received labels of shape {labels.shape}"
            )
        numbers = labels.dtype.kind in "iuf" and np.all(np.mod(labels, 1) == 0)
        if labels.size and (not numbers or labels.min() < low or labels.max() >= self.classes):
            unknown = ", or -1 for an unlabelled image" if low < 0 else ""
            values = f"from {labels.min()} to {labels.max()}" if numbers else f"of {labels.dtype}"
            raise ValueError(
                f"{NAME}: labels must be whole class ids in [0, {self.classes - 1}]{unknown}; "
                f"received values {values}"
            )
        if need_labelled and not (labels >= 0).any():
            raise ValueError(
                f"{NAME}: fit needs at least one labelled image (a label in [0, "
                f"{self.classes - 1}]); received {labels.shape[0]} images, all labelled -1"
            )
        return labels.astype("int32")

    def check_pair(self, x, y, need_labelled=False):
        """`(images, labels)` given as arrays: both checked; labels returned as int32."""
        if y is None:
            raise ValueError(
                f"{NAME}: give a label per image, -1 where there is none: fit(images, labels); "
                "received y=None"
            )
        self.check_images(x)
        return self.check_labels(y, np.shape(x)[0], need_labelled=need_labelled)

    def check_batch(self, batch, targets_allowed=True):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self.check_images(x)
        if y is not None and is_array(x):
            self.check_labels(y, np.shape(x)[0])


@keras.saving.register_keras_serializable(package="vae_keras")
class SemiSupervisedVAE(LatentVariableModel):
    """Kingma et al.'s M2: a CVAE whose label is observed for some images and inferred for the rest.

    Trained with `fit(images, labels)`, labels -1 where unknown: the labels are
    the targets, as for a Keras classifier, because that is what the model
    becomes (`predict(images)` gives q(y | x)); a stream yields `(images,
    labels)`. Each step runs the classifier once and the encoder and the decoder
    once each over the `batch * num_classes` pairs (x, y) of every image with
    every class. Per image of the batch, in nats and float32:

    - `labelled_loss`: `L(x, y)`, the CVAE's negative ELBO (`beta` weighs its KL);
    - `unlabelled_loss`: `sum_y q(y | x) L(x, y) - H(q(y | x))`;
    - `classification_loss`: `-log q(y | x)` on the labelled images;
    - `loss = labelled_loss + unlabelled_loss + alpha * classification_loss`.

    The labelled and unlabelled terms sum over their images and divide by the
    batch size; `entropy` reports H(q(y | x)) averaged over the unlabelled
    images, and `reconstruction_loss`/`kl_loss` the ELBO's terms under the
    labels or q(y | x). Kingma et al.'s alpha = 0.1 N multiplies a mean over the
    N_l labelled images of N, which is `alpha = 0.1 * N / N_l` here. The uniform
    prior p(y) adds the constant `log num_classes` to both bounds; it is left out.

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

    conditional = False  # the labels are targets, not inputs

    def __init__(
        self,
        encoder,
        decoder,
        classifier,
        num_classes,
        alpha=1.0,
        beta=1.0,
        seed=None,
        likelihood="bernoulli",
        sigma=1.0,
        **kwargs,
    ):
        self.num_classes = _validation.integer(num_classes, "num_classes", NAME)
        self._alpha = _validation.number(alpha, "alpha", NAME, non_negative=True)
        if not isinstance(classifier, keras.layers.Layer):
            raise TypeError(
                f"{NAME}: classifier must be a Keras model or layer; received classifier of "
                f"type {type(classifier).__name__}"
            )
        # Keras tracks sub-models only once keras.Model.__init__ has run, and
        # LatentVariableModel builds (and locks) the model in its __init__: the
        # classifier is attached in between, by `_check_sub_models`.
        object.__setattr__(self, "_pending_classifier", classifier)
        super().__init__(encoder, decoder, beta, seed, likelihood, sigma=sigma, **kwargs)

    def _check_sub_models(self):
        self.classifier = self.__dict__.pop("_pending_classifier")
        for name in ("labelled_loss", "unlabelled_loss", "classification_loss", "entropy"):
            setattr(self, f"{name}_tracker", keras.metrics.Mean(name=name))
        _submodels.check_conditional_inputs(self.encoder, self.decoder, self.num_classes)
        super()._check_sub_models()

    def build(self, input_shape):
        """Builds the three networks on a symbolic batch, checking what they return."""
        shape = tuple(input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape)
        images = keras.KerasTensor(shape, dtype=self.input_dtype)
        labels = keras.KerasTensor((shape[0], self.num_classes), dtype=self.input_dtype)
        z_mean, _ = _submodels.check_encoder_outputs(NAME, self.encoder([images, labels]))
        _submodels.check_reconstruction(NAME, images, self.decoder([z_mean, labels]))
        logits = self.classifier(images)
        if tuple(logits.shape[1:]) != (self.num_classes,):
            raise ValueError(
                f"{NAME}: the classifier must return (n, {self.num_classes}) logits; it returns "
                f"shape {tuple(logits.shape)}"
            )

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
        """The `LabelChecks` that `fit`, `evaluate` and `predict` check their data with."""
        inputs = getattr(self.encoder, "inputs", None)
        shape = tuple(inputs[0].shape[1:]) if inputs else None
        return LabelChecks(self.likelihood, shape, self.num_classes)

    def _checked(self, run, x, y, args, kwargs, need_labelled=False):
        checks = self.input_checks()
        if is_array(x):
            y = checks.check_pair(x, y, need_labelled)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (list, tuple)) and is_array(validation[0]):
            checks.check_pair(*validation[:2])
        elif validation is not None:
            kwargs["validation_data"] = checks.wrap(validation, targets_allowed=True)
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
        """One pass of each network, every class enumerated: a dict of tensors.

        Row `k * batch + i` of `z_mean`, `z_log_var`, `epsilon` and
        `reconstruction` is image i with class k. `predict` gives q(y | x).
        """
        n, k = ops.shape(images)[0], self.num_classes
        one_hot = ops.one_hot(ops.repeat(ops.arange(k), n), k, dtype=self.compute_dtype)
        images_k = objective.tile(ops.convert_to_tensor(images), k)
        z_mean, z_log_var = self.encoder([images_k, one_hot], training=training)
        epsilon = keras.random.normal(
            ops.shape(z_mean), dtype="float32", seed=self.sampler.seed_generator
        )
        z = ops.cast(distributions.reparameterize(z_mean, z_log_var, epsilon), self.compute_dtype)
        reconstruction = self.decoder([z, one_hot], training=training)
        logits = self.classifier(images, training=training)
        return dict(
            logits=logits,
            z_mean=z_mean,
            z_log_var=z_log_var,
            epsilon=epsilon,
            reconstruction=reconstruction,
        )

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return ops.softmax(ops.cast(self.classifier(x, training=False), "float32"))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The M2 loss of a batch (see the class docstring), plus the sub-models' added losses."""
        outputs = y_pred if isinstance(y_pred, dict) else self(x, training=training)
        k, labels = self.num_classes, ops.reshape(ops.cast(y, "int32"), (-1,))
        weight = ops.ones_like(labels, "float32") if sample_weight is None else sample_weight
        weight = ops.reshape(ops.cast(weight, "float32"), (-1,))
        known = ops.cast(labels >= 0, "float32")
        log_q = ops.log_softmax(ops.cast(outputs["logits"], "float32"), axis=-1)
        q, true = ops.exp(log_q), ops.one_hot(ops.maximum(labels, 0), k) * known[:, None]
        beta, images_k = self.current_beta(), objective.tile(x, k)
        terms = []
        for rows in (true, q * (1.0 - known)[:, None]):  # (batch, k) weights of the pairs (x, y)
            rows = ops.reshape(ops.transpose(rows * weight[:, None]), (-1,))  # class-major
            terms.append(
                objective.negative_elbo(
                    self.likelihood_distribution, images_k, outputs, None, rows, beta
                )
            )
        (labelled, rec_l, kl_l), (unlabelled, rec_u, kl_u) = terms
        entropy = -ops.sum(q * log_q, axis=-1) * (1.0 - known) * weight
        labelled_loss = k * labelled  # negative_elbo averages over the batch * k rows
        unlabelled_loss = k * unlabelled - ops.mean(entropy)
        classification = -ops.mean(ops.sum(true * log_q, axis=-1) * weight)
        total = labelled_loss + unlabelled_loss + self._alpha * classification
        if training:
            self.training_steps.assign_add(1)
        for extra in self.losses:
            total = total + ops.cast(extra, total.dtype)
        n, n_unlabelled = ops.shape(labels)[0], ops.sum((1.0 - known) * weight)
        for tracker, value in (
            (self.labelled_loss_tracker, labelled_loss),
            (self.unlabelled_loss_tracker, unlabelled_loss),
            (self.classification_loss_tracker, classification),
            (self.reconstruction_loss_tracker, k * (rec_l + rec_u)),
            (self.kl_loss_tracker, k * (kl_l + kl_u)),
        ):
            tracker.update_state(value, sample_weight=n)
        mean_entropy = ops.sum(entropy) / ops.maximum(n_unlabelled, 1e-12)
        self.entropy_tracker.update_state(mean_entropy, sample_weight=n_unlabelled)
        self.beta_tracker.update_state(beta)
        return objective.scale_for_replicas(total, n)

    def generate(self, labels, z=None, seed=None):
        """Decodes one image per class id, with z ~ N(0, I) unless given (one shared code
        `(latent_dim,)` holds the style fixed); returns the means of p(x | z, y) as NumPy."""
        labels = self.input_checks().check_labels(labels, low=0)
        shape = (labels.shape[0], self.latent_dim)
        if z is None:
            z = keras.random.normal(shape, seed=_validation.seed(seed, f"{NAME}.generate"))
        elif np.shape(z) not in (shape, shape[1:]) or not np.isfinite(z).all():
            raise ValueError(
                f"{NAME}.generate: z must be finite, of shape {shape} or {shape[1:]}; received "
                f"z of shape {np.shape(z)}"
            )
        z = ops.broadcast_to(ops.convert_to_tensor(z, self.compute_dtype), shape)
        one_hot = ops.one_hot(labels, self.num_classes, dtype=self.compute_dtype)
        decoded = ops.cast(self.decoder([z, one_hot], training=False), "float32")
        return ops.convert_to_numpy(self.likelihood_distribution.mean(decoded))

    def log_likelihood(self, *args, **kwargs):
        raise NotImplementedError(
            f"{NAME}: log_likelihood is not available for M2; received a call"
        )

    def get_config(self):
        config = {
            k: v
            for k, v in super().get_config().items()
            if k not in ("free_bits", "importance_samples")
        }
        classifier = keras.saving.serialize_keras_object(self.classifier)
        return {
            **config,
            "classifier": classifier,
            "num_classes": self.num_classes,
            "alpha": self._alpha,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(
            config["classifier"], custom_objects=custom_objects
        )
        return super().from_config(config, custom_objects)

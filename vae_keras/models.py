"""`VAE` and `CVAE`: `keras.Model` subclasses that train with `compile` and `fit` alone.

What they share (the state, the hyperparameters, the forward pass and the
training step) is `vae_keras._base.LatentVariableModel`; this file adds what
differs: the inputs (images, or `[images, condition(, mask)]`) and the public
`encode`, `decode` and `generate`.
"""

import keras
import numpy as np
from keras import ops

from vae_keras import _submodels, _validation
from vae_keras._base import LatentVariableModel, host_array
from vae_keras._inputs import one_hot

__all__ = ["VAE", "CVAE"]


@keras.saving.register_keras_serializable(package="vae_keras")
class VAE(LatentVariableModel):
    """A variational autoencoder that trains with `compile` and `fit` alone.

    The loss is the negative ELBO, per image and averaged over the batch:
    `loss = reconstruction_loss + beta * kl_loss`, with the reconstruction term
    from `VAELoss` (summed over pixels) and the KL term from `kl_divergence`
    (summed over latent dimensions). `fit` and `evaluate` report all three.

    Every entry point checks NumPy data the same way before any step runs
    (shape per image, no NaN or infinity, values in [0, 1] for the Bernoulli
    likelihood): `fit`, `evaluate`, `predict`, `train_on_batch`,
    `test_on_batch`, `predict_on_batch`, `encode`, `decode`; a
    `tf.data.Dataset`, a generator, a `keras.utils.PyDataset` or a PyTorch
    `DataLoader` is checked batch by batch as it is read, with the same
    messages.

    Args:
        encoder: A Keras model mapping images to `[z_mean, z_log_var]`.
        decoder: A Keras model mapping `z` to images (probabilities in [0, 1]
            for the Bernoulli likelihood).
        beta: Weight of the KL term (1 gives the ELBO; other values a beta-VAE):
            a number, or a `keras.optimizers.schedules.LearningRateSchedule`
            such as `vk.LinearWarmup` (KL warm-up) or `vk.CyclicalAnnealing`,
            evaluated at the model's training step. Can be reassigned at any time.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`
            (for grey levels in [0, 1]; Loaiza-Ganem & Cunningham, 2019),
            passed to `VAELoss`.
        free_bits: Free bits (Kingma et al., 2016): a floor, in nats, under the
            batch-average KL of each latent dimension in the loss, so that the
            optimizer gains nothing by pushing a dimension's KL below it; a
            remedy for posterior collapse. 0 (the default) turns it off.
        sigma: Standard deviation of the Gaussian likelihood N(x_hat, sigma^2 I),
            positive; used by the loss and by `log_likelihood`, and saved with
            the model. Only for `likelihood="gaussian"`.
        importance_samples: k, the number of draws of z per image in each
            training step. 1 (the default) trains on the ELBO as described
            above. With k > 1 the model trains on the importance-weighted bound
            of Burda, Grosse & Salakhutdinov (2016, "Importance Weighted
            Autoencoders"), `L_k = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)]`,
            which is at least the ELBO and tightens with k: one encoder pass,
            then one decoder pass over the k * batch codes. The reported `loss`
            is then the estimate of `-L_k` (beta must stay 1 and free bits 0),
            and it is not `reconstruction_loss + kl_loss`: those two still
            report the ELBO's terms, the reconstruction term averaged over the
            k draws and the KL term in closed form, so their sum minus `loss`
            is how much tighter the bound is. As for the ELBO, the Gaussian
            likelihood's constant `0.5 log(2 pi sigma^2)` per pixel is left out.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: A batch of images.

    Returns:
        The mean reconstruction: the mean of p(x | z_mean), which is
        `decoder(z_mean)` itself except for the continuous Bernoulli, whose
        mean is not its parameter lambda (`vk.losses.continuous_bernoulli_mean`
        of it); it is deterministic.

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    >>> history = vae.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['beta', 'kl_loss', 'loss', 'reconstruction_loss']
    >>> z_mean, z_log_var = vae.encode(x[:3])
    >>> tuple(z_mean.shape), tuple(vae.decode(z_mean).shape)
    ((3, 2), (3, 28, 28, 1))
    """

    def encode(self, images, training=False):
        """The parameters of q(z | x): `(z_mean, z_log_var)`.

        Args:
            images: A batch of images (NumPy arrays are checked like `fit`'s).
            training: Whether layers such as Dropout run in training mode.

        Returns:
            Two float32 backend tensors of shape `(n, latent_dim)`.
        """
        return self._encode_public(images, training)

    def decode(self, z, training=False):
        """The decoder's output for latent codes `z`, in one call.

        Args:
            z: Latent codes of shape `(n, latent_dim)` (NumPy or a tensor).
            training: Whether layers such as Dropout run in training mode.

        Returns:
            A float32 backend tensor of images: what the decoder outputs, the
            parameters of p(x | z) (pixel probabilities for the Bernoulli
            likelihood, means for the Gaussian one, lambda for the continuous
            Bernoulli, whose mean `predict` and `generate` return instead).
        """
        return self._decode_public(z, None, training)

    def generate(self, n=None, z=None, seed=None):
        """Decodes `n` draws from the prior N(0, I), or the given `z`, in one call.

        Args:
            n: Number of images (may be omitted when `z` is given).
            z: Optional latent codes of shape `(n, latent_dim)`, or one code of
                shape `(latent_dim,)` (one image, or `n` copies when `n` is given).
            seed: Seed for the prior draws; with `None` they come from Keras'
                global seed generator, which `keras.utils.set_random_seed` fixes
                (NumPy's global random state is not touched).

        Returns:
            A NumPy array of images: the means of p(x | z) (for the continuous
            Bernoulli the mean, not the decoder's lambda; see `decode`).
        """
        if n is not None:
            n = _validation.integer(n, "n", "VAE.generate")
        elif z is None:
            raise ValueError("VAE.generate: give a positive n or latent codes z; received neither")
        else:
            n = 1 if np.ndim(z) == 1 else np.shape(z)[0]
        return self._generate(n, z, seed, None)


@keras.saving.register_keras_serializable(package="vae_keras")
class CVAE(LatentVariableModel):
    """A conditional VAE: a condition c (a class label, or any tensor) conditions both networks.

    The encoder models q(z | x, c) and the decoder p(x | z, c) (Sohn, Lee & Yan,
    2015, "Learning Structured Output Representation using Deep Conditional
    Generative Models"), so z is free to encode what c does not say: the style
    of the digit given its class, or the hidden part of an image given the
    visible part.

    - With `num_classes` set, c is a class label: both networks receive it as
      a one-hot vector, and labels are checked wherever images are (see `VAE`):
      class ids in `[0, num_classes)`, one-hot rows `num_classes` wide, one
      label per image.
    - With `num_classes=None`, c is any array or tensor (a partial image, a
      sensor reading, an embedding) whose per-example shape is what the
      sub-models' condition inputs expect; it is checked like the images
      (shape, no NaN or infinity, one condition per image) and given to the
      networks as it is (cast to the compute dtype).

    The prior is N(0, I) unless a `prior` network is given: then it is the
    conditional prior p(z | c) = N(prior_mean(c), diag(exp(prior_log_var(c))))
    of Sohn et al., learned with the rest; the KL term of the loss is
    KL(q(z | x, c) || p(z | c)) in closed form (`vk.kl_divergence` with the
    prior arguments), `generate` draws z from p(z | c), and `log_likelihood`
    uses p(z | c) in its importance weights. Each training step runs the
    encoder, the decoder and the prior once.

    A mask, for when only some pixels are to be predicted (completing an
    image): the inputs may be `[images, condition, mask]` wherever they are
    `[images, condition]` (`fit`, `evaluate`, the `*_on_batch` methods, a
    dataset's elements, `log_likelihood`), with `mask` of the images' shape
    (or one that broadcasts to it per example, such as `(n, height, width, 1)`)
    and values in [0, 1]. The reconstruction term then sums `mask * -log p(pixel
    | z)`: a pixel with mask 0 is not scored. The KL term is not masked. The
    mask does not reach the networks: give them what they may see through the
    condition.

    Args:
        encoder: A Keras model mapping `[images, condition]` to
            `[z_mean, z_log_var]` (the condition one-hot for labels).
        decoder: A Keras model mapping `[z, condition]` to images.
        num_classes: Number of classes, a positive integer, when the condition
            is a class label; `None` for any other condition.
        prior: Optional Keras model mapping the condition to
            `[prior_mean, prior_log_var]`, each `(n, latent_dim)`; `None`
            keeps the prior N(0, I).
        beta: Weight of the KL term: a number or a schedule, as for `VAE`.
        seed: Seed of the model's `Sampling` layer.
        likelihood: `"bernoulli"`, `"gaussian"` or `"continuous_bernoulli"`, as for `VAE`.
        free_bits: Per-dimension KL floor in nats, as for `VAE`.
        sigma: Standard deviation of the Gaussian likelihood, as for `VAE`.
        importance_samples: k > 1 trains on the importance-weighted bound L_k
            (of log p(x | c) here), as for `VAE`; 1 (the default) on the ELBO.
        **kwargs: Standard `keras.Model` arguments.

    Call arguments:
        inputs: `[images, condition]`: labels as integer class ids of shape
            `(n,)` or one-hot of shape `(n, num_classes)`, or any condition of
            shape `(n, ...)` when `num_classes=None`.

    Returns:
        The mean reconstruction, the mean of p(x | z_mean, c): `decoder([z_mean,
        condition])`, or its continuous Bernoulli mean (see `VAE`).

    Example:

    >>> import numpy as np
    >>> import vae_keras as vk
    >>> cvae = vk.CVAE(
    ...     vk.build_mlp_encoder(latent_dim=2, num_classes=10),
    ...     vk.build_mlp_decoder(latent_dim=2, num_classes=10),
    ...     num_classes=10,
    ... )
    >>> cvae.compile(optimizer="adam")
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((64, 28, 28, 1)).astype("float32")
    >>> y = rng.integers(0, 10, size=64)
    >>> history = cvae.fit([x, y], epochs=1, batch_size=32, verbose=0)
    >>> cvae.generate([3, 3, 7], seed=0).shape
    (3, 28, 28, 1)
    >>> z_mean, _ = cvae.encode([x[:2], y[:2]])
    >>> tuple(cvae.decode([z_mean, [4, 4]]).shape)
    (2, 28, 28, 1)

    Any condition, with a learned prior p(z | c) (here the condition is a
    vector of 5 numbers):

    >>> import keras
    >>> c_in = keras.Input((5,))
    >>> h = keras.layers.Dense(16, activation="relu")(c_in)
    >>> prior = keras.Model(c_in, [keras.layers.Dense(2)(h), keras.layers.Dense(2)(h)])
    >>> cvae = vk.CVAE(
    ...     vk.build_mlp_encoder(latent_dim=2, num_classes=5),
    ...     vk.build_mlp_decoder(latent_dim=2, num_classes=5),
    ...     prior=prior,
    ... )
    >>> cvae.compile(optimizer="adam")
    >>> c = rng.normal(size=(64, 5)).astype("float32")
    >>> history = cvae.fit([x, c], epochs=1, batch_size=32, verbose=0)
    >>> cvae.generate(c[:3], seed=0).shape
    (3, 28, 28, 1)
    """

    conditional = True

    def __init__(
        self,
        encoder,
        decoder,
        num_classes=None,
        beta=1.0,
        seed=None,
        likelihood="bernoulli",
        free_bits=0.0,
        sigma=1.0,
        prior=None,
        importance_samples=1,
        **kwargs,
    ):
        self.num_classes = _validation.integer(num_classes, "num_classes", "CVAE", optional=True)
        # LatentVariableModel's arguments after the sub-models, in its order
        settings = (beta, seed, likelihood, free_bits, sigma, importance_samples, prior)
        super().__init__(encoder, decoder, *settings, **kwargs)

    def _check_sub_models(self):
        _submodels.check_conditional_inputs(self.encoder, self.decoder, self.num_classes)
        super()._check_sub_models()
        if self.prior is not None:
            _submodels.check_prior("CVAE", self.prior, self.encoder, self._latent_dim)

    def _condition_tensor(self, condition):
        if self.num_classes is not None:
            return one_hot(condition, self.num_classes, self.compute_dtype)
        return ops.cast(condition, self.compute_dtype)

    def _unpack(self, inputs):
        if not (isinstance(inputs, (list, tuple)) and len(inputs) in (2, 3)):
            self.input_checks().split(inputs)  # raises the message that names the problem
        images = inputs[0]
        if isinstance(images, np.ndarray):  # JAX's eager steps pass NumPy batches through;
            images = ops.convert_to_tensor(images)  # a sub-model call takes tensors only
        mask = inputs[2] if len(inputs) == 3 else None
        return images, self._condition_tensor(inputs[1]), mask

    def encode(self, inputs, training=False):
        """The parameters of q(z | x, c): `(z_mean, z_log_var)`.

        Args:
            inputs: `[images, condition]`, as for `fit` (NumPy data is checked).
            training: Whether layers such as Dropout run in training mode.

        Returns:
            Two float32 backend tensors of shape `(n, latent_dim)`.
        """
        return self._encode_public(inputs, training)

    def decode(self, inputs, training=False):
        """The decoder's output for `[z, condition]`, in one call.

        Args:
            inputs: `[z, condition]`: codes of shape `(n, latent_dim)` and class ids
                `(n,)` or one-hot labels `(n, num_classes)`, or conditions `(n, ...)`
                when `num_classes=None`.
            training: Whether layers such as Dropout run in training mode.

        Returns:
            A float32 backend tensor of images: the decoder's output, the
            parameters of p(x | z, c) (see `VAE.decode`).
        """
        z, condition = self.input_checks().split(inputs, role="decode inputs")
        if host_array(condition):  # checked (labels made one-hot); tensors pass as they are
            n = np.shape(z)[0] if host_array(z) and np.ndim(z) == 2 else None
            condition = self.input_checks().check_condition(condition, n=n)
        return self._decode_public(z, self._condition_tensor(condition), training)

    def generate(self, labels, z=None, seed=None):
        """Decodes one image per condition, with z from the prior unless given.

        The prior is N(0, I), or p(z | c) when the model has a `prior` network:
        `z = prior_mean(c) + exp(0.5 * prior_log_var(c)) * eps` with standard
        normal `eps`, so the same seed gives the same `eps` under either prior.

        Args:
            labels: The conditions: class ids of shape `(n,)` or one-hot labels
                `(n, num_classes)`, or conditions `(n, ...)` when `num_classes=None`.
            z: Optional latent codes, shape `(n, latent_dim)`, or one code of shape
                `(latent_dim,)` shared by all conditions (same style, different
                digit); used as they are, whatever the prior.
            seed: Seed for the prior draws; with `None` they come from Keras'
                global seed generator, which `keras.utils.set_random_seed` fixes
                (NumPy's global random state is not touched).

        Returns:
            A NumPy array of `n` images, decoded in one batched call: the means
            of p(x | z, c) (for the continuous Bernoulli not the decoder's
            lambda; see `VAE.generate`).
        """
        checked = self.input_checks().check_condition(labels)
        return self._generate(checked.shape[0], z, seed, self._condition_tensor(checked))

    def prior_params(self, condition):
        """`(prior_mean, prior_log_var)` of p(z | c) for conditions c, as float32 NumPy.

        N(0, I) (zeros) for a model without a `prior` network.
        """
        checked = self.input_checks().check_condition(condition)
        prior = self.prior_at(self._condition_tensor(checked))
        if prior:
            return tuple(ops.convert_to_numpy(ops.cast(t, "float32")) for t in prior)
        if self._latent_dim is None:
            raise ValueError(
                "CVAE.prior_params: latent_dim is unknown until the model has been built or "
                "called; call it on a batch first"
            )
        zeros = np.zeros((checked.shape[0], self._latent_dim), "float32")
        return zeros, zeros.copy()

    def get_config(self):
        config = {**super().get_config(), "num_classes": self.num_classes}
        if self.prior is not None:
            config["prior"] = keras.saving.serialize_keras_object(self.prior)
        return config

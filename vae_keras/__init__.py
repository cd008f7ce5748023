"""vae_keras: variational autoencoders for Keras 3, on TensorFlow, JAX and PyTorch.

The public API:

- `Sampling` (layer) and `sampling` (function for `keras.layers.Lambda`): the
  reparameterization trick.
- `kl_divergence` (and `kl_per_dimension`) and `VAELoss`: the two terms of the
  negative ELBO.
- `VAE` and `CVAE`: models that train with `compile(optimizer=...)` and `fit`.
- `LinearWarmup` and `CyclicalAnnealing`: schedules for the KL weight beta.
- `build_mlp_encoder`, `build_mlp_decoder`, `build_conv_encoder`,
  `build_conv_decoder`: the architectures used in the notebooks.
- `evaluation`: the importance-sampled log-likelihood and posterior-collapse
  diagnostics (`log_likelihood`, `kl_per_dimension`, `active_units`, ...).
- `datasets` (`load_mnist`, `load_fashion_mnist`) and `plotting`.
- `callbacks`: `ImageSnapshots`, `LatentStatistics` and `NaNGuard` for `fit`;
  `export.export_serving`: encode, decode and generate endpoints as one SavedModel.
"""

from vae_keras import callbacks, datasets, evaluation, export, plotting
from vae_keras.builders import (
    build_conv_decoder,
    build_conv_encoder,
    build_mlp_decoder,
    build_mlp_encoder,
)
from vae_keras.layers import Sampling, sampling
from vae_keras.losses import VAELoss, kl_divergence, kl_per_dimension
from vae_keras.models import CVAE, VAE
from vae_keras.schedules import CyclicalAnnealing, LinearWarmup

__version__ = "0.2.0"

__all__ = [
    "Sampling",
    "sampling",
    "kl_divergence",
    "kl_per_dimension",
    "VAELoss",
    "VAE",
    "CVAE",
    "LinearWarmup",
    "CyclicalAnnealing",
    "build_mlp_encoder",
    "build_mlp_decoder",
    "build_conv_encoder",
    "build_conv_decoder",
    "datasets",
    "evaluation",
    "plotting",
    "callbacks",
    "export",
]

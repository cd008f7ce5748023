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

import os as _os
import sys as _sys


def _start_keras_quietly():
    """In a Jupyter kernel, starts Keras with file descriptor 2 sent to /dev/null.

    TensorFlow's C++ runtime writes its start-up lines (oneDNN, "no CUDA driver", CPU
    features) straight to file descriptor 2, whatever `TF_CPP_MIN_LOG_LEVEL` says, and the
    kernel shows them under the first cell that imports Keras. Outside Jupyter, or once Keras
    is imported, nothing is changed.
    """
    if "ipykernel" not in _sys.modules or "keras" in _sys.modules:
        return
    from vae_keras._quiet import quiet_stderr

    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import keras

        keras.ops.convert_to_numpy(keras.ops.zeros(1))  # the backend's devices start here


_start_keras_quietly()

from vae_keras import callbacks, datasets, evaluation, exercises, export, plotting, tutorial  # noqa: E402
from vae_keras.builders import (  # noqa: E402
    build_conv_decoder,
    build_conv_encoder,
    build_mlp_decoder,
    build_mlp_encoder,
)
from vae_keras.layers import Sampling, sampling  # noqa: E402
from vae_keras.losses import VAELoss, kl_divergence, kl_per_dimension  # noqa: E402
from vae_keras.models import CVAE, VAE  # noqa: E402
from vae_keras.schedules import CyclicalAnnealing, LinearWarmup  # noqa: E402
from vae_keras.semisupervised import SemiSupervisedVAE  # noqa: E402

__version__ = "0.2.0"

__all__ = [
    "Sampling",
    "sampling",
    "kl_divergence",
    "kl_per_dimension",
    "VAELoss",
    "VAE",
    "CVAE",
    "SemiSupervisedVAE",
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
    "exercises",
    "tutorial",
]

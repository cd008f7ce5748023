"""The peer comparison's weight transfer: PyTorch nets into `vk` nets, outputs equal.

`benchmarks.peers` estimates log p(x) with `vae_keras` on the weights Pythae
trained; that is only a comparison of the two estimators if the Keras nets
compute what the PyTorch nets compute. Pythae itself is not needed here: the
PyTorch nets of `benchmarks/peers_torch.py` are what Pythae trains for the
convolutional model, and for the MLP they list their layers like Pythae's
default nets.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import peers_torch  # noqa: E402
from benchmarks.peers import build_nets  # noqa: E402


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_torch_weights_give_the_same_outputs_in_keras(arch, tmp_path):
    latent_dim = 4
    torch.manual_seed(0)
    encoder, decoder = peers_torch.build_torch_nets(arch, latent_dim)
    # Non-zero biases everywhere, so a misplaced bias would show.
    with torch.no_grad():
        for layer in list(encoder.modules()) + list(decoder.modules()):
            if isinstance(layer, tuple(peers_torch.KINDS)):
                layer.bias.uniform_(-0.2, 0.2)
    path = tmp_path / "weights.npz"
    peers_torch.save_layers(path, {"encoder": encoder, "decoder": decoder})
    keras_encoder, keras_decoder = build_nets(arch, latent_dim)
    peers_torch.load_into_keras(keras_encoder, peers_torch.read_layers(path, "encoder"))
    peers_torch.load_into_keras(keras_decoder, peers_torch.read_layers(path, "decoder"))

    images = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
    z = np.random.default_rng(1).normal(size=(5, latent_dim)).astype("float32")
    with torch.no_grad():
        mean, log_var = encoder(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
        decoded = decoder(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    keras_mean, keras_log_var = (np.asarray(t) for t in keras_encoder.predict(images, verbose=0))
    np.testing.assert_allclose(keras_mean, mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(keras_log_var, log_var.numpy(), atol=1e-5)
    np.testing.assert_allclose(keras_decoder.predict(z, verbose=0), decoded, atol=1e-5)


def test_a_mismatched_net_is_refused(tmp_path):
    encoder, _ = peers_torch.build_torch_nets("conv", 4)
    path = tmp_path / "weights.npz"
    peers_torch.save_layers(path, {"encoder": encoder})
    keras_encoder, _ = build_nets("mlp", 4)
    with pytest.raises(ValueError, match="layers with weights"):
        peers_torch.load_into_keras(keras_encoder, peers_torch.read_layers(path, "encoder"))

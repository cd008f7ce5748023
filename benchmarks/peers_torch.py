"""The peer comparison's PyTorch side: networks, and moving their weights into Keras nets.

Imports only PyTorch and NumPy at the top, because it also runs in Pythae's
own virtualenv (`benchmarks/peers_pythae.py`), where Keras is not installed.

- `build_torch_nets(arch, latent_dim)`: encoder and decoder as `torch.nn.Module`s
  computing exactly what `vk.build_mlp_encoder/decoder` (hidden 512) and
  `vk.build_conv_encoder/decoder` (Conv 32-64 stride 2, Dense 64) compute, on
  NCHW images (the layout PyTorch and Pythae use). Keras' `padding="same"` with
  stride 2 pads 0 before and 1 after; the torch nets pad the same way
  (`F.pad(x, (0, 1, 0, 1))`) and crop the transposed convolutions alike, so the
  two compute the same function, not merely the same shapes.
- `torch_layers(module)`: the parametrised layers of a module, in the order they
  were registered, as NumPy arrays in PyTorch's layout. Pythae's default MLP
  nets (`Encoder_VAE_MLP`, `Decoder_AE_MLP`) list theirs in the order of
  `vk.build_mlp_*`'s Dense layers, so they transfer as they are.
- `load_into_keras(net, layers)`: gives a functional Keras net those weights,
  converting each to Keras' layout (a Linear's (out, in) matrix transposed;
  a Conv2d's (out, in, kh, kw) and a ConvTranspose2d's (in, out, kh, kw) kernels
  to (kh, kw, in, out) and (kh, kw, out, in); a Dense after a Flatten of a
  feature map, or before a Reshape to one, reordered from channels-first to
  channels-last).

`tests/test_benchmarks_peers.py` checks that a net built here and its Keras
twin give the same outputs to 1e-5 after the transfer.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

KINDS = {nn.Linear: "linear", nn.Conv2d: "conv", nn.ConvTranspose2d: "conv_transpose"}


def _same_pad(x):
    """Keras' "same" padding for a 3x3 stride-2 convolution of an even size: 0 before, 1 after."""
    return F.pad(x, (0, 1, 0, 1))


class MLPEncoder(nn.Module):
    """784 -> 512 (ReLU) -> (z_mean, z_log_var), on (n, 1, 28, 28) images."""

    def __init__(self, latent_dim, hidden=512, pixels=784):
        super().__init__()
        self.hidden = nn.Linear(pixels, hidden)
        self.z_mean = nn.Linear(hidden, latent_dim)
        self.z_log_var = nn.Linear(hidden, latent_dim)

    def forward(self, x):
        h = torch.relu(self.hidden(x.reshape(x.shape[0], -1)))
        return self.z_mean(h), self.z_log_var(h)


class MLPDecoder(nn.Module):
    """latent -> 512 (ReLU) -> 784 (sigmoid), reshaped to (n, 1, 28, 28)."""

    def __init__(self, latent_dim, hidden=512, shape=(1, 28, 28)):
        super().__init__()
        self.shape = shape
        self.hidden = nn.Linear(latent_dim, hidden)
        self.output = nn.Linear(hidden, int(np.prod(shape)))

    def forward(self, z):
        x = torch.sigmoid(self.output(torch.relu(self.hidden(z))))
        return x.reshape(z.shape[0], *self.shape)


class ConvEncoder(nn.Module):
    """Conv 32 and 64 (3x3, stride 2, Keras' "same"), Dense 64, two heads."""

    def __init__(self, latent_dim, filters=(32, 64), dense_units=64, size=28):
        super().__init__()
        self.convs = nn.ModuleList()
        channels = 1
        for n_filters in filters:
            self.convs.append(nn.Conv2d(channels, n_filters, 3, stride=2))
            channels, size = n_filters, size // 2
        self.dense = nn.Linear(channels * size * size, dense_units)
        self.z_mean = nn.Linear(dense_units, latent_dim)
        self.z_log_var = nn.Linear(dense_units, latent_dim)

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(_same_pad(x)))
        h = torch.relu(self.dense(x.flatten(1)))
        return self.z_mean(h), self.z_log_var(h)


class ConvDecoder(nn.Module):
    """Dense to a 7x7x64 map, ConvTranspose 64 and 32 (stride 2), a sigmoid ConvTranspose to 1."""

    def __init__(self, latent_dim, filters=(64, 32), size=28):
        super().__init__()
        self.small = size // 2 ** len(filters)
        self.channels = filters[0]
        self.dense = nn.Linear(latent_dim, self.small * self.small * filters[0])
        self.deconvs = nn.ModuleList()
        channels = filters[0]
        for n_filters in filters:
            self.deconvs.append(nn.ConvTranspose2d(channels, n_filters, 3, stride=2))
            channels = n_filters
        self.output = nn.ConvTranspose2d(channels, 1, 3, stride=1, padding=1)

    def forward(self, z):
        x = torch.relu(self.dense(z)).reshape(-1, self.channels, self.small, self.small)
        for deconv in self.deconvs:
            size = 2 * x.shape[-1]
            # the full transposed convolution is 2n + 1 wide; Keras' "same" keeps the first 2n
            x = torch.relu(deconv(x)[..., :size, :size])
        return torch.sigmoid(self.output(x))


def build_torch_nets(arch, latent_dim=16):
    """`(encoder, decoder)` for `arch` in {"mlp", "conv"}."""
    if arch == "mlp":
        return MLPEncoder(latent_dim), MLPDecoder(latent_dim)
    if arch == "conv":
        return ConvEncoder(latent_dim), ConvDecoder(latent_dim)
    raise ValueError(f"unknown architecture {arch!r}; expected 'mlp' or 'conv'")


def torch_layers(module):
    """`[(kind, weight, bias)]` of the Linear/Conv2d/ConvTranspose2d layers, in order."""
    out = []
    for layer in module.modules():
        kind = KINDS.get(type(layer))
        if kind is not None:
            weight = layer.weight.detach().cpu().numpy().copy()
            out.append((kind, weight, layer.bias.detach().cpu().numpy().copy()))
    return out


def save_layers(path, parts):
    """Writes `{"encoder": module, "decoder": module}`'s layers to one `.npz` file."""
    arrays = {}
    for part, module in parts.items():
        for i, (kind, weight, bias) in enumerate(torch_layers(module)):
            arrays[f"{part}/{i:02d}/{kind}/weight"] = weight
            arrays[f"{part}/{i:02d}/{kind}/bias"] = bias
    np.savez(path, **arrays)


def read_layers(path, part):
    """The `[(kind, weight, bias)]` of `part` saved by `save_layers`."""
    with np.load(path) as data:
        keys = sorted(k for k in data.files if k.startswith(part + "/") and k.endswith("/weight"))
        return [
            (key.split("/")[2], data[key], data[key[: -len("weight")] + "bias"]) for key in keys
        ]


# ----------------------------------------------------------- Keras' layout
def _channels_first_to_last(matrix, shape, axis):
    """Reorders `axis` of `matrix` from (c, h, w) flattening to Keras' (h, w, c)."""
    height, width, channels = shape
    moved = np.moveaxis(matrix, axis, 0)
    rest = moved.shape[1:]
    moved = moved.reshape(channels, height, width, *rest).transpose(
        1, 2, 0, *range(3, 3 + len(rest))
    )
    return np.moveaxis(moved.reshape(height * width * channels, *rest), 0, axis)


def keras_layout(kind, weight, bias, flattened_from=None, reshaped_to=None):
    """`[kernel, bias]` in Keras' layout for one PyTorch layer.

    `flattened_from`/`reshaped_to`: the (h, w, c) feature map a Dense reads
    (after a Flatten) or produces (before a Reshape), whose flattening order
    differs between the two libraries.
    """
    if kind == "linear":
        kernel = weight.T  # (in, out)
        if flattened_from is not None:
            kernel = _channels_first_to_last(kernel, flattened_from, axis=0)
        if reshaped_to is not None:
            kernel = _channels_first_to_last(kernel, reshaped_to, axis=1)
            bias = _channels_first_to_last(bias, reshaped_to, axis=0)
        return [kernel, bias]
    if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [weight.transpose(2, 3, 1, 0), bias]
    if kind == "conv_transpose":  # (in, out, kh, kw) -> (kh, kw, out, in)
        return [weight.transpose(2, 3, 1, 0), bias]
    raise ValueError(f"unknown layer kind {kind!r}")


_KERAS_KINDS = {"Dense": "linear", "Conv2D": "conv", "Conv2DTranspose": "conv_transpose"}


def load_into_keras(net, layers):
    """Sets the weights of the functional Keras `net` from `torch_layers(...)` output.

    Raises `ValueError` if the layer kinds, their number or a shape differ.
    """
    keras_layers = [layer for layer in net.layers if layer.weights]
    if len(keras_layers) != len(layers):
        raise ValueError(
            f"{net.name}: {len(keras_layers)} Keras layers with weights, {len(layers)} torch layers"
        )
    order = list(net.layers)
    for layer, (kind, weight, bias) in zip(keras_layers, layers):
        expected = _KERAS_KINDS.get(type(layer).__name__)
        if expected != kind:
            raise ValueError(f"{net.name}: Keras layer {layer.name} is not a torch {kind}")
        where = order.index(layer)
        before = order[where - 1] if where > 0 else None
        after = order[where + 1] if where + 1 < len(order) else None
        flattened_from = reshaped_to = None
        if type(before).__name__ == "Flatten" and len(before.input.shape) == 4:
            flattened_from = tuple(before.input.shape[1:])
        if type(after).__name__ == "Reshape" and len(after.target_shape) == 3:
            reshaped_to = tuple(after.target_shape)
        values = keras_layout(kind, weight, bias, flattened_from, reshaped_to)
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [v.shape for v in values]:
            raise ValueError(
                f"{net.name}: {layer.name} has weights {shapes}; the torch layer gives "
                f"{[v.shape for v in values]}"
            )
        layer.set_weights([np.ascontiguousarray(v) for v in values])

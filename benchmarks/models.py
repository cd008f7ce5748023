"""Builds the models the benchmarks train: the reference, vae_keras' VAE and CVAE."""

import keras


def _optimizer():
    return keras.optimizers.Adam()  # learning rate 1e-3, as in the tutorials


def build_reference(arch, settings=None, seed=1234):
    """Tutorial-style VAE; `settings` are extra `compile` arguments (none: defaults)."""
    from benchmarks.reference import ReferenceVAE, conv_pair, mlp_pair

    keras.utils.set_random_seed(seed)
    encoder, decoder = mlp_pair() if arch == "mlp" else conv_pair()
    model = ReferenceVAE(encoder, decoder)
    model.compile(optimizer=_optimizer(), **(settings or {}))
    return model


def build_vae(arch, settings=None, seed=1234):
    """`vk.VAE` on the same architecture; `settings` as for `build_reference`."""
    import vae_keras as vk

    keras.utils.set_random_seed(seed)
    if arch == "mlp":
        encoder = vk.build_mlp_encoder(latent_dim=2, hidden_units=(512,))
        decoder = vk.build_mlp_decoder(latent_dim=2, hidden_units=(512,))
    else:
        encoder = vk.build_conv_encoder(latent_dim=2)
        decoder = vk.build_conv_decoder(latent_dim=2)
    model = vk.VAE(encoder, decoder, seed=seed)
    model.compile(optimizer=_optimizer(), **(settings or {}))
    return model


def resolved_settings(model):
    """The `steps_per_execution` and `jit_compile` a compiled model ended up with."""
    return {
        "steps_per_execution": int(model.steps_per_execution),
        "jit_compile": bool(model.jit_compile),
    }


def parameter_count(model):
    return int(model.encoder.count_params() + model.decoder.count_params())


# ------------------------------------------------------ quality: the notebooks' models
def notebook_models():
    """(name, kind, builder) for each model the notebooks train, as they build it."""
    import vae_keras as vk

    def mlp(latent, classes=None):
        return (
            vk.build_mlp_encoder(latent_dim=latent, hidden_units=(512,), num_classes=classes),
            vk.build_mlp_decoder(latent_dim=latent, hidden_units=(512,), num_classes=classes),
        )

    def conv(latent, classes=None):
        return (
            vk.build_conv_encoder(
                latent_dim=latent, filters=(32, 64), dense_units=64, num_classes=classes
            ),
            vk.build_conv_decoder(latent_dim=latent, filters=(64, 32), num_classes=classes),
        )

    return [
        ("VAE, MLP 512, latent 2 (nb 03, 04)", "vae", lambda: mlp(2)),
        ("VAE, conv 32-64 + Dense 64, latent 16 (nb 03)", "vae", lambda: conv(16)),
        ("CVAE, MLP 512, latent 2 (nb 04)", "cvae", lambda: mlp(2, 10)),
        ("CVAE, conv 32-64 + Dense 64, latent 16 (nb 04)", "cvae", lambda: conv(16, 10)),
        ("CVAE, MLP 512, latent 16 (nb 04)", "cvae", lambda: mlp(16, 10)),
    ]


def build_notebook_model(kind, builder, seed=1234):
    import vae_keras as vk

    keras.utils.set_random_seed(seed)
    encoder, decoder = builder()
    if kind == "vae":
        model = vk.VAE(encoder, decoder, seed=seed)
    else:
        model = vk.CVAE(encoder, decoder, num_classes=10, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    return model

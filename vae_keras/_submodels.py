"""Checks on the encoder and decoder a model is built from.

What the sub-models' static shapes already tell is checked when the model is
constructed (functional models know their inputs and outputs); the rest is
checked on the tensors of the first call.
"""

from vae_keras._inputs import shapes_differ, static_shape


def _gaussian_pair(where, outputs, role, names):
    """Checks that a sub-model returns two tensors of one shape; returns the mean's shape."""
    if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
        count = len(outputs) if isinstance(outputs, (list, tuple)) else 1
        raise ValueError(
            f"{where}: the {role} must return exactly two tensors {names}; it returns {count}"
        )
    mean_shape, log_var_shape = static_shape(outputs[0]), static_shape(outputs[1])
    if shapes_differ(mean_shape, log_var_shape):
        raise ValueError(
            f"{where}: the {role}'s {names} have different shapes {mean_shape} and "
            f"{log_var_shape}; they must have the same shape"
        )
    return mean_shape


def check_encoder_outputs(where, outputs):
    """The encoder returns `[z_mean, z_log_var]` of one shape; returns them."""
    _gaussian_pair(where, outputs, "encoder", "[z_mean, z_log_var]")
    return outputs


def check_reconstruction(where, images, reconstruction):
    image_shape = static_shape(images)[1:]
    output_shape = static_shape(reconstruction)[1:]
    if shapes_differ(image_shape, output_shape):
        raise ValueError(
            f"{where}: the decoder's output shape {output_shape} differs "
            f"from the input images' shape {image_shape}"
        )


def check_conditional_inputs(encoder, decoder, num_classes):
    """A CVAE's sub-models take `[x, condition]`; with `num_classes`, one-hot labels that wide.

    With `num_classes=None` the condition may have any shape, but the encoder's
    and the decoder's condition inputs must agree on it.
    """
    what = "one_hot_labels" if num_classes is not None else "condition"
    shapes = {}
    for role, first, model in (("encoder", "images", encoder), ("decoder", "z", decoder)):
        inputs = getattr(model, "inputs", None)
        if not inputs:
            continue
        if len(inputs) != 2:
            raise ValueError(
                f"CVAE: the {role} must take two inputs [{first}, {what}]; it takes {len(inputs)}"
            )
        shapes[role] = static_shape(inputs[1])[1:]
        width = static_shape(inputs[1])[-1]
        if num_classes is not None and width is not None and width != num_classes:
            raise ValueError(
                f"CVAE: the {role}'s label input has width {width} but num_classes is {num_classes}"
            )
    if len(shapes) == 2 and shapes_differ(shapes["encoder"], shapes["decoder"]):
        raise ValueError(
            f"CVAE: the encoder's condition input has shape {shapes['encoder']} but the "
            f"decoder's has {shapes['decoder']}; they must take the same condition"
        )


def check_prior(where, prior, encoder, latent_dim):
    """The prior network maps the condition to `[prior_mean, prior_log_var]`, latent-wide."""
    prior_inputs = getattr(prior, "inputs", None) or []  # a subclassed model declares none
    encoder_inputs = getattr(encoder, "inputs", None) or []
    if len(prior_inputs) > 1:
        raise ValueError(
            f"{where}: the prior must take one input (the condition); it takes {len(prior_inputs)}"
        )
    if prior_inputs and len(encoder_inputs) == 2:
        shape, expected = (static_shape(t)[1:] for t in (prior_inputs[0], encoder_inputs[1]))
        if shapes_differ(expected, shape):
            raise ValueError(
                f"{where}: the prior's input has shape {shape} but the encoder's condition "
                f"input has {expected}; the prior takes the same condition"
            )
    outputs = getattr(prior, "outputs", None)
    if outputs is not None:
        check_prior_outputs(where, outputs, latent_dim)


def check_prior_outputs(where, outputs, latent_dim=None):
    """The prior returns `[prior_mean, prior_log_var]` of one shape; returns them."""
    mean_shape = _gaussian_pair(where, outputs, "prior", "[prior_mean, prior_log_var]")
    if mean_shape and shapes_differ(mean_shape[-1:], (latent_dim,)):
        raise ValueError(
            f"{where}: the prior returns codes of size {mean_shape[-1]} but the encoder has latent "
            f"size {latent_dim}"
        )
    return outputs


def check_functional_shapes(where, encoder, decoder):
    """Output counts, image shapes and latent widths of functional sub-models."""
    outputs = getattr(encoder, "outputs", None)
    if outputs is not None:
        check_encoder_outputs(where, outputs)
    encoder_inputs = getattr(encoder, "inputs", None)
    decoder_outputs = getattr(decoder, "outputs", None)
    if encoder_inputs and decoder_outputs:
        if len(decoder_outputs) != 1:
            raise ValueError(
                f"{where}: the decoder must return one tensor (the images); "
                f"it returns {len(decoder_outputs)}"
            )
        check_reconstruction(where, encoder_inputs[0], decoder_outputs[0])
    decoder_inputs = getattr(decoder, "inputs", None)
    if outputs is not None and decoder_inputs:
        latent_dim = static_shape(outputs[0])[-1]
        decoder_z = static_shape(decoder_inputs[0])[-1]
        if latent_dim is not None and decoder_z is not None and latent_dim != decoder_z:
            raise ValueError(
                f"{where}: the encoder has latent size {latent_dim} but the decoder "
                f"expects z of size {decoder_z}"
            )


def functional_latent_dim(encoder, decoder):
    """The latent width that functional sub-models declare, or None."""
    # the encoder's z_mean, or the decoder's z
    tensors = getattr(encoder, "outputs", None) or getattr(decoder, "inputs", None)
    return static_shape(tensors[0])[-1] if tensors else None


def functional_input_shape(encoder):
    """The encoder's input shape(s), with batch axis, if it is functional; else None."""
    inputs = getattr(encoder, "inputs", None)
    if not inputs:
        return None
    shapes = [tuple(static_shape(tensor)) for tensor in inputs]
    return shapes[0] if len(shapes) == 1 else shapes

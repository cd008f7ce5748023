"""Typical wrong answers to the exercises of notebook 07: each is a whole solution cell."""

_HIDE = """
def hide_left_half(images):
    mask = np.zeros(images.shape, "float32")
    {mask_line}
    condition = {condition}
    return condition, mask
"""

_WEIGHT = """
def conditional_log_weight(log_px, z, z_mean, z_log_var, prior_mean, prior_log_var):
    def log_normal(z, mean, log_var, constant=True):
        terms = log_var + (z - mean) ** 2 / np.exp(log_var)
        if constant:
            terms = terms + np.log(2 * np.pi)
        return -0.5 * np.sum(terms, axis=-1)

    return {result}
"""

_PAIRED = """
def paired_difference(log_weights_a, log_weights_b):
    def minus_l_k(weights):
        {l_k}

    a, b = minus_l_k(log_weights_a), minus_l_k(log_weights_b)
    per_digit = {per_digit}
    difference = float(np.mean(per_digit))
    standard_error = {se}
    return difference, standard_error
"""
_STABLE = (
    "top = weights.max(axis=1, keepdims=True); "
    "return -(top[:, 0] + np.log(np.mean(np.exp(weights - top), axis=1)))"
)
_SE = "float(np.std(per_digit, ddof=1) / np.sqrt(len(per_digit)))"

WRONG = {
    "07.hide_left_half": [
        # the mask marks the visible half
        _HIDE.format(
            mask_line="mask[:, :, images.shape[2] // 2 :] = 1.0",
            condition='np.where(mask == 0, -1.0, images).astype("float32")',
        ),
        # hidden pixels set to 0: the networks cannot tell hidden from white
        _HIDE.format(
            mask_line="mask[:, :, : images.shape[2] // 2] = 1.0",
            condition='np.where(mask == 1, 0.0, images).astype("float32")',
        ),
        # 14 columns, whatever the width of the images
        _HIDE.format(
            mask_line="mask[:, :, :14] = 1.0",
            condition='np.where(mask == 1, -1.0, images).astype("float32")',
        ),
        # one mask for all the images
        """
def hide_left_half(images):
    mask = np.zeros(images.shape[1:], "float32")
    mask[:, : images.shape[2] // 2] = 1.0
    condition = np.where(mask == 1, -1.0, images).astype("float32")
    return condition, mask
""",
    ],
    "07.conditional_log_weight": [
        # the prior N(0, I), whatever the condition
        _WEIGHT.format(
            result="log_px + log_normal(z, 0.0, 0.0) - log_normal(z, z_mean, z_log_var)"
        ),
        # q / p instead of p / q
        _WEIGHT.format(
            result="log_px + log_normal(z, z_mean, z_log_var) - log_normal(z, prior_mean, prior_log_var)"
        ),
        # the constant log 2 pi in q only
        _WEIGHT.format(
            result="log_px + log_normal(z, prior_mean, prior_log_var, constant=False)"
            " - log_normal(z, z_mean, z_log_var)"
        ),
        # the standard deviation where the variance belongs
        """
def conditional_log_weight(log_px, z, z_mean, z_log_var, prior_mean, prior_log_var):
    def log_normal(z, mean, log_var):
        terms = np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(0.5 * log_var)
        return -0.5 * np.sum(terms, axis=-1)

    return log_px + log_normal(z, prior_mean, prior_log_var) - log_normal(z, z_mean, z_log_var)
""",
        # log_px left out
        _WEIGHT.format(
            result="log_normal(z, prior_mean, prior_log_var) - log_normal(z, z_mean, z_log_var)"
        ),
    ],
    "07.paired_difference": [
        # exp of the log-weights: 0 in floating point
        _PAIRED.format(
            l_k="return -np.log(np.mean(np.exp(weights), axis=1))", per_digit="a - b", se=_SE
        ),
        # negative ELBOs instead of -L_K
        _PAIRED.format(l_k="return -weights.mean(axis=1)", per_digit="a - b", se=_SE),
        # b minus a
        _PAIRED.format(l_k=_STABLE, per_digit="b - a", se=_SE),
        # the two models' standard errors combined, as if the digits were not the same
        _PAIRED.format(
            l_k=_STABLE,
            per_digit="a - b",
            se="float(np.hypot(np.std(a, ddof=1), np.std(b, ddof=1)) / np.sqrt(len(a)))",
        ),
        # the spread of the differences, not the standard error of their mean
        _PAIRED.format(l_k=_STABLE, per_digit="a - b", se="float(np.std(per_digit, ddof=1))"),
    ],
}

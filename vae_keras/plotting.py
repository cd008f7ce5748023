"""Matplotlib helpers shared by the notebooks.

Every function returns the matplotlib `Figure` it drew, so a notebook can show
it and `save_figure` can write it to `images/`. Grids are decoded in one
batched call to the decoder, never one `predict` per image.
"""

import os
from statistics import NormalDist

import numpy as np

from vae_keras.widgets import as_images, decode, latent_explorer, scatter_by_label

__all__ = [
    "image_grid",
    "plot_latent_scatter",
    "latent_grid",
    "decode",
    "latent_explorer",
    "plot_latent_manifold",
    "plot_history",
    "save_figure",
    # evaluating a trained VAE
    "plot_log_likelihood_vs_k",
    "plot_kl_per_dimension",
    "plot_rate_distortion",
    "plot_latent_traversal",
]


def _figure(ax, figsize):
    """`(figure, axes)`: a new figure of `figsize`, or the figure of the given axes."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize) if ax is None else (ax.figure, ax)


def _vectors(where, first, second, names):
    """Two float64 vectors of one non-empty length, or a ValueError that names them."""
    first, second = (np.asarray(v, dtype="float64").reshape(-1) for v in (first, second))
    if first.size == 0 or first.shape != second.shape:
        raise ValueError(
            f"{where}: {names} must be non-empty and of equal length; received {first.shape} "
            f"and {second.shape}"
        )
    return first, second


def _titled(fig, ax, title):
    """The figure, once the axes have their title (if one is given)."""
    if title:
        ax.set_title(title)
    return fig


def _laid_out(fig, suptitle):
    """The figure, with its title (if one is given) and a tight layout."""
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def image_grid(
    images, n_cols=10, row_labels=None, titles=None, cell_size=1.0, cmap="gray_r", suptitle=None
):
    """Draws images in a grid, row by row, without axes.

    Args:
        images: Array `(n, h, w)` or `(n, h, w, 1)`.
        n_cols: Images per row.
        row_labels: Optional text at the left of each row.
        titles: Optional text above each image.
        cell_size: Inches per image.
        cmap: Matplotlib colormap (`"gray_r"`: dark ink on white paper).
        suptitle: Optional figure title.

    Returns:
        The `Figure`.
    """
    import matplotlib.pyplot as plt

    images = as_images(images)
    n = images.shape[0]
    if n == 0:
        raise ValueError("image_grid: no images to draw")
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    figsize = (cell_size * n_cols, cell_size * n_rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set(xticks=[], yticks=[])
        ax.spines[:].set_visible(False)
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=0, vmax=max(1.0, float(images.max())))
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            axes[row, 0].set_ylabel(str(label), rotation=0, ha="right", va="center")
    return _laid_out(fig, suptitle)


def plot_latent_scatter(z, labels, ax=None, title=None, class_names=None, s=3, alpha=0.6):
    """Scatters 2-D latent codes coloured by label (first two dimensions if wider).

    Args:
        z: Array `(n, d)` with `d >= 2`.
        labels: Integer labels `(n,)`.
        ax: Optional axes to draw into.
        title: Optional axes title.
        class_names: Optional names for the legend, indexed by label.
        s, alpha: Marker size and opacity.

    Returns:
        The `Figure`.
    """
    z = np.asarray(z)
    labels = np.asarray(labels).reshape(-1)
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] != labels.shape[0]:
        raise ValueError(
            f"plot_latent_scatter: expected z of shape (n, >=2) and n labels; "
            f"received z of shape {z.shape} and labels of shape {labels.shape}"
        )
    fig, ax = _figure(ax, (6, 5.5))
    scatter_by_label(ax, z, labels, class_names, s=s, alpha=alpha)
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    # Outside the axes, on the right: a legend inside would hide some of the points.
    ax.legend(markerscale=4, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _titled(fig, ax, title)


def latent_grid(n=20, quantile_range=(0.05, 0.95)):
    """A 2-D grid of latent points at evenly spaced quantiles of N(0, 1).

    Evenly spaced probabilities mapped through the inverse normal CDF put the
    grid points where the prior has its mass (Kingma & Welling, 2014, fig. 4).

    Args:
        n: Points per axis.
        quantile_range: Lowest and highest probability.

    Returns:
        `(z, values)`: `z` of shape `(n * n, 2)`, row-major with `z_2`
        decreasing down the rows and `z_1` increasing along them, and the `n`
        axis values.

    Example:

    >>> from vae_keras import plotting
    >>> z, values = plotting.latent_grid(n=3, quantile_range=(0.1, 0.9))
    >>> z.shape, [round(float(v), 3) for v in values]
    ((9, 2), [-1.282, 0.0, 1.282])
    """
    low, high = quantile_range
    if not 0 < low < high < 1:
        raise ValueError(
            f"latent_grid: quantile_range must satisfy 0 < low < high < 1; received quantile_range={quantile_range}"
        )
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(low, high, n)], dtype="float32")
    z1, z2 = np.meshgrid(values, values[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1), values


def plot_latent_manifold(
    decoder, n=20, label=None, num_classes=None, quantile_range=(0.05, 0.95), ax=None, title=None
):
    """Decodes an n x n grid over a 2-D latent space in one call and tiles it.

    Args:
        decoder: A decoder with a 2-D latent input (conditional if `label`).
        n: Images per side.
        label: Class id for a conditional decoder (same label everywhere).
        num_classes: Number of classes, with `label`.
        quantile_range: Range of prior quantiles covered by the grid.
        ax: Optional axes.
        title: Optional title.

    Returns:
        The `Figure`.
    """
    z, values = latent_grid(n, quantile_range)
    images = as_images(decode(decoder, z, labels=label, num_classes=num_classes))
    h, w = images.shape[1:]
    canvas = images.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)
    fig, ax = _figure(ax, (7, 7))
    ax.imshow(canvas, cmap="gray_r", extent=(0, n * w, 0, n * h))
    # Ticks at round values of z (and at both ends of the grid), placed where they fall
    # on the quantile grid: the labels are evenly spaced numbers, their spacing on the
    # image shows that the grid is denser near the origin.
    low, high = quantile_range
    ends = float(values[0]), float(values[-1])
    inner = [v for v in np.arange(-4.0, 4.01, 0.5) if ends[0] + 0.3 < v < ends[1] - 0.3]
    tick_values = [ends[0], *inner, ends[1]]
    cdf = NormalDist().cdf
    positions = [((cdf(v) - low) / (high - low) * (n - 1) + 0.5) * w for v in tick_values]
    labels = [f"{v:.2f}" if v in ends else f"{v:g}" for v in tick_values]
    ax.set_xticks(positions, labels)
    ax.set_yticks(positions, labels)
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    return _titled(fig, ax, title)


_METRIC_TITLES = {
    "loss": "loss (reconstruction + β·KL)",
    "reconstruction_loss": "reconstruction term",
    "kl_loss": "KL term",
    "beta": "β",
}


def plot_history(
    history, keys=("loss", "reconstruction_loss", "kl_loss"), title=None, skip_epochs=None
):
    """Plots training (and validation, when present) curves from a `History`.

    The first epoch's loss is usually far above the rest and would set the
    y-range on its own, hiding the gap between training and validation; so by
    default the panels start after epoch 1 (when there are more than 3 epochs).

    Args:
        history: A `keras.callbacks.History` or its `.history` dict.
        keys: Metrics to plot, one panel each.
        title: Optional figure title.
        skip_epochs: Number of leading epochs to leave out; `None`: 1 when
            there are more than 3 epochs, else 0.

    Returns:
        The `Figure`.
    """
    import matplotlib.pyplot as plt

    logs = getattr(history, "history", history)
    keys = [k for k in keys if k in logs]
    if not keys:
        raise ValueError(f"plot_history: none of the requested metrics are in {sorted(logs)}")
    n_epochs = len(logs[keys[0]])
    if skip_epochs is None:
        skip_epochs = 1 if n_epochs > 3 else 0
    if not 0 <= skip_epochs < n_epochs:
        raise ValueError(
            f"plot_history: skip_epochs must be in [0, {n_epochs}); received {skip_epochs}"
        )
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = np.arange(1, len(logs[key]) + 1)[skip_epochs:]
        ax.plot(epochs, logs[key][skip_epochs:], marker="o", ms=3, label="train")
        if "val_" + key in logs:
            ax.plot(epochs, logs["val_" + key][skip_epochs:], marker="o", ms=3, label="validation")
        name = _METRIC_TITLES.get(key, key.replace("_", " "))
        if key == "loss" and not any(b != 1 for b in logs.get("beta", [1])):
            name = "loss (reconstruction + KL)"  # no beta in a title where beta was always 1
        xlabel = "epoch" if skip_epochs == 0 else f"epoch (from {skip_epochs + 1})"
        ax.set(title=name, xlabel=xlabel, ylabel="" if key == "beta" else "nats per image")
        ax.legend()
    return _laid_out(fig, title)


def save_figure(fig, name, directory="images", dpi=110):
    """Saves a figure as `<directory>/<name>.png` and returns the path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name if name.endswith(".png") else name + ".png")
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# ------------------------------------------------- evaluating a trained VAE


def plot_log_likelihood_vs_k(
    ks, estimates, stderrs=None, elbo=None, ax=None, label=None, title=None
):
    """Plots the importance-weighted bound L_K against K (log axis), with error bars.

    Args:
        ks: Numbers of importance samples, e.g. `[1, 10, 100, 1000, 5000]`.
        estimates: Mean L_K over the evaluation images, one per K (nats per image).
        stderrs: Optional standard errors of those means, drawn as error bars.
        elbo: Optional ELBO (nats per image), drawn as a horizontal dashed line.
        ax: Optional axes to draw into (to overlay several models).
        label: Optional legend label for this curve.
        title: Optional axes title.

    Returns:
        The `Figure`.
    """
    ks, estimates = _vectors("plot_log_likelihood_vs_k", ks, estimates, "ks and estimates")
    if np.any(ks < 1):
        raise ValueError(f"plot_log_likelihood_vs_k: every K must be >= 1; received ks={ks}")
    if stderrs is not None:
        stderrs = np.asarray(stderrs, dtype="float64").reshape(-1)
        if stderrs.shape != ks.shape:
            raise ValueError(
                f"plot_log_likelihood_vs_k: one standard error per K expected; received "
                f"{stderrs.shape} for {ks.shape[0]} values of K"
            )
    fig, ax = _figure(ax, (5.5, 3.8))
    line = ax.errorbar(ks, estimates, yerr=stderrs, marker="o", ms=4, capsize=3, label=label)
    if elbo is not None:
        elbo_label = None if label is None else f"{label}: ELBO"
        ax.axhline(float(elbo), ls="--", lw=1, color=line[0].get_color(), label=elbo_label)
    ax.set(xscale="log", xlabel="K, importance samples per image")
    ax.set_ylabel("$\\mathcal{L}_K$ (nats per image)")
    if label is not None:
        ax.legend(fontsize=8)
    return _titled(fig, ax, title)


def plot_kl_per_dimension(kl, ax=None, title=None, sort=False):
    """Bar chart of the KL term per latent dimension, for one model or several.

    Args:
        kl: Array `(latent_dim,)` (nats), or a dict `{name: array}` for grouped bars.
        ax: Optional axes.
        title: Optional axes title.
        sort: Draw each model's dimensions from largest to smallest KL.

    Returns:
        The `Figure`.
    """
    series = dict(kl) if isinstance(kl, dict) else {None: kl}
    if not series:
        raise ValueError("plot_kl_per_dimension: nothing to plot")
    series = {k: np.asarray(v, dtype="float64").reshape(-1) for k, v in series.items()}
    width = max(v.size for v in series.values())
    if width == 0:
        raise ValueError("plot_kl_per_dimension: received an empty KL array")
    fig, ax = _figure(ax, (min(11.0, max(4.0, 0.25 * width * len(series) + 2)), 3.2))
    bar = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        values = np.sort(values)[::-1] if sort else values
        positions = np.arange(values.size) + (i - (len(series) - 1) / 2) * bar
        ax.bar(positions, values, width=bar, label=name)
    ax.set_xticks(np.arange(width), [str(j + 1) for j in range(width)] if not sort else [])
    ax.set(xlabel="latent dimension, by KL" if sort else "latent dimension", ylabel="KL (nats)")
    if len(series) > 1 or None not in series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the bars
    return _titled(fig, ax, title)


def plot_rate_distortion(rates, distortions, labels=None, ax=None, title=None):
    """Rate (KL) against distortion (reconstruction term), the plane of Alemi et al. (2018).

    Points on a diagonal `rate + distortion = c` share the same ELBO; the dashed
    diagonal through the point with the best ELBO (lowest `rate + distortion`)
    is drawn for reference: every other point lies on or above it.

    Args:
        rates: KL terms in nats per image, one per model.
        distortions: Reconstruction terms in nats per image, one per model.
        labels: Optional text next to each point (e.g. its beta).
        ax: Optional axes.
        title: Optional axes title.

    Returns:
        The `Figure`.
    """
    names = "rates and distortions"
    rates, distortions = _vectors("plot_rate_distortion", rates, distortions, names)
    if labels is not None and len(labels) != rates.size:
        raise ValueError(f"plot_rate_distortion: {len(labels)} labels for {rates.size} points")
    fig, ax = _figure(ax, (5.5, 4.2))
    ax.plot(rates, distortions, "o-", ms=5)
    span = np.array([0.0, max(rates.max(), 1e-9) * 1.1])
    best = float(np.min(rates + distortions))
    diagonal = f"best ELBO: R + D = {best:.1f}"
    ax.plot(span, best - span, ls="--", lw=0.8, color="gray", label=diagonal)
    ax.legend(fontsize=8, loc="upper right")
    if labels is not None:
        for r, d, text in zip(rates, distortions, labels):
            ax.annotate(str(text), (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlim(left=0)
    low, high = distortions.min(), distortions.max()
    pad = 0.08 * max(high - low, 1.0)
    ax.set_ylim(low - pad, high + pad)
    ax.set(xlabel="rate: KL term (nats per image)", ylabel="distortion: reconstruction (nats)")
    return _titled(fig, ax, title)


def plot_latent_traversal(
    decoder,
    z,
    dims,
    values=(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5),
    label=None,
    num_classes=None,
    cell_size=0.8,
    title=None,
):
    """Decodes z with one dimension at a time set to each of `values`, in one batched call.

    Row `i` sets `z[dims[i]]` to each of `values` (absolute values of that
    coordinate, not offsets from `z`) while the other coordinates keep their
    values in `z` (Higgins et al., 2017); works for any latent size. Each row
    is labelled with the coordinate and the value it has in `z`.

    Args:
        decoder: A decoder (conditional when `label` is given).
        z: The base code, shape `(latent_dim,)`.
        dims: Latent dimensions to traverse, one row each.
        values: The values given to the traversed dimension, one column each.
        label: Class id for a conditional decoder.
        num_classes: Number of classes, with `label`.
        cell_size: Inches per image.
        title: Optional figure title.

    Returns:
        The `Figure`.
    """
    z = np.asarray(z, dtype="float32").reshape(-1)
    dims = [int(d) for d in np.asarray(dims).reshape(-1)]
    values = np.asarray(values, dtype="float32").reshape(-1)
    if not dims or values.size == 0:
        raise ValueError("plot_latent_traversal: give at least one dimension and one value")
    if any(d < 0 or d >= z.size for d in dims):
        raise ValueError(
            f"plot_latent_traversal: dims must lie in [0, {z.size - 1}]; received {dims}"
        )
    codes = np.repeat(z[None], len(dims) * values.size, axis=0)
    for row, d in enumerate(dims):
        codes[row * values.size : (row + 1) * values.size, d] = values
    images = decode(decoder, codes, labels=label, num_classes=num_classes)
    return image_grid(
        images,
        n_cols=values.size,
        row_labels=[f"$z_{{{d + 1}}}$ set to\n(in z: {z[d]:.2f})" for d in dims],
        titles=[f"{v:.2f}".rstrip("0").rstrip(".") for v in values]
        + [""] * (codes.shape[0] - values.size),
        cell_size=cell_size,
        suptitle=title,
    )

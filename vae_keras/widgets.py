"""Moving through the latent plane of a trained 2-D `VAE` or `CVAE`.

`latent_explorer` draws a static matplotlib figure by default (the encoded
images as a scatter, a few marked codes and the digits decoded from them), so
an executed notebook keeps a picture in its output. With `interactive=True`
it builds an ipywidgets interface instead: two sliders for z, a label picker
for a CVAE, the decoded image and the point on the scatter, redrawn as the
sliders move. ipywidgets is imported only then (`pip install ipywidgets`).
The site's latent explorer page is the same idea in the browser.
"""

import io

import numpy as np
from keras import ops

from vae_keras._inputs import one_hot

__all__ = ["latent_explorer", "as_images", "decode", "scatter_by_label"]


def as_images(images):
    """Images as `(n, h, w)`: a trailing channel axis of 1 is dropped."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(
            f"expected images of shape (n, h, w) or (n, h, w, 1); received shape {images.shape}"
        )
    return images


def decode(decoder, z, labels=None, num_classes=None):
    """Decodes latent codes in one batched call, with one-hot labels if given.

    Args:
        decoder: A Keras decoder (`z -> images` or `[z, one_hot] -> images`).
        z: Array `(n, latent_dim)`.
        labels: Optional class ids `(n,)` (or one id for all) for a conditional
            decoder.
        num_classes: Number of classes, needed with `labels`.

    Returns:
        A NumPy array of images.
    """
    z = np.asarray(z, dtype="float32")
    if labels is None:
        return ops.convert_to_numpy(decoder(z, training=False))
    if num_classes is None:
        raise ValueError(
            "decode: num_classes is needed to one-hot encode labels; received num_classes=None"
        )
    labels = np.broadcast_to(np.asarray(labels, dtype="int64"), (z.shape[0],))
    labels = ops.convert_to_numpy(one_hot(labels, num_classes, "float32"))
    return ops.convert_to_numpy(decoder([z, labels], training=False))


def scatter_by_label(ax, z, labels, class_names=None, **kwargs):
    """Scatters the codes `z[:, :2]` on `ax`, one tab10 colour and legend entry per label.

    `class_names[label]` names a label in the legend (the label itself without
    them); `kwargs` go to `ax.scatter` (`s`, `alpha`, ...).
    """
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    for cls in np.unique(labels):
        mask = labels == cls
        name = str(cls) if class_names is None else str(class_names[int(cls)])
        ax.scatter(z[mask, 0], z[mask, 1], color=cmap(int(cls) % 10), label=name, **kwargs)


# Five codes on the diagonal of the plane: from one corner of the prior's mass to the other.
DEFAULT_CODES = tuple((float(v), float(v)) for v in np.linspace(-2.0, 2.0, 5))
_CODE_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def latent_explorer(
    model,
    images=None,
    labels=None,
    interactive=False,
    codes=None,
    z_range=(-4.0, 4.0),
    class_names=None,
    step=0.05,
):
    """Shows what a trained 2-D VAE or CVAE decodes across its latent plane.

    With `interactive=False` (the default) it returns a static figure: on the
    left the held-out `images` encoded to their `z_mean` (coloured by label when
    `labels` are given), with the `codes` marked A, B, C, ...; on the right the
    digit decoded from each marked code. For a `CVAE` each code is decoded under
    every label, one row per code, so the style stays along a row while the
    digit changes. All the images are decoded in one batched call.

    With `interactive=True` it returns an ipywidgets box: sliders for `z_1` and
    `z_2` (the arrow keys move a focused slider), a label menu for a `CVAE`,
    the decoded image, and the current point drawn on the scatter. Each move
    decodes one image. The box's `z1`, `z2`, `label` (None for a `VAE`),
    `image` and `plane` attributes are its widgets.

    Args:
        model: A trained `vk.VAE` or `vk.CVAE` with a 2-D latent space.
        images: Optional images to encode for the scatter, `(n, 28, 28)` or
            `(n, 28, 28, 1)`, floats in [0, 1] or uint8.
        labels: Integer labels of `images`; needed for a `CVAE` (its encoder
            reads them) and used for the colours.
        interactive: Build the ipywidgets interface instead of a figure.
        codes: Latent codes to mark and decode, shape `(k, 2)`; by default
            five points on the diagonal from (-2, -2) to (2, 2). With
            `interactive=True` the sliders start at the first one.
        z_range: The part of the plane shown, and the sliders' range.
        class_names: Optional names of the labels.
        step: The sliders' step.

    Returns:
        A matplotlib `Figure`, or with `interactive=True` an
        `ipywidgets.HBox`.

    Raises:
        ValueError: if the model's latent space is not 2-D, or a `CVAE` is
            given images without labels.
        ImportError: with `interactive=True` when ipywidgets is missing.

    Example:

    >>> import vae_keras as vk
    >>> vae = vk.VAE(vk.build_mlp_encoder(latent_dim=2), vk.build_mlp_decoder(latent_dim=2))
    >>> fig = vk.plotting.latent_explorer(vae, codes=[[0.0, 0.0], [1.0, -1.0]])
    >>> len(fig.axes)  # the plane and the two decoded codes
    3
    """
    explorer = _Explorer(model, images, labels, codes, z_range, class_names)
    return explorer.widget(step) if interactive else explorer.figure()


class _Explorer:
    """What both views share: the model's kind, the encoded scatter, the codes."""

    def __init__(self, model, images, labels, codes, z_range, class_names):
        latent_dim = getattr(model, "latent_dim", None)
        if latent_dim != 2:
            raise ValueError(
                f"latent_explorer: the model must have a 2-D latent space; received "
                f"latent_dim={latent_dim}"
            )
        self.model = model
        self.num_classes = getattr(model, "num_classes", None)
        low, high = (float(v) for v in z_range)
        if not low < high:
            raise ValueError(f"latent_explorer: z_range must be (low, high); received {z_range}")
        self.z_range = (low, high)
        self.class_names = class_names
        codes = np.asarray(DEFAULT_CODES if codes is None else codes, dtype="float32")
        if codes.ndim != 2 or codes.shape[1] != 2 or not 1 <= codes.shape[0] <= len(_CODE_NAMES):
            raise ValueError(
                f"latent_explorer: codes must have shape (k, 2) with 1 <= k <= "
                f"{len(_CODE_NAMES)}; received {codes.shape}"
            )
        self.codes = codes
        self.labels = None if labels is None else np.asarray(labels).reshape(-1).astype("int64")
        self.z = None if images is None else self._encode(images)

    def _encode(self, images):
        """The images' z_mean, as NumPy, from one `encode` call (uint8 images scaled to [0, 1])."""
        images = np.asarray(images)
        images = images.astype("float32") / (255.0 if images.dtype == np.uint8 else 1.0)
        if self.labels is not None and self.labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"latent_explorer: {self.labels.shape[0]} labels for {images.shape[0]} images"
            )
        if self.num_classes is not None and self.labels is None:
            raise ValueError("latent_explorer: a CVAE's encoder needs the labels of the images")
        images = images[..., None] if images.ndim == 3 else images
        inputs = images if self.num_classes is None else [images, self.labels]
        return np.asarray(ops.convert_to_numpy(self.model.encode(inputs)[0]), dtype="float32")

    def name(self, label):
        return str(label) if self.class_names is None else str(self.class_names[int(label)])

    def decode(self, z, labels=None):
        return as_images(decode(self.model.decoder, z, labels=labels, num_classes=self.num_classes))

    def draw_plane(self, ax, s=3, alpha=0.35):
        """The encoded images (if any) on the plane, clipped to z_range."""
        if self.z is not None:
            if self.labels is None:
                ax.scatter(self.z[:, 0], self.z[:, 1], s=s, alpha=alpha, color="0.5", lw=0)
            else:
                scatter_by_label(ax, self.z, self.labels, self.class_names, s=s, alpha=alpha, lw=0)
                # Under the axes: inside, the legend would hide some of the codes.
                under = dict(loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
                ax.legend(markerscale=3, fontsize=7, ncol=5, **under)
        ax.set(xlim=self.z_range, ylim=self.z_range, aspect="equal", xlabel="$z_1$", ylabel="$z_2$")

    # ------------------------------------------------------------- static figure
    def figure(self):
        import matplotlib.pyplot as plt

        # Every code (under every label, for a CVAE), row by row, in one call.
        n_rows, n_cols = self.codes.shape[0], self.num_classes or 1
        labels = None if self.num_classes is None else np.tile(np.arange(n_cols), n_rows)
        images = self.decode(np.repeat(self.codes, n_cols, axis=0), labels)
        cell = min(1.1, 5.0 / n_rows)
        fig = plt.figure(figsize=(5.2 + cell * n_cols + 0.6, max(5.0, cell * n_rows + 0.6)))
        grid = fig.add_gridspec(n_rows, n_cols + 1, width_ratios=[5.0 / cell] + [1.0] * n_cols)
        plane = fig.add_subplot(grid[:, 0])
        self.draw_plane(plane)
        for i, (z1, z2) in enumerate(self.codes):
            plane.scatter([z1], [z2], s=120, color="white", edgecolor="black", zorder=3)
            plane.annotate(_CODE_NAMES[i], (z1, z2), ha="center", va="center", fontsize=7, zorder=4)
        title = "encoded images" if self.z is not None else "the latent plane"
        plane.set_title(f"{title}, with the marked codes", fontsize=9)
        for i in range(n_rows):
            for j in range(n_cols):
                ax = fig.add_subplot(grid[i, j + 1])
                ax.imshow(images[i * n_cols + j], cmap="gray_r", vmin=0.0, vmax=1.0)
                ax.set(xticks=[], yticks=[])
                if self.num_classes is None:
                    z1, z2 = self.codes[i]
                    ax.set_title(f"{_CODE_NAMES[i]}: ({z1:.1f}, {z2:.1f})", fontsize=8)
                else:
                    if i == 0:
                        ax.set_title(self.name(j), fontsize=8)
                    if j == 0:
                        ax.set_ylabel(_CODE_NAMES[i], rotation=0, ha="right", va="center")
        fig.tight_layout()
        return fig

    # ------------------------------------------------------------- ipywidgets
    def widget(self, step):
        try:
            import ipywidgets as widgets
        except ImportError as error:
            raise ImportError(
                "latent_explorer(interactive=True) needs ipywidgets: pip install ipywidgets "
                "(or call it with interactive=False for a static figure)"
            ) from error
        plane = _PlaneImage(self)
        low, high = self.z_range
        limits = dict(min=low, max=high, step=step, continuous_update=True, readout_format=".2f")
        sliders = [
            widgets.FloatSlider(value=float(value), description=name, **limits)
            for name, value in zip(("z₁", "z₂"), np.clip(self.codes[0], low, high))
        ]
        label = None
        if self.num_classes is not None:
            options = [(self.name(k), k) for k in range(self.num_classes)]
            label = widgets.Dropdown(options=options, value=0, description="label")
        image = widgets.Image(format="png", width=224, height=224)
        plane_image = widgets.Image(format="png")

        def redraw(change=None):
            z = np.array([[sliders[0].value, sliders[1].value]], dtype="float32")
            labels = None if label is None else [label.value]
            decoded = self.decode(z, labels)[0]
            image.value = _png(np.kron(decoded, np.ones((8, 8), dtype=decoded.dtype)), "gray_r")
            plane_image.value = plane.png(z[0])

        controls = sliders + ([label] if label is not None else [])
        for control in controls:
            control.observe(redraw, names="value")
        redraw()
        box = widgets.HBox([plane_image, widgets.VBox([*controls, image])])
        box.z1, box.z2, box.label, box.image, box.plane = *sliders, label, image, plane_image
        return box


class _PlaneImage:
    """The scatter drawn once with Agg; each update paints the current point on a copy."""

    def __init__(self, explorer):
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = plt.Figure(figsize=(3.6, 3.6), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        explorer.draw_plane(ax)
        fig.tight_layout()
        fig.canvas.draw()
        self.pixels = np.asarray(fig.canvas.buffer_rgba()).copy()
        self.transform = ax.transData
        self.height = self.pixels.shape[0]

    def png(self, z):
        x, y = self.transform.transform((float(z[0]), float(z[1])))
        row, col = self.height - y, x
        rows, cols = np.ogrid[: self.pixels.shape[0], : self.pixels.shape[1]]
        distance = np.hypot(rows - row, cols - col)
        pixels = self.pixels.copy()
        pixels[distance <= 6.5] = (0, 0, 0, 255)
        pixels[distance <= 4.5] = (214, 39, 40, 255)
        return _png(pixels)


def _png(array, cmap=None):
    """PNG bytes of a float image in [0, 1] (with `cmap`) or of an RGBA uint8 array."""
    import matplotlib.image

    buffer = io.BytesIO()
    colours = {} if cmap is None else {"cmap": cmap, "vmin": 0.0, "vmax": 1.0}
    matplotlib.image.imsave(buffer, array, format="png", **colours)
    return buffer.getvalue()

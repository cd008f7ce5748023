"""Draws the static figures that the tutorial notebooks embed from `images/`.

Usage:

    python images/make_figures.py              # writes the PNGs next to this script
    python images/make_figures.py --out DIR    # writes them into DIR

Only NumPy and matplotlib (Agg backend) are used, and the one random draw (the
ring figure's normal samples) comes from a fixed seed, so the same matplotlib
version writes the same files every time.

Figures:

- `kl_bars.png`: two discrete distributions P and Q as bars, and the pointwise
  terms P(x) log(P(x)/Q(x)) whose sum is D_KL(P || Q) (notebook 01).
- `forward_vs_reverse_kl.png`: one Gaussian fitted to a two-component mixture
  by minimising the forward and the reverse KL divergence (notebook 01).
- `reparameterization_trick.png`: where the gradient stops when z is sampled
  inside the graph, and how z = mu + sigma * eps lets it through (notebook 02).
- `cvae_vs_vae.png`: a VAE beside a conditional VAE, whose one-hot label y
  enters both the encoder and the decoder (notebook 04).
- `vae_architecture.png`: the VAE's encoder, the two statistics mu and
  log sigma^2, the sampling step, the decoder, and where the two terms of the
  loss attach (solid purple arrows, named in the legend; red dashed arrows mean
  gradients, and only in reparameterization_trick.png) (notebook 03).
- `normal_to_ring.png`: samples of a 2-D standard normal, and the same samples
  pushed through g(z) = z/10 + z/|z|, which lie on a ring (after Doersch, 2016,
  figure 2; notebook 03).
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURES = (
    "kl_bars.png",
    "forward_vs_reverse_kl.png",
    "reparameterization_trick.png",
    "cvae_vs_vae.png",
    "vae_architecture.png",
    "normal_to_ring.png",
)
DPI = 120

# The same P and Q as in notebooks/01_kl_divergence.ipynb.
KL_P = np.array([0.10, 0.40, 0.30, 0.15, 0.05])
KL_Q = np.array([0.30, 0.20, 0.20, 0.20, 0.10])

# The same mixture as in notebooks/01_kl_divergence.ipynb: 0.5 N(-2, 0.6^2) + 0.5 N(2, 0.6^2).
MIX_MEANS = np.array([-2.0, 2.0])
MIX_STD = 0.6

BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"
PURPLE = "#9467bd"
SAVE_KWARGS = {"dpi": DPI, "bbox_inches": "tight", "metadata": {"Software": None}}


# --------------------------------------------------------------------- KL bars
def kl_bars(path):
    terms = KL_P * np.log(KL_P / KL_Q)
    total = terms.sum()
    outcomes = np.arange(len(KL_P))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.38
    left.bar(outcomes - width / 2, KL_P, width, color=BLUE, label="$P(x)$")
    left.bar(outcomes + width / 2, KL_Q, width, color=ORANGE, label="$Q(x)$")
    left.set_xticks(outcomes)
    left.set_xlabel("outcome $x$")
    left.set_ylabel("probability")
    left.set_title("Two distributions over five outcomes")
    left.legend()

    colors = [GREEN if t >= 0 else RED for t in terms]
    right.bar(outcomes, terms, 0.6, color=colors)
    right.axhline(0.0, color="black", lw=0.8)
    for x, t in zip(outcomes, terms, strict=True):
        right.annotate(
            f"{t:+.3f}",
            (x, t),
            xytext=(0, 4 if t >= 0 else -4),
            textcoords="offset points",
            ha="center",
            va="bottom" if t >= 0 else "top",
            fontsize=9,
        )
    right.set_xticks(outcomes)
    right.set_xlabel("outcome $x$")
    right.set_ylabel(r"$P(x)\,\log\frac{P(x)}{Q(x)}$ (nats)")
    right.set_title(rf"Pointwise terms; their sum $D_{{KL}}(P\|Q) = {total:.3f}$ nats")
    low, high = terms.min(), terms.max()
    right.set_ylim(low - 0.25 * (high - low), high + 0.25 * (high - low))
    fig.text(
        0.5,
        -0.04,
        "Where P puts more mass than Q the term is positive (green), where it puts less "
        "it is negative (red);\nthe terms are weighted by P, and their sum, "
        r"$D_{KL}(P\|Q)$, is never negative.",
        ha="center",
        va="top",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, **SAVE_KWARGS)
    plt.close(fig)


# ------------------------------------------------------ forward vs reverse KL
def _normal_pdf(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))


def _mixture_pdf(x):
    return 0.5 * _normal_pdf(x, MIX_MEANS[0], MIX_STD) + 0.5 * _normal_pdf(x, MIX_MEANS[1], MIX_STD)


def _reverse_kl_fit(grid, p, start_mean):
    """Minimises KL(q || p) over q = N(m, s^2) by a coarse-to-fine grid search."""
    dx = grid[1] - grid[0]
    log_p = np.log(np.maximum(p, 1e-300))

    def reverse_kl(m, s):
        q = _normal_pdf(grid, m, s)
        mask = q > 1e-300
        return np.sum(q[mask] * (np.log(q[mask]) - log_p[mask])) * dx

    m_best, s_best = start_mean, 1.0
    span_m, span_s = 2.0, 0.9
    for _ in range(6):
        candidates = [
            (m, s)
            for m in np.linspace(m_best - span_m, m_best + span_m, 41)
            for s in np.linspace(max(s_best - span_s, 0.05), s_best + span_s, 41)
        ]
        m_best, s_best = min(candidates, key=lambda ms: reverse_kl(*ms))
        span_m, span_s = span_m / 5, span_s / 5
    return m_best, s_best


def forward_vs_reverse_kl(path):
    grid = np.linspace(-8.0, 8.0, 4001)
    p = _mixture_pdf(grid)
    # Forward KL(p || q) over Gaussians q is minimised by matching p's mean and variance.
    forward_mean = 0.0
    forward_std = np.sqrt(MIX_STD**2 + np.mean(MIX_MEANS**2))
    reverse = [_reverse_kl_fit(grid, p, start) for start in (-1.0, 1.0)]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax in (left, right):
        ax.fill_between(grid, p, color=GREY, alpha=0.35, label="target $p$ (mixture)")
        ax.set_xlabel("$z$")
        ax.set_xlim(-6, 6)
    left.plot(
        grid,
        _normal_pdf(grid, forward_mean, forward_std),
        color=BLUE,
        lw=2,
        label=rf"$q$: $\mu={forward_mean:.2f}$, $\sigma={forward_std:.2f}$",
    )
    left.set_title(r"Forward: minimise $D_{KL}(p\,\|\,q)$: covers both modes")
    left.set_ylabel("density")
    for (m, s), style in zip(reverse, ("-", "--"), strict=True):
        right.plot(
            grid,
            _normal_pdf(grid, m, s),
            color=ORANGE,
            lw=2,
            ls=style,
            label=rf"$q$: $\mu={m:.2f}$, $\sigma={s:.2f}$",
        )
    right.set_title(r"Reverse: minimise $D_{KL}(q\,\|\,p)$: picks one mode")
    left.set_ylim(0, 0.95)  # room above the peaks for the legends
    left.legend(fontsize=9, loc="upper left")
    right.legend(fontsize=9, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, **SAVE_KWARGS)
    plt.close(fig)


# -------------------------------------------------------------- diagram helpers
def _box(ax, center, text, color, width=1.6, height=0.8, round_box=True, fontsize=12):
    x, y = center
    style = "round,pad=0.02,rounding_size=0.15" if round_box else "square,pad=0.02"
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle=style,
            facecolor=color,
            edgecolor="black",
            lw=1.2,
            zorder=2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _circle(ax, center, text, color, radius=0.45, fontsize=12):
    ax.add_patch(plt.Circle(center, radius, facecolor=color, edgecolor="black", lw=1.2, zorder=2))
    ax.text(center[0], center[1], text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _arrow(ax, start, end, color="black", ls="-", lw=1.6, rad=0.0, shrink=0.0):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=16,
            color=color,
            ls=ls,
            lw=lw,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=shrink,
            shrinkB=shrink,
            zorder=1,
        )
    )


# --------------------------------------------------- reparameterization trick
def _forward_and_backward(ax, start, end, shift, blocked=False):
    """A forward arrow start -> end and, moved by `shift`, the gradient flowing back."""
    _arrow(ax, start, end)
    back_start = (end[0] + shift[0], end[1] + shift[1])
    back_end = (start[0] + shift[0], start[1] + shift[1])
    if not blocked:
        _arrow(ax, back_start, back_end, color=RED, ls="--")
        return
    middle = ((back_start[0] + back_end[0]) / 2, (back_start[1] + back_end[1]) / 2)
    ax.plot([back_start[0], middle[0]], [back_start[1], middle[1]], color=RED, ls="--", lw=1.6)
    ax.text(*middle, "X", color=RED, fontsize=20, ha="center", va="center", fontweight="bold")


def reparameterization_trick(path):
    det_color, rand_color, input_color = "#dbe9f6", "#fbd5b5", "#d9f0d3"
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.2))
    for ax in axes:
        ax.set_xlim(0, 10.2)
        ax.set_ylim(0.6, 8.0)
        ax.set_aspect("equal")
        ax.axis("off")

    def common(ax):
        _box(ax, (0.6, 5.0), "$x$", input_color, width=0.9)
        _box(ax, (2.3, 5.0), "encoder\n$\\phi$", det_color, width=1.6, height=1.0)
        _box(ax, (4.3, 6.2), r"$\mu$", det_color, width=0.9)
        _box(ax, (4.3, 3.8), r"$\sigma$", det_color, width=0.9)
        _box(ax, (8.9, 5.0), "decoder\n$\\theta$", det_color, width=1.6, height=1.0)
        _box(ax, (8.9, 7.3), "reconstruction\nterm", det_color, width=2.2, height=1.0, fontsize=11)
        _arrow(ax, (1.05, 5.0), (1.5, 5.0))
        _arrow(ax, (3.1, 5.1), (3.85, 5.95))
        _arrow(ax, (3.1, 4.9), (3.85, 4.05))
        _forward_and_backward(ax, (8.75, 5.5), (8.75, 6.8), (0.3, 0))

    # Left: z is drawn inside the graph.
    ax = axes[0]
    common(ax)
    ax.set_title("Sampling inside the graph: the gradient stops at $z$", fontsize=13)
    _circle(
        ax,
        (6.5, 5.0),
        "$z \\sim$\n$\\mathcal{N}(\\mu, \\sigma^2)$",
        rand_color,
        radius=0.95,
        fontsize=11,
    )
    _forward_and_backward(ax, (4.75, 6.05), (5.6, 5.45), (0, -0.3), blocked=True)
    _forward_and_backward(ax, (4.75, 3.95), (5.6, 4.55), (0, 0.3), blocked=True)
    _forward_and_backward(ax, (7.45, 5.0), (8.1, 5.0), (0, -0.25))
    ax.text(
        5.1,
        2.9,
        "A random draw is not a differentiable function of $\\mu$ and\n$\\sigma$: "
        "$\\partial z/\\partial\\mu$ and $\\partial z/\\partial\\sigma$ "
        "are not defined, so the gradient of the\nreconstruction term stops at $z$. "
        "(The KL term, a function\nof $\\mu$ and $\\sigma$ alone, still sends its own.)",
        fontsize=11,
        ha="center",
        va="top",
        linespacing=1.4,
    )

    # Right: z = mu + sigma * eps.
    ax = axes[1]
    common(ax)
    ax.set_title(r"Reparameterized: $z = \mu + \sigma \odot \epsilon$", fontsize=13)
    _box(ax, (6.5, 5.0), "$z = \\mu + \\sigma \\odot \\epsilon$", det_color, width=2.0, fontsize=11)
    _circle(
        ax,
        (6.5, 2.5),
        "$\\epsilon \\sim$\n$\\mathcal{N}(0, I)$",
        rand_color,
        radius=0.8,
        fontsize=11,
    )
    # Unlike on the left, the gradient reaches mu and sigma, and through them the encoder.
    _arrow(ax, (3.85, 6.25), (3.1, 5.4), color=RED, ls="--")
    _arrow(ax, (3.85, 3.75), (3.1, 4.6), color=RED, ls="--")
    _forward_and_backward(ax, (4.75, 6.1), (5.5, 5.4), (0, -0.3))
    _forward_and_backward(ax, (4.75, 3.9), (5.5, 4.6), (0, 0.3))
    _forward_and_backward(ax, (7.5, 5.0), (8.1, 5.0), (0, -0.25))
    _arrow(ax, (6.5, 3.3), (6.5, 4.6))
    ax.text(6.65, 3.95, "external input", fontsize=10, ha="left", va="center", color=GREY)
    ax.text(5.1, 6.0, r"$\partial z/\partial\mu = 1$", fontsize=11, color=RED, va="bottom")
    ax.text(5.1, 4.0, r"$\partial z/\partial\sigma = \epsilon$", fontsize=11, color=RED, va="top")
    ax.text(
        7.5,
        2.1,
        "All the randomness is in $\\epsilon$:\n$z$ is a deterministic,\n"
        "differentiable function\nof $\\mu$, $\\sigma$ and $\\epsilon$.",
        fontsize=10.5,
        ha="left",
        va="center",
        linespacing=1.4,
    )

    handles = [
        FancyBboxPatch((0, 0), 1, 1, facecolor=det_color, edgecolor="black"),
        plt.Circle((0, 0), 1, facecolor=rand_color, edgecolor="black"),
        plt.Line2D([], [], color="black", lw=1.6),
        plt.Line2D([], [], color=RED, ls="--", lw=1.6),
    ]
    fig.legend(
        handles,
        [
            "deterministic node",
            "random node",
            "forward pass",
            "gradient of the reconstruction term",
        ],
        loc="lower center",
        ncol=4,
        frameon=False,
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, **{**SAVE_KWARGS, "dpi": 80})  # notebook 02 carries it: a smaller file
    plt.close(fig)


# ------------------------------------------------------------- VAE vs CVAE
def cvae_vs_vae(path):
    det_color, input_color, latent_color, label_color = "#dbe9f6", "#d9f0d3", "#fbd5b5", "#e5d8f0"
    purple = "#6a3d9a"
    fig, axes = plt.subplots(2, 1, figsize=(12, 5.6), gridspec_kw={"height_ratios": [1.0, 1.9]})
    xs = {"x": 0.6, "enc": 2.7, "stats": 5.3, "z": 7.95, "dec": 10.6, "xhat": 12.7}
    widths = {"x": 0.9, "enc": 2.1, "stats": 1.9, "z": 2.4, "dec": 2.1, "xhat": 0.9}
    for ax in axes:
        ax.set_xlim(0, 13.3)
        ax.set_aspect("equal")
        ax.axis("off")
    axes[0].set_ylim(-0.75, 0.9)
    axes[1].set_ylim(-2.5, 0.9)

    def chain(ax, encoder_text, decoder_text):
        _box(ax, (xs["x"], 0), "$x$", input_color, width=widths["x"])
        _box(
            ax,
            (xs["enc"], 0),
            encoder_text,
            det_color,
            width=widths["enc"],
            height=1.0,
            fontsize=11,
        )
        _box(
            ax,
            (xs["stats"], 0),
            r"$\mu,\ \log\sigma^2$",
            det_color,
            width=widths["stats"],
            fontsize=11,
        )
        _box(
            ax,
            (xs["z"], 0),
            "$z = \\mu + \\sigma \\odot \\epsilon$\n$\\epsilon \\sim \\mathcal{N}(0, I)$",
            latent_color,
            width=widths["z"],
            height=1.0,
            fontsize=10.5,
        )
        _box(
            ax,
            (xs["dec"], 0),
            decoder_text,
            det_color,
            width=widths["dec"],
            height=1.0,
            fontsize=11,
        )
        _box(ax, (xs["xhat"], 0), r"$\hat{x}$", input_color, width=widths["xhat"])
        order = ["x", "enc", "stats", "z", "dec", "xhat"]
        for a, b in zip(order[:-1], order[1:], strict=True):
            _arrow(ax, (xs[a] + widths[a] / 2, 0), (xs[b] - widths[b] / 2, 0))

    chain(axes[0], "encoder\n$q_\\phi(z \\mid x)$", "decoder\n$p_\\theta(x \\mid z)$")
    axes[0].set_title("VAE", fontsize=14, loc="left")

    ax = axes[1]
    chain(ax, "encoder\n$q_\\phi(z \\mid x, y)$", "decoder\n$p_\\theta(x \\mid z, y)$")
    ax.set_title("Conditional VAE (CVAE)", fontsize=14, loc="left")
    label_center = (6.65, -1.75)
    _box(ax, label_center, "$y$ (one-hot label)", label_color, width=2.6, height=0.7, fontsize=11)
    _arrow(ax, (label_center[0] - 1.3, label_center[1]), (xs["enc"], -0.5), color=purple, rad=-0.25)
    _arrow(ax, (label_center[0] + 1.3, label_center[1]), (xs["dec"], -0.5), color=purple, rad=0.25)
    ax.text(
        label_center[0],
        -2.35,
        "the same label $y$ is an input of both the encoder and the decoder",
        fontsize=10.5,
        color=purple,
        ha="center",
        va="center",
    )
    fig.tight_layout()
    fig.savefig(path, **SAVE_KWARGS)
    plt.close(fig)


# ---------------------------------------------------------- VAE architecture
def vae_architecture(path):
    det_color, input_color, latent_color, loss_color = "#dbe9f6", "#d9f0d3", "#fbd5b5", "#f6e3e3"
    fig, ax = plt.subplots(figsize=(13, 4.6))
    ax.set_xlim(0, 13.3)
    ax.set_ylim(-1.9, 3.0)
    ax.set_aspect("equal")
    ax.axis("off")
    xs = {"x": 0.6, "enc": 2.7, "stats": 5.3, "z": 7.95, "dec": 10.6, "xhat": 12.6}
    widths = {"x": 0.9, "enc": 2.1, "stats": 1.9, "z": 2.4, "dec": 2.1, "xhat": 1.1}
    _box(ax, (xs["x"], 0), "$x$", input_color, width=widths["x"])
    _box(ax, (xs["enc"], 0), "encoder\n$q_\\phi(z \\mid x)$", det_color, width=2.1, height=1.0)
    _box(ax, (xs["stats"], 0), r"$\mu,\ \log\sigma^2$", det_color, width=1.9, fontsize=11)
    _box(
        ax,
        (xs["z"], 0),
        "$z = \\mu + \\sigma \\odot \\epsilon$\n$\\epsilon \\sim \\mathcal{N}(0, I)$",
        latent_color,
        width=widths["z"],
        height=1.0,
        fontsize=10.5,
    )
    _box(ax, (xs["dec"], 0), "decoder\n$p_\\theta(x \\mid z)$", det_color, width=2.1, height=1.0)
    _box(ax, (xs["xhat"], 0), r"$\hat{x}$", input_color, width=widths["xhat"])
    order = ["x", "enc", "stats", "z", "dec", "xhat"]
    for a, b in zip(order[:-1], order[1:], strict=True):
        _arrow(ax, (xs[a] + widths[a] / 2, 0), (xs[b] - widths[b] / 2, 0))
    ax.text(xs["xhat"], -0.65, "pixel\nprobabilities", ha="center", va="top", fontsize=9.5)
    ax.text(
        xs["stats"], -0.65, "one pair per\nlatent dimension", ha="center", va="top", fontsize=9.5
    )

    # The two loss terms, attached where their inputs come from.
    kl_center, rec_center = (xs["stats"], 1.85), (10.75, 1.85)
    _box(
        ax,
        kl_center,
        "KL term\n$D_{KL}(\\mathcal{N}(\\mu, \\sigma^2)\\,\\|\\,\\mathcal{N}(0, I))$",
        loss_color,
        width=3.3,
        height=1.0,
        fontsize=10.5,
    )
    _box(
        ax,
        rec_center,
        "reconstruction term $-\\log p_\\theta(x \\mid z)$\n"
        "(binary cross-entropy, summed over pixels)",
        loss_color,
        width=4.4,
        height=1.0,
        fontsize=10.5,
    )
    # The loss terms' inputs: solid purple, unlike the red dashed gradients of
    # reparameterization_trick.png (this figure shows no gradients).
    loss_input = {"color": PURPLE, "ls": "-", "lw": 1.6}
    _arrow(ax, (xs["stats"], 0.4), (kl_center[0], kl_center[1] - 0.5), **loss_input)
    _arrow(ax, (xs["xhat"], 0.4), (rec_center[0] + 1.6, rec_center[1] - 0.5), **loss_input)
    ax.plot([xs["x"], xs["x"]], [0.4, 2.75], **loss_input)
    ax.plot([xs["x"], rec_center[0] - 1.0], [2.75, 2.75], **loss_input)
    _arrow(ax, (rec_center[0] - 1.0, 2.75), (rec_center[0] - 1.0, 2.35), **loss_input)
    ax.text(
        7.73,
        1.85,
        "loss $=$\nreconstruction\n$+\\ \\beta\\cdot$KL",
        ha="center",
        va="center",
        fontsize=10.5,
    )
    handles = [
        plt.Line2D([], [], color="black", lw=1.6),
        plt.Line2D([], [], **loss_input),
    ]
    labels = ["forward pass", "input of a loss term"]
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.02),
        ncol=2,
        frameon=False,
        fontsize=10.5,
    )
    ax.text(
        6.65,
        -1.55,
        "training minimises the loss (the negative ELBO when $\\beta = 1$); "
        "generating decodes $z \\sim \\mathcal{N}(0, I)$ and needs only the decoder",
        ha="center",
        va="center",
        fontsize=10.5,
        color=GREY,
    )
    fig.tight_layout()
    fig.savefig(path, **SAVE_KWARGS)
    plt.close(fig)


# ------------------------------------------------------- N(0, I) onto a ring
def ring_map(z):
    """Doersch (2016, figure 2): g(z) = z / 10 + z / |z| maps N(0, I) onto a ring."""
    return z / 10.0 + z / np.linalg.norm(z, axis=1, keepdims=True)


def normal_to_ring(path):
    z = np.random.default_rng(0).standard_normal((3000, 2))
    x = ring_map(z)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6))
    angle = np.arctan2(z[:, 1], z[:, 0])  # the colour follows each point through g
    for ax, points, title in (
        (left, z, r"$z \sim \mathcal{N}(0, I)$"),
        (right, x, r"$g(z) = z/10 + z/\|z\|$"),
    ):
        ax.scatter(points[:, 0], points[:, 1], c=angle, cmap="hsv", s=4, alpha=0.7)
        ax.set_xlim(-3.2, 3.2)
        ax.set_ylim(-3.2, 3.2)
        ax.set_aspect("equal")
        ax.set_title(title)
    left.set_xlabel("$z_1$")
    left.set_ylabel("$z_2$")
    right.set_xlabel("$x_1$")
    right.set_ylabel("$x_2$")
    fig.text(
        0.5,
        0.01,
        "The same 3,000 points before and after one fixed function: "
        "a round Gaussian blob becomes a ring.",
        ha="center",
        fontsize=10.5,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, **SAVE_KWARGS)
    plt.close(fig)


DRAWERS = {
    "kl_bars.png": kl_bars,
    "forward_vs_reverse_kl.png": forward_vs_reverse_kl,
    "reparameterization_trick.png": reparameterization_trick,
    "cvae_vs_vae.png": cvae_vs_vae,
    "vae_architecture.png": vae_architecture,
    "normal_to_ring.png": normal_to_ring,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=HERE, help="output folder (default: images/)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    plt.rcParams.update({"svg.hashsalt": "vae-keras", "font.size": 11})
    for name in FIGURES:
        path = os.path.join(args.out, name)
        DRAWERS[name](path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

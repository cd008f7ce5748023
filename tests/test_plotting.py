import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vae_keras as vk  # noqa: E402
from vae_keras import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class CountingDecoder:
    """Wraps a decoder and records its calls, to prove grids decode in one batch."""

    def __init__(self, decoder):
        self.decoder, self.calls, self.batch_sizes, self.inputs = decoder, 0, [], []

    def __call__(self, inputs, training=False):
        self.calls += 1
        self.inputs.append(inputs)
        first = inputs[0] if isinstance(inputs, list) else inputs
        self.batch_sizes.append(len(first))
        return self.decoder(inputs, training=training)


def test_latent_grid_covers_normal_quantiles():
    z, values = plotting.latent_grid(5, (0.05, 0.95))  # probabilities 0.05, 0.275, ..., 0.95
    assert z.shape == (25, 2)
    np.testing.assert_allclose(values, [-1.644854, -0.597760, 0.0, 0.597760, 1.644854], atol=1e-5)
    # first row: z_2 at its largest, z_1 increasing along the row
    np.testing.assert_allclose(z[:5, 1], values[-1])
    np.testing.assert_allclose(z[:5, 0], values)
    with pytest.raises(ValueError, match="quantile_range"):
        plotting.latent_grid(5, (0.0, 1.0))


def test_manifold_is_decoded_in_one_batched_call():
    decoder = CountingDecoder(vk.build_mlp_decoder(2, (8,)))
    fig = plotting.plot_latent_manifold(decoder, n=20)
    assert decoder.calls == 1 and decoder.batch_sizes == [400]
    assert fig.axes[0].get_images()[0].get_array().shape == (560, 560)


def test_conditional_manifold_one_call_with_the_label():
    decoder = CountingDecoder(vk.build_mlp_decoder(2, (8,), num_classes=10))
    plotting.plot_latent_manifold(decoder, n=4, label=3, num_classes=10)
    assert decoder.calls == 1 and decoder.batch_sizes == [16]
    with pytest.raises(ValueError, match="num_classes"):
        plotting.decode(decoder, np.zeros((2, 2)), labels=[1, 2])


def test_image_grid_layout():
    fig = plotting.image_grid(np.random.default_rng(0).random((12, 28, 28, 1)), n_cols=5)
    assert len(fig.axes) == 15  # 3 rows of 5, the last three empty
    assert sum(1 for ax in fig.axes if ax.get_images()) == 12
    with pytest.raises(ValueError, match="expected images"):
        plotting.image_grid(np.zeros((3, 4)))


def test_latent_scatter_colours_each_label():
    rng = np.random.default_rng(1)
    fig = plotting.plot_latent_scatter(rng.normal(size=(90, 2)), np.arange(90) % 3, title="z")
    assert len(fig.axes[0].collections) == 3
    with pytest.raises(ValueError, match="expected z"):
        plotting.plot_latent_scatter(rng.normal(size=(5, 1)), np.zeros(5))


def test_history_plot_has_train_and_validation_curves():
    logs = {
        "loss": [3.0, 2.0],
        "reconstruction_loss": [2.5, 1.5],
        "kl_loss": [0.5, 0.5],
        "val_loss": [3.1, 2.2],
    }
    fig = plotting.plot_history(logs)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].get_lines()) == 2 and len(fig.axes[1].get_lines()) == 1
    assert [ax.get_title() for ax in fig.axes] == [
        "loss (reconstruction + KL)",  # no beta logged: beta was 1, so no beta in the title
        "reconstruction term",
        "KL term",
    ]
    fig = plotting.plot_history({**logs, "beta": [0.5, 1.0]})
    assert fig.axes[0].get_title() == "loss (reconstruction + β·KL)"
    with pytest.raises(ValueError, match="none of the requested metrics"):
        plotting.plot_history({"accuracy": [1.0]})


def test_history_plot_leaves_out_the_first_epoch_so_it_does_not_set_the_scale():
    logs = {"loss": [500.0, 3.0, 2.0, 1.5, 1.2], "val_loss": [400.0, 3.2, 2.3, 1.9, 1.6]}
    fig = plotting.plot_history(logs)
    train, validation = fig.axes[0].get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [2, 3, 4, 5])
    np.testing.assert_array_equal(validation.get_ydata(), [3.2, 2.3, 1.9, 1.6])
    assert fig.axes[0].get_ylim()[1] < 10, "epoch 1 must not set the y-range"
    everything = plotting.plot_history(logs, skip_epochs=0)
    assert len(everything.axes[0].get_lines()[0].get_xdata()) == 5
    short = plotting.plot_history({"loss": [5.0, 4.0, 3.0]})  # 3 epochs: nothing left out
    assert len(short.axes[0].get_lines()[0].get_xdata()) == 3
    with pytest.raises(ValueError, match="skip_epochs"):
        plotting.plot_history(logs, skip_epochs=5)


def test_manifold_ticks_label_both_ends_and_evenly_spaced_values():
    fig = plotting.plot_latent_manifold(vk.build_mlp_decoder(2, (8,)), n=20)
    ax = fig.axes[0]
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels[0] == "-1.64" and labels[-1] == "1.64", labels
    inner = [float(label.replace("\u2212", "-")) for label in labels[1:-1]]
    assert inner == [-1.0, -0.5, 0.0, 0.5, 1.0]
    positions = ax.get_xticks()
    # ends sit on the centres of the first and last images; 0 sits in the middle
    np.testing.assert_allclose(positions[[0, -1]], [14, 20 * 28 - 14], atol=1e-3)
    np.testing.assert_allclose(positions[3], 10 * 28, atol=1e-3)
    np.testing.assert_allclose(ax.get_yticks(), positions)


def test_save_figure_writes_png(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    path = plotting.save_figure(fig, "line", tmp_path)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------- the helpers of notebook 05


def test_new_helpers_are_exported():
    for name in (
        "plot_log_likelihood_vs_k",
        "plot_kl_per_dimension",
        "plot_rate_distortion",
        "plot_latent_traversal",
    ):
        assert name in plotting.__all__ and callable(getattr(plotting, name))


def test_log_likelihood_vs_k_draws_points_error_bars_and_elbo_line():
    fig = plotting.plot_log_likelihood_vs_k(
        [1, 10, 100], [-100.0, -98.0, -97.5], stderrs=[0.5, 0.4, 0.4], elbo=-100.2, label="m"
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [1, 10, 100])
    np.testing.assert_allclose(line.get_ydata(), [-100.0, -98.0, -97.5])
    assert any(np.allclose(h.get_ydata(), -100.2) for h in ax.lines[1:])
    # a second model overlays on the same axes
    fig2 = plotting.plot_log_likelihood_vs_k([1, 10], [-90.0, -89.0], ax=ax, label="n")
    assert fig2 is fig
    with pytest.raises(ValueError, match="equal length"):
        plotting.plot_log_likelihood_vs_k([1, 10], [-1.0])
    with pytest.raises(ValueError, match="one standard error per K"):
        plotting.plot_log_likelihood_vs_k([1, 10], [-1.0, -0.5], stderrs=[0.1])


def test_kl_per_dimension_bars_single_and_grouped():
    fig = plotting.plot_kl_per_dimension(np.array([3.0, 0.01, 1.5]))
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [3.0, 0.01, 1.5])
    fig = plotting.plot_kl_per_dimension({"a": [1.0, 2.0], "b": [0.5, 0.0]}, sort=True)
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [2.0, 1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_kl_per_dimension(np.array([]))


def test_rate_distortion_points_and_iso_elbo_lines():
    fig = plotting.plot_rate_distortion([1.0, 5.0, 20.0], [150.0, 120.0, 95.0], labels="abc")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1.0, 5.0, 20.0])
    # the dashed line rate + distortion = best ELBO, through the third point
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_xdata() + ax.lines[1].get_ydata(), 115.0)
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="equal length"):
        plotting.plot_rate_distortion([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 labels for 3 points"):
        plotting.plot_rate_distortion([1, 2, 3], [3, 2, 1], labels=["x", "y"])


def test_latent_traversal_decodes_one_batch_with_one_dimension_changed_per_row():
    keras.utils.set_random_seed(0)
    decoder = CountingDecoder(vk.build_mlp_decoder(latent_dim=4, hidden_units=(8,)))
    z = np.array([0.1, -0.2, 0.3, 0.4], dtype="float32")
    fig = plotting.plot_latent_traversal(decoder, z, dims=[2, 0], values=[-1.0, 0.0, 1.0])
    assert len(decoder.inputs) == 1
    codes = np.asarray(decoder.inputs[0])
    assert codes.shape == (6, 4)
    np.testing.assert_allclose(codes[:3, 2], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(codes[3:, 0], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(codes[:3][:, [0, 1, 3]], np.tile(z[[0, 1, 3]], (3, 1)))
    assert len(fig.axes) == 6
    # Columns are the values the coordinate is set to; rows say which one, and its value in z.
    assert [ax.get_title() for ax in fig.axes[:3]] == ["-1", "0", "1"]
    assert fig.axes[0].get_ylabel() == "$z_{3}$ set to\n(in z: 0.30)"
    cond = CountingDecoder(vk.build_mlp_decoder(latent_dim=4, hidden_units=(8,), num_classes=3))
    plotting.plot_latent_traversal(cond, z, dims=[1], values=[0.0, 1.0], label=2, num_classes=3)
    np.testing.assert_array_equal(np.asarray(cond.inputs[0][1]), np.eye(3)[[2, 2]])
    with pytest.raises(ValueError, match=r"dims must lie in \[0, 3\]"):
        plotting.plot_latent_traversal(decoder, z, dims=[4])


def test_scatter_legend_sits_outside_the_points():
    rng = np.random.default_rng(0)
    fig = plotting.plot_latent_scatter(rng.normal(size=(200, 2)), np.arange(200) % 10)
    ax = fig.axes[0]
    legend = ax.get_legend()
    fig.canvas.draw()
    legend_box = legend.get_window_extent()
    axes_box = ax.get_window_extent()
    assert legend_box.x0 >= axes_box.x1  # right of the axes, so it hides no point

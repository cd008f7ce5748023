"""The plotting helpers of notebook 05: L_K against K, KL per dimension, rate-distortion, traversals."""

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
    """Wraps a decoder and records each batch it decodes."""

    def __init__(self, decoder):
        self.decoder, self.inputs = decoder, []

    def __call__(self, inputs, training=False):
        self.inputs.append(inputs)
        return self.decoder(inputs, training=training)


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
    cond = CountingDecoder(vk.build_mlp_decoder(latent_dim=4, hidden_units=(8,), num_classes=3))
    plotting.plot_latent_traversal(cond, z, dims=[1], values=[0.0, 1.0], label=2, num_classes=3)
    np.testing.assert_array_equal(np.asarray(cond.inputs[0][1]), np.eye(3)[[2, 2]])
    with pytest.raises(ValueError, match=r"dims must lie in \[0, 3\]"):
        plotting.plot_latent_traversal(decoder, z, dims=[4])

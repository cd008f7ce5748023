import doctest
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vae_keras as vk  # noqa: E402
from vae_keras import plotting, widgets  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def decode_calls(monkeypatch):
    """Counts the calls to widgets.decode (the explorer's one way to run the decoder)."""
    calls = []
    original = widgets.decode

    def counting(decoder, z, labels=None, num_classes=None):
        calls.append((np.asarray(z).shape[0], labels))
        return original(decoder, z, labels=labels, num_classes=num_classes)

    monkeypatch.setattr(widgets, "decode", counting)
    return calls


def small_vae():
    return vk.VAE(vk.build_mlp_encoder(2, (16,)), vk.build_mlp_decoder(2, (16,)))


def small_cvae():
    return vk.CVAE(
        vk.build_mlp_encoder(2, (16,), num_classes=10),
        vk.build_mlp_decoder(2, (16,), num_classes=10),
        num_classes=10,
    )


def data(n=50):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n) % 10


def test_docstring_example():
    result = doctest.testmod(widgets, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_plotting_exposes_the_explorer():
    assert plotting.latent_explorer is widgets.latent_explorer


def test_static_vae_figure_decodes_the_marked_codes_in_one_call(decode_calls):
    vae = small_vae()
    images, labels = data()
    codes = np.array([[0.0, 0.0], [1.5, -0.5], [-2.0, 1.0]], dtype="float32")
    fig = vk.plotting.latent_explorer(vae, images, labels, codes=codes)
    assert decode_calls == [(3, None)]
    plane, *cells = fig.axes
    assert len(cells) == 3
    # the scatter: one collection per label, plus one marker per code
    assert len(plane.collections) == 10 + 3
    assert plane.get_xlim() == (-4.0, 4.0) and plane.get_ylim() == (-4.0, 4.0)
    expected = vae.generate(z=codes)[..., 0]
    for cell, image in zip(cells, expected):
        np.testing.assert_allclose(cell.get_images()[0].get_array(), image, atol=1e-6)
    assert cells[1].get_title() == "B: (1.5, -0.5)"


def test_static_vae_figure_without_images_shows_the_plane():
    fig = vk.plotting.latent_explorer(small_vae())
    plane, *cells = fig.axes
    assert len(cells) == len(widgets.DEFAULT_CODES) == 5
    assert len(plane.collections) == 5  # only the markers


def test_static_cvae_figure_decodes_every_code_under_every_label(decode_calls):
    cvae = small_cvae()
    images, labels = data()
    codes = np.array([[0.5, 0.5], [-1.0, 2.0]], dtype="float32")
    fig = vk.plotting.latent_explorer(cvae, images, labels, codes=codes, class_names="abcdefghij")
    assert len(decode_calls) == 1 and decode_calls[0][0] == 20
    cells = fig.axes[1:]
    assert len(cells) == 20
    assert [cell.get_title() for cell in cells[:10]] == list("abcdefghij")
    # row 1, column 7: the second code decoded as label 7
    expected = cvae.generate([7], z=codes[1:2])[0, ..., 0]
    np.testing.assert_allclose(cells[17].get_images()[0].get_array(), expected, atol=1e-6)


def test_errors_name_the_problem():
    wide = vk.VAE(vk.build_mlp_encoder(3, (8,)), vk.build_mlp_decoder(3, (8,)))
    with pytest.raises(ValueError, match="2-D latent space.*latent_dim=3"):
        vk.plotting.latent_explorer(wide)
    images, labels = data()
    with pytest.raises(ValueError, match="needs the labels"):
        vk.plotting.latent_explorer(small_cvae(), images)
    with pytest.raises(ValueError, match="3 labels for 50 images"):
        vk.plotting.latent_explorer(small_vae(), images, labels[:3])
    with pytest.raises(ValueError, match="codes must have shape"):
        vk.plotting.latent_explorer(small_vae(), codes=[1.0, 2.0])


def test_interactive_without_ipywidgets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` fail
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        vk.plotting.latent_explorer(small_vae(), interactive=True)


def test_interactive_vae_slider_changes_the_image(decode_calls):
    pytest.importorskip("ipywidgets")
    vae = small_vae()
    images, labels = data()
    box = vk.plotting.latent_explorer(vae, images, labels, interactive=True, codes=[[0.0, 0.0]])
    assert box.label is None
    assert (box.z1.value, box.z2.value) == (0.0, 0.0)
    assert decode_calls == [(1, None)]
    image, plane = bytes(box.image.value), bytes(box.plane.value)
    assert image.startswith(b"\x89PNG") and plane.startswith(b"\x89PNG")
    box.z1.value = 2.0
    assert decode_calls[-1] == (1, None) and len(decode_calls) == 2
    assert bytes(box.image.value) != image and bytes(box.plane.value) != plane


def test_interactive_cvae_label_changes_the_image():
    pytest.importorskip("ipywidgets")
    images, labels = data()
    box = vk.plotting.latent_explorer(small_cvae(), images, labels, interactive=True)
    assert [option[1] for option in box.label.options] == list(range(10))
    image = bytes(box.image.value)
    box.label.value = 7
    assert bytes(box.image.value) != image
    image = bytes(box.image.value)
    box.z2.value = -1.0
    assert bytes(box.image.value) != image

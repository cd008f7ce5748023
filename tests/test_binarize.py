"""vae_keras.datasets.binarize and DynamicBinarization: binary images drawn from grey levels."""

import keras
import numpy as np
import pytest

import vae_keras as vk
from vae_keras.datasets import DynamicBinarization, binarize


def _grey(n=40, seed=0):
    return np.random.default_rng(seed).random((n, 6, 5, 1)).astype("float32")


def test_binarize_draws_zeros_and_ones_with_the_intensity_as_probability():
    grey = _grey(8)
    binary = binarize(grey, seed=0)
    assert binary.dtype == np.float32 and binary.shape == grey.shape
    assert set(np.unique(binary).tolist()) == {0.0, 1.0}
    # pixels at 0 and 1 stay where they are
    edges = binarize(np.array([[0.0, 1.0] * 50]), seed=1)
    assert edges.tolist() == [[0.0, 1.0] * 50]
    # the mean over many draws is the grey-level image: 4,000 draws, within 5 standard errors
    draws = 4000
    mean = np.mean([binarize(grey, seed=s) for s in range(draws)], axis=0)
    standard_error = np.sqrt(grey * (1 - grey) / draws)
    assert np.all(np.abs(mean - grey) <= 5 * standard_error + 1e-6)


def test_binarize_seeds_reproduce_and_keras_seed_fixes_the_default():
    grey = _grey(4)
    np.testing.assert_array_equal(binarize(grey, seed=3), binarize(grey, seed=3))
    assert not np.array_equal(binarize(grey, seed=3), binarize(grey, seed=4))
    keras.utils.set_random_seed(5)
    first = binarize(grey)
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(binarize(grey), first)


def test_binarize_refuses_values_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"in \[0, 1\].*received values in \[0.0, 255.0\]"):
        binarize(np.array([[0, 255]], dtype="uint8"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        binarize(np.array([[0.5, np.nan]]))
    with pytest.raises(ValueError, match="seed"):
        binarize(np.zeros((1, 2)), seed=-1)


def test_dynamic_binarization_draws_anew_each_epoch_and_repeats_within_one():
    grey = _grey(50)
    data = DynamicBinarization(grey, batch_size=16, seed=0)
    assert len(data) == 4 and data[3][0].shape == (2, 6, 5, 1)
    first = [data[i][0] for i in range(len(data))]
    np.testing.assert_array_equal(data[1][0], first[1])  # the same batch, the same draw
    data.on_epoch_end()
    second = [data[i][0] for i in range(len(data))]
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    # every image once per epoch: unshuffled, batch by batch, the draws average to the images
    fixed = DynamicBinarization(grey, batch_size=16, shuffle=False, seed=1)
    total = np.zeros_like(grey)
    epochs = 3000
    for _ in range(epochs):
        total += np.concatenate([fixed[i][0] for i in range(len(fixed))])
        fixed.on_epoch_end()
    standard_error = np.sqrt(grey * (1 - grey) / epochs)
    assert np.all(np.abs(total / epochs - grey) <= 5 * standard_error + 1e-6)
    # seeded: a second dataset with the same seed serves the same batches
    again = DynamicBinarization(grey, batch_size=16, seed=0)
    np.testing.assert_array_equal(again[2][0], first[2])
    with pytest.raises(IndexError):
        data[4]


def test_dynamic_binarization_batches_conditions_with_their_images():
    grey = _grey(10)
    labels = np.arange(10)
    data = DynamicBinarization(grey, conditions=labels, batch_size=4, seed=2)
    ((images, batch_labels),) = data[0]
    # the images of a batch are binarizations of the grey images of its labels
    assert np.all(images <= np.ceil(grey[batch_labels]))
    assert np.all(images >= np.floor(grey[batch_labels]))
    with pytest.raises(ValueError, match="one condition per image"):
        DynamicBinarization(grey, conditions=labels[:3])
    with pytest.raises(ValueError, match="batch_size"):
        DynamicBinarization(grey, batch_size=0)


class _Recording(DynamicBinarization):
    """Remembers the first batch it served in each epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = {}

    def __getitem__(self, index):
        batch = super().__getitem__(index)
        if index == 0:
            self.served.setdefault(self.epoch, batch[0].copy())
        return batch


def test_fit_sees_a_different_binarization_in_each_epoch():
    keras.utils.set_random_seed(0)
    grey = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    data = _Recording(grey, batch_size=32, shuffle=False, seed=0)
    vae = vk.VAE(vk.build_mlp_encoder(2, (16,)), vk.build_mlp_decoder(2, (16,)), seed=0)
    vae.compile(optimizer="adam")
    history = vae.fit(data, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # fit calls on_epoch_end after each epoch (TensorFlow also once before the first)
    assert data.epoch in (2, 3), data.epoch
    trained = sorted(data.served)[-2:]  # the counters of the two training epochs
    assert trained == [data.epoch - 2, data.epoch - 1], sorted(data.served)
    assert not np.array_equal(data.served[trained[0]], data.served[trained[1]])
    # each epoch's first batch is the draw its (seed, epoch, batch) gives
    replay = DynamicBinarization(grey, batch_size=32, shuffle=False, seed=0)
    for epoch in range(data.epoch):
        if epoch in data.served:
            np.testing.assert_array_equal(data.served[epoch], replay[0][0])
        replay.on_epoch_end()


@pytest.mark.slow
def test_a_cvae_fits_on_dynamically_binarized_images():
    keras.utils.set_random_seed(0)
    grey = np.random.default_rng(1).random((48, 28, 28, 1)).astype("float32")
    labels = np.arange(48) % 3
    data = DynamicBinarization(grey, conditions=labels, batch_size=16, seed=0)
    cvae = vk.CVAE(
        vk.build_mlp_encoder(2, (16,), num_classes=3),
        vk.build_mlp_decoder(2, (16,), num_classes=3),
        num_classes=3,
        seed=0,
    )
    cvae.compile(optimizer="adam")
    history = cvae.fit(data, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and data.epoch >= 2

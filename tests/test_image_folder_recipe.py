"""The guide's image-folder recipe, run as written on a folder of generated PNG images."""

import glob
import os
import re
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks():
    """The recipe (docs/guide/own-images.md) and the export block (docs/guide/serving.md)."""
    guide = ROOT / "docs" / "guide"
    recipe = re.findall(r"```python\n(.*?)```", (guide / "own-images.md").read_text(), re.S)
    serving = re.findall(r"```python\n(.*?)```", (guide / "serving.md").read_text(), re.S)
    assert len(recipe) == 1, "expected the recipe alone on its page"
    return recipe[0], serving[-1]


def _write_pngs(folder, n=40, size=32):
    """Grey discs of random position and radius on black, some in a subfolder."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:size, :size]
    for i in range(n):
        centre = rng.uniform(8, size - 8, 2)
        radius = rng.uniform(3, 8)
        disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2
        pixels = (disc * rng.uniform(120, 255)).astype("uint8")
        target = folder / ("more" if i % 4 == 0 else "") / f"disc_{i:03d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Runs the recipe once, in a fresh folder; yields its namespace and the serving block."""
    pytest.importorskip("tensorflow", reason="image_dataset_from_directory returns tf.data")
    folder = tmp_path_factory.mktemp("recipe")
    _write_pngs(folder / "my_images")
    recipe_block, serving_block = _blocks()
    namespace = {}
    previous = os.getcwd()
    os.chdir(folder)
    try:
        keras.utils.set_random_seed(0)
        exec(compile(recipe_block, "docs/guide/own-images.md", "exec"), namespace)
        yield namespace, serving_block
    finally:
        os.chdir(previous)


def test_recipe_runs_on_a_folder_of_pngs(recipe):
    namespace, _ = recipe

    vae, history, held_out = namespace["vae"], namespace["history"], namespace["held_out"]
    assert held_out.shape == (8, 32, 32, 1) and 0 <= held_out.min() and held_out.max() <= 1
    assert held_out.max() > 0.4  # the discs, scaled from [0, 255]
    assert namespace["samples"].shape == (16, 32, 32, 1)
    assert namespace["callbacks"][0].stopped_step is None
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert {"kl_dim_0", "kl_dim_3", "active_units"} <= set(history.history)
    assert sorted(os.listdir("snapshots")) == [
        "reconstructions_epoch_0001.png",
        "reconstructions_epoch_0002.png",
        "samples_epoch_0001.png",
        "samples_epoch_0002.png",
    ]
    assert glob.glob("logs/train/events.out.tfevents.*")
    # 40 images in batches of 16: 3 steps per epoch, 6 in all.
    assert int(keras.ops.convert_to_numpy(vae.optimizer.iterations)) == 6

    # Resuming: the checkpoint brings back the optimizer and the step counter.
    restored = keras.models.load_model("vae.keras")
    assert int(keras.ops.convert_to_numpy(restored.optimizer.iterations)) == 6
    assert int(keras.ops.convert_to_numpy(restored.training_steps)) == 6
    for a, b in zip(restored.get_weights(), vae.get_weights()):
        np.testing.assert_array_equal(a, b)
    restored.fit(namespace["dataset"], epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(restored.training_steps)) == 9


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the serving block runs on the TensorFlow backend (tests/test_export.py)",
)
def test_serving_block_runs_after_the_recipe(recipe):
    namespace, serving = recipe
    vae, held_out = namespace["vae"], namespace["held_out"]
    exec(compile(serving, "docs/guide/serving.md", "exec"), namespace)
    np.testing.assert_allclose(
        np.asarray(namespace["images"]), vae.predict(held_out, verbose=0), atol=1e-6
    )
    assert tuple(namespace["new_images"].shape) == (4, 32, 32, 1)

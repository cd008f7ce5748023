"""vae_keras.tutorial: the notebooks' setup helpers."""

import linecache
import os
import warnings

import keras
import numpy as np
import pytest

import vae_keras as vk
from vae_keras import tutorial


def test_quiet_stderr_hides_file_descriptor_2_and_restores_it(capfd):
    with tutorial.quiet_stderr():
        os.write(2, b"C++ start-up line\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_quiet_logs_formats_warnings_without_their_file():
    saved = warnings.formatwarning
    try:
        tutorial.quiet_logs()
        text = warnings.formatwarning("offline split", UserWarning, "/data/loader.py", 12)
        assert text == "UserWarning: offline split\n"
    finally:
        warnings.formatwarning = saved


def test_print_every_prints_every_n_epochs_and_the_last(capsys):
    callback = tutorial.PrintEvery(3)
    callback.set_params({"epochs": 7})
    for epoch in range(7):
        logs = {"loss": 100.0 - epoch, "reconstruction_loss": 90.0, "kl_loss": 10.0 - epoch}
        callback.on_epoch_end(epoch, {**logs, "val_loss": 101.0})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch   3/7", "epoch   6/7", "epoch   7/7"]
    assert lines[0] == "epoch   3/7: loss 98.00 (val 101.00), reconstruction 90.00, KL 8.00"
    with pytest.raises(ValueError, match="n=0"):
        tutorial.PrintEvery(0)


def test_markdown_table_formats_floats_and_checks_row_lengths():
    text = tutorial.markdown_table(["a", "b", "c"], [("x", 1.23456, 7), ("y", 1e4, "-")], digits=1)
    assert text.splitlines() == [
        "| a | b | c |",
        "| --- | --- | --- |",
        "| x | 1.2 | 7 |",
        "| y | 10,000.0 | - |",
    ]
    with pytest.raises(ValueError, match="3 cells"):
        tutorial.markdown_table(["a", "b", "c"], [("x", 1.0)])


def test_held_out_is_reconstruction_plus_kl_whatever_beta():
    keras.utils.set_random_seed(0)
    vae = vk.VAE(
        vk.build_mlp_encoder(latent_dim=2, hidden_units=(16,)),
        vk.build_mlp_decoder(latent_dim=2, hidden_units=(16,)),
        beta=4.0,
        seed=0,
    )
    vae.compile(optimizer="adam")
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    numbers = tutorial.held_out(vae, x, batch_size=32)
    assert set(numbers) == {"negative ELBO", "reconstruction", "KL"}
    np.testing.assert_allclose(
        numbers["negative ELBO"], numbers["reconstruction"] + numbers["KL"], rtol=1e-6
    )
    # A second pass draws other z, so the two estimates agree only up to sampling noise.
    logs = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(numbers["reconstruction"], logs["reconstruction_loss"], rtol=1e-3)


@pytest.mark.parametrize(
    "assets, quick, expected",
    [(None, None, False), ("1", None, True), ("1", "1", False), ("0", None, False)],
)
def test_write_assets_only_when_asked_and_not_in_quick_mode(monkeypatch, assets, quick, expected):
    for name, value in (("VAE_KERAS_WRITE_ASSETS", assets), ("VAE_KERAS_QUICK", quick)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert tutorial.write_assets() is expected


def test_cell_source_returns_the_whole_cell_of_a_function_or_class():
    cell = "import math\n\n\nclass Model:\n    def area(self, r):\n        return math.pi * r * r\n"
    filename = "<cell-for-test>"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    namespace = {}
    exec(compile(cell, filename, "exec"), namespace)
    assert tutorial.cell_source(namespace["Model"]) == cell
    assert tutorial.cell_source(namespace["Model"].area) == cell
    with pytest.raises(ValueError, match="expected a function or a class"):
        tutorial.cell_source(3)


def test_run_on_backends_runs_each_in_its_own_process_and_reports_failures():
    outputs = tutorial.run_on_backends(
        "import os, sys; print(os.environ['KERAS_BACKEND']); sys.exit(int(os.environ['KERAS_BACKEND'] == 'x'))",
        backends=["numpy", "not_a_backend_package"],
    )
    assert outputs["numpy"] == "numpy"
    assert outputs["not_a_backend_package"].startswith("not installed here")
    failing = tutorial.run_on_backends("raise SystemExit('no luck')", backends=["numpy"])
    assert failing["numpy"] == "failed (exit code 1): no luck"


def test_notebook_cell_finds_the_one_tagged_code_cell(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("x = 0", metadata={"tags": ["model"]}),
        nbformat.v4.new_code_cell("x = 1\ny = 2", metadata={"tags": ["model"]}),
        nbformat.v4.new_code_cell("x = 3"),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert tutorial.notebook_cell(path, "model") == "x = 1\ny = 2"
    with pytest.raises(ValueError, match="; received 0"):
        tutorial.notebook_cell(path, "missing")


def test_the_model_cell_of_notebook_00_is_tagged_and_trains_here():
    """Notebook 03 runs the plain-Keras model of notebook 00 from its tagged cell."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / "00_a_vae_in_plain_keras.ipynb"
    namespace = {}
    exec(tutorial.notebook_cell(path, "plain-vae"), namespace)
    vae = namespace["VAE"](namespace["build_encoder"](), namespace["build_decoder"](), seed=0)
    vae.compile(optimizer="adam")
    x = np.random.default_rng(0).random((32, 28, 28, 1)).astype("float32")
    logs = vae.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss"}
    np.testing.assert_allclose(
        logs["loss"][0], logs["reconstruction_loss"][0] + logs["kl_loss"][0], rtol=1e-5
    )


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(tutorial, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_setup_seeds_every_generator_and_prints_one_line(capsys):
    tutorial.setup(7)
    # the legacy global generator is what set_random_seed seeds, and what notebooks may use
    first = (np.random.random(), keras.ops.convert_to_numpy(keras.random.normal((2,))))  # noqa: NPY002
    tutorial.setup(7)
    second = (np.random.random(), keras.ops.convert_to_numpy(keras.random.normal((2,))))  # noqa: NPY002
    assert first[0] == second[0] and np.array_equal(first[1], second[1])
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines
        == [
            f"Keras {keras.__version__} on {keras.backend.backend()}, "
            f"vae_keras {vk.__version__}; seed 7"
        ]
        * 2
    )
    with pytest.raises(ValueError, match="seed"):
        tutorial.setup(-1)


def test_load_data_gives_unit_interval_images_and_one_line_with_the_offline_note(
    tmp_path, monkeypatch, capsys
):
    from tests.test_datasets import _make_folder

    _make_folder(tmp_path, "mnist", splits=("test",), n=(0, 10_000))  # the offline case
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning escapes: the note is in the printed line
        (x_train, y_train), (x_test, y_test) = tutorial.load_data("mnist", n_train=10)
    assert x_train.shape == (10, 28, 28, 1) and x_train.dtype == np.float32
    assert 0.0 <= x_train.min() and x_test.max() <= 1.0 and len(y_train) == 10
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("MNIST: 8,000 training and 2,000 test images, of which the first 10")
    assert "only the official test split (10,000 images)" in line
    with pytest.raises(ValueError, match="name must be one of"):
        tutorial.load_data("cifar10")
    with pytest.raises(ValueError, match="n_train"):
        tutorial.load_data("mnist", n_train=0)


def test_import_inside_a_jupyter_kernel_keeps_tensorflows_start_up_lines_out():
    import subprocess
    import sys

    script = (
        "import sys, types; sys.modules['ipykernel'] = types.ModuleType('ipykernel')\n"
        "import vae_keras\n"
        "import keras; keras.ops.convert_to_numpy(keras.ops.ones(2) * 2)\n"
        "import os; os.write(2, b'still open')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "still open", result.stderr  # fd 2 is restored, nothing else came

import gzip
import warnings

import numpy as np
import pytest

from vae_keras import datasets


def _write_idx(path, array, magic=None, truncate=0):
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    if truncate:
        payload = payload[:-truncate]
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def _fake_split(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return images, labels.astype(np.uint8)


def _make_folder(root, name, splits=("train", "test"), gz=True, n=(60, 50)):
    folder = root / name
    folder.mkdir(parents=True)
    data = {}
    for split, count, seed in zip(("train", "test"), n, (0, 1)):
        if split not in splits:
            continue
        images, labels = _fake_split(count, seed)
        prefix = "train" if split == "train" else "t10k"
        suffix = ".gz" if gz else ""
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        data[split] = (images, labels)
    return folder, data


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_reads_idx_files(tmp_path, monkeypatch, gz):
    _, data = _make_folder(tmp_path, "mnist", gz=gz)
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    (
        (x_train, y_train),
        (x_test, y_test),
    ) = datasets.load_mnist()
    np.testing.assert_array_equal(x_train, data["train"][0])
    np.testing.assert_array_equal(y_train, data["train"][1])
    np.testing.assert_array_equal(x_test, data["test"][0])
    np.testing.assert_array_equal(y_test, data["test"][1])
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert x_train.shape == (60, 28, 28)


def test_test_split_only_is_split_8000_2000_stratified_with_a_warning(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images, labels = _fake_split(10_000, 3)
    images[:, 0, 0] = np.arange(10_000) % 256  # make rows distinguishable
    images[:, 0, 1] = np.arange(10_000) // 256
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="8,000 train / 2,000 test") as record:
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    assert record[0].filename == __file__, "the warning points at the caller's line"
    assert x_train.shape == (8000, 28, 28) and x_test.shape == (2000, 28, 28)
    ids = lambda x: x[:, 0, 0].astype(int) + 256 * x[:, 0, 1].astype(int)  # noqa: E731
    train_ids, test_ids = ids(x_train), ids(x_test)
    assert not set(train_ids) & set(test_ids)
    assert sorted(np.concatenate([train_ids, test_ids])) == list(range(10_000))
    np.testing.assert_array_equal(y_train, labels[train_ids])
    for cls in range(10):
        share = np.mean(y_test == cls) / np.mean(labels == cls)
        assert 0.95 < share < 1.05, "every class keeps its share in both splits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (again, _), _ = datasets.load_mnist()
    np.testing.assert_array_equal(again, x_train)  # deterministic


def test_return_info_describes_the_source(tmp_path, monkeypatch):
    _make_folder(tmp_path, "mnist")
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    _, info = datasets.load_mnist(return_info=True)
    assert info["source"] == "idx" and info["n_train"] == 60 and info["n_test"] == 50
    assert str(tmp_path) in info["description"]


def test_missing_files_name_the_folder_and_both_fixes(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist()
    message = str(info.value)
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path / "no-such-folder"))
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        datasets.load_mnist()  # a named folder that does not exist is an error, not a download
    assert str(tmp_path / "mnist") in message
    assert "t10k-images-idx3-ubyte" in message and "unset VAE_KERAS_DATA_DIR" in message


def test_bad_magic_number_is_refused(tmp_path, monkeypatch):
    folder, _ = _make_folder(tmp_path, "mnist", splits=("test",))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(50), magic=1234)
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="bad magic number 1234"):
        datasets.load_mnist()


def test_wrong_size_is_refused(tmp_path, monkeypatch):
    folder, _ = _make_folder(tmp_path, "mnist", splits=("test",))
    images, _ = _fake_split(50, 1)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images, truncate=100)
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="wrong size"):
        datasets.load_mnist()


def test_image_and_label_counts_must_agree(tmp_path, monkeypatch):
    folder, _ = _make_folder(tmp_path, "mnist", splits=("test",))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(49))
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="50 images but 49 labels"):
        datasets.load_mnist()


def test_without_a_folder_keras_is_used_and_its_failure_explains_both_fixes(monkeypatch):
    import keras

    monkeypatch.delenv("VAE_KERAS_DATA_DIR", raising=False)
    images, labels = _fake_split(20, 4)
    monkeypatch.setattr(
        keras.datasets.mnist, "load_data", lambda: ((images, labels), (images[:5], labels[:5]))
    )
    (x_train, _), (x_test, _) = datasets.load_mnist()
    assert x_train.shape == (20, 28, 28) and x_test.shape == (5, 28, 28)

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(RuntimeError) as info:
        datasets.load_mnist()
    assert "VAE_KERAS_DATA_DIR" in str(info.value) and "internet" in str(info.value)


def test_fashion_mnist_source_order(tmp_path, monkeypatch):
    import keras

    debian, debian_data = _make_folder(tmp_path / "debian", "fashion-mnist", n=(30, 20))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", str(debian))
    monkeypatch.delenv("VAE_KERAS_DATA_DIR", raising=False)
    (x_train, _), _ = datasets.load_fashion_mnist()
    np.testing.assert_array_equal(x_train, debian_data["train"][0])

    _, env_data = _make_folder(tmp_path / "env", "fashion-mnist", n=(40, 10))
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path / "env"))
    (x_train, _), _ = datasets.load_fashion_mnist()
    np.testing.assert_array_equal(x_train, env_data["train"][0])

    # A data folder without a fashion-mnist/ subfolder falls through to the Debian copy.
    monkeypatch.setenv("VAE_KERAS_DATA_DIR", str(tmp_path / "only-mnist"))
    (x_train, _), _ = datasets.load_fashion_mnist()
    np.testing.assert_array_equal(x_train, debian_data["train"][0])

    monkeypatch.delenv("VAE_KERAS_DATA_DIR")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", str(tmp_path / "nowhere"))
    images, labels = _fake_split(12, 5)
    monkeypatch.setattr(
        keras.datasets.fashion_mnist, "load_data", lambda: ((images, labels), (images, labels))
    )
    (x_train, _), _ = datasets.load_fashion_mnist()
    assert x_train.shape == (12, 28, 28)

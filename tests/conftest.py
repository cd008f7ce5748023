import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


# ------------------------------------------------------------------- slow tests
# As keras-hub does with its `large` tests: tests marked `@pytest.mark.slow` (several processes
# or devices, long training, building a wheel) are skipped unless `pytest --run-slow`;
# `pytest --run-slow -m slow` runs only them.
def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the tests marked slow (several processes or devices, long training, "
        "building and installing the wheel)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with pytest --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------ the end of the run
# With KERAS_BACKEND=torch, a run that has used tf.data (the stream tests) can hang after its
# summary: the destructor of a tf.data iterator waits, during interpreter shutdown, for a
# thread of TensorFlow's pool that no longer runs (seen with `py-spy dump --native`:
# `UnboundedThreadPool::LogicalThreadWrapper::~LogicalThreadWrapper`). Once pytest has
# reported, the process therefore ends without running those destructors.
_RESULT = {}


def pytest_sessionfinish(session, exitstatus):
    _RESULT["exitstatus"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "exitstatus" in _RESULT and "tensorflow" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_RESULT["exitstatus"])


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture
def backend():
    return keras.backend.backend()


# ------------------------------------------------- data and models for the tests
# Shared by the test modules (`from conftest import ...`), so each states once what
# it trains on.
import numpy as np  # noqa: E402

import vae_keras as vk  # noqa: E402

LATENT = 2
CLASSES = 3


def bars(n=240, seed=0, jitter=True):
    """Synthetic 28x28 binary images of one of three vertical bars, with their labels.

    With `jitter`, each bar moves by up to two pixels and 2% of the pixels flip.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=n)
    images = np.zeros((n, 28, 28, 1), dtype="float32")
    for i, label in enumerate(labels):
        start = 4 + 8 * label + (rng.integers(-2, 3) if jitter else 0)
        images[i, :, start : start + 4] = 1.0
    if jitter:
        flips = rng.random(images.shape) < 0.02
        images = np.where(flips, 1.0 - images, images).astype("float32")
    return images, labels


def small_vae(beta=1.0, seed=0, hidden=(32,), **kwargs):
    return vk.VAE(
        vk.build_mlp_encoder(LATENT, hidden),
        vk.build_mlp_decoder(LATENT, hidden),
        beta=beta,
        seed=seed,
        **kwargs,
    )


def small_cvae(seed=0, hidden=(32,), **kwargs):
    return vk.CVAE(
        vk.build_mlp_encoder(LATENT, hidden, num_classes=CLASSES),
        vk.build_mlp_decoder(LATENT, hidden, num_classes=CLASSES),
        num_classes=CLASSES,
        seed=seed,
        **kwargs,
    )

"""Shared helpers: data, timing callbacks, RSS sampling, machine description."""

import os
import platform
import threading
import time

import numpy as np

BATCH_SIZE = 128


# ------------------------------------------------------------------- data
def _prepare(images):
    return (images.astype("float32") / 255.0)[..., None]


def _fashion(allow_download):
    """Fashion-MNIST through vae_keras; without `allow_download`, only a local copy."""
    import vae_keras as vk
    from vae_keras import datasets

    env = os.environ.get(datasets.DATA_DIR_ENV)
    local = (env and os.path.isdir(os.path.join(env, "fashion-mnist"))) or os.path.isdir(
        datasets.DEBIAN_FASHION_MNIST
    )
    if local or allow_download:
        return vk.datasets.load_fashion_mnist(return_info=True)
    raise FileNotFoundError("no local Fashion-MNIST (Debian package dataset-fashion-mnist)")


def _mnist(allow_download):
    import vae_keras as vk
    from vae_keras import datasets

    env = os.environ.get(datasets.DATA_DIR_ENV)
    if (env and os.path.isdir(os.path.join(env, "mnist"))) or allow_download:
        return vk.datasets.load_mnist(return_info=True)
    raise FileNotFoundError(f"no local MNIST (set {datasets.DATA_DIR_ENV})")


def synthetic(n_train=2048, n_test=512, seed=0):
    """Blurry random strokes in [0, 1], ten classes: only to prove the harness runs."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = rng.integers(0, 10, n).astype("uint8")
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.uniform(8, 20, (n, 2)) + labels[:, None] * 0.3
    width = 2.0 + labels[:, None, None] * 0.4
    images = np.exp(
        -((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2)
        / (2 * width**2)
    )
    images = (255 * images).astype("uint8")
    data = ((images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:]))
    info = {
        "source": "synthetic",
        "description": f"SYNTHETIC blobs ({n_train:,} train / {n_test:,} test): no MNIST or "
        "Fashion-MNIST found locally; numbers only prove that the harness runs",
        "n_train": n_train,
        "n_test": n_test,
    }
    return data, info


def load(name, allow_download=True, n_train=None, n_test=None):
    """Returns a dict with float32 `x_train`, `x_test` (n, 28, 28, 1), labels, a label.

    `name` is `"fashion"` (falls back to MNIST, then synthetic data, with a note)
    or `"mnist"`.
    """
    notes = []
    loaders = (
        [("fashion", _fashion), ("mnist", _mnist)] if name == "fashion" else [("mnist", _mnist)]
    )
    data = info = used = None
    for label, loader in loaders:
        try:
            data, info = loader(allow_download)
            used = label
            break
        except Exception as error:  # missing files, no network, ...
            notes.append(f"{label}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
    if data is None:
        data, info = synthetic()
        used = "synthetic"
    (x_train, y_train), (x_test, y_test) = data
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    if n_test is not None:
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    names = {"fashion": "Fashion-MNIST", "mnist": "MNIST", "synthetic": "synthetic"}
    title = names[used]
    if used == "mnist" and info["n_train"] < 60000:
        title = "MNIST (offline test split)"
    if used != name:
        notes.insert(0, f"asked for {names[name]}, fell back to {names[used]}")
    return {
        "name": used,
        "title": f"{title} {len(x_train):,}/{len(x_test):,}",
        "source": info["description"],
        "notes": notes if used != name else [],
        "x_train": _prepare(x_train),
        "y_train": y_train.astype("int64"),
        "x_test": _prepare(x_test),
        "y_test": y_test.astype("int64"),
    }


# ----------------------------------------------------------------- timing
def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall time of each epoch, from `on_epoch_begin` to `on_epoch_end`."""

        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    return EpochTimer()


# ----------------------------------------------------------------- memory
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes():
    """Current resident set size of this process, from /proc/self/statm (Linux)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        return 0


def max_rss_bytes():
    """Peak RSS of this process image: VmHWM from /proc/self/status.

    Not `resource.getrusage(...).ru_maxrss`: on Linux that value survives
    `fork` and `exec`, so a child started by a large parent reports the
    parent's peak.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RSSSampler:
    """Samples RSS every `interval` seconds in a thread; `peak` is the largest seen."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


# ---------------------------------------------------------------- machine
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _version(module):
    """The installed version of a distribution, without importing it."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average():
    """`uptime`'s three load averages as one string, or "n/a"."""
    try:
        return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def gpu_description():
    """What `nvidia-smi` reports: GPU names and memory, or why there is nothing to report.

    "none (no nvidia-smi)" on a machine without NVIDIA's driver tools; the
    benchmarks never write a GPU line that the machine did not report.
    """
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return "none (no nvidia-smi)"
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nvidia-smi failed ({type(error).__name__})"
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        return f"nvidia-smi failed (exit {done.returncode})"
    return "; ".join(names) if names else "none (nvidia-smi lists no GPU)"


def machine_info():
    """The machine and the installed software; imports no framework."""
    import sys

    keras = sys.modules.get("keras")
    backend = (
        keras.backend.backend()
        if keras is not None
        else os.environ.get("KERAS_BACKEND", "tensorflow")
    )
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "load_average_at_start": load_average(),
        "gpu": gpu_description(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras": _version("keras"),
        "tensorflow": _version("tensorflow"),
        "jax": _version("jax"),
        "torch": _version("torch"),
        "numpy": np.__version__,
        "backend": backend,
        "vae_keras": _version("vae_keras"),
    }

"""The package installs like one: the wheel, and `pip install .`, work outside the checkout.

The sdist and the wheel are built from a copy of the files that go into them (`python -m build
--no-isolation`: with the setuptools already installed, so nothing is downloaded), and each is
installed into a fresh virtual environment whose only view of the machine's packages is a
`.pth` line naming the site-packages that hold Keras and the backends. That line does not run
the `.pth` files there, so the checkout's own editable install (`pip install -e .` from
requirements.txt) is invisible in the new environment, and the check runs from a temporary
folder: `import vae_keras` must find the installed copy or fail.
"""

import os
import pathlib
import re
import shutil
import site
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What the sdist is built from (the rest of the repository is the tutorial, not the package).
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "vae_keras"]

# In the fresh environment, from a folder outside the checkout: a short fit, save, load and
# log_likelihood, and the package's files are the installed ones.
SCRIPT = textwrap.dedent(
    """
    import pathlib, sys

    import keras
    import numpy as np

    import vae_keras as vk
    import vae_keras.tutorial  # the notebooks' helpers ship with the package

    where = pathlib.Path(vk.__file__).resolve()
    assert where.is_relative_to(pathlib.Path(sys.prefix).resolve()), where
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    vae = vk.VAE(vk.build_mlp_encoder(2, (16,)), vk.build_mlp_decoder(2, (16,)), seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    vae.save("vae.keras")
    restored = keras.models.load_model("vae.keras")
    np.testing.assert_allclose(restored.predict(x[:4], verbose=0), vae.predict(x[:4], verbose=0))
    bound = keras.ops.convert_to_numpy(restored.log_likelihood(x[:4], num_samples=8, seed=0))
    assert bound.shape == (4,) and np.isfinite(bound).all(), bound
    print("ok", vk.__version__, where.parent)
    """
)


def _run(args, cwd, env=None):
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


def _version():
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"$', text, re.M).group(1)


def _fresh_env(folder):
    """A virtual environment that sees the machine's installed packages, not the checkout."""
    _run([sys.executable, "-m", "venv", "--without-pip", folder], cwd=folder.parent)
    python = folder / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], folder)
    paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
    (pathlib.Path(purelib.strip()) / "machine_packages.pth").write_text("\n".join(paths) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return python, env


def _pip_install(python, env, target, cwd):
    # pip from the machine's Python, installing into the new environment; no index, no deps
    # to fetch: they must already be there, which `pip check` then confirms.
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-index"]
        + ["--no-build-isolation", "--no-deps", "-q", target],
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build", reason="pip install build (requirements.txt has it)")
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"python -m build failed:\n{done.stdout[-3000:]}{done.stderr}"
    # The configuration is one setuptools reads without a deprecation warning.
    assert "deprecated" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    return source, out


def _modules():
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "vae_keras").rglob("*.py"))


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_the_metadata(dist):
    _, out = dist
    (wheel,) = out.glob("*.whl")
    assert wheel.name == f"vae_keras-{_version()}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.endswith(".py")) == _modules()
    assert f"vae_keras-{_version()}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"vae_keras-{_version()}.dist-info/METADATA").decode()
    for extra in ("tensorflow", "jax", "torch", "onnx", "docs"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "License-Expression: MIT" in metadata
    (sdist,) = out.glob("*.tar.gz")
    assert sdist.name == f"vae_keras-{_version()}.tar.gz"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["wheel", "pip install ."])
def test_installed_package_trains_saves_loads_and_scores(dist, how, tmp_path):
    source, out = dist
    python, env = _fresh_env(tmp_path / "venv")
    target = next(out.glob("*.whl")) if how == "wheel" else source
    _pip_install(python, env, target, cwd=tmp_path)
    _run([sys.executable, "-m", "pip", "--python", python, "check"], cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    printed = _run([python, "-c", SCRIPT], cwd=work, env=env)
    assert printed.startswith(f"ok {_version()} "), printed

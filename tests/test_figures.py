"""images/make_figures.py draws every static figure that the notebooks embed."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = (
    "kl_bars.png",
    "forward_vs_reverse_kl.png",
    "reparameterization_trick.png",
    "cvae_vs_vae.png",
    "vae_architecture.png",
    "normal_to_ring.png",
)


def test_make_figures_writes_every_png(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "images" / "make_figures.py"), "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in EXPECTED:
        path = tmp_path / name
        assert path.is_file(), f"{name} was not written"
        assert path.stat().st_size > 10_000, f"{name} is suspiciously small"
        image = mpimg.imread(path)
        height, width = image.shape[:2]
        assert height >= 200 and width >= 400, f"{name} is only {width}x{height} pixels"
        assert np.ptp(image[..., :3]) > 0.5, f"{name} is (nearly) blank"


def test_ring_map_sends_the_normal_onto_a_ring():
    sys.path.insert(0, str(ROOT / "images"))
    try:
        import make_figures
    finally:
        sys.path.pop(0)
    z = np.random.default_rng(1).standard_normal((20_000, 2))
    radius = np.linalg.norm(make_figures.ring_map(z), axis=1)
    # |g(z)| = 1 + |z| / 10, and |z| follows a Rayleigh(1) law with mean sqrt(pi / 2)
    np.testing.assert_allclose(radius, 1 + np.linalg.norm(z, axis=1) / 10)
    assert abs(radius.mean() - (1 + np.sqrt(np.pi / 2) / 10)) < 0.002
    assert radius.min() > 1.0 and np.quantile(radius, 0.99) < 1.31

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

"""The latent explorer page of the built site, in headless Chromium, against the Keras decoders.

- The page loads with no console error and shows its controls under the ids readers' scripts
  use: `<input type="range">` `z1` and `z2`, `<select id="label">` (with a "vae" choice) and
  `<canvas id="decoded">`.
- At three codes, for the VAE and for the CVAE under two labels, every pixel of the canvas
  equals the Keras decoder's output (from the `.keras` files the export was made from) within
  2/255.
- Moving a slider, pressing an arrow key on a focused slider and dragging on the plane each move
  z and change the image.

Run after `python docs/explorer/export.py` and `mkdocs build --strict`:
python -m pytest tests_browser -k explorer
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE_DIR = Path(os.environ.get("VAE_KERAS_SITE_DIR", ROOT / "site"))  # as conftest.py reads it
MODELS_DIR = Path(
    os.environ.get("VAE_KERAS_EXPLORER_MODELS", ROOT / "docs" / "explorer" / "models")
)
EXPORT = SITE_DIR / "explorer" / "decoders"
CODES = [(0.0, 0.0), (1.25, -0.5), (-2.1, 1.75)]  # on the sliders' 0.05 grid
CVAE_LABELS = [2, 7]
TOLERANCE = 2 / 255
LOAD_TIMEOUT = 60

JS_PIXELS = """
const canvas = document.getElementById('decoded');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
return Array.from(data);
"""
JS_SET = """
const [choice, z1, z2] = arguments;
const select = document.getElementById('label');
select.value = choice;
select.dispatchEvent(new Event('input'));
for (const [id, value] of [['z1', z1], ['z2', z2]]) {
  const slider = document.getElementById(id);
  slider.value = value;
  slider.dispatchEvent(new Event('input'));
}
return [select.value, Number(document.getElementById('z1').value),
        Number(document.getElementById('z2').value)];
"""
JS_VALUES = """
return ['z1', 'z2'].map(id => Number(document.getElementById(id).value));
"""


def console_errors(driver):
    return [
        f"console {entry['level']}: {entry['message'][:300]}"
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
    ]


def canvas_probabilities(driver):
    """The canvas as pixel probabilities: the page draws p as the grey level 255 * (1 - p)."""
    rgba = np.array(driver.execute_script(JS_PIXELS), dtype="float64").reshape(28, 28, 4)
    assert np.all(rgba[..., 0] == rgba[..., 1]) and np.all(rgba[..., 3] == 255)
    return 1.0 - rgba[..., 0] / 255.0


@pytest.fixture(scope="module")
def keras_decoders():
    """The Keras models the site's export was made from: {"vae_2d": model, "cvae_2d": model}."""
    if not (EXPORT / "vae_2d.json").is_file():
        pytest.skip(
            f"no exported decoders in {EXPORT}: run python docs/explorer/export.py, then mkdocs"
        )
    import keras

    import vae_keras  # noqa: F401  (registers VAE and CVAE for loading)

    models = {}
    for name in ("vae_2d", "cvae_2d"):
        path = MODELS_DIR / f"{name}.keras"
        recorded = json.loads((EXPORT / f"{name}.json").read_text())["source"]["sha256"]
        assert path.is_file(), f"the export was made from {path.name}, which is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded, (
            f"the site's export is out of date with {path}: run python docs/explorer/export.py "
            "and mkdocs build --strict"
        )
        models[name] = keras.models.load_model(path)
    return models


@pytest.fixture
def explorer_page(driver, site_server):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(f"{site_server}/explorer/")
    WebDriverWait(driver, LOAD_TIMEOUT).until(
        lambda d: (
            d.execute_script(
                "const r = document.getElementById('explorer'); return r && r.dataset.ready;"
            )
            == "true"
        ),
        message="the explorer did not finish loading its decoders: "
        + " | ".join(console_errors(driver)),
    )
    return driver


def test_controls_have_the_documented_ids(explorer_page):
    driver = explorer_page
    kinds = driver.execute_script(
        """return ['z1', 'z2', 'label', 'decoded'].map(id => {
             const el = document.getElementById(id);
             return el ? [el.tagName, el.type || '', el.disabled || false] : null; });"""
    )
    assert kinds == [
        ["INPUT", "range", False],
        ["INPUT", "range", False],
        ["SELECT", "select-one", False],
        ["CANVAS", "", False],
    ]
    options = driver.execute_script(
        "return Array.from(document.querySelectorAll('#label option')).map(o => o.value);"
    )
    assert options == ["vae", *[str(k) for k in range(10)]]
    size = driver.execute_script(
        "const c = document.getElementById('decoded'); return [c.width, c.height];"
    )
    assert size == [28, 28]
    assert not console_errors(driver)


def test_canvas_equals_the_keras_decoders(explorer_page, keras_decoders, screenshot_dir):
    driver = explorer_page
    z = np.array(CODES, dtype="float32")
    expected = {"vae": keras_decoders["vae_2d"].generate(z=z)[..., 0]}
    for label in CVAE_LABELS:
        expected[str(label)] = keras_decoders["cvae_2d"].generate([label] * len(z), z=z)[..., 0]
    differences = {}
    for choice, images in expected.items():
        for code, image in zip(CODES, images):
            shown = driver.execute_script(JS_SET, choice, *code)
            assert shown == [choice, *code]
            differences[(choice, code)] = float(
                np.max(np.abs(canvas_probabilities(driver) - image))
            )
    worst = max(differences, key=differences.get)
    print(
        f"largest canvas-Keras difference: {differences[worst] * 255:.2f}/255 "
        f"({worst[0]} at z = {worst[1]})"
    )
    driver.save_screenshot(str(screenshot_dir / "site_explorer.png"))
    too_far = {k: round(v * 255, 2) for k, v in differences.items() if v > TOLERANCE}
    assert not too_far, f"canvas and Keras differ by more than 2/255 (in /255): {too_far}"
    assert not console_errors(driver)


def test_sliders_keys_and_dragging_move_the_image(explorer_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = explorer_page
    driver.execute_script(JS_SET, "vae", 0.0, 0.0)
    before = canvas_probabilities(driver)
    driver.execute_script(JS_SET, "vae", 1.5, 0.0)
    moved = canvas_probabilities(driver)
    assert np.max(np.abs(moved - before)) > 0.05, "moving z1 did not change the image"

    z1, z2 = driver.find_element(By.ID, "z1"), driver.find_element(By.ID, "z2")
    z1.send_keys(Keys.ARROW_RIGHT)
    z1.send_keys(Keys.ARROW_RIGHT)
    z2.send_keys(Keys.ARROW_UP)
    assert driver.execute_script(JS_VALUES) == pytest.approx([1.6, 0.05])
    assert np.any(canvas_probabilities(driver) != moved), "the arrow keys did not redraw"
    assert driver.execute_script("return document.getElementById('z1-value').value") == "1.60"

    # Pressing on the plane's upper-left quarter puts z there.
    plane = driver.find_element(By.ID, "plane")
    size = plane.size
    ActionChains(driver).move_to_element_with_offset(
        plane, -size["width"] // 4, -size["height"] // 4
    ).click().perform()
    z = driver.execute_script(JS_VALUES)
    assert z[0] < -0.5 and z[1] > 0.5, f"clicking the plane's upper left gave z = {z}"

    driver.execute_script(JS_SET, "3", *z)
    as_three = canvas_probabilities(driver)
    driver.execute_script(JS_SET, "8", *z)
    assert np.max(np.abs(canvas_probabilities(driver) - as_three)) > 0.05, (
        "the CVAE's label did not change the image"
    )
    assert not console_errors(driver)

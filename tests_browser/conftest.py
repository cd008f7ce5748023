"""Fixtures for the browser test: headless Chromium (Debian's), JupyterLab, the built site.

Nothing here downloads a browser or a driver: Selenium drives /usr/bin/chromium through
/usr/bin/chromedriver (Debian's `chromium` and `chromium-driver` packages; override with
CHROMIUM_BINARY and CHROMEDRIVER). Every server listens on 127.0.0.1 only and is stopped at the
end of the session.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE_DIR = Path(os.environ.get("VAE_KERAS_SITE_DIR", ROOT / "site"))
CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SERVER_START_TIMEOUT = 120  # seconds; JupyterLab on two busy cores can be slow to start

_SCREENSHOT_DIR = None
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, process, timeout, log_path=None):
    """Poll url until it answers 200, failing early if the server process has exited."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = Path(log_path).read_text()[-3000:] if log_path else ""
            raise RuntimeError(
                f"the server exited with code {process.returncode} before {url} answered; "
                f"its log ends with:\n{tail}"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = error
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s; last error: {last_error}")


def stop(process, log):
    """Stop a server started by a fixture: SIGINT-free terminate, then kill after a grace period."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def screenshot_dir():
    global _SCREENSHOT_DIR
    _SCREENSHOT_DIR = Path(tempfile.mkdtemp(prefix="vae-keras-screenshots-"))
    return _SCREENSHOT_DIR


def pytest_terminal_summary(terminalreporter):
    if _SCREENSHOT_DIR is not None:
        shots = sorted(p.name for p in _SCREENSHOT_DIR.glob("*.png"))
        terminalreporter.write_line(f"screenshots ({len(shots)}) in {_SCREENSHOT_DIR}")


@pytest.fixture(scope="session")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"the browser test needs Debian's chromium and chromium-driver "
                f"(apt-get install -y chromium chromium-driver); received no file at {path}"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(argument)
    # The page's console messages, for tests that fail on a console error (driver.get_log).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(120)
    browser.set_script_timeout(60)
    yield browser
    browser.quit()


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory):
    """JupyterLab started the way the README says, plus the flags a headless run needs.

    README: `jupyter lab notebooks/01_kl_divergence.ipynb`, run from the repository root, so the
    server's root folder is notebooks/ and nothing above it can be served. Workspaces and user
    settings go to a temporary folder so that the run neither reads nor changes the user's.
    Yields the base URL and the token.
    """
    port, token = free_port(), secrets.token_hex(16)
    state = tmp_path_factory.mktemp("jupyterlab")
    # Opening a notebook must never write it back: no autosave. No news pop-up either.
    for plugin, settings in LAB_SETTINGS.items():
        path = state / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    before = {p: p.read_bytes() for p in (ROOT / "notebooks").glob("*.ipynb")}
    jupyter = shutil.which("jupyter")
    command = [jupyter] if jupyter else [sys.executable, "-m", "jupyter"]
    command += [
        "lab",
        "notebooks/01_kl_divergence.ipynb",
        "--no-browser",
        "--allow-root",  # CI runs as root; JupyterLab refuses to start as root without it
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        f"--LabApp.user_settings_dir={state / 'settings'}",
    ]
    log = open(state / "jupyterlab.log", "w")  # noqa: SIM115 (closed by stop())
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/api/status?token={token}", process, SERVER_START_TIMEOUT, log.name)
        yield base, token
    finally:
        stop(process, log)
    changed = [p.name for p, data in before.items() if p.read_bytes() != data]
    assert not changed, f"JupyterLab changed notebooks on disk: {changed}"


@pytest.fixture(scope="session")
def site_server(tmp_path_factory):
    """The built site (site/, from `mkdocs build --strict`) served by http.server on loopback."""
    if not (SITE_DIR / "index.html").is_file():
        raise FileNotFoundError(
            f"no built site at {SITE_DIR}: run `mkdocs build --strict` first "
            "(or set VAE_KERAS_SITE_DIR)"
        )
    port = free_port()
    log = open(tmp_path_factory.mktemp("site") / "http.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=SITE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/index.html", process, 30)
        yield base
    finally:
        stop(process, log)

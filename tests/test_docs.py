"""Every docstring example in the package, and the README's code, run as written."""

import doctest
import pathlib
import re

import pytest

from vae_keras import (
    builders,
    datasets,
    evaluation,
    layers,
    losses,
    models,
    plotting,
    schedules,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module",
    [layers, losses, models, builders, datasets, plotting, schedules, evaluation],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def _readme_section(title):
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README has no section '{title}'"
    return match.group(1)


def test_readme_snippet_runs_as_written(tmp_path, monkeypatch):
    blocks = re.findall(
        r"```python\n(.*?)```", _readme_section("Use vae_keras in your own model"), re.S
    )
    assert blocks, "the section has no python code block"
    monkeypatch.chdir(tmp_path)  # the snippet saves a model file
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def test_readme_links_every_notebook():
    text = (ROOT / "README.md").read_text()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.name}" in text, f"README does not link {notebook.name}"

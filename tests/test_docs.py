"""Every docstring example in the package, the README's code and the guide's, run as written.

The guide (docs/guide/*.md): each page's Python blocks run in order in one namespace, in a
fresh folder, here or in the test named in RUN_ELSEWHERE; the shell commands of the README and
the guide name files, modules and options that exist.
"""

import doctest
import pathlib
import re
import shlex
import struct

import keras
import numpy as np
import pytest

from vae_keras import (
    builders,
    datasets,
    distributions,
    evaluation,
    layers,
    losses,
    models,
    objective,
    plotting,
    schedules,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide"
GUIDE_PAGES = sorted(GUIDE.glob("*.md"))
# Pages whose blocks need more than one process or a folder of images: the test file that runs
# them (it must read the page).
RUN_ELSEWHERE = {
    "several-devices.md": "tests/test_distribution.py",
    "own-images.md": "tests/test_image_folder_recipe.py",
}
TENSORFLOW_ONLY = {"serving.md"}  # SavedModel export needs the TensorFlow backend


@pytest.mark.parametrize(
    "module",
    [
        layers,
        losses,
        distributions,
        objective,
        models,
        builders,
        datasets,
        plotting,
        schedules,
        evaluation,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no docstring example"
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


def code_blocks(path, language="python"):
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def _write_idx(path, array, magic):
    with open(path, "wb") as handle:
        handle.write(struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape))
        handle.write(array.astype("uint8").tobytes())


def _mnist_folder(root):
    """A folder as `VAE_KERAS_DATA_DIR` expects: data/mnist/ with the four IDX files, small."""
    folder = root / "data" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("t10k", 20)):
        _write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        _write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, 2049)


def _check_own_model(ns):
    assert tuple(ns["completions"].shape) == (3, 28, 28, 1)
    bound = keras.ops.convert_to_numpy(ns["bound"])
    assert bound.shape == (8,) and np.isfinite(bound).all()
    assert tuple(keras.ops.convert_to_numpy(ns["kl"]).shape) == (4,)


def _check_objectives(ns):
    assert ns["iwae"].importance_samples == 5
    assert float(keras.ops.convert_to_numpy(ns["vae"].beta)) == 4.0


def _check_faster_training(ns):
    assert keras.config.dtype_policy().name == "float32"
    assert ns["fast"].encoder.layers[-1].compute_dtype == "bfloat16"
    assert ns["vae"].encoder.layers[-1].compute_dtype == "float32"


def _check_serving(ns):
    np.testing.assert_allclose(
        np.asarray(ns["images"]), ns["vae"].predict(ns["held_out"], verbose=0), atol=1e-6
    )
    assert tuple(ns["new_images"].shape) == (4, 28, 28, 1)


def _check_offline(ns):
    assert ns["info"]["source"] == "idx"
    assert ns["x_train"].shape == (60, 28, 28) and ns["x_test"].shape == (20, 28, 28)


def _check_training_step(ns):
    assert ns["same_weights"] and ns["refused"]  # safe_mode round trip; a Python lambda refused
    assert ns["restored_sampler"].seed == 0
    assert np.isfinite(ns["history"].history["loss"]).all()


CHECKS = {
    "training-step.md": _check_training_step,
    "own-model.md": _check_own_model,
    "objectives.md": _check_objectives,
    "faster-training.md": _check_faster_training,
    "serving.md": _check_serving,
    "offline.md": _check_offline,
}
SETUP = {"offline.md": _mnist_folder}


def _run_here(path):
    return code_blocks(path) and path.name not in RUN_ELSEWHERE


@pytest.mark.parametrize("page", [p for p in GUIDE_PAGES if _run_here(p)], ids=lambda p: p.stem)
def test_guide_page_runs_as_written(page, tmp_path, monkeypatch):
    if page.name in TENSORFLOW_ONLY and keras.backend.backend() != "tensorflow":
        pytest.skip("the page's code runs on the TensorFlow backend (it says so)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAE_KERAS_DATA_DIR", raising=False)  # put back after the test
    SETUP.get(page.name, lambda root: None)(tmp_path)
    namespace = {}
    try:
        for block in code_blocks(page):
            exec(compile(block, str(page.relative_to(ROOT)), "exec"), namespace)
    finally:
        keras.config.set_dtype_policy("float32")
    CHECKS.get(page.name, lambda ns: None)(namespace)


def test_every_guide_page_with_code_is_run_and_checked():
    with_code = {p.name for p in GUIDE_PAGES if code_blocks(p)}
    assert set(RUN_ELSEWHERE) <= with_code
    for page, test_file in RUN_ELSEWHERE.items():
        assert page in (ROOT / test_file).read_text(), f"{test_file} does not read {page}"
    assert with_code - set(RUN_ELSEWHERE) <= set(CHECKS), "a page's results are not checked"


def test_guide_pages_are_in_the_site_navigation():
    import importlib.util

    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(hooks)
    except ImportError:
        pytest.skip("mkdocs is not installed (pip install -r requirements-docs.txt)")
    nav = hooks.on_config({})["nav"]
    names = [next(iter(entry)) for entry in nav]
    assert names.index("Tutorial") < names.index("Guide") < names.index("API reference")
    guide = nav[names.index("Guide")]["Guide"]
    listed = [next(iter(e.values())) for e in guide if isinstance(next(iter(e.values())), str)]
    assert listed == [f"guide/{p.name}" for p in hooks.guide_pages()]
    assert {p.name for p in GUIDE_PAGES} == {p.name for p in hooks.guide_pages()}


# --------------------------------------------------------------- the README as a front page
def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the rest belongs in docs/guide"
    for page in GUIDE_PAGES:
        assert f"docs/guide/{page.name}" in "\n".join(lines), f"README does not link {page.name}"


def test_ci_runs_the_readme_commands_as_written():
    """`.ci/run` runs the quick start's install line and test command, character for character."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [b.strip() for b in code_blocks(ROOT / "README.md", "bash")]
    test_command = "pip install -r requirements.txt && VAE_KERAS_QUICK=1 pytest"
    assert test_command in commands, "the README's test command changed"
    for part in test_command.split(" && "):
        assert re.search(rf"^{re.escape(part)}$", ci, re.M), f".ci/run does not run `{part}`"
    assert "--run-slow" in readme and "--run-slow" in ci


def test_the_tests_run_on_every_core_with_each_notebook_whole():
    """README: plain `pytest` spreads the tests over the cores (pytest-xdist, from requirements.txt);
    nbval needs each notebook's cells on one worker, in one kernel (`--dist loadscope`)."""
    addopts = re.search(r'^addopts = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    options = addopts.group(1).split()
    assert options[options.index("-n") + 1] == "auto"
    assert options[options.index("--dist") + 1] == "loadscope"
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^pytest-xdist~=", requirements, re.M)
    assert "`pytest -n 0`" in (ROOT / "README.md").read_text()


def _relative_links(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and t.split("#")[0]]


def test_readme_links_point_at_files_that_exist():
    for target in _relative_links(ROOT / "README.md"):
        assert (ROOT / target).exists(), f"README links {target}, which does not exist"


def test_readme_headline_numbers_are_in_the_reports_they_link():
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Headline numbers\n(.*?)(?=^## )", readme, re.S | re.M).group(1)
    rows = [r for r in section.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        report = re.search(r"\]\(([^)]+)\)", cells[-1]).group(1)
        text = (ROOT / report).read_text()
        for number in re.findall(r"\d+\.\d+", cells[1]):
            assert number in text, f"{number} (README) is not in {report}"


# --------------------------------------------------------- shell commands of README and guide
def _commands():
    for path in [ROOT / "README.md", *GUIDE_PAGES]:
        for block in code_blocks(path, "bash"):
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                for command in filter(None, (c.strip() for c in line.split("&&"))):
                    yield path.name, shlex.split(command)


def test_shell_commands_name_what_exists():
    """Each `python -m M` or `python F.py` exists and defines its options; files named exist.

    The commands themselves run in CI (`.ci/run`) or, for the long benchmark runs, by hand:
    here only their names and options are checked, against the module's source.
    """
    seen = 0
    for page, words in _commands():
        seen += 1
        words = [w for w in words if not re.match(r"[A-Z_]+=", w)]  # environment variables
        if words[0] == "python" and words[1] == "-m" and words[2].startswith("benchmarks."):
            source = ROOT / (words[2].replace(".", "/") + ".py")
            flags = words[3:]
        elif words[0] == "python" and words[1].endswith(".py"):
            source, flags = ROOT / words[1], words[2:]
        elif words[:2] == ["pip", "install"]:
            assert (ROOT / words[words.index("-r") + 1]).is_file(), (page, words)
            continue
        elif words[0] in ("jupyter", "mkdocs", "pytest"):
            for word in words[1:]:
                if "/" in word:
                    assert (ROOT / word).exists(), (page, words)
            continue
        else:
            pytest.fail(f"{page}: a shell command this test does not know: {words}")
        assert source.is_file(), (page, words)
        text = source.read_text()
        for flag in (w for w in flags if w.startswith("--")):
            assert f'"{flag}"' in text, f"{page}: {source.name} has no option {flag}"
    assert seen


def test_the_version_is_the_same_everywhere():
    import vae_keras

    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"$', pyproject, re.M).group(1)
    assert vae_keras.__version__ == version
    assert re.search(rf"^version: {re.escape(version)}$", (ROOT / "CITATION.cff").read_text(), re.M)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(version)}\]?", changelog, re.M), "CHANGELOG.md"

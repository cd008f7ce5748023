"""The committed notebooks are executed, and their outputs carry no build-machine noise.

Readers see the committed outputs on the page, so they must hold only what the notebook
means to show: no TensorFlow/absl/oneDNN/CUDA start-up log lines, no absolute paths of the
machine that executed them (temporary files, the data folder, installed packages), no Python
warning locations, no errors, and no code cell left unexecuted. Links must not point to a
repository this project does not have.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

NOISE = {
    "an absl/glog log line (I0000 00:00:...)": re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.M),
    "an absl message": re.compile(r"absl::|InitializeLog"),
    "a oneDNN message": re.compile(r"oneDNN|TF_ENABLE_ONEDNN_OPTS"),
    "a CUDA message": re.compile(r"\bcuda|cudart|cuInit|cuDNN|cuBLAS|cuFFT", re.I),
    "a TensorFlow Python log line": re.compile(r"^(WARNING|INFO|ERROR):tensorflow", re.M),
    "an object's memory address": re.compile(r"\bat 0x[0-9a-f]{6,}"),
    "a TensorFlow source location": re.compile(r"tensorflow/(core|compiler|tsl)/|\w+\.cc:\d+\]"),
    "an absolute machine path": re.compile(r"(?<![\w.~])/(tmp|work|root|home|usr|opt|var|Users)/"),
    "a kernel's temporary file name": re.compile(r"ipykernel_\d*"),
    "an installed package's path": re.compile(r"site-packages|dist-packages"),
    "a Python warning location": re.compile(r"\.py:\d+: \w*(Warning|Error)\b"),
}
# Links to a GitHub repository this project does not have (Colab badges, pip installs).
DEAD_LINKS = re.compile(r"colab\.research\.google\.com/github/|git\+https://github\.com/")


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def _output_texts(output):
    """The text a reader sees in one output (images are not text)."""
    if output["output_type"] == "stream":
        yield _text(output["text"])
    elif output["output_type"] in ("execute_result", "display_data"):
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/"):
                yield _text(value)


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_was_executed_without_error(path):
    for index, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "code" or not _text(cell["source"]).strip():
            continue
        assert cell.get("execution_count") is not None, f"{path.name}: cell {index} not executed"
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"{path.name}: cell {index} ends with {output.get('ename')}: {output.get('evalue')}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_carry_no_machine_noise(path):
    problems = []
    for index, cell in enumerate(_load(path)["cells"]):
        for output in cell.get("outputs", []):
            for text in _output_texts(output):
                for what, pattern in NOISE.items():
                    match = pattern.search(text)
                    if match:
                        line = text[: match.end()].rsplit("\n", 1)[-1] + text[match.end() :]
                        problems.append(f"cell {index}: {what}: {line.splitlines()[0][:120]!r}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_links_to_a_repository_that_does_not_exist(path):
    for index, cell in enumerate(_load(path)["cells"]):
        match = DEAD_LINKS.search(_text(cell["source"]))
        assert match is None, f"{path.name}: cell {index} links {match.group(0)!r}"


def test_the_checks_catch_what_they_are_for():
    """Each pattern fires on a real example of the noise it is meant to keep out."""
    examples = {
        "an absl/glog log line (I0000 00:00:...)": "I0000 00:00:1795265441.046073   26822 x",
        "an absl message": "WARNING: All log messages before absl::InitializeLog() is called",
        "a oneDNN message": "oneDNN custom operations are on.",
        "a CUDA message": "Could not find cuda drivers on your machine, GPU will not be used.",
        "a TensorFlow Python log line": "WARNING:tensorflow:5 out of the last 6 calls to <f",
        "an object's memory address": "<function f at 0x7fd6159d7740> triggered tf.function",
        "a TensorFlow source location": "E0000 cuda_platform.cc:52] failed call to cuInit",
        "an absolute machine path": "split 8,000 / 2,000 from /work/shared/data/mnist",
        "a kernel's temporary file name": "/tmp/ipykernel_9067/2200821279.py:1: UserWarning",
        "an installed package's path": "/usr/lib/python3/site-packages/keras/x.py",
        "a Python warning location": "2200821279.py:1: UserWarning: offline mnist",
    }
    for what, text in examples.items():
        assert NOISE[what].search(text), what
    clean = "saved ../images/vae_manifold.png; loss 157.50 nats; UserWarning: offline mnist"
    assert not any(pattern.search(clean) for pattern in NOISE.values())
    assert DEAD_LINKS.search('%pip install "vae-keras @ git+https://github.com/a/b"')


# ------------------------------------------------ what a learner sees first is the lesson
TOTAL_BUDGET = 4_000_000  # bytes, all committed notebooks together
TIMING = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|seconds|min|minutes)\b(?! per)|\btook\b")
PLUMBING = {
    "an NBVAL comment (use the cell tag nbval-check-output)": re.compile(r"#\s*NBVAL_"),
    "a file-descriptor redirect": re.compile(r"os\.dup2?\(|quiet_stderr"),
    "a stopwatch": re.compile(r"time\.(perf_counter|time|monotonic)\("),
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sources_hold_the_lesson_not_the_plumbing(path):
    problems = [
        f"cell {index}: {what}"
        for index, cell in enumerate(_load(path)["cells"])
        if cell["cell_type"] == "code"
        for what, pattern in PLUMBING.items()
        if pattern.search(_text(cell["source"]))
    ]
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stderr_no_timings_no_editor_metadata(path):
    notebook = _load(path)
    assert not {"colab", "accelerator", "widgets"} & set(notebook.get("metadata", {}))
    for index, cell in enumerate(notebook["cells"]):
        metadata = cell.get("metadata", {})
        assert "execution" not in metadata, f"{path.name}: cell {index} has execution timestamps"
        assert not {"colab", "id", "outputId"} & set(metadata), f"{path.name}: cell {index}"
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"{path.name}: cell {index} writes to stderr"
            for text in _output_texts(output):
                match = TIMING.search(text)
                assert match is None, f"{path.name}: cell {index} prints a timing: {match[0]!r}"


def test_the_notebooks_together_stay_small():
    sizes = {p.name: p.stat().st_size for p in NOTEBOOKS}
    assert sum(sizes.values()) <= TOTAL_BUDGET, sizes


LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_local_links_point_to_files_that_exist(path):
    """Links work on GitHub and in JupyterLab (the site rewrites them to its pages)."""
    for index, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for target, _ in LINK.findall(_text(cell["source"])):
            if re.match(r"[a-z]+:", target):
                continue
            assert (path.parent / target).exists(), f"{path.name}: cell {index} links {target}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_states_objectives_and_ends_with_a_summary_and_a_way_on(path):
    markdown = [_text(c["source"]) for c in _load(path)["cells"] if c["cell_type"] == "markdown"]
    head, tail = "\n".join(markdown[:2]), "\n".join(markdown[-3:])
    assert re.search(r"what you will be able to do", head, re.I), f"{path.name}: no objectives"
    assert re.search(r"^## Summary", "\n".join(markdown), re.M), f"{path.name}: no summary"
    if path == NOTEBOOKS[-1]:
        assert re.search(r"^## Where to go next", tail, re.M), f"{path.name}: no way on"
    else:
        following = NOTEBOOKS[NOTEBOOKS.index(path) + 1].name
        assert f"]({following})" in tail, f"{path.name} does not end with a link to {following}"

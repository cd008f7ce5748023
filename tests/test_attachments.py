"""images/attach_figures.py: figures travel inside the notebooks as cell attachments."""

import base64
import importlib.util
import json
from pathlib import Path

import matplotlib.image as mpimg
import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "attach_figures", ROOT / "images" / "attach_figures.py"
)
attach_figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(attach_figures)


def test_committed_notebooks_are_in_sync(capsys):
    """Every figure of the committed notebooks is attached, with the bytes of images/ today."""
    code = attach_figures.main(["--check"])
    assert code == 0, capsys.readouterr().err


def _png(path, value):
    mpimg.imsave(path, np.full((8, 12), value, dtype=float), cmap="gray", vmin=0, vmax=1)
    return path.read_bytes()


@pytest.fixture
def project(tmp_path):
    """A notebook in notebooks/ with one figure from images/, a code cell with an output."""
    (tmp_path / "images").mkdir()
    (tmp_path / "notebooks").mkdir()
    _png(tmp_path / "images" / "fig.png", 0.2)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nSome text with $x^2$ — ünïcode."),
        nbformat.v4.new_markdown_cell(
            'Before.\n\n![A figure, with a comma](../images/fig.png "its title")\n\nAfter.'
        ),
        nbformat.v4.new_code_cell(
            "print('![not a figure](../images/fig.png)')",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output(
                    "stream", name="stdout", text="![not a figure](../images/fig.png)\n"
                )
            ],
        ),
    ]
    path = tmp_path / "notebooks" / "tutorial.ipynb"
    nbformat.write(notebook, path)
    return path


def _run(*args):
    return attach_figures.main([*(str(a) for a in args)])


def test_attaches_the_figure_and_leaves_code_alone(project):
    images = project.parents[1] / "images"
    before = json.loads(project.read_text(encoding="utf-8"))
    assert _run(project, "--images", images) == 0

    text = project.read_text(encoding="utf-8")
    after = json.loads(text)
    figure_cell = after["cells"][1]
    assert "".join(figure_cell["source"]) == (
        'Before.\n\n![A figure, with a comma](attachment:fig.png "its title")\n\nAfter.'
    )
    data = figure_cell["attachments"]["fig.png"]["image/png"]
    assert base64.b64decode(data) == (images / "fig.png").read_bytes()
    assert after["cells"][0] == before["cells"][0]
    assert after["cells"][2] == before["cells"][2]  # code and outputs untouched
    # Written as nbformat writes it, so diffs stay small, and still a valid notebook.
    assert text == nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"
    assert "ünïcode" in text
    nbformat.validate(nbformat.reads(text, as_version=4))


def test_idempotent(project):
    images = project.parents[1] / "images"
    assert _run(project, "--images", images) == 0
    first = project.read_bytes()
    assert _run(project, "--images", images) == 0
    assert project.read_bytes() == first


def test_check_names_the_cell_and_changes_nothing(project, capsys):
    images = project.parents[1] / "images"
    original = project.read_bytes()
    assert _run(project, "--images", images, "--check") == 1
    err = capsys.readouterr().err
    assert "tutorial.ipynb: cell 1" in err
    assert project.read_bytes() == original
    assert _run(project, "--images", images) == 0
    assert _run(project, "--images", images, "--check") == 0


def test_a_redrawn_figure_is_refreshed(project, capsys):
    images = project.parents[1] / "images"
    assert _run(project, "--images", images) == 0
    new_bytes = _png(images / "fig.png", 0.9)
    assert _run(project, "--images", images, "--check") == 1
    assert "tutorial.ipynb: cell 1" in capsys.readouterr().err
    assert _run(project, "--images", images) == 0
    data = json.loads(project.read_text(encoding="utf-8"))["cells"][1]["attachments"]
    assert base64.b64decode(data["fig.png"]["image/png"]) == new_bytes


def test_unused_attachments_of_images_are_dropped_others_kept(project):
    images = project.parents[1] / "images"
    assert _run(project, "--images", images) == 0
    notebook = json.loads(project.read_text(encoding="utf-8"))
    cell = notebook["cells"][1]
    cell["source"] = ["No figure any more.\n", "\n", "![pasted](attachment:pasted.png)"]
    cell["attachments"]["pasted.png"] = {"image/png": "iVBORw0KGgo="}
    project.write_text(attach_figures.dumps(notebook), encoding="utf-8")

    assert _run(project, "--images", images) == 0
    cell = json.loads(project.read_text(encoding="utf-8"))["cells"][1]
    assert set(cell["attachments"]) == {"pasted.png"}


def test_missing_figure_and_unsupported_reference_are_errors(project, capsys):
    images = project.parents[1] / "images"
    notebook = json.loads(project.read_text(encoding="utf-8"))
    notebook["cells"][0]["source"] = [
        "![gone](../images/missing.png)\n",
        '<img src="../images/fig.png">',
    ]
    project.write_text(attach_figures.dumps(notebook), encoding="utf-8")
    assert _run(project, "--images", images, "--check") == 1
    err = capsys.readouterr().err
    assert "images/missing.png" in err
    assert "cannot attach the reference '../images/fig.png'" in err


def test_images_must_be_a_folder(project, tmp_path):
    with pytest.raises(SystemExit):
        _run(project, "--images", tmp_path / "nowhere")

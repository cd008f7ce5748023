"""Every exercise check, proven both ways: the notebook's solution passes; its student stub and
the typical wrong answers of tests/wrong_answers/ fail with a hint that does not hold the answer.

The solution cells are read from the committed notebooks, so what is tested is what a learner
and an instructor get.
"""

import importlib
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import vae_keras as vk
from vae_keras.exercises import NotYet, student
from vae_keras.exercises.__main__ import main as write_students

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHECK = re.compile(r"""exercises\.check\(\s*["'](\d\d\.\w+)["']""")


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _exercises():
    """(notebook, exercise name, solution source, check-cell source) for every solution cell."""
    found = []
    for path in NOTEBOOKS:
        code = [c for c in _cells(path) if c["cell_type"] == "code"]
        for i, cell in enumerate(code):
            if student.SOLUTION_TAG not in cell.get("metadata", {}).get("tags", []):
                continue
            following = student._source(code[i + 1]) if i + 1 < len(code) else ""
            names = CHECK.findall(following)
            assert len(names) == 1, f"{path.name}: the cell after a solution must run one check"
            found.append((path.name, names[0], student._source(cell), following))
    return found


EXERCISES = _exercises()
IDS = [name for _, name, _, _ in EXERCISES]


def _run(source, check_source, capsys=None):
    namespace = {"np": np, "keras": keras, "ops": ops, "vk": vk}
    keras.utils.set_random_seed(0)
    exec(compile(source, "<answer>", "exec"), namespace)
    exec(compile(check_source, "<check>", "exec"), namespace)


def _wrong_answers(name):
    module = importlib.import_module(f"tests.wrong_answers.nb{name[:2]}")
    return module.WRONG.get(name, [])


def _solution_lines(source):
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() in (student.BEGIN, student.END):
            inside = line.strip() == student.BEGIN
        elif inside and len(line.strip()) >= 20 and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def test_every_check_has_a_solution_in_its_notebook_and_every_notebook_from_01_has_exercises():
    assert sorted(IDS) == vk.exercises.names()
    numbers = {name[:2] for name in IDS}
    for path in NOTEBOOKS:
        if path.name[:2] != "00":
            count = sum(1 for nb, *_ in EXERCISES if nb == path.name)
            assert 2 <= count <= 4, f"{path.name} has {count} exercises; expected 2 to 4"
    for notebook, name, *_ in EXERCISES:
        assert notebook.startswith(name[:2]), f"{name} is solved in {notebook}"
    assert numbers <= {p.name[:2] for p in NOTEBOOKS}


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_the_solution_passes(exercise, capsys):
    _, name, source, check_source = exercise
    _run(source, check_source)
    assert f"\N{CHECK MARK} {name}:" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_the_student_stub_fails_with_a_hint(exercise):
    notebook, name, source, check_source = exercise
    stub = student._stub(source, notebook)
    assert student.STUB in stub and student.BEGIN not in stub
    with pytest.raises(NotYet, match=re.escape(name)):
        _run(stub, check_source)


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_typical_wrong_answers_fail_with_a_hint_that_does_not_give_the_answer(exercise):
    _, name, source, check_source = exercise
    wrong = _wrong_answers(name)
    assert wrong, f"tests/wrong_answers/nb{name[:2]}.py has no wrong answer for {name}"
    for answer in wrong:
        with pytest.raises(NotYet) as caught:
            _run(answer, check_source)
        hint = str(caught.value)
        assert len(hint) > len(name) + 10, f"{name}: the hint says nothing: {hint!r}"
        for line in _solution_lines(source):
            assert line not in hint, f"{name}: the hint gives the answer away: {hint!r}"


def test_the_student_version_replaces_solutions_and_clears_their_outputs(tmp_path, capsys):
    with_exercises = sorted({ROOT / "notebooks" / nb for nb, *_ in EXERCISES})
    if not with_exercises:
        pytest.fail("no notebook has a solution cell")
    write_students([str(tmp_path), *map(str, with_exercises)])
    assert len(capsys.readouterr().out.splitlines()) == len(with_exercises)
    for path in with_exercises:
        original, converted = _cells(path), _cells(tmp_path / path.name)
        assert len(original) == len(converted)
        for before, after in zip(original, converted):
            text = student._source(after)
            if after["cell_type"] == "code":
                assert student.BEGIN not in text and student.END not in text
            tags = before.get("metadata", {}).get("tags", [])
            if student.SOLUTION_TAG in tags or CHECK.search(student._source(before)):
                assert after.get("outputs") == [] and student.STUB in text or CHECK.search(text)
            else:
                assert after == before


def test_a_solution_cell_without_markers_is_refused():
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["solution"]},
                "source": "x = 1",
                "outputs": [],
                "execution_count": 1,
            }
        ]
    }
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        vk.exercises.student_version(notebook)


def test_check_refuses_unknown_names_and_reports_a_raising_answer():
    with pytest.raises(KeyError, match="no exercise named"):
        vk.exercises.check("99.nothing", 1)

    def broken(*args):
        raise ZeroDivisionError("oops")

    with pytest.raises(NotYet, match="raised ZeroDivisionError: oops"):
        vk.exercises.check(vk.exercises.names()[0], broken)

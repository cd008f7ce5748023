"""A notebook does not quote numbers from another notebook's run.

Re-executing a notebook changes its numbers; a sentence elsewhere that quotes them goes stale
without anyone noticing (issue 26 found one that had). So every sentence of a markdown cell
that mentions another notebook may hold only numbers that appear in that notebook's committed
outputs: decimals, and integers of 100 or more that are not years and not settings written in the code of
either notebook (K = 5000 importance samples is a setting, not a result). Numbers inside links,
arXiv identifiers and the notebook's own name do not count.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
BY_NUMBER = {p.name[:2]: p for p in NOTEBOOKS}

MENTION = re.compile(r"\bnotebooks? (\d\d)\b|\b(\d\d)_\w+\.ipynb|\[(\d\d) ·|\b(\d\d) · ", re.I)
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d{3,})(?![\w,]*\d)")
SKIP = re.compile(
    r"\]\([^)]*\)|https?://\S+|arXiv:\s*\S+|\d\d_\w+\.ipynb"  # links and names
    r"|\$\$.*?\$\$|\$[^$]*\$|`[^`]*`",  # formulas and code are not quotes of a run
    re.S,
)
SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z\[(*`$])|\n\s*\n|\n\s*[-*|] ")


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _value(token):
    text = token.replace(",", "")
    return float(text), len(text.split(".")[1]) if "." in text else 0


def _numbers_quoted(sentence):
    """(token, value, decimals) for each number that must come from a run."""
    found = []
    for match in NUMBER.finditer(SKIP.sub(" ", sentence)):
        value, decimals = _value(match.group(1))
        if decimals == 0 and (value < 100 or 1900 <= value <= 2099):
            continue
        found.append((match.group(1), value, decimals))
    return found


def _output_values(path):
    values = set()
    for cell in _cells(path):
        for output in cell.get("outputs", []):
            texts = [_text(output.get("text", ""))]
            texts += [_text(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                for match in re.finditer(r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?", text):
                    try:
                        values.add(float(match.group(0).replace(",", "")))
                    except ValueError:
                        pass
    return values


def _code_integers(path):
    """Integers written in a notebook's code cells: its settings (K = 5000, 10,000 images...)."""
    text = " ".join(_text(c["source"]) for c in _cells(path) if c["cell_type"] == "code")
    return {float(m.replace("_", "")) for m in re.findall(r"\b\d[\d_]*\b", text)}


STRUCTURE = {784.0}  # the pixels of a 28 x 28 image: a fact about MNIST, not about a run


def _appears(value, decimals, values):
    return any(round(abs(v), decimals) == value for v in values)


def _mentions(sentence, own):
    numbers = {next(g for g in m.groups() if g) for m in MENTION.finditer(sentence)}
    return sorted(n for n in numbers if n != own and n in BY_NUMBER)


def _stale(path):
    own, problems, outputs = path.name[:2], [], {}
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in SENTENCE_END.split(_text(cell["source"])):
            for other in _mentions(sentence, own):
                if other not in outputs:
                    outputs[other] = _output_values(BY_NUMBER[other])
                settings = _code_integers(path) | _code_integers(BY_NUMBER[other]) | STRUCTURE
                for token, value, decimals in _numbers_quoted(sentence):
                    if decimals == 0 and value in settings:
                        continue  # a setting or a fact, not a number measured by a run
                    if not _appears(value, decimals, outputs[other]):
                        problems.append(
                            f"cell {index} quotes {token} beside notebook {other}, whose "
                            f"outputs do not show it: {sentence.strip()[:160]!r}"
                        )
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sentences_about_another_notebook_quote_only_numbers_it_shows(path):
    problems = _stale(path)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_check_finds_a_stale_quote_and_passes_a_true_one():
    """The issue's own example: 04 quoted 05's KL as 0.14 after 05 had stopped showing it."""
    sentence = "In notebook 05 the KL term falls in every epoch, to 0.14 nats, without coming back."
    assert _mentions(sentence, "04") == ["05"]
    assert [t for t, *_ in _numbers_quoted(sentence)] == ["0.14"]
    assert not _appears(0.14, 2, {1.88, 0.90, 0.51, 4.54})
    assert _appears(0.14, 2, {0.1432})
    assert _appears(60000.0, 0, {60000.0})
    # links, arXiv numbers, years and small integers are not quotes of a run
    assert (
        _numbers_quoted("See [05](05_evaluating_vaes.ipynb), arXiv:1312.6114 (2014), 16 units")
        == []
    )
    assert [t for t, *_ in _numbers_quoted("10,000 images and 3.97 nats")] == ["10,000", "3.97"]
    assert _numbers_quoted("$\\mathcal L_{5000}$ and `exp(0.5 * v)`") == []

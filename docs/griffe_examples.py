"""Griffe extension (loaded by mkdocstrings, see mkdocs.yml): show the docstring examples as code.

The package's docstrings follow Keras' own layout, where the lines after ``Example:`` start at the
docstring's margin instead of being indented under the header as Google style expects. Parsed as
is, the ``>>>`` lines would become Markdown block quotes. This extension indents the block under
its header before the docstring is parsed, so it becomes an Examples section whose ``>>>`` lines
are rendered as highlighted Python sessions and whose prose stays prose. The source files are not
changed, and doctest (tests/test_docs.py) reads them as before.
"""

from __future__ import annotations

import re

import griffe

HEADER = re.compile(r"^(?:Example|Examples):\s*$")
# A Google-style section header at the margin ("Args:", "Returns:", ...), which ends the block.
NEXT_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def indent_examples(text):
    """Indent the lines after a margin-level ``Example:`` header up to the next section.

    The header becomes ``Examples:`` and the blank lines right below it are dropped, as the
    Google-style parser requires.
    """
    lines = text.split("\n")
    result, inside, just_opened = [], False, False
    for index, line in enumerate(lines):
        if HEADER.match(line):
            inside, just_opened = True, True
            result.append("Examples:")
            continue
        if just_opened and not line.strip():
            continue  # Google style wants the body right below its header
        just_opened = False
        if inside and NEXT_SECTION.match(line):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if following.startswith((" ", "\t")):
                inside = False
        if inside and line.strip():
            result.append("    " + line)
        else:
            result.append(line)
    return "\n".join(result)


class MarginExamples(griffe.Extension):
    """Indent margin-level ``Example:`` blocks of every docstring before it is parsed."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = indent_examples(obj.docstring.value)

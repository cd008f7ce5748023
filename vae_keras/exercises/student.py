"""The student version of a notebook: each solution replaced by `...`, its outputs cleared."""

import json
import os
import re

SOLUTION_TAG = "solution"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "...  # your code here"
_CHECK_CALL = re.compile(r"exercises\.check\(")


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _stub(source, where):
    """`source` with every BEGIN/END SOLUTION block replaced by an indented `...`."""
    lines, out, inside = source.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: {BEGIN} inside another solution block")
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside or not any(line.strip() == BEGIN for line in lines):
        raise ValueError(f"{where}: a solution cell needs {BEGIN} ... {END} around the answer")
    return "\n".join(out)


def _clear(cell):
    cell["outputs"], cell["execution_count"] = [], None


def student_version(notebook, where="notebook"):
    """A copy of a notebook (as a dict, the `.ipynb` JSON) in its student version.

    In every code cell tagged `solution`, the lines between `# BEGIN SOLUTION` and
    `# END SOLUTION` become `...  # your code here`; that cell's outputs and those of the cells
    calling `vk.exercises.check` are cleared. The rest of the notebook is unchanged.
    """
    notebook = json.loads(json.dumps(notebook))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            cell["source"] = _stub(_source(cell), f"{where}, cell {index}")
            _clear(cell)
        elif _CHECK_CALL.search(_source(cell)):
            _clear(cell)
    return notebook


def write_student_versions(out_dir, paths):
    """Writes the student version of each notebook in `paths` into `out_dir` (same file names).

    Returns:
        The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            notebook = json.load(handle)
        target = os.path.join(out_dir, os.path.basename(path))
        if os.path.abspath(target) == os.path.abspath(path):
            raise ValueError(
                f"write_student_versions: {path} would overwrite itself; choose OUT_DIR"
            )
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(student_version(notebook, path), handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        written.append(target)
    return written

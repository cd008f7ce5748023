"""Embed the figures of images/ into the notebooks as markdown cell attachments.

A markdown figure written as ``![alt](../images/NAME.png)`` only shows where the server can reach
the repository's images/ folder. This script rewrites it to ``![alt](attachment:NAME.png)`` and
stores the bytes of images/NAME.png in the cell's ``attachments``, so the figure travels inside the
notebook: JupyterLab started in notebooks/, GitHub, Colab and ``jupyter nbconvert`` all show it.
images/ stays the source of truth: rerun the script after redrawing a figure and the attachment is
refreshed. Code cells and outputs are never touched, and the file is written the way nbformat
writes it (indent 1, sorted keys, UTF-8 as is, trailing newline), so a diff shows only what changed.

    python images/attach_figures.py            # update every notebooks/*.ipynb in place
    python images/attach_figures.py --check    # exit 1 naming each cell that is out of sync
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MIME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}

# ![alt](../images/NAME.ext) or ![alt](attachment:NAME.ext), with an optional "title".
FIGURE = re.compile(
    r"!\[(?P<alt>[^\]]*)\]\(\s*(?P<target>(?:\.\./images/|attachment:)"
    r"(?P<name>[A-Za-z0-9_.-]+\.(?:png|jpe?g|gif)))(?P<title>\s+\"[^\"]*\")?\s*\)"
)
# Any other reference to the images folder in a markdown cell (an HTML <img>, a subfolder ...),
# which the script cannot turn into an attachment.
OTHER_REFERENCE = re.compile(r"\.\./images/[^\s\"')>]+")


def _source_text(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _split_source(text):
    """Split a cell source into lines with their newlines, as nbformat stores it."""
    return text.splitlines(keepends=True)


def _encode(path):
    return base64.b64encode(path.read_bytes()).decode("ascii")


def sync_cell(cell, images_dir, where):
    """Bring one markdown cell in sync with images_dir.

    Returns ``(new_cell, problems)``: ``new_cell`` is None when the cell is already in sync, and
    ``problems`` lists what cannot be fixed automatically (a missing image file, an unsupported
    reference), each as a message that starts with ``where``.
    """
    text = _source_text(cell)
    problems = []
    wanted = {}  # attachment name -> base64 bytes

    def rewrite(match):
        name = match.group("name")
        path = images_dir / name
        if match.group("target").startswith("attachment:") and not path.is_file():
            if name in (cell.get("attachments") or {}):
                return match.group(0)  # an attachment of its own (an image pasted in JupyterLab)
        if not path.is_file():
            problems.append(
                f"{where}: {match.group('target')} has no file images/{name}; received {path}"
            )
            return match.group(0)
        wanted[name] = {MIME_TYPES[path.suffix.lower()]: _encode(path)}
        return f"![{match.group('alt')}](attachment:{name}{match.group('title') or ''})"

    new_text = FIGURE.sub(rewrite, text)
    for leftover in OTHER_REFERENCE.findall(FIGURE.sub("", new_text)):
        problems.append(
            f"{where}: cannot attach the reference {leftover!r}; write figures as "
            "![alt](../images/NAME.png) with NAME a file directly in images/"
        )

    attachments = dict(cell.get("attachments") or {})
    for name in list(attachments):
        # An attachment named after a file of images/ is managed here: drop it when no longer used.
        # Any other attachment (an image pasted in JupyterLab) is left as it is.
        if name not in wanted and (images_dir / name).is_file():
            del attachments[name]
    attachments.update(wanted)

    new_cell = dict(cell)
    if new_text != text:
        new_cell["source"] = _split_source(new_text)
    if attachments:
        new_cell["attachments"] = attachments
    else:
        new_cell.pop("attachments", None)
    if _normalised(new_cell) == _normalised(cell):
        return None, problems
    return new_cell, problems


def _normalised(cell):
    """The cell with its attachments' base64 whitespace removed, for comparisons."""
    result = dict(cell)
    result["source"] = _source_text(cell)
    if cell.get("attachments"):
        result["attachments"] = {
            name: {mime: "".join(str(data).split()) for mime, data in bundle.items()}
            for name, bundle in cell["attachments"].items()
        }
    return result


def dumps(notebook):
    """Serialise a notebook exactly as nbformat.write does."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def sync_notebook(path, images_dir, check=False):
    """Attach the figures of one notebook; with check=True only report.

    Returns ``(out_of_sync, problems)``: the cells that changed (or would change), as messages,
    and the problems the script cannot fix.
    """
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    out_of_sync, problems = [], []
    resolved = path.resolve()
    label = resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else path.name
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        where = f"{label}: cell {index}" + (f" (id {cell['id']})" if "id" in cell else "")
        new_cell, cell_problems = sync_cell(cell, images_dir, where)
        problems.extend(cell_problems)
        if new_cell is not None:
            out_of_sync.append(f"{where}: figures not attached or attachments out of date")
            notebook["cells"][index] = new_cell
    if out_of_sync and not check:
        path.write_text(dumps(notebook), encoding="utf-8")
    return out_of_sync, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to process (default: every notebooks/*.ipynb of the repository)",
    )
    parser.add_argument(
        "--images", type=Path, default=ROOT / "images", help="folder with the figures"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any notebook is out of sync"
    )
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        parser.error("no notebooks found")
    if not args.images.is_dir():
        parser.error(f"--images must be a folder; received {args.images}")

    failed = False
    for notebook in notebooks:
        out_of_sync, problems = sync_notebook(notebook, args.images, check=args.check)
        for message in problems:
            print(f"error: {message}", file=sys.stderr)
        failed |= bool(problems)
        if args.check:
            for message in out_of_sync:
                print(f"out of sync: {message}", file=sys.stderr)
            failed |= bool(out_of_sync)
        elif out_of_sync:
            print(f"updated {notebook} ({len(out_of_sync)} cells)")
    if args.check and failed:
        print("run: python images/attach_figures.py", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

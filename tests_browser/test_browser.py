"""Open the tutorial the way a reader does, in a real browser, and check what they would see.

For every notebook opened in JupyterLab (started as the README says) and for the built site's
home page, first notebook page, one API page and every page of the guide (its benchmark reports
included):

- every image of the rendered markdown and of the outputs has loaded (`naturalWidth > 0`);
- the math has been typeset: no `$$`, no `$...$` pair and no TeX command such as `\\frac` is left
  as text in the rendered markdown, and the page holds typeset formulas where the source has math;
- no output shows an error;
- on the API page, the docstring examples are shown as code blocks.

A screenshot of each page's first screen goes to a temporary folder, printed at the end of the
run. The notebooks are not executed: this checks their committed outputs. Images hosted on other
sites (the Colab badge) are not required to load, since CI has no internet; they are counted in
the assertion messages.

Run after `mkdocs build --strict`:  python -m pytest tests_browser
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RENDER_TIMEOUT = 120  # seconds for a notebook to render, its images to load and math to typeset

RAW_TEX = re.compile(r"\$\$|\$[^$\s][^$]*\$|\\[A-Za-z]{2,}")
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b", re.M)

# What is left out of the text in which raw TeX is looked for: code and typeset math.
NOT_PROSE = (
    "pre, code, script, style, .highlight, .jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor, "
    "mjx-container, mjx-assistive-mml, .MathJax, .MathJax_SVG, .MathJax_SVG_Display, "
    ".MathJax_Preview, .MathJax_Display"
)

JS_IMAGES = """
const base = location.origin;
return Array.from(document.querySelectorAll(arguments[0])).map(img => ({
  src: (img.getAttribute('src') || '').slice(0, 80),
  remote: !img.src.startsWith('data:') && !img.src.startsWith('blob:')
          && !img.src.startsWith(base),
  complete: img.complete,
  width: img.naturalWidth,
}));
"""
JS_PROSE = """
return Array.from(document.querySelectorAll(arguments[0])).map(el => {
  const copy = el.cloneNode(true);
  copy.querySelectorAll(arguments[1]).forEach(e => e.remove());
  return copy.textContent;
});
"""
JS_TEXTS = """
return Array.from(document.querySelectorAll(arguments[0])).map(el => el.textContent);
"""
JS_COUNT = "return document.querySelectorAll(arguments[0]).length;"


def poll(check, timeout, interval=0.5):
    """Call check() until it returns a falsy list of problems or the time is up; return the last."""
    deadline = time.monotonic() + timeout
    while True:
        problems = check()
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(interval)


def image_problems(driver, selector):
    images = driver.execute_script(JS_IMAGES, selector)
    local = [i for i in images if not i["remote"]]
    return [
        f"image not loaded: {i['src']!r}" for i in local if not (i["complete"] and i["width"] > 0)
    ]


def raw_tex_problems(driver, selector):
    problems = []
    for text in driver.execute_script(JS_PROSE, selector, NOT_PROSE):
        for match in RAW_TEX.finditer(text):
            start = max(match.start() - 30, 0)
            problems.append(f"raw TeX in the page: {text[start : match.end() + 30]!r}")
    return problems


def error_problems(driver, selector):
    return [
        f"error shown in an output: {text[:200]!r}"
        for text in driver.execute_script(JS_TEXTS, selector)
        if ERROR_TEXT.search(text)
    ]


def scroll_through(driver, container_selector):
    """Scroll a container from top to bottom, so lazily rendered parts are drawn, then back."""
    script = """
    const box = document.querySelector(arguments[0]);
    if (!box) { return 0; }
    box.scrollTop = arguments[1];
    return box.scrollHeight;
    """
    height = driver.execute_script(script, container_selector, 0)
    position = 0
    while position < height:
        position += 800
        height = driver.execute_script(script, container_selector, position)
        time.sleep(0.05)
    driver.execute_script(script, container_selector, 0)


def has_math(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return any("$" in "".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")


def committed_errors(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        f"cell {index} has an error output: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


def check_page(driver, *, images, prose, outputs, math, math_expected, what):
    """The three checks, waiting up to RENDER_TIMEOUT for images and MathJax.

    Returns the problems found and counts of images and typeset formulas.
    """
    problems = poll(
        lambda: image_problems(driver, images) + raw_tex_problems(driver, prose), RENDER_TIMEOUT
    )
    problems += error_problems(driver, outputs)
    typeset = driver.execute_script(JS_COUNT, math)
    if math_expected and typeset == 0:
        problems.append("the source has math but no typeset formula is on the page")
    loaded = driver.execute_script(JS_IMAGES, images)
    stats = {
        "images": sum(not i["remote"] for i in loaded),
        "remote images": sum(i["remote"] for i in loaded),
        "formulas": typeset,
    }
    return [f"{what}: {problem}" for problem in problems[:20]], stats


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(notebook, driver, jupyter_lab, screenshot_dir):
    from selenium.webdriver.support.ui import WebDriverWait

    assert not committed_errors(notebook), committed_errors(notebook)
    base, token = jupyter_lab
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    markdown_cells = sum(cell["cell_type"] == "markdown" for cell in cells)
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"

    # The server's root is notebooks/, so a notebook's address is /lab/tree/NAME.
    driver.get(f"{base}/lab/tree/{quote(notebook.name)}?reset&token={token}")
    WebDriverWait(driver, RENDER_TIMEOUT).until(
        lambda d: d.execute_script(JS_COUNT, f"{panel} .jp-Cell") == len(cells),
        message=f"{notebook.name}: JupyterLab did not show its {len(cells)} cells",
    )
    WebDriverWait(driver, RENDER_TIMEOUT).until(
        lambda d: (
            d.execute_script(JS_COUNT, f"{panel} .jp-MarkdownCell .jp-RenderedMarkdown")
            == markdown_cells
        ),
        message=f"{notebook.name}: not every markdown cell was rendered",
    )
    scroll_through(driver, f"{panel} .jp-WindowedPanel-outer")
    problems, stats = check_page(
        driver,
        images=f"{panel} .jp-RenderedMarkdown img, {panel} .jp-OutputArea-output img",
        prose=f"{panel} .jp-MarkdownCell .jp-RenderedMarkdown",
        outputs=f"{panel} .jp-OutputArea-output",
        math=f"{panel} mjx-container",
        math_expected=has_math(notebook),
        what=f"{notebook.name} in JupyterLab",
    )
    problems += [
        f"JupyterLab shows a dialog: {d}" for d in driver.execute_script(JS_TEXTS, ".jp-Dialog")
    ]
    driver.execute_script(
        "const b = document.querySelector(arguments[0]); if (b) { b.scrollTop = 0; }",
        f"{panel} .jp-WindowedPanel-outer",
    )
    time.sleep(0.5)
    driver.save_screenshot(str(screenshot_dir / f"jupyterlab_{notebook.stem}.png"))
    print(f"{notebook.name}: {stats}")
    assert not problems, "\n".join(problems)


GUIDE = sorted((ROOT / "docs" / "guide").glob("*.md"))


def _report_pages():
    """The benchmark reports' page names, as docs/hooks.py renders them from benchmarks/."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return [page.removesuffix(".md") for _, page, _ in hooks.REPORTS]


REPORTS = _report_pages()
SITE_PAGES = {
    "index": "",
    "notebook": f"notebooks/{NOTEBOOKS[0].stem}/" if NOTEBOOKS else "",
    "api": "api/losses/",  # an API page: its docstring examples must be shown as code
    **{f"guide-{p.stem}": "guide/" if p.stem == "index" else f"guide/{p.stem}/" for p in GUIDE},
    **{f"guide-reports-{name}": f"guide/reports/{name}/" for name in REPORTS},
}
# Pages with figures: at least one must be shown.
WITH_IMAGES = {"index", "notebook", "guide-own-images"}


@pytest.mark.parametrize("page", sorted(SITE_PAGES))
def test_site_page(page, driver, site_server, screenshot_dir):
    driver.get(f"{site_server}/{SITE_PAGES[page]}")
    content = ".md-content"
    problems, stats = check_page(
        driver,
        images=f"{content} img",
        prose=content,
        outputs=f"{content} .jp-OutputArea-output",
        math=f"{content} .MathJax, {content} .MathJax_Display",
        math_expected=page == "notebook" and has_math(NOTEBOOKS[0]),
        what=f"site page {SITE_PAGES[page] or 'index'}",
    )
    title = driver.execute_script(JS_TEXTS, f"{content} h1")
    if not title or "404" in title[0]:
        problems.append(f"site page {page}: no title, or not found ({title})")
    if page.startswith("guide-") and not page.startswith("guide-reports-"):
        source = next(p for p in GUIDE if f"guide-{p.stem}" == page)
        blocks = source.read_text(encoding="utf-8").count("```python")
        shown = driver.execute_script(JS_COUNT, f"{content} .highlight pre")
        if shown < blocks:
            problems.append(f"site page {page}: {blocks} code blocks, {shown} shown as code")
    if page.startswith("guide-"):
        prose = " ".join(driver.execute_script(JS_PROSE, content, NOT_PROSE))
        for left in ("```", "]("):  # Markdown left unrendered
            if left in prose:
                problems.append(f"site page {page}: {left!r} left as text")
    if page == "api":
        code = " ".join(driver.execute_script(JS_TEXTS, f"{content} .doc pre"))
        prose = " ".join(driver.execute_script(JS_PROSE, content, NOT_PROSE))
        if ">>> import vae_keras as vk" not in code or ">>>" in prose:
            problems.append(f"site page {page}: the docstring examples are not shown as code")
    elif page in WITH_IMAGES and stats["images"] == 0:
        problems.append(f"site page {page}: no image on the page")
    driver.save_screenshot(str(screenshot_dir / f"site_{page}.png"))
    print(f"site {page}: {stats}")
    assert not problems, "\n".join(problems)

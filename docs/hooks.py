"""MkDocs hooks that turn the repository into the tutorial's website (see mkdocs.yml).

- Every ``notebooks/*.ipynb`` becomes a page (rendered by mkdocs-jupyter from its committed
  outputs) and every public module ``vae_keras/*.py`` an API page (rendered by mkdocstrings), so a
  new notebook or module appears without editing the configuration.
- The guide (``docs/guide/*.md``) comes between the tutorial and the API reference; its benchmark
  reports are rendered from ``benchmarks/*.md`` as the runs wrote them (``guide/reports/``).
- The navigation and the lists on the home page are built from those files.
- Links between notebooks (``03_vae_mnist.ipynb``) are pointed at the pages, and links from a
  notebook to a page of the site's sources (``../docs/explorer/index.md``, which is also right
  on GitHub and in JupyterLab) at that page.
- MathJax is copied from the ``jupyter-server-mathjax`` package into ``site/assets/mathjax`` and
  every notebook page loads it with a relative link: the formulas render offline and wherever the
  folder is served.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "vae_keras"
GUIDE = ROOT / "docs" / "guide"
# The guide's pages in reading order (any other page of docs/guide/ follows alphabetically).
GUIDE_ORDER = (
    "index",
    "own-model",
    "objectives",
    "faster-training",
    "several-devices",
    "own-images",
    "serving",
    "offline",
    "benchmarks",
    "development",
)
# The benchmark reports, rendered from benchmarks/: (file there, page under guide/reports/, title).
REPORTS = (
    ("results.md", "results.md", "Speed and quality"),
    ("backends.md", "backends.md", "Per backend"),
    ("peers.md", "peers.md", "Against Pythae"),
    ("torch_step.md", "torch_step.md", "A PyTorch step, piece by piece"),
    ("convolution.md", "convolution.md", "Transposed convolutions on JAX"),
    ("literature.md", "literature.md", "Binarized MNIST"),
    ("README.md", "method.md", "How it is measured"),
)
MATHJAX_PLACEHOLDER = "VAE_KERAS_MATHJAX"
MATHJAX_DEST = "assets/mathjax"
# The order in which the API pages are listed; modules not named here follow alphabetically.
MODULE_ORDER = (
    "layers",
    "losses",
    "models",
    "schedules",
    "builders",
    "evaluation",
    "datasets",
    "plotting",
    "widgets",
)
# MathJax 2 configuration, read before MathJax.js loads. jupyter-server-mathjax ships MathJax
# 2.7 with the combined TeX-AMS-MML_HTMLorMML configuration and the STIX-Web fonts (the setup of
# the classic Jupyter Notebook), so the HTML-CSS output is told to use those fonts.
MATHJAX_CONFIG = r"""<script>
window.MathJax = {
  tex2jax: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  "HTML-CSS": {availableFonts: [], imageFont: null, preferredFont: null, webFont: "STIX-Web"},
  messageStyle: "none"
};
</script>
"""


def notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def modules():
    names = [p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("_")]
    rank = {name: i for i, name in enumerate(MODULE_ORDER)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def guide_pages():
    rank = {name: i for i, name in enumerate(GUIDE_ORDER)}
    return sorted(GUIDE.glob("*.md"), key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def page_title(path):
    """The first level-1 heading of a Markdown file, or its file name."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def report_markdown(source):
    """A benchmarks/ report as a page: links between the reports point at their pages."""
    text = (ROOT / "benchmarks" / source).read_text(encoding="utf-8")
    for name, page, _ in REPORTS:
        text = text.replace(f"]({name})", f"]({page})").replace(f"]({name}#", f"]({page}#")
    return text


def notebook_title(path):
    """The first level-1 heading of the notebook, or its file name."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", [])).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def on_config(config):
    config["nav"] = [
        {"Home": "index.md"},
        {"Tutorial": [f"notebooks/{p.name}" for p in notebooks()]},
        {
            "Guide": [
                *[{page_title(p): f"guide/{p.name}"} for p in guide_pages()],
                {"Benchmark reports": [{t: f"guide/reports/{page}"} for _, page, t in REPORTS]},
            ]
        },
        {"Latent explorer": "explorer/index.md"},
        {"API reference": [{f"vae_keras.{m}": f"api/{m}.md"} for m in modules()]},
    ]
    return config


@event_priority(100)  # before mkdocs-jupyter, which claims the .ipynb files in its on_files
def on_files(files, config):
    for path in notebooks():
        files.append(
            File(
                f"notebooks/{path.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    for path in sorted((ROOT / "images").glob("*.png")):  # the figures, for the home page
        files.append(
            File(
                f"images/{path.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    for source, page, _ in REPORTS:
        files.append(
            File.generated(config, f"guide/reports/{page}", content=report_markdown(source))
        )
    for module in modules():
        files.append(
            File.generated(config, f"api/{module}.md", content=f"::: vae_keras.{module}\n")
        )
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != "index.md":
        return markdown
    notebook_list = "\n".join(f"- [{notebook_title(p)}](notebooks/{p.name})" for p in notebooks())
    module_list = "\n".join(f"- [`vae_keras.{m}`](api/{m}.md)" for m in modules())
    guide_list = "\n".join(
        f"- [{page_title(p)}](guide/{p.name})" for p in guide_pages() if p.stem != "index"
    )
    return (
        markdown.replace("<!-- notebook-list -->", notebook_list)
        .replace("<!-- module-list -->", module_list)
        .replace("<!-- guide-list -->", guide_list)
    )


def on_page_content(html, page, config, files):
    if not page.file.src_uri.startswith("notebooks/"):
        return html
    names = {p.stem for p in notebooks()}

    def link(match):
        stem, anchor = match.group(1), match.group(2) or ""
        if stem not in names:
            return match.group(0)
        return (
            f'href="../{stem}/{anchor}"'
            if config["use_directory_urls"]
            else (f'href="{stem}.html{anchor}"')
        )

    def site_page(match):  # ../docs/explorer/index.md works on GitHub and in JupyterLab
        page, anchor = match.group(1), match.group(2) or ""
        page = page[: -len("index")] if page.endswith("index") else page + "/"
        if config["use_directory_urls"]:
            return f'href="../../{page}{anchor}"'
        return f'href="../{page}index.html{anchor}"' if page.endswith("/") else match.group(0)

    html = re.sub(r'href="\.\./docs/([A-Za-z0-9_/.-]+?)\.md(#[^"]*)?"', site_page, html)
    return re.sub(r'href="([A-Za-z0-9_.-]+)\.ipynb(#[^"]*)?"', link, html)


def on_post_page(output, page, config):
    if MATHJAX_PLACEHOLDER not in output:
        return output
    # "notebooks/01_kl_divergence/" lies two folders below the site root.
    prefix = "/".join([".."] * page.url.count("/")) or "."
    output = output.replace(
        f'<script src="{MATHJAX_PLACEHOLDER}/',
        MATHJAX_CONFIG + f'<script src="{MATHJAX_PLACEHOLDER}/',
    )
    output = output.replace(MATHJAX_PLACEHOLDER, f"{prefix}/{MATHJAX_DEST}")
    # mkdocs-jupyter also links Mermaid from a CDN; no notebook here uses it.
    return re.sub(r'<script[^>]*src="https://[^"]*mermaid[^"]*"[^>]*>\s*</script>', "", output)


def on_post_build(config):
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (source / "MathJax.js").is_file():
        raise FileNotFoundError(
            f"MathJax.js is missing from jupyter-server-mathjax; received {source}"
        )
    shutil.copytree(source, Path(config["site_dir"]) / MATHJAX_DEST, dirs_exist_ok=True)

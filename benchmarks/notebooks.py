"""Wall time of the tutorial notebooks, executed with nbclient in a temporary copy.

The committed notebooks are never modified: `notebooks/` is copied into a
temporary folder (with an empty `images/` beside it, where full runs save their
figures), each notebook is executed there in a fresh kernel, and only the times
and the outcome are kept.
"""

import glob
import os
import shutil
import tempfile
import time

RETRACING = "triggered tf.function retracing"


def _count_in_outputs(nb, needle):
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            if isinstance(text, list):
                text = "".join(text)
            count += text.count(needle)
    return count


def run(repo, mode, timeout=3600, log=print):
    """Executes every notebooks/*.ipynb under `mode` ("quick" or "full")."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    sources = sorted(glob.glob(os.path.join(repo, "notebooks", "*.ipynb")))
    if not sources:
        return {"mode": mode, "notebooks": [], "note": "no notebooks/*.ipynb found"}
    saved = {
        k: os.environ.get(k) for k in ("VAE_KERAS_QUICK", "TF_CPP_MIN_LOG_LEVEL", "MPLBACKEND")
    }
    if mode == "quick":
        os.environ["VAE_KERAS_QUICK"] = "1"
    else:
        os.environ.pop("VAE_KERAS_QUICK", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="vae_keras_nb_") as tmp:
            work = os.path.join(tmp, "notebooks")
            os.makedirs(work)
            os.makedirs(os.path.join(tmp, "images"))
            for path in sources:
                shutil.copy(path, work)
            for path in sources:
                name = os.path.basename(path)
                nb = nbformat.read(os.path.join(work, name), as_version=4)
                client = NotebookClient(
                    nb,
                    timeout=timeout,
                    kernel_name="python3",
                    resources={"metadata": {"path": work}},
                )
                start = time.perf_counter()
                status = "ok"
                try:
                    client.execute()
                except CellExecutionError as error:
                    status = "error: " + str(error).strip().splitlines()[-1][:200]
                except Exception as error:  # timeout, dead kernel, ...
                    status = f"error: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                wall = time.perf_counter() - start
                rows.append(
                    {
                        "notebook": name,
                        "wall_s": wall,
                        "status": status,
                        "retracing_warnings": _count_in_outputs(nb, RETRACING),
                    }
                )
                log(f"    {mode} {name}: {wall:.1f} s, {status}")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {
        "mode": mode,
        "notebooks": rows,
        "total_s": sum(r["wall_s"] for r in rows),
    }

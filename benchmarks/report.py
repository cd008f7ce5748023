"""The benchmarks' Markdown: tables, the machine block, and `benchmarks.run`'s report.

`table` and `machine_block` are shared by every benchmark command
(`run`, `backends`, `scaling`, `peers`); `render` writes `benchmarks.run`'s
results.
"""

import statistics

ARCH_TITLES = {
    "mlp": "MLP 784-512-2",
    "conv": "Conv 32-64 (stride 2), Dense 16, latent 2",
}


HELDOUT_NOTE = (
    "All variants of a table start from the same initial weights (copied from the first). "
    "The held-out -ELBO column is only a check that they learn alike: it comes from one "
    "seed, and for the latent-2 convolutional model after a few epochs it moves by tens of "
    "nats with the sampling seed alone (from the same initial weights, 2 epochs on 12,800 "
    "Fashion-MNIST images: 291-344 for the reference over three seeds, 293-311 for "
    "vae_keras), so differences there are not significant."
)


def _f(value, digits=2):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _settings(s):
    return f"spe={s['steps_per_execution']}, jit={'on' if s['jit_compile'] else 'off'}"


def table(header, rows):
    """A Markdown table from a header and rows of cells (any values, shown with `str`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_block(m, load_at_end=None):
    """The machine and software of a run, as two tables and a GPU line.

    `m` is `common.machine_info()`. The GPU line says what `nvidia-smi`
    reported when the run started ("none (no nvidia-smi)" on a machine without
    it). `load_at_end`: the load average when the run ended, beside the one at
    its start, since the cores may be shared with other jobs.
    """
    load = m.get("load_average_at_start", "?")
    if load_at_end is not None:
        load = f"{load} at start, {load_at_end} at the end"
    return "\n".join(
        [
            "## Machine and software",
            "",
            table(
                ["CPU", "cores", "RAM", "GPU", "load average (1, 5, 15 min)"],
                [[m["cpu"], m["cores"], f"{m['ram_gib']} GiB", m["gpu"], load]],
            ),
            "",
            table(
                ["Python", "Keras", "TensorFlow", "JAX", "PyTorch", "NumPy", "vae_keras"],
                [
                    [
                        m["python"],
                        m["keras"],
                        m["tensorflow"],
                        m["jax"],
                        m["torch"],
                        m["numpy"],
                        m.get("vae_keras", "?"),
                    ]
                ],
            ),
            "",
            f"GPU: **{m['gpu']}** (as `nvidia-smi` reported it when the run started).",
        ]
    )


def _meta_line(section):
    meta = section.get("meta", {})
    return (
        f"*Run: `{meta.get('command', 'python -m benchmarks.run')}` ({meta.get('mode', '?')} "
        f"mode), finished {meta.get('finished', '?')}, "
        f"{_f(meta.get('wall_s'), 0)} s; load average at the end {meta.get('load_average_at_end', '?')}.*"
    )


def _speed_tables(section, ratio_title):
    parts = []
    for block in section["results"]:
        rows = []
        for r in block["rows"]:
            rows.append(
                [
                    r["variant"],
                    _settings(r["settings"]),
                    _f(r["warmup_epoch_s"]),
                    _f(r["median_epoch_s"]),
                    _f(r["images_per_s"], 0),
                    f"**{r['ratio']:.2f}** ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})",
                    _f(r["ratio_of_medians"]),
                    _f(r["heldout_neg_elbo"], 1),
                ]
            )
        parts.append(
            f"**{block['dataset']}, {ARCH_TITLES[block['arch']]}** "
            f"({block['rows'][0]['parameters']:,} parameters; {block['rounds']} timed epochs each "
            "after 1 warm-up epoch)\n\n"
            + table(
                [
                    "Variant",
                    "compile settings",
                    "warm-up epoch (s)",
                    "median epoch (s)",
                    "images/s",
                    f"{ratio_title} (min-max)",
                    "ratio of medians",
                    f"held-out -ELBO after {block['rows'][0]['epochs_trained']} epochs",
                ],
                rows,
            )
        )
    return "\n\n".join(parts)


def _speed_summary(section):
    lines = []
    for block in section["results"]:
        by_name = {r["variant"]: r for r in block["rows"]}
        vk, ref_eq = by_name.get("vae_keras"), by_name.get("reference + vae_keras' settings")
        if vk is None or ref_eq is None:
            continue
        pairs = [a / b for a, b in zip(vk["epoch_s"], ref_eq["epoch_s"]) if b]
        equal = statistics.median(pairs) if pairs else float("nan")
        lines.append(
            f"- {block['dataset']}, {block['arch']}: vae_keras / reference = **{vk['ratio']:.2f}** "
            f"(each with its defaults); with equal settings ({_settings(vk['settings'])} for both) "
            f"{equal:.2f}"
        )
    return "\n".join(lines)


def _memory(section):
    rows = []
    for r in section["results"]:
        if "error" in r:
            rows.append([r["arch"], r["model"], "", "", "", "", "", r["error"]])
            continue
        rows.append(
            [
                ARCH_TITLES[r["arch"]],
                r["model"],
                _settings(r["settings"]),
                _f(r["rss_before_fit_mib"], 0),
                _f(r["peak_rss_during_fit_mib"], 0),
                f"**{_f(r['fit_rss_increase_mib'], 0)}**",
                _f(r["process_max_rss_mib"], 0),
                f"{r['dataset']}, {r['steps']} steps",
            ]
        )
    return table(
        [
            "Architecture",
            "model",
            "compile settings",
            "RSS before fit (MiB)",
            "peak RSS during fit (MiB)",
            "increase (MiB)",
            "process peak, VmHWM (MiB)",
            "data",
        ],
        rows,
    )


def _neg_ll(r):
    """-L_K next to -ELBO on the same held-out images (rows from before L_K have neither)."""
    if r.get("heldout_neg_ll") is None:
        return "n/a"
    stderr = r.get("heldout_neg_ll_stderr")
    spread = f" ± {stderr:.2f}" if stderr is not None else ""
    return (
        f"**{_f(r['heldout_neg_ll'])}**{spread} / {_f(r.get('heldout_neg_elbo_subset'))} "
        f"(K={r['ll_samples']:,}, first {r['ll_images']:,} images, {_f(r.get('ll_wall_s'), 0)} s)"
    )


LIKELIHOOD_NOTES = {
    "bernoulli": "Bernoulli on grey levels: a cross-entropy, not a normalized density",
    "continuous_bernoulli": "continuous Bernoulli: a density on [0, 1]",
    "gaussian": "Gaussian: a density",
}


def _likelihood(r):
    """Which likelihood the row's -ELBO and -L_K use (rows from before this column: Bernoulli)."""
    name = r.get("likelihood", "bernoulli")
    return LIKELIHOOD_NOTES.get(name, name)


def _quality(section):
    parts = []
    for block in section["results"]:
        rows = [
            [
                r["model"],
                f"{r['parameters']:,}",
                _likelihood(r),
                _settings(r["settings"]),
                _f(r["train_wall_s"], 1),
                _f(r["first_epoch_s"]),
                _f(r["median_epoch_s"]),
                f"**{_f(r['heldout_neg_elbo'], 2)}**",
                _f(r["heldout_reconstruction"], 2),
                _f(r["heldout_kl"], 2),
                _neg_ll(r),
            ]
            for r in block["rows"]
        ]
        parts.append(
            f"**{block['dataset']}, {block['epochs']} epochs**\n\n"
            + table(
                [
                    "Model",
                    "parameters",
                    "likelihood (pixels: grey levels in [0, 1])",
                    "compile settings",
                    "wall time to get there (s)",
                    "first epoch (s)",
                    "median later epoch (s)",
                    "held-out -ELBO (nats/image)",
                    "reconstruction",
                    "KL",
                    "-L_K / -ELBO on a held-out subset (nats/image)",
                ],
                rows,
            )
        )
    return "\n\n".join(parts)


def _notebooks(section):
    runs = section["results"]
    names = []
    for run in runs.values():
        for row in run.get("notebooks", []):
            if row["notebook"] not in names:
                names.append(row["notebook"])
    if not names:
        return "No notebooks were found in `notebooks/`."
    modes = [m for m in ("quick", "full") if m in runs]
    rows = []
    for name in names:
        row = [name]
        for mode in modes:
            match = [r for r in runs[mode].get("notebooks", []) if r["notebook"] == name]
            if not match:
                row.append("not run")
                continue
            r = match[0]
            cell = _f(r["wall_s"], 1)
            if r["status"] != "ok":
                cell += f" ({r['status']})"
            if r.get("retracing_warnings"):
                cell += f" [{r['retracing_warnings']} tf.function retracing warning(s)]"
            row.append(cell)
        rows.append(row)
    rows.append(["**whole suite**"] + [f"**{_f(runs[m].get('total_s'), 1)}**" for m in modes])
    header = ["Notebook"] + [
        "quick settings, VAE_KERAS_QUICK=1 (s)" if m == "quick" else "full settings (s)"
        for m in modes
    ]
    return table(header, rows)


def render(results):
    m = results["machine"]
    sections = results.get("sections", {})
    out = [
        "# Benchmark results",
        "",
        f"Last written by `{results.get('command', 'python -m benchmarks.run')}`; each section "
        "says which run produced it (see `benchmarks/README.md` for what is measured and how).",
        "",
        machine_block(m),
        "",
        f"Backend of this run: {m['backend']}. The CPU cores are shared with other jobs, so "
        "absolute times are noisy; the ratios come from runs interleaved epoch by epoch in one "
        "process.",
    ]
    if results.get("datasets"):
        out += ["", "Data:", ""]
        for d in results["datasets"]:
            out.append(f"- {d['title']}: {d['source']}")
            out += [f"  - note: {n}" for n in d["notes"]]
    if "speed" in sections:
        out += [
            "",
            "## Training speed: vae_keras against a tutorial-style reference",
            "",
            _meta_line(sections["speed"]),
            "",
            "Batch size 128, Adam(1e-3), same data. *reference*: a `keras.Model` with a "
            "hand-written `train_step` (`tf.GradientTape`), compiled with Keras' defaults "
            "(`benchmarks/reference.py`). *vae_keras*: `vk.VAE(...).compile(optimizer=Adam())` "
            "with the package's defaults. *reference + vae_keras' settings*: the reference "
            "compiled with the settings vae_keras picked, for an equal-settings comparison. "
            "Ratio: median over rounds of the epoch time divided by the reference's in the same "
            "round (below 1 is faster).",
            "",
            _speed_summary(sections["speed"]),
            "",
            "(Equal settings: the median over rounds of vae_keras' epoch time divided by that "
            "of *reference + vae_keras' settings* in the same round.)",
            "",
            _speed_tables(sections["speed"], "ratio to reference"),
            "",
            HELDOUT_NOTE,
        ]
    if "ablation" in sections:
        out += [
            "",
            "## What makes it faster: vae_keras under each compile setting",
            "",
            _meta_line(sections["ablation"]),
            "",
            "Same method as above on a subset; `spe` is `steps_per_execution`, `jit` is XLA "
            "(`jit_compile`). The first vae_keras row (spe=1, jit off) is Keras' own default on "
            "a CPU-only TensorFlow, i.e. vae_keras before its defaults were changed.",
            "",
            _speed_tables(sections["ablation"], "ratio to reference"),
            "",
            HELDOUT_NOTE,
        ]
    if "memory" in sections:
        out += [
            "",
            "## Peak memory",
            "",
            _meta_line(sections["memory"]),
            "",
            "Each model trains in a fresh Python process (`benchmarks/memprobe.py`) with its own "
            "defaults. *Increase*: the peak resident set size sampled every 5 ms from "
            "`/proc/self/statm` during `fit`, minus the RSS just before `fit` (data loaded, model "
            "built and compiled). *VmHWM*: the process' peak RSS over its whole life "
            "(`/proc/self/status`), including TensorFlow's import and the data loading; "
            "`ru_maxrss` is not used because on Linux a child inherits its parent's value. "
            "(`tracemalloc` does not see TensorFlow's allocations.)",
            "",
            _memory(sections["memory"]),
        ]
    if "quality" in sections:
        out += [
            "",
            "## Quality at a fixed budget: the notebooks' models",
            "",
            _meta_line(sections["quality"]),
            "",
            "Each model as the notebooks build it, `compile(optimizer=Adam(1e-3))` with the "
            "package defaults, `fit` with batch size 128 on the whole training split, then "
            "`evaluate` on the held-out split: the negative ELBO per image in nats (one "
            "sample of z per image), lower is better. The wall time includes tracing and "
            "compilation. The last column is the importance-sampled bound -L_K (Burda et al., "
            "2016; `vae_keras.evaluation.log_likelihood`, K importance samples per image, "
            "standard error over images) on the first held-out images, beside the negative ELBO "
            "on the same images; the difference is how loose the ELBO is.",
            "",
            _quality(sections["quality"]),
        ]
    out += ["", "## The tutorial notebooks", ""]
    if "notebooks" in sections:
        out += [
            _meta_line(sections["notebooks"]),
            "",
            "Every `notebooks/*.ipynb`, executed in order with nbclient in a temporary copy "
            "(the committed notebooks are not touched), each in a fresh kernel. Full "
            "settings are the notebooks' own (their data: MNIST from `VAE_KERAS_DATA_DIR`).",
            "",
            _notebooks(sections["notebooks"]),
        ]
    else:
        out.append("Not run (add `--notebooks quick|full|both`).")
    return "\n".join(out) + "\n"

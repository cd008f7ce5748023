"""Entry point: `python -m benchmarks.run [--quick] [--out PATH] [--notebooks MODE]`.

Runs the sections (speed against the reference, a settings ablation, memory,
quality at a fixed budget, and optionally the notebooks), then writes a
Markdown report to `--out` (default `benchmarks/results.md`) and the raw
numbers to the same path with the suffix `.json`.
"""

import argparse
import datetime
import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"  # the reference is TensorFlow code
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("speed", "ablation", "memory", "quality")
COMMAND = "python -m benchmarks.run"

QUICK = {
    "datasets": [("fashion", {"n_train": 2048, "n_test": 1024})],
    "local_only": True,
    "speed_rounds": {"mlp": 2, "conv": 2},
    "ablation": None,
    "memory": {"n_train": 2048, "steps": 8},
    "quality_epochs": 1,
}
FULL = {
    "datasets": [("fashion", {}), ("mnist", {})],
    "local_only": False,
    "speed_rounds": {"mlp": 8, "conv": 3},
    "small_speed_rounds": {"mlp": 10, "conv": 8},  # datasets under 20,000 images
    "ablation": {"n_train": 12800, "n_test": 2000, "rounds": {"mlp": 5, "conv": 5}},
    "memory": {"n_train": None, "steps": 64},
    "quality_epochs": 5,
}


def log(message):
    print(message, flush=True)


def _section_meta(mode, start):
    try:
        load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "mode": mode,
        "command": COMMAND,
        "finished": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "wall_s": time.perf_counter() - start,
        "load_average_at_end": load,
    }


def run_speed(config, mode, datasets):
    from benchmarks import speed

    start = time.perf_counter()
    out = []
    for data in datasets:
        small = len(data["x_train"]) < 20000 and "small_speed_rounds" in config
        rounds = config["small_speed_rounds" if small else "speed_rounds"]
        for arch in ("mlp", "conv"):
            log(f"  speed: {data['title']}, {arch}, {rounds[arch]} rounds")
            rows = speed.compare(data, arch, speed.speed_variants(arch), rounds[arch], log=log)
            out.append(
                {"dataset": data["title"], "arch": arch, "rounds": rounds[arch], "rows": rows}
            )
    return {"meta": _section_meta(mode, start), "results": out}


def run_ablation(config, mode):
    import vae_keras as vk
    from benchmarks import common, speed

    start = time.perf_counter()
    cfg = config["ablation"]
    data = common.load(
        "fashion",
        allow_download=not config["local_only"],
        n_train=cfg["n_train"],
        n_test=cfg["n_test"],
    )
    steps = vk.VAE.tf_steps_per_execution
    out = []
    for arch in ("mlp", "conv"):
        log(f"  ablation: {data['title']}, {arch}, {cfg['rounds'][arch]} rounds")
        rows = speed.compare(
            data, arch, speed.ablation_variants(steps), cfg["rounds"][arch], log=log
        )
        out.append(
            {"dataset": data["title"], "arch": arch, "rounds": cfg["rounds"][arch], "rows": rows}
        )
    return {"meta": _section_meta(mode, start), "results": out}


def run_memory(config, mode):
    from benchmarks import memprobe

    start = time.perf_counter()
    cfg = config["memory"]
    out = []
    for arch in ("mlp", "conv"):
        for model in ("reference", "vae_keras"):
            log(f"  memory: {arch}, {model}")
            result = memprobe.probe(
                arch,
                model,
                "fashion",
                n_train=cfg["n_train"],
                steps=cfg["steps"],
                local_only=config["local_only"],
            )
            log(f"    {result}")
            out.append(result)
    return {"meta": _section_meta(mode, start), "results": out}


def run_quality(config, mode, datasets):
    from benchmarks import quality

    start = time.perf_counter()
    out = []
    for data in datasets:
        log(f"  quality: {data['title']}, {config['quality_epochs']} epochs")
        rows = quality.run(data, config["quality_epochs"], log=log)
        out.append({"dataset": data["title"], "epochs": config["quality_epochs"], "rows": rows})
    return {"meta": _section_meta(mode, start), "results": out}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small subsets, 1-2 epochs (CI)")
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results.md"))
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (or 'none')",
    )
    parser.add_argument(
        "--notebooks",
        choices=("quick", "full", "both"),
        default=None,
        help="also execute notebooks/*.ipynb (in a temporary copy) and time them",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the sections of an existing <out>.json that this run does not redo",
    )
    args = parser.parse_args(argv)
    sections = (
        []
        if args.sections == "none"
        else [s.strip() for s in args.sections.split(",") if s.strip()]
    )
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    mode = "quick" if args.quick else "full"
    config = QUICK if args.quick else FULL
    if args.quick and "ablation" in sections:
        sections.remove("ablation")

    import keras

    from benchmarks import common, report

    if keras.backend.backend() != "tensorflow":
        parser.error("the benchmarks run on the TensorFlow backend")
    total_start = time.perf_counter()
    json_path = os.path.splitext(args.out)[0] + ".json"
    results = {"sections": {}}
    if args.merge and os.path.exists(json_path):
        with open(json_path) as handle:
            results = json.load(handle)
    results["machine"] = common.machine_info()
    global COMMAND
    COMMAND = " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])])
    results["command"] = COMMAND
    log(f"benchmarks ({mode}): {results['machine']['cpu']}, {results['machine']['cores']} cores")

    datasets = []
    if {"speed", "quality"} & set(sections):
        seen = set()
        for name, kwargs in config["datasets"]:
            data = common.load(name, allow_download=not config["local_only"], **kwargs)
            if data["title"] in seen:
                continue
            seen.add(data["title"])
            log(
                f"  data: {data['title']} <- {data['source']}"
                + "".join(f"\n    note: {n}" for n in data["notes"])
            )
            datasets.append(data)
        results["datasets"] = [{k: d[k] for k in ("title", "source", "notes")} for d in datasets]
    if "speed" in sections:
        results["sections"]["speed"] = run_speed(config, mode, datasets)
    if "ablation" in sections and config["ablation"]:
        results["sections"]["ablation"] = run_ablation(config, mode)
    if "memory" in sections:
        results["sections"]["memory"] = run_memory(config, mode)
    if "quality" in sections:
        results["sections"]["quality"] = run_quality(config, mode, datasets)
    if args.notebooks:
        from benchmarks import notebooks

        start = time.perf_counter()
        runs = results["sections"].get("notebooks", {}).get("results", {}) if args.merge else {}
        for nb_mode in ("quick", "full") if args.notebooks == "both" else (args.notebooks,):
            log(f"  notebooks: {nb_mode} settings")
            runs[nb_mode] = notebooks.run(REPO, nb_mode, log=log)
        results["sections"]["notebooks"] = {"meta": _section_meta(mode, start), "results": runs}
    results["wall_s"] = time.perf_counter() - total_start

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(json_path, "w") as handle:
        json.dump(results, handle, indent=1)
    with open(args.out, "w") as handle:
        handle.write(report.render(results))
    log(f"wrote {args.out} and {json_path} in {results['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of one training run, measured in a fresh process.

`python -m benchmarks.memprobe --arch mlp --model vae_keras` loads the data,
builds and compiles the model, then trains `--steps` batches while a thread
samples the resident set size every 5 ms; it prints one JSON answer line
(`benchmarks.child.reply`). Each probe
runs in its own process so that no model inherits another's allocations.
"""

import argparse
import os
import sys
import time

from benchmarks import child


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", choices=("mlp", "conv"), required=True)
    parser.add_argument("--model", choices=("reference", "vae_keras"), required=True)
    parser.add_argument("--dataset", default="fashion")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--local-only", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks import common
    from benchmarks import models as bm

    start_rss = common.rss_bytes()
    data = common.load(args.dataset, allow_download=not args.local_only, n_train=args.n_train)
    x = data["x_train"]
    build = bm.build_reference if args.model == "reference" else bm.build_vae
    model = build(args.arch)
    before = common.rss_bytes()
    steps = min(args.steps, -(-len(x) // common.BATCH_SIZE))
    begin = time.perf_counter()
    with common.RSSSampler() as sampler:
        model.fit(x, epochs=1, batch_size=common.BATCH_SIZE, steps_per_epoch=steps, verbose=0)
    result = {
        "arch": args.arch,
        "model": args.model,
        "dataset": data["title"],
        "steps": steps,
        "settings": bm.resolved_settings(model),
        "rss_after_imports_mib": start_rss / 2**20,
        "rss_before_fit_mib": before / 2**20,
        "peak_rss_during_fit_mib": sampler.peak / 2**20,
        "fit_rss_increase_mib": (sampler.peak - before) / 2**20,
        "process_max_rss_mib": common.max_rss_bytes() / 2**20,
        "fit_s": time.perf_counter() - begin,
    }
    child.reply(result)


def probe(arch, model, dataset, n_train=None, steps=64, local_only=False, timeout=900):
    """Runs one probe in a fresh process; returns its dict (or an error dict)."""
    cmd = [sys.executable, "-m", "benchmarks.memprobe", "--arch", arch, "--model", model]
    cmd += ["--dataset", dataset, "--steps", str(steps)]
    if n_train is not None:
        cmd += ["--n-train", str(n_train)]
    if local_only:
        cmd.append("--local-only")
    result = child.run_json(
        cmd, env=child.backend_env("tensorflow"), timeout=timeout, what=f"memprobe {arch} {model}"
    )
    if "error" in result:
        tail = " | ".join(result.get("stderr_tail", "").splitlines()[-3:])
        return {"arch": arch, "model": model, "error": f"{result['error']}: {tail}"}
    return result


if __name__ == "__main__":
    main()

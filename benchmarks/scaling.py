"""Epoch time of `vk.VAE` on 1 and on 2 devices, TensorFlow and JAX, data-parallel.

Each (engine, device count) runs in its own process, because the devices must be
configured before the engine initialises. Without GPUs the devices are virtual
CPU devices on one CPU (TensorFlow logical devices; JAX with
`XLA_FLAGS=--xla_force_host_platform_device_count=2`): the two "devices" share
the same cores, so the table shows what the distribution engines cost, not a
speed-up. With `--gpus`, one GPU is compared with all visible GPUs.

    python -m benchmarks.scaling --quick --out /tmp/scaling.md   # about 2 minutes
    python -m benchmarks.scaling                                 # writes benchmarks/scaling.md
    python -m benchmarks.scaling --gpus                          # on a machine with GPUs

One device means no strategy and no distribution, the plain single-device path;
N devices means `tf.distribute.MirroredStrategy` or
`keras.distribution.DataParallel`. Both use the package's default `compile()`,
whose resolved settings the table shows. The global batch is 128 in both cases.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from benchmarks import child

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENGINES = ("tensorflow", "jax")
ARCHS = ("mlp", "conv")
BATCH_SIZE = 128


# ------------------------------------------------------------------- child
def _configure(engine, devices, gpus):
    """Makes `devices` devices visible; must run before the engine initialises."""
    os.environ["KERAS_BACKEND"] = engine
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpus:
        if devices == 1:
            os.environ["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0")[:1]
        return
    if engine == "jax":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}"
        ).strip()
        os.environ["JAX_PLATFORMS"] = "cpu"
    else:
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        if devices > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * devices
            )


# One MirroredStrategy per process: a second one, even after the first is out of
# use, reuses the first one's collective-op keys on CPU and its first all-reduce fails
# with "Shape mismatch in the collective instance" (plain Keras models too).
_STRATEGY = None


def _scope(engine, devices, gpus):
    """The context to build, compile and train in, and the number of devices it uses."""
    import contextlib

    import keras

    if devices == 1:
        return contextlib.nullcontext(), 1
    if engine == "jax":
        found = keras.distribution.list_devices("gpu" if gpus else "cpu")
        return keras.distribution.DataParallel(devices=found).scope(), len(found)
    global _STRATEGY
    if _STRATEGY is None:
        import tensorflow as tf

        names = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        _STRATEGY = tf.distribute.MirroredStrategy(names)
    return _STRATEGY.scope(), _STRATEGY.num_replicas_in_sync


def run_child(engine, devices, gpus, quick):
    _configure(engine, devices, gpus)
    import keras
    import numpy as np

    from benchmarks import common
    from benchmarks import models as bm

    data = common.load("fashion", allow_download=False, n_train=1024 if quick else None)
    x = data["x_train"]
    x = x[: len(x) // BATCH_SIZE * BATCH_SIZE]  # every batch splits evenly (JAX needs it)
    epochs = 3 if quick else 4  # the first is the warm-up
    rows = []
    for arch in ARCHS:
        scope, used = _scope(engine, devices, gpus)
        with scope:
            model = bm.build_vae(arch)
            timer = common.epoch_timer()
            start = time.perf_counter()
            model.fit(x, epochs=epochs, batch_size=BATCH_SIZE, verbose=0, callbacks=[timer])
            wall = time.perf_counter() - start
        timed = timer.times[1:]
        rows.append(
            {
                "engine": engine,
                "arch": arch,
                "devices": used,
                "images": len(x),
                "warmup_s": timer.times[0],
                "epoch_s": float(np.median(timed)),
                "epochs_s": timed,
                "fit_wall_s": wall,
                "settings": bm.resolved_settings(model),
            }
        )
        keras.backend.clear_session()
    return {"data": data["title"], "source": data["source"], "rows": rows}


# ------------------------------------------------------------------ parent
def _spawn(engine, devices, gpus, quick, timeout):
    command = [sys.executable, "-m", "benchmarks.scaling", "--child", engine, str(devices)]
    command += ["--gpus"] * gpus + ["--quick"] * quick
    answer = child.run_json(
        command,
        env=child.backend_env(engine),
        timeout=timeout,
        what=f"{engine} on {devices} device(s)",
    )
    if "error" in answer:
        raise RuntimeError(f"{answer['error']}:\n{answer.get('stderr_tail', '')}")
    return answer


def _gpu_count():
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    except OSError:
        return 0
    return sum(line.startswith("GPU ") for line in done.stdout.splitlines())


def _settings(row):
    s = row["settings"]
    return f"spe {s['steps_per_execution']}, XLA {'on' if s['jit_compile'] else 'off'}"


def render(results, gpus, quick, seconds, machine):
    from benchmarks import common, report

    data = next(iter(results.values()))["data"]
    what = "GPUs" if gpus else "virtual CPU devices"
    lines = [
        f"# Data-parallel scaling: 1 vs N {what}",
        "",
        f"`python -m benchmarks.scaling{' --gpus' if gpus else ''}{' --quick' if quick else ''}`"
        f", {seconds:.0f} s in all. Data: {data}; global batch {BATCH_SIZE}; `vk.VAE` with the "
        "package's default `compile()`; median epoch after one warm-up epoch.",
        "",
        report.machine_block(machine, load_at_end=common.load_average()),
        "",
    ]
    if not gpus:
        lines += [
            "The N devices are virtual devices on the same CPU, sharing its cores: this table",
            "measures the overhead of the distribution engines, not a speed-up.",
            "",
        ]
    rows = []
    for engine in ENGINES:
        for arch in ARCHS:
            base = None
            for key in sorted(k for k in results if k[0] == engine):
                row = next(r for r in results[key]["rows"] if r["arch"] == arch)
                base = base or row["epoch_s"]
                rows.append(
                    [
                        engine,
                        arch,
                        row["devices"],
                        f"{row['epoch_s']:.2f}",
                        f"{row['images'] / row['epoch_s']:,.0f}",
                        f"{row['epoch_s'] / base:.2f}x",
                        f"{row['warmup_s']:.1f}",
                        _settings(row),
                    ]
                )
    lines.append(
        report.table(
            [
                "engine",
                "model",
                "devices",
                "s/epoch",
                "images/s",
                "epoch time / 1 device's",
                "warm-up, s",
                "settings",
            ],
            rows,
        )
    )
    if not gpus:
        lines += [
            "",
            "## 1 vs N GPUs",
            "",
            "Not measured yet: no machine with several GPUs was available. On one, run",
            "`python -m benchmarks.scaling --gpus --out benchmarks/scaling_gpu.md`.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,024 images, 2 timed epochs")
    parser.add_argument("--gpus", action="store_true", help="1 GPU vs all visible GPUs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "scaling.md"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per child process")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "DEVICES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child.reply(run_child(args.child[0], int(args.child[1]), args.gpus, args.quick))
        return
    many = _gpu_count() if args.gpus else 2
    if many < 2:
        parser.error(f"--gpus needs at least 2 GPUs; found {many}")
    from benchmarks import common

    machine = common.machine_info()
    start = time.perf_counter()
    results = {}
    for engine in ENGINES:
        for devices in (1, many):
            print(f"{engine}, {devices} device(s) ...", flush=True)
            results[(engine, devices)] = _spawn(
                engine, devices, args.gpus, args.quick, args.timeout
            )
    text = render(results, args.gpus, args.quick, time.perf_counter() - start, machine)
    pathlib.Path(args.out).write_text(text)
    raw = {f"{engine}/{devices}": value for (engine, devices), value in results.items()}
    pathlib.Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))
    print(text)


if __name__ == "__main__":
    main()

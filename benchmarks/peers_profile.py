"""Where vk.VAE's epoch time goes, against the minimal Keras model: ablations in one process.

    KERAS_BACKEND=torch python -m benchmarks.peers_profile [--arch mlp] [--rounds 8] [--threads 1]
    KERAS_BACKEND=torch python -m benchmarks.peers_profile --torch-profile   # op table

The variants train side by side from the same initial weights (one warm-up
epoch each, then one epoch each in turns), on the MLP or conv model of
`benchmarks.peers` (latent 16) and 4,096 MNIST images. Each epoch's wall time
and the process' CPU time are recorded; with `--threads 1` (one compute
thread in every engine) the CPU time counts the work done and hardly depends
on what else runs on the machine, which makes it the better measure on
shared cores. The ablations
switch off one piece of `vk.VAE`'s training step on an instance (the package
is not changed): the three metric trackers (`reconstruction_loss`, `kl_loss`,
`beta`), the `training_steps` counter, both; and on PyTorch `jit_compile=True`
(`torch.compile`) for both models. Ratios are to the minimal model.

`--torch-profile` instead runs 30 steps of each model under
`torch.profiler` (PyTorch backend only) and prints the operators that take the
most self CPU time, and the count of operator calls per step.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _noop(*args, **kwargs):
    return None


def _vk(arch, settings=None, trackers=True, counter=True, seed=1234):
    import keras

    import vae_keras as vk
    from benchmarks import peers

    keras.utils.set_random_seed(seed)
    encoder, decoder = peers.build_nets(arch)
    model = vk.VAE(encoder, decoder, seed=seed)
    if not trackers:
        for tracker in (
            model.reconstruction_loss_tracker,
            model.kl_loss_tracker,
            model.beta_tracker,
        ):
            tracker.update_state = _noop
    if not counter:
        model.training_steps.assign_add = _noop
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), **(settings or {}))
    return model


def _minimal(arch, settings=None, seed=1234):
    import keras

    from benchmarks import backends
    from benchmarks import models as bm

    template = _vk(arch, seed=seed)
    model = backends._minimal_class()(template.encoder, template.decoder, seed)
    chosen = dict(bm.resolved_settings(template), **(settings or {}))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), **chosen)
    return model


def variants(backend):
    out = [
        ("minimal", lambda arch, s: _minimal(arch), None),
        ("vk.VAE", lambda arch, s: _vk(arch), None),
        ("vk.VAE, no trackers", lambda arch, s: _vk(arch, trackers=False), None),
        ("vk.VAE, no step counter", lambda arch, s: _vk(arch, counter=False), None),
        (
            "vk.VAE, neither",
            lambda arch, s: _vk(arch, trackers=False, counter=False),
            None,
        ),
    ]
    if backend == "torch":
        out += [
            (
                "minimal, jit_compile=True",
                lambda arch, s: _minimal(arch, {"jit_compile": True}),
                None,
            ),
            ("vk.VAE, jit_compile=True", lambda arch, s: _vk(arch, {"jit_compile": True}), None),
        ]
    return out


def torch_profile(arch, data, steps=30):
    import keras
    from torch.profiler import ProfilerActivity, profile

    x = data["x_train"][: steps * 128]
    for name, build in (("minimal", _minimal), ("vk.VAE", _vk)):
        model = build(arch)
        model.fit(x, epochs=1, batch_size=128, verbose=0)  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.fit(x, epochs=1, batch_size=128, verbose=0)
        events = prof.key_averages()
        calls = sum(e.count for e in events if e.key.startswith("aten::"))
        total = sum(e.self_cpu_time_total for e in events) / 1e3
        print(f"\n=== {name}: {calls / steps:.0f} aten calls per step, self CPU {total:.0f} ms")
        print(events.table(sort_by="self_cpu_time_total", row_limit=18))
        keras.backend.clear_session()


def _limit_threads(threads):
    """One engine's compute threads; must run before the backend initialises."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
            + f" intra_op_parallelism_threads={threads}"
        ).strip()
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    else:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)


def compare(data, arch, chosen, rounds, log):
    """Trains the variants in turns; returns rows with wall and CPU time per epoch."""
    import time

    import keras
    import numpy as np

    from benchmarks import speed

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.wall = time.perf_counter() - self.start[0]
            self.cpu = time.process_time() - self.start[1]

    built = [(name, build(arch, None)) for name, build, _ in chosen]
    for _, model in built[1:]:
        speed.copy_initial_weights(built[0][1], model)
    wall = {name: [] for name, _ in built}
    cpu = {name: [] for name, _ in built}
    x = data["x_train"]
    warmup = {}
    for r in range(rounds + 1):
        for name, model in built:
            clock = Clock()
            model.fit(x, epochs=1, batch_size=128, verbose=0, callbacks=[clock])
            if not r:
                warmup[name] = clock.wall
            else:
                wall[name].append(clock.wall)
                cpu[name].append(clock.cpu)
        if r:
            log(f"    round {r}: " + ", ".join(f"{n} {cpu[n][-1]:.2f}" for n, _ in built))
    base_wall, base_cpu = np.array(wall[built[0][0]]), np.array(cpu[built[0][0]])
    rows = []
    for name, model in built:
        w, c = np.array(wall[name]), np.array(cpu[name])
        rows.append(
            {
                "variant": name,
                "settings": {
                    "steps_per_execution": int(model.steps_per_execution),
                    "jit_compile": bool(model.jit_compile),
                },
                "warmup_wall_s": warmup[name],
                "median_wall_s": float(np.median(w)),
                "median_cpu_s": float(np.median(c)),
                "wall_ratio": float(np.median(w / base_wall)),
                "cpu_ratio": float(np.median(c / base_cpu)),
                "cpu_ratio_range": (float((c / base_cpu).min()), float((c / base_cpu).max())),
                "heldout_neg_elbo": float(
                    model.evaluate(data["x_test"], batch_size=1000, verbose=0, return_dict=True)[
                        "loss"
                    ]
                ),
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--n-train", type=int, default=4096)
    parser.add_argument("--torch-profile", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="compute threads per engine")
    parser.add_argument("--only", default=None, help="comma-separated variant names")
    args = parser.parse_args(argv)
    if args.threads:
        _limit_threads(args.threads)
    import keras

    from benchmarks import common

    data = common.load("mnist", allow_download=False, n_train=args.n_train, n_test=2000)
    backend = keras.backend.backend()
    if args.torch_profile:
        return torch_profile(args.arch, data)
    print(
        f"{backend}, {args.arch}, {data['title']}, threads {args.threads or 'default'}, "
        f"load {common.load_average()}",
        flush=True,
    )
    chosen = variants(backend)
    if args.only:
        keep = args.only.split(",")
        chosen = [v for v in chosen if v[0] in keep or v[0] == "minimal"]
    rows = compare(
        data, args.arch, chosen, args.rounds, log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    for row in rows:
        s = row["settings"]
        low, high = row["cpu_ratio_range"]
        print(
            f"{backend:10s} {args.arch:4s} {row['variant']:26s} spe={s['steps_per_execution']:<2d} "
            f"jit={s['jit_compile']!s:5s} CPU {row['median_cpu_s']:.3f} s, wall "
            f"{row['median_wall_s']:.3f} s; to minimal: CPU {row['cpu_ratio']:.3f} "
            f"({low:.2f}-{high:.2f}), wall {row['wall_ratio']:.3f}; "
            f"warm-up {row['warmup_wall_s']:.1f} s; -ELBO {row['heldout_neg_elbo']:.2f}",
            flush=True,
        )
    print(f"load at the end {common.load_average()}")


if __name__ == "__main__":
    main()

"""Transposed convolutions on JAX: Keras' `Conv2DTranspose` against `vae_keras.convolution`'s.

    KERAS_BACKEND=jax python -m benchmarks.convolution [--quick] [--repeats 7]

Two measurements, each interleaving the two layers (A, B, A, B, ...) in one
process so that load from other jobs hits both alike; medians and ranges over
the repeats:

1. per layer of the notebooks' convolutional decoder (`vk.build_conv_decoder`,
   7x7x64 -> 14x14x64 -> 28x28x32 -> 28x28x1, batch 128): the forward pass and
   the forward + backward pass (gradients w.r.t. the input and the weights),
   each one `jax.jit`-compiled function, in ms per call;
2. training epochs of `vk.VAE` with `benchmarks.peers`' convolutional nets
   (latent 16, 8,000 MNIST images or 2,048 with `--quick`), the decoder's
   transposed convolutions being Keras' layer or the package's (same weights).

Each training row also gives the training FLOPs per epoch (`benchmarks.flops`)
and the achieved GFLOP/s beside the float32 matrix-product rate measured in the
same run.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def swap_transposed(model, cls):
    """A copy of functional `model` whose `Conv2DTranspose` layers are `cls`, same weights."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.layers.Conv2DTranspose):
            return cls.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _spread(values):
    return statistics.median(values), min(values), max(values)


def _timed(fn, args, calls):
    import jax

    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls * 1e3


def layer_profile(repeats, calls, batch=128):
    """Rows `(layer, pass, keras ms, package ms)` for the decoder's transposed convolutions."""
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    import vae_keras as vk
    from vae_keras.convolution import Conv2DTranspose

    decoder = vk.build_conv_decoder(latent_dim=2)
    rows = []
    for layer in decoder.layers:
        if not isinstance(layer, keras.layers.Conv2DTranspose):
            continue
        x = jnp.asarray(
            np.random.default_rng(0).normal(size=(batch, *layer.input.shape[1:])), "float32"
        )
        fns = {}
        for name, cls in (("keras", keras.layers.Conv2DTranspose), ("package", Conv2DTranspose)):
            twin = cls.from_config(layer.get_config())
            twin.build(x.shape)
            twin.set_weights(layer.get_weights())
            values = [v.value for v in twin.trainable_variables]

            def forward(values, x, twin=twin):
                return twin.stateless_call(values, [], x)[0]

            def loss(values, x, forward=forward):
                return jnp.sum(forward(values, x) ** 2)

            fns[name] = {
                "forward": (jax.jit(forward), (values, x)),
                "forward+backward": (jax.jit(jax.grad(loss, argnums=(0, 1))), (values, x)),
            }
        shape = f"{tuple(layer.input.shape[1:])} -> {tuple(layer.output.shape[1:])}"
        label = f"{layer.name} {shape}, stride {layer.strides[0]}"
        for what in ("forward", "forward+backward"):
            times = {"keras": [], "package": []}
            for _ in range(repeats):
                for name in times:
                    fn, args = fns[name][what]
                    times[name].append(_timed(fn, args, calls))
            ratios = [a / b for a, b in zip(times["keras"], times["package"])]
            rows.append(
                {
                    "layer": label,
                    "pass": what,
                    "keras_ms": _spread(times["keras"]),
                    "package_ms": _spread(times["package"]),
                    "speed_up": _spread(ratios),
                }
            )
            print(f"  {label} {what}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def training(n_train, rounds):
    """Epoch times of vk.VAE with Keras' and the package's transposed convolutions, in turns."""
    import keras

    import vae_keras as vk
    from benchmarks import common, flops, peers
    from vae_keras.convolution import Conv2DTranspose

    data = common.load("mnist", allow_download=False, n_train=n_train, n_test=500)
    x = data["x_train"]
    keras.utils.set_random_seed(peers.SEED)
    encoder, decoder = peers.build_nets("conv")
    models = {}
    for name, cls in (("keras", keras.layers.Conv2DTranspose), ("package", Conv2DTranspose)):
        model = vk.VAE(encoder, swap_transposed(decoder, cls), seed=peers.SEED)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
        models[name] = model
    per_epoch = flops.training_flops([encoder, decoder], len(x))
    rate_before = flops.matmul_rate()
    warmup, times = {}, {name: [] for name in models}
    for r in range(rounds + 1):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, epochs=1, batch_size=128, verbose=0)
            seconds = time.perf_counter() - start
            (times[name].append(seconds) if r else warmup.__setitem__(name, seconds))
        print(f"  round {r}: {[round(t[-1], 2) for t in times.values() if t]}", file=sys.stderr)
    rate = statistics.median([rate_before, flops.matmul_rate()])
    ratios = [a / b for a, b in zip(times["keras"], times["package"])]
    return {
        "data": data["title"],
        "n_train": len(x),
        "settings": {
            "steps_per_execution": int(models["package"].steps_per_execution),
            "jit_compile": bool(models["package"].jit_compile),
        },
        "gflop_per_epoch": per_epoch / 1e9,
        "matmul_gflops": rate / 1e9,
        "warmup_s": warmup,
        "epoch_s": {name: _spread(t) for name, t in times.items()},
        "achieved_gflops": {
            name: per_epoch / statistics.median(t) / 1e9 for name, t in times.items()
        },
        "speed_up": _spread(ratios),
    }


def render(result):
    from benchmarks import report

    def cell(spread, digits=2):
        return f"{spread[0]:.{digits}f} ({spread[1]:.{digits}f}-{spread[2]:.{digits}f})"

    lines = [
        "# Transposed convolutions on JAX: Keras' layer and vae_keras'",
        "",
        report.machine_block(result["machine"], load_at_end=result["load_at_end"]),
        "",
        f"`{result['command']}`; the two layers interleaved in one process, "
        f"{result['repeats']} repeats; medians (range).",
        "",
        "## Per layer (the notebooks' decoder, batch 128, jax.jit)",
        "",
        report.table(
            ["layer", "pass", "Keras' layer, ms", "vae_keras', ms", "speed-up"],
            [
                [
                    r["layer"],
                    r["pass"],
                    cell(r["keras_ms"], 1),
                    cell(r["package_ms"], 1),
                    cell(r["speed_up"]),
                ]
                for r in result["layers"]
            ],
        ),
    ]
    t = result.get("training")
    if t:
        lines += [
            "",
            f"## Training vk.VAE (peers' conv nets, {t['n_train']:,} images, batch 128, "
            f"spe={t['settings']['steps_per_execution']}, jit={t['settings']['jit_compile']})",
            "",
            f"{t['gflop_per_epoch']:.1f} GFLOP per epoch (counted from the architecture, "
            f"`benchmarks/flops.py`); float32 2048x2048 matrix product in the same run: "
            f"{t['matmul_gflops']:.0f} GFLOP/s.",
            "",
            report.table(
                ["decoder layers", "warm-up epoch, s", "s/epoch", "GFLOP/s", "of matmul rate"],
                [
                    [
                        name,
                        f"{t['warmup_s'][name]:.1f}",
                        cell(t["epoch_s"][name]),
                        f"{t['achieved_gflops'][name]:.1f}",
                        f"{t['achieved_gflops'][name] / t['matmul_gflops']:.0%}",
                    ]
                    for name in ("keras", "package")
                ],
            ),
            "",
            f"Epoch time, Keras' layer / vae_keras': {cell(t['speed_up'])} (per-round ratios).",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--out", default=None, help="Markdown file (and .json beside it)")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import json
    import pathlib

    import keras

    from benchmarks import common

    if keras.backend.backend() != "jax":
        parser.error(f"runs on the JAX backend; received KERAS_BACKEND={keras.backend.backend()}")
    repeats = args.repeats or (3 if args.quick else 7)
    result = {
        "command": "python -m benchmarks.convolution " + " ".join(argv or sys.argv[1:]),
        "machine": common.machine_info(),
        "repeats": repeats,
        "layers": layer_profile(repeats, calls=2 if args.quick else 5),
    }
    if not args.no_training:
        rounds = args.rounds or (1 if args.quick else 5)
        result["training"] = training(2048 if args.quick else 8000, rounds)
    result["load_at_end"] = common.load_average()
    text = render(result)
    if args.out:
        out = pathlib.Path(args.out)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(text)


if __name__ == "__main__":
    main()

"""Training speed of `vk.VAE` against the tutorial-style reference, side by side.

All variants of one architecture live in one process. Each first trains one
warm-up epoch (tracing, XLA compilation, optimizer state), then the variants
take turns, one epoch each (A, B, C, A, B, C, ...), so that the load other
processes put on the machine hits them alike. An epoch is timed from Keras'
`on_epoch_begin` to `on_epoch_end`. The ratio of a variant is the median over
rounds of (its epoch time / the reference's epoch time in the same round).
"""

import time

import keras
import numpy as np

from benchmarks import common
from benchmarks import models as bm


def copy_initial_weights(source, target):
    """Gives `target` the trainable weights of `source`, sub-model by sub-model.

    Layer for layer the architectures are the same, but the reference has one
    extra layer (its sampling layer, which draws a seed), so the same global
    seed gives the two different initial weights. Copying them removes that
    luck of the draw from the comparison of held-out losses.
    """
    for part in ("encoder", "decoder"):
        src = getattr(source, part).trainable_weights
        dst = getattr(target, part).trainable_weights
        shapes = [tuple(w.shape) for w in src], [tuple(w.shape) for w in dst]
        if shapes[0] != shapes[1]:
            raise RuntimeError(f"{part}: weight shapes differ: {shapes[0]} vs {shapes[1]}")
        for a, b in zip(src, dst):
            # a copy: on JAX, fit donates the source's buffers, which would delete both
            b.assign(np.array(keras.ops.convert_to_numpy(a.value)))


def _evaluate(model, data):
    logs = model.evaluate(data["x_test"], batch_size=1000, verbose=0, return_dict=True)
    return float(logs["loss"])


def compare(data, arch, variants, rounds, log=print):
    """Trains `variants` [(name, builder, settings)] in turns; returns one row each.

    `builder(arch, settings)` returns a compiled model; the first variant is the
    baseline of the ratios.
    """
    x = data["x_train"]
    built = []
    for name, builder, settings in variants:
        model = builder(arch, settings)
        built.append((name, model))
    counts = {bm.parameter_count(m) for _, m in built}
    if len(counts) != 1:
        raise RuntimeError(f"{arch}: the variants differ in parameter count: {counts}")
    for _, model in built[1:]:
        copy_initial_weights(built[0][1], model)
    warmup, times, fit_wall = {}, {name: [] for name, _ in built}, {}
    for name, model in built:
        timer = common.epoch_timer()
        start = time.perf_counter()
        model.fit(x, epochs=1, batch_size=common.BATCH_SIZE, verbose=0, callbacks=[timer])
        fit_wall[name] = time.perf_counter() - start
        warmup[name] = timer.times[0]
        log(f"    warm-up {name}: {warmup[name]:.2f} s")
    for r in range(rounds):
        for name, model in built:
            timer = common.epoch_timer()
            model.fit(x, epochs=1, batch_size=common.BATCH_SIZE, verbose=0, callbacks=[timer])
            times[name].append(timer.times[0])
        log(
            f"    round {r + 1}/{rounds}: "
            + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items())
        )
    base = np.array(times[built[0][0]])
    rows = []
    for name, model in built:
        t = np.array(times[name])
        ratios = t / base
        rows.append(
            {
                "variant": name,
                "settings": bm.resolved_settings(model),
                "parameters": bm.parameter_count(model),
                "warmup_epoch_s": warmup[name],
                "epoch_s": [float(v) for v in t],
                "median_epoch_s": float(np.median(t)),
                "images_per_s": float(len(x) / np.median(t)),
                "ratio": float(np.median(ratios)),
                "ratio_min": float(ratios.min()),
                "ratio_max": float(ratios.max()),
                "ratio_of_medians": float(np.median(t) / np.median(base)),
                "heldout_neg_elbo": _evaluate(model, data),
                "epochs_trained": 1 + rounds,
            }
        )
    return rows


def vk_default_settings(arch):
    """What `vk.VAE.compile()` resolves to for this architecture here."""
    return bm.resolved_settings(bm.build_vae(arch))


def speed_variants(arch):
    """Reference (tutorial defaults), vk.VAE (package defaults), reference with vk's settings."""
    vk_settings = vk_default_settings(arch)
    return [
        ("reference", bm.build_reference, None),
        ("vae_keras", bm.build_vae, None),
        ("reference + vae_keras' settings", bm.build_reference, vk_settings),
    ]


def ablation_variants(steps):
    """vk.VAE under each (steps_per_execution, jit_compile), against the plain reference."""
    rows = [("reference", bm.build_reference, None)]
    for spe in (1, steps):
        for jit in (False, True):
            settings = {"steps_per_execution": spe, "jit_compile": jit}
            rows.append((f"vae_keras spe={spe} jit={jit}", bm.build_vae, settings))
    return rows

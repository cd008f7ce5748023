"""Speed per backend: `vk.VAE` against a minimal model, and the mixed-precision policies.

`python -m benchmarks.backends [--quick] [--backends tensorflow,jax,torch] [--out PATH]`

For each backend (one subprocess each, since Keras reads `KERAS_BACKEND` once)
and each architecture (the MLP and the convolutional model of `speed.py`), the
variants below train side by side from the same initial weights, taking turns
one epoch at a time (see `speed.compare`):

1. `minimal step`: the same encoder and decoder in a `keras.Model` whose `call`
   runs the forward pass once (encoder, sampling, decoder) and whose
   `compute_loss` is the negative ELBO written by hand, with the compile
   settings `vk.VAE` resolves to on that backend (equal settings);
2. `vae_keras`: `vk.VAE` with its default `compile()`;
3. `vae_keras, mixed_bfloat16` and 4. `vae_keras, mixed_float16`: the same
   model built under Keras' global mixed-precision policy.

The ratio of each variant is against the minimal step; the held-out negative
ELBO after the timed epochs shows whether a policy changed what was learned.
"""

import argparse
import json
import os
import sys
import time

from benchmarks import child

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
POLICIES = ("mixed_bfloat16", "mixed_float16")


def _minimal_class():
    import keras
    from keras import ops

    class MinimalVAE(keras.Model):
        """One forward pass in `call`, the negative ELBO by hand in `compute_loss`."""

        def __init__(self, encoder, decoder, seed):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            z_mean, z_log_var = self.encoder(x, training=training)
            eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            z = z_mean + ops.exp(0.5 * z_log_var) * eps
            return self.decoder(z, training=training), z_mean, z_log_var

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            reconstruction, z_mean, z_log_var = y_pred
            bce = ops.sum(ops.binary_crossentropy(x, reconstruction), axis=(1, 2, 3))
            kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
            return ops.mean(bce + kl)

    return MinimalVAE


def build_minimal(arch, settings=None, seed=1234):
    import keras

    import vae_keras as vk
    from benchmarks import models as bm

    template = bm.build_vae(arch, seed=seed)  # same sub-models, and vk's resolved settings
    model = _minimal_class()(template.encoder, template.decoder, seed)
    model.compile(optimizer=keras.optimizers.Adam(), **bm.resolved_settings(template))
    assert isinstance(template, vk.VAE)
    return model


def build_mixed(policy):
    def build(arch, settings=None, seed=1234):
        import keras

        from benchmarks import models as bm

        keras.mixed_precision.set_global_policy(policy)
        try:
            return bm.build_vae(arch, settings, seed=seed)
        finally:
            keras.mixed_precision.set_global_policy("float32")

    return build


def worker(args):
    """Runs in a subprocess with KERAS_BACKEND set: prints one JSON line of results."""
    import keras

    from benchmarks import common, speed
    from benchmarks import models as bm

    backend = keras.backend.backend()
    data = common.load(args.dataset, allow_download=False, n_train=args.n_train, n_test=2000)
    variants = [
        ("minimal step", build_minimal, None),
        ("vae_keras", bm.build_vae, None),
    ] + [(f"vae_keras, {p}", build_mixed(p), None) for p in POLICIES]
    results = []
    for arch in args.archs.split(","):
        rounds = args.rounds
        print(f"  {backend}: {data['title']}, {arch}, {rounds} rounds", file=sys.stderr, flush=True)
        rows = speed.compare(
            data, arch, variants, rounds, log=lambda m: print(m, file=sys.stderr, flush=True)
        )
        results.append({"arch": arch, "rows": rows})
    child.reply(
        {
            "backend": backend,
            "dataset": data["title"],
            "keras": keras.__version__,
            "results": results,
        }
    )


def _table(report_rows):
    from benchmarks import report

    rows = []
    for entry in report_rows:
        for arch in entry["results"]:
            for row in arch["rows"]:
                s = row["settings"]
                rows.append(
                    [
                        entry["backend"],
                        arch["arch"],
                        row["variant"],
                        f"spe={s['steps_per_execution']}, jit={s['jit_compile']}",
                        f"{row['median_epoch_s']:.2f}",
                        f"{row['ratio']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})",
                        f"{row['ratio_of_medians']:.2f}",
                        f"{row['heldout_neg_elbo']:.2f}",
                    ]
                )
    return report.table(
        [
            "backend",
            "architecture",
            "variant",
            "compile settings",
            "median s/epoch",
            "ratio to minimal (median over rounds, range)",
            "ratio of medians",
            "held-out -ELBO",
        ],
        rows,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,024 images, 1 round, MLP only")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "backends.md"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--n-train", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--archs", default="mlp,conv")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per backend")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.n_train, args.rounds, args.archs = 1024, 1, "mlp"
    from benchmarks import common, report

    machine = common.machine_info()
    results, errors, start = [], [], time.perf_counter()
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r}; expected some of {BACKENDS}")
        command = [sys.executable, "-m", "benchmarks.backends", "--worker"]
        command += ["--dataset", args.dataset, "--n-train", str(args.n_train)]
        command += ["--rounds", str(args.rounds), "--archs", args.archs]
        print(f"backend {backend} ...", flush=True)
        answer = child.run_json(
            command, env=child.backend_env(backend), timeout=args.timeout, what=backend
        )
        if "error" in answer:
            sys.stderr.write(answer.get("stderr_tail", "") + "\n")
            errors.append(answer["error"])
            continue
        results.append(answer)
    header = (
        "# Speed per backend and mixed precision\n\n"
        f"Command: `python -m benchmarks.backends{' --quick' if args.quick else ''}`; "
        f"data: {results[0]['dataset'] if results else '-'}; batch size 128; "
        f"{args.rounds} timed round(s) after one warm-up epoch; "
        f"wall time {time.perf_counter() - start:.0f} s.\n\n"
        + report.machine_block(machine, load_at_end=common.load_average())
        + "\n"
    )
    header += "".join(f"\n**Error**: {error}\n" for error in errors)
    text = header + "\n" + _table(results) + "\n"
    with open(args.out, "w") as handle:
        handle.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as handle:
        json.dump(results, handle, indent=1)
    print(text)
    if errors:
        raise SystemExit(f"{len(errors)} backend(s) failed: {'; '.join(errors)}")


if __name__ == "__main__":
    main()

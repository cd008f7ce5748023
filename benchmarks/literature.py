"""Binarized MNIST in the units of the literature: VAE and IWAE beside Burda et al. (2016).

Burda, Grosse & Salakhutdinov (2016, "Importance Weighted Autoencoders", Table 1) report
-log p(x), estimated as -L_5000, for a model with one stochastic layer on dynamically
binarized MNIST: encoder 784-200-200-(50, 50) and decoder 50-200-200-784, tanh hidden
units, a Bernoulli likelihood, trained as a VAE (86.76 nats) and with the IWAE objective
L_k (k = 5: 85.54, k = 50: 84.78), with Adam (epsilon 1e-4), batches of 20 and a learning
rate of 1e-3 * 10^(-i/7) for 3^i passes, i = 0..7 (3,280 passes in all). Pythae reports
89.78 nats (-L_200) for its VAE on binary MNIST, reproducing Rezende & Mohamed (2015).

This run trains the same networks with `vae_keras.VAE(..., importance_samples=k)` on the
training images this machine has (offline: 8,000 of MNIST's official test split), binarized
afresh every epoch (`vae_keras.datasets.DynamicBinarization`), for the first stages of
Burda et al.'s schedule (four stages, 1 + 3 + 9 + 27 = 40 passes, for the VAE, k = 5 and
k = 50; five stages, 121 passes, for the VAE and k = 5), and evaluates -L_5000 on the
held-out images binarized once (`vae_keras.datasets.binarize` with a fixed seed), with
standard errors over images and paired standard errors of the differences to the VAE.

    python -m benchmarks.literature [--quick] [--out benchmarks/literature.md]

writes the Markdown table to `--out` and the same numbers to a `.json` beside it. The full
run takes about half an hour on 2 CPU cores; `--quick` (under a minute) only proves that the
script runs, on 1,000 training images for 4 passes.
"""

import argparse
import json
import os
import time

import numpy as np

from benchmarks import common

# Burda et al. (2016), Table 1, one stochastic layer, MNIST, -L_5000 in nats.
BURDA = {1: 86.76, 5: 85.54, 50: 84.78}
# Pythae's reproduction of the VAE of Rezende & Mohamed (2015), binary MNIST, -L_200.
PYTHAE_VAE = 89.78

SEED = 1234
BATCH_SIZE = 20  # Burda et al.'s
ADAM_EPSILON = 1e-4  # Burda et al.'s
# (k, stages of Burda et al.'s schedule): k = 1 is the VAE. Four stages are 40 passes; k = 50
# costs about 17 s per pass here, so only the VAE and k = 5 also get a fifth stage (121 passes).
FULL = {
    "runs": ((1, 4), (5, 4), (50, 4), (1, 5), (5, 5)),
    "n_train": None,
    "n_test": None,
    "num_samples": 5000,
}
QUICK = {"runs": ((1, 2), (5, 2), (50, 2)), "n_train": 1000, "n_test": 100, "num_samples": 500}


def burda_networks(latent_dim=50, hidden_units=200, input_shape=(28, 28, 1)):
    """Burda et al.'s one-stochastic-layer encoder and decoder (tanh MLPs, sigmoid output)."""
    import keras

    images = keras.Input(input_shape)
    h = keras.layers.Flatten()(images)
    for _ in range(2):
        h = keras.layers.Dense(hidden_units, activation="tanh")(h)
    encoder = keras.Model(
        images, [keras.layers.Dense(latent_dim)(h), keras.layers.Dense(latent_dim)(h)]
    )
    z = keras.Input((latent_dim,))
    h = z
    for _ in range(2):
        h = keras.layers.Dense(hidden_units, activation="tanh")(h)
    pixels = keras.layers.Dense(int(np.prod(input_shape)), activation="sigmoid")(h)
    return encoder, keras.Model(z, keras.layers.Reshape(input_shape)(pixels))


def schedule_passes(stages):
    """Passes of Burda et al.'s first `stages` stages: 3^i for i < stages."""
    return [3**i for i in range(stages)]


def learning_rate(stages, steps_per_epoch):
    """1e-3 * 10^(-i/7) during stage i, a schedule on the optimizer's step counter."""
    import keras

    ends = np.cumsum(schedule_passes(stages))[:-1] * steps_per_epoch
    values = [1e-3 * 10 ** (-i / 7) for i in range(stages)]
    if stages == 1:
        return values[0]
    # PiecewiseConstantDecay keeps a value up to and including its boundary step.
    return keras.optimizers.schedules.PiecewiseConstantDecay([int(e) - 1 for e in ends], values)


def train(x_train, k, stages, seed=SEED, batch_size=BATCH_SIZE):
    """Trains one model on dynamically binarized images; returns it, its losses and wall time."""
    import keras

    import vae_keras as vk

    keras.utils.set_random_seed(seed)
    encoder, decoder = burda_networks()
    model = vk.VAE(encoder, decoder, seed=seed, importance_samples=k)
    data = vk.datasets.DynamicBinarization(x_train, batch_size=batch_size, seed=seed)
    optimizer = keras.optimizers.Adam(learning_rate(stages, len(data)), epsilon=ADAM_EPSILON)
    model.compile(optimizer=optimizer)
    start = time.perf_counter()
    history = model.fit(data, epochs=sum(schedule_passes(stages)), verbose=0)
    return model, history.history["loss"], time.perf_counter() - start


def bounds(model, x_binary, num_samples, seed=SEED):
    """Per image: L_K (K = num_samples) and the ELBO estimated from the same K draws."""
    from vae_keras import evaluation

    log_w = evaluation.log_importance_weights(model, x_binary, num_samples=num_samples, seed=seed)
    top = log_w.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1)), log_w.mean(axis=1)


def stderr(values):
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def _data(n_train, n_test):
    import vae_keras as vk

    ((x_train, _), (x_test, _)), info = vk.datasets.load_mnist(return_info=True)
    x_train = (x_train.astype("float32") / 255.0)[..., None][:n_train]
    x_test = (x_test.astype("float32") / 255.0)[..., None][:n_test]
    return x_train, x_test, info


def run(settings, log=print):
    """Trains and evaluates every `(k, stages)` in `settings["runs"]`; returns a JSON-ready dict."""
    import vae_keras as vk

    wall_start, load_start = time.perf_counter(), common.load_average()
    x_train, x_test, info = _data(settings["n_train"], settings["n_test"])
    x_binary = vk.datasets.binarize(x_test, seed=SEED)  # one fixed draw of the held-out set
    num_samples = settings["num_samples"]
    log(
        f"{len(x_train):,} training images, batch {BATCH_SIZE}; "
        f"-L_{num_samples} on {len(x_test):,} held-out images"
    )
    rows, per_image = [], {}
    for k, stages in settings["runs"]:
        passes = sum(schedule_passes(stages))
        model, losses, wall = train(x_train, k, stages)
        start = time.perf_counter()
        bound, elbo = bounds(model, x_binary, num_samples)
        eval_wall = time.perf_counter() - start
        per_image[k, passes] = bound
        row = {
            "model": "VAE" if k == 1 else f"IWAE, k = {k}",
            "k": k,
            "passes": passes,
            "learning_rates": [1e-3 * 10 ** (-i / 7) for i in range(stages)],
            "neg_ll": float(-bound.mean()),
            "neg_ll_stderr": stderr(bound),
            "neg_elbo": float(-elbo.mean()),
            "neg_elbo_stderr": stderr(elbo),
            "final_training_loss": float(losses[-1]),
            "train_wall_s": wall,
            "eval_wall_s": eval_wall,
            "load_average_after": common.load_average(),
            "burda_2016": BURDA.get(k),
        }
        if k != 1 and (1, passes) in per_image:
            diff = -(bound - per_image[1, passes])  # -L of this model minus -L of the VAE
            row["minus_vae"] = float(diff.mean())
            row["minus_vae_paired_stderr"] = stderr(diff)
        rows.append(row)
        log(
            f"k = {k}, {passes} passes: -L_{num_samples} {row['neg_ll']:.2f} ± "
            f"{row['neg_ll_stderr']:.2f}, -ELBO {row['neg_elbo']:.2f}"
            + (f", minus VAE {row['minus_vae']:+.2f}" if "minus_vae" in row else "")
            + f"; training {wall:.0f} s, evaluation {eval_wall:.0f} s, "
            f"load {row['load_average_after']}"
        )
    return {
        "settings": {
            "runs": [list(r) for r in settings["runs"]],
            "num_samples": num_samples,
            "batch_size": BATCH_SIZE,
            "adam_epsilon": ADAM_EPSILON,
            "seed": SEED,
            "n_train": len(x_train),
            "n_test": len(x_test),
            "data": info["description"],
            "test_binarization": f"vk.datasets.binarize(held-out images, seed={SEED})",
        },
        "rows": rows,
        "pythae_vae": PYTHAE_VAE,
        "wall_s": time.perf_counter() - wall_start,
        "machine": common.machine_info(),
        "load_average_start": load_start,
        "load_average_end": common.load_average(),
    }


def findings(result):
    """Bullet lines read off the rows: the IWAE's paired gains, the -ELBO, the gap to the paper."""
    rows = result["rows"]
    vae = {r["passes"]: r for r in rows if r["k"] == 1}
    lines = []
    for r in rows:
        if "minus_vae" not in r:
            continue
        d, se = r["minus_vae"], r["minus_vae_paired_stderr"]
        if abs(d) < 2 * se:
            verdict = f"no clear difference from the VAE ({d:+.2f} ± {se:.2f} nats)"
        else:
            verdict = (
                f"{'better' if d < 0 else 'worse'} than the VAE by {abs(d):.2f} ± {se:.2f} nats"
            )
        elbo = r["neg_elbo"] - vae[r["passes"]]["neg_elbo"]
        lines.append(
            f"* {r['model']}, {r['passes']} passes: -L_{result['settings']['num_samples']} "
            f"{verdict} (paired)"
            + (
                f"; Burda et al.: {BURDA[1] - r['burda_2016']:.2f} nats better. "
                if r["burda_2016"] is not None
                else ". "
            )
            + f"Its -ELBO is {abs(elbo):.2f} nats {'higher' if elbo > 0 else 'lower'} than the VAE's."
        )
    longest = max(vae)
    lines.append(
        f"* The VAE after {longest} passes is {vae[longest]['neg_ll'] - BURDA[1]:.2f} nats behind "
        f"Burda et al.'s VAE (-L_5000 {vae[longest]['neg_ll']:.2f} against {BURDA[1]:.2f})."
    )
    return lines


def markdown(result, command):
    s = result["settings"]
    k_eval = s["num_samples"]
    lines = [
        "# Binarized MNIST beside the literature",
        "",
        f"`{command}`: Burda et al.'s one-stochastic-layer networks (784-200-200-50, tanh; "
        "decoder mirrored, Bernoulli) trained on dynamically binarized images as a VAE and "
        f"with the IWAE bound L_k; -L_{k_eval} and -ELBO on {s['n_test']:,} held-out binarized "
        'images in nats (lower is better), ± standard error over images; "minus VAE" is the '
        "per-image difference to the VAE trained for as many passes, with its paired "
        "standard error (same images, same binarization).",
        "",
        f"| model | passes | here: -L_{k_eval} | here: -ELBO | minus VAE (± paired s.e.) | "
        "Burda et al. 2016, -L_5000 | training wall time | load average after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        minus = (
            f"{r['minus_vae']:+.2f} ± {r['minus_vae_paired_stderr']:.2f}"
            if "minus_vae" in r
            else ""
        )
        burda = f"{r['burda_2016']:.2f} (3,280 passes)" if r["burda_2016"] is not None else ""
        lines.append(
            f"| {r['model']} | {r['passes']} | {r['neg_ll']:.2f} ± {r['neg_ll_stderr']:.2f} | "
            f"{r['neg_elbo']:.2f} ± {r['neg_elbo_stderr']:.2f} | {minus} | {burda} | "
            f"{r['train_wall_s'] / 60:.1f} min | {r['load_average_after']} |"
        )
    lines += [
        f"| Pythae's VAE (Rezende & Mohamed's network), -L_200 | | | | | {result['pythae_vae']:.2f} "
        "| | |",
        "",
        "## What the numbers say",
        "",
        *findings(result),
        "",
        "## What differs from the papers",
        "",
        f"* Training data: {s['n_train']:,} images ({s['data']}); Burda et al. and Pythae "
        "train on MNIST's 60,000.",
        "* Passes: "
        + "; ".join(
            sorted(
                {
                    f"{r['passes']} ({' + '.join(str(3**i) for i in range(len(r['learning_rates'])))}, "
                    f"learning rates {', '.join(f'{v:.2e}' for v in r['learning_rates'])})"
                    for r in result["rows"]
                }
            )
        )
        + ": the first stages of Burda et al.'s schedule, which runs 3,280 passes (8 stages, "
        "down to 1e-4).",
        f"* Batch size {s['batch_size']} and Adam epsilon {s['adam_epsilon']:g}, as theirs; "
        "dynamic binarization of the training images (a fresh draw every epoch, "
        "`vk.datasets.DynamicBinarization`).",
        f"* Test set: the {s['n_test']:,} held-out images of this split, binarized once "
        f"({s['test_binarization']}); Burda et al. evaluate on MNIST's 10,000 test images. "
        "Another binarization draw changes every number here a little.",
        "* Pythae's 89.78 is for a different network (the VAE of Rezende & Mohamed, 2015) and "
        "uses -L_200.",
        "",
        "## Run",
        "",
        f"Wall time {result['wall_s'] / 60:.1f} min in all (training and evaluation, one "
        f"process); load average (1, 5, 15 min) {result['load_average_start']} at the start and "
        f"{result['load_average_end']} at the end. The machine was shared with other jobs, so "
        "the times are upper bounds.",
        "",
        "```",
        json.dumps(result["machine"], indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~2-minute check that it runs")
    parser.add_argument("--out", default=os.path.join("benchmarks", "literature.md"))
    parser.add_argument(
        "--render", metavar="JSON", help="only write --out again from a run's saved JSON"
    )
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render) as handle:
            result = json.load(handle)
        command = "python -m benchmarks.literature" + (
            " --quick" if result["settings"].get("quick") else ""
        )
        with open(args.out, "w") as handle:
            handle.write(markdown(result, command))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run(QUICK if args.quick else FULL, log=lambda line: print(line, flush=True))
    result["settings"]["quick"] = args.quick
    command = "python -m benchmarks.literature" + (" --quick" if args.quick else "")
    with open(args.out, "w") as handle:
        handle.write(markdown(result, command))
    with open(os.path.splitext(args.out)[0] + ".json", "w") as handle:
        json.dump(result, handle, indent=1)
    print(f"wrote {args.out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()

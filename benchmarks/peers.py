"""vae_keras against Pythae, the PyTorch VAE library, on the same models and data.

    python -m benchmarks.peers --quick --out /tmp/peers.md   # a few minutes (CI: it only has to run)
    python -m benchmarks.peers --out benchmarks/peers.md     # full: under 20 minutes on 2 CPU cores

Pythae (PyPI `pythae`) is never a dependency of the package: the first run
creates a virtualenv for it (default `~/.cache/vae_keras/pythae-venv`, outside
the repository; `--venv` or `$VAE_KERAS_PEERS_VENV` choose another) and installs
`benchmarks/requirements-peers.txt` there (`torch==2.13.0`, the CPU build on
this machine, then `pythae`); later runs reuse it.

Compared, for the MLP (784-512-latent, Pythae's default nets and
`vk.build_mlp_encoder/decoder`) and a convolutional model (Conv 32-64 stride 2,
Dense 64; the same PyTorch nets given to Pythae, `peers_torch.py`), latent 16,
BCE + KL, Adam 1e-3, batch 128, on the offline MNIST split:

- Pythae's `VAE` trained by its `TrainingPipeline`;
- `vk.VAE` with its default `compile()`, on each Keras backend;
- the minimal Keras model of `benchmarks/backends.py` (one forward pass in
  `call`, the negative ELBO by hand in `compute_loss`, vk's compile settings) on
  each backend: it separates Keras' own cost from vae_keras'.

Every model lives in its own process (Keras reads `KERAS_BACKEND` once; Pythae
lives in its virtualenv) and all start from Pythae's initial weights. Each
library runs its own training loop (`fit`, Pythae's trainer) over all epochs in
one call, and the parent starts each epoch in turn: one warm-up epoch each,
then rounds of one epoch per model (A, B, C, ..., A, B, C, ...), so load from
other jobs hits them alike. Reported per model: the median epoch time with its
range, the median over rounds of the per-round ratio to Pythae's epoch and to
the minimal model's on the same backend, the held-out negative ELBO after the
same epochs (one z sample per image), and, on the weights Pythae trained
(moved into `vk` nets, their mean reconstructions checked equal to 1e-5),
`vk`'s importance-sampled -log p(x) (`vae_keras.evaluation.log_likelihood`)
beside Pythae's `get_nll`, with the time of each.
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import child

REPO = child.REPO
BACKENDS = ("tensorflow", "jax", "torch")
ARCHS = ("mlp", "conv")
VARIANTS = ("vae_keras", "minimal")
LATENT_DIM = 16
SEED = 1234
REQUIREMENTS = REPO / "benchmarks" / "requirements-peers.txt"
DEFAULT_VENV = pathlib.Path.home() / ".cache" / "vae_keras" / "pythae-venv"
CHECK_IMAGES = 64  # held-out images whose mean reconstruction checks the weight transfer
TRANSFER_TOLERANCE = 1e-5

QUICK = {
    "n_train": 1024,
    "n_test": 500,
    "rounds": {"mlp": 2, "conv": 1},
    "ll_samples": 50,
    "ll_images": 20,
}
FULL = {
    "n_train": 8000,
    "n_test": 2000,
    "rounds": {"mlp": 10, "conv": 4},
    "ll_samples": 1000,
    "ll_images": 200,
}


# ------------------------------------------------------------------ Keras worker
def build_nets(arch, latent_dim=LATENT_DIM):
    """The `vk` encoder and decoder that `peers_torch.build_torch_nets(arch)` mirrors."""
    import vae_keras as vk

    if arch == "mlp":
        return (
            vk.build_mlp_encoder(latent_dim=latent_dim, hidden_units=(512,)),
            vk.build_mlp_decoder(latent_dim=latent_dim, hidden_units=(512,)),
        )
    return (
        vk.build_conv_encoder(latent_dim=latent_dim, filters=(32, 64), dense_units=64),
        vk.build_conv_decoder(latent_dim=latent_dim, filters=(64, 32)),
    )


def _load_torch_weights(encoder, decoder, path):
    from benchmarks import peers_torch

    peers_torch.load_into_keras(encoder, peers_torch.read_layers(path, "encoder"))
    peers_torch.load_into_keras(decoder, peers_torch.read_layers(path, "decoder"))


class KerasSession:
    """The requests a Keras worker answers (one backend, one model at a time)."""

    def __init__(self):
        self.model = self.data = None

    def data_split(self, request):
        """Loads the MNIST split once and writes it for every worker (Pythae's included)."""
        import numpy as np

        from benchmarks import common

        data = common.load(
            "mnist", allow_download=False, n_train=request["n_train"], n_test=request["n_test"]
        )
        np.savez(request["path"], x_train=data["x_train"], x_test=data["x_test"])
        return {k: data[k] for k in ("title", "source", "notes")}

    def setup(self, request):
        import keras
        import numpy as np

        import vae_keras as vk
        from benchmarks import backends
        from benchmarks import models as bm

        keras.utils.set_random_seed(request["seed"])
        with np.load(request["data"]) as data:
            self.data = {k: data[k] for k in data.files}
        encoder, decoder = build_nets(request["arch"])
        _load_torch_weights(encoder, decoder, request["initial_weights"])
        vae = vk.VAE(encoder, decoder, seed=request["seed"])
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
        if request["variant"] == "vae_keras":
            self.model = vae
        else:  # equal settings: those vk.VAE resolved to for these nets
            self.model = backends._minimal_class()(encoder, decoder, request["seed"])
            self.model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=1e-3), **bm.resolved_settings(vae)
            )
        from benchmarks import flops

        return {
            "gflop_per_epoch": flops.training_flops([encoder, decoder], len(self.data["x_train"]))
            / 1e9,
            "parameters": bm.parameter_count(vae),
            "settings": bm.resolved_settings(self.model),
            "keras": keras.__version__,
        }

    def train(self, request):
        import keras

        gate = child.EpochGate()

        class Gate(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                gate.begin()

            def on_epoch_end(self, epoch, logs=None):
                gate.end()

        start = time.perf_counter()
        self.model.fit(
            self.data["x_train"],
            epochs=request["epochs"],
            batch_size=128,
            verbose=0,
            callbacks=[Gate()],
        )
        return {"trained": True, "train_wall_s": time.perf_counter() - start}

    def evaluate(self, request):
        import keras

        keras.utils.set_random_seed(request["seed"])
        logs = self.model.evaluate(
            self.data["x_test"], batch_size=1000, verbose=0, return_dict=True
        )
        return {"heldout_neg_elbo": float(logs["loss"])}

    def loglik(self, request):
        """vk's -L_K on Pythae's trained weights, after checking that they moved exactly."""
        import numpy as np

        import vae_keras as vk
        from vae_keras import evaluation

        encoder, decoder = build_nets(request["arch"])
        _load_torch_weights(encoder, decoder, request["weights"])
        model = vk.VAE(encoder, decoder, seed=request["seed"])
        expected = np.load(request["reconstruction"])
        got = model.predict(self.data["x_test"][: len(expected)], batch_size=256, verbose=0)
        difference = float(np.max(np.abs(np.asarray(got) - expected)))
        if not difference <= TRANSFER_TOLERANCE:
            raise AssertionError(
                f"the weights did not move exactly: mean reconstructions differ by {difference:.2e}"
            )
        images = self.data["x_test"][: request["images"]]
        start = time.perf_counter()
        ll = evaluation.log_likelihood(
            model, images, num_samples=request["samples"], seed=request["seed"]
        )
        seconds = time.perf_counter() - start
        return {
            "neg_ll": float(-ll.mean()),
            "neg_ll_stderr": float(ll.std(ddof=1) / np.sqrt(len(ll))) if len(ll) > 1 else None,
            "ll_s": seconds,
            "transfer_max_abs_diff": difference,
        }


def worker():
    session = KerasSession()
    child.serve(
        {
            "data": session.data_split,
            "setup": session.setup,
            "train": session.train,
            "evaluate": session.evaluate,
            "loglik": session.loglik,
        }
    )


# ------------------------------------------------------------------ Pythae's venv
def venv_python(venv):
    return pathlib.Path(venv) / "bin" / "python"


def ensure_pythae(venv, log=print):
    """Creates (or reuses) the virtualenv with Pythae; returns `(python, versions)`.

    Raises `RuntimeError` with pip's last lines if the installation fails.
    """
    python = venv_python(venv)
    probe = [
        str(python),
        "-c",
        "import json, pythae, torch; from importlib import metadata; "
        "print(json.dumps({'pythae': metadata.version('pythae'), 'torch': torch.__version__}))",
    ]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True)
        if done.returncode == 0:
            return python, json.loads(done.stdout.strip().splitlines()[-1])
    log(f"  creating the Pythae virtualenv in {venv} (pip install -r {REQUIREMENTS.name}) ...")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = child._tail(done.stderr or done.stdout)
            raise RuntimeError(f"{' '.join(step[:4])} ... failed (exit {done.returncode}):\n{tail}")
    done = subprocess.run(probe, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Pythae does not import in {venv}:\n{child._tail(done.stderr)}")
    return python, json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ parent
def _median_range(values):
    return statistics.median(values), min(values), max(values)


def _ratios(times, base):
    pairs = [a / b for a, b in zip(times, base) if b]
    return _median_range(pairs) if pairs else (float("nan"),) * 3


class Run:
    """The workers of one comparison and what they answered."""

    def __init__(self, python, backends, config, tmp, log):
        self.config, self.tmp, self.log = config, pathlib.Path(tmp), log
        self.workers = {}  # name -> (worker, info)
        self.workers["pythae"] = child.Worker(
            [python, "-m", "benchmarks.peers_pythae"], "pythae", env=child.backend_env()
        )
        for backend in backends:
            for variant in VARIANTS:
                name = f"{variant}/{backend}"
                self.workers[name] = child.Worker(
                    [sys.executable, "-m", "benchmarks.peers", "--worker"],
                    name,
                    env=child.backend_env(backend),
                )

    def close(self):
        for worker in self.workers.values():
            worker.close()

    def data(self):
        first = next(name for name in self.workers if name != "pythae")
        path = self.tmp / "data.npz"
        info = self.workers[first].request(
            {
                "cmd": "data",
                "path": str(path),
                "n_train": self.config["n_train"],
                "n_test": self.config["n_test"],
            },
            timeout=600,
        )
        return path, info

    def compare(self, arch, data_path):
        cfg, log = self.config, self.log
        rounds = cfg["rounds"][arch]
        initial = self.tmp / f"{arch}-initial.npz"
        rows = {}
        for name, worker in self.workers.items():
            request = {
                "cmd": "setup",
                "arch": arch,
                "data": str(data_path),
                "initial_weights": str(initial),
                "latent_dim": LATENT_DIM,
                "seed": SEED,
            }
            if name != "pythae":
                request["variant"] = name.split("/")[0]
            rows[name] = worker.request(request, timeout=600)  # Pythae first: it writes `initial`
            rows[name].update(epoch_s=[], cpu_s=[], major_faults=[])
        for worker in self.workers.values():
            worker.request({"cmd": "train", "epochs": 1 + rounds, "seed": SEED}, timeout=600)
        for r in range(1 + rounds):
            for name, worker in self.workers.items():
                answer = worker.request({"cmd": "epoch"}, timeout=1200)
                rows[name]["epoch_s"].append(answer["epoch_s"])
                rows[name]["cpu_s"].append(answer["cpu_s"])
                rows[name]["major_faults"].append(answer["major_faults"])
                worker.receive(timeout=600)  # ready for the next epoch, or done training
            label = "warm-up" if r == 0 else f"round {r}/{rounds}"
            log(
                f"    {arch} {label}: "
                + ", ".join(f"{n} {row['epoch_s'][-1]:.2f} s" for n, row in rows.items())
            )
        for name, worker in self.workers.items():
            rows[name].update(worker.request({"cmd": "evaluate", "seed": SEED}, timeout=600))
        weights = self.tmp / f"{arch}-trained.npz"
        reconstruction = self.tmp / f"{arch}-reconstruction.npy"
        self.workers["pythae"].request(
            {
                "cmd": "save",
                "weights": str(weights),
                "reconstruction": str(reconstruction),
                "images": CHECK_IMAGES,
            }
        )
        ll_request = {
            "cmd": "loglik",
            "arch": arch,
            "weights": str(weights),
            "reconstruction": str(reconstruction),
            "samples": cfg["ll_samples"],
            "images": cfg["ll_images"],
            "seed": SEED,
        }
        for name, worker in self.workers.items():
            if name.startswith("minimal/"):
                continue
            rows[name].update(worker.request(ll_request, timeout=1800))
            log(
                f"    {arch} log-likelihood, {name}: -L_K {rows[name]['neg_ll']:.2f} "
                f"in {rows[name]['ll_s']:.1f} s"
            )
        return self._summarise(arch, rows)

    def _summarise(self, arch, rows):
        base = rows["pythae"]["epoch_s"][1:]
        out = []
        for name, row in rows.items():
            timed = row["epoch_s"][1:]
            variant, backend = ("pythae", "torch") if name == "pythae" else name.split("/")
            median, low, high = _median_range(timed)
            summary = {
                "name": name,
                "library": variant,
                "backend": backend,
                "warmup_epoch_s": row["epoch_s"][0],
                "median_epoch_s": median,
                "epoch_s_range": [low, high],
                "images_per_s": self.config["n_train"] / median,
                "ratio_to_pythae": _ratios(timed, base),
            }
            if variant == "vae_keras":
                summary["ratio_to_minimal"] = _ratios(
                    timed, rows[f"minimal/{backend}"]["epoch_s"][1:]
                )
            summary.update(
                {k: v for k, v in row.items() if k not in ("epoch_s", "cpu_s", "major_faults")}
            )
            summary["major_faults"] = row["major_faults"][1:]
            summary["epoch_s"] = timed
            summary["cpu_s"] = row["cpu_s"][1:]
            summary["median_cpu_s"] = statistics.median(row["cpu_s"][1:])
            if "ll_s" in row and "ll_s" in rows["pythae"]:
                summary["ll_time_ratio_to_pythae"] = row["ll_s"] / rows["pythae"]["ll_s"]
            out.append(summary)
        return {"arch": arch, "rounds": self.config["rounds"][arch], "rows": out}


ARCH_TITLES = {
    "mlp": "MLP 784-512-16 (Pythae's default nets)",
    "conv": "Conv 32-64 (stride 2), Dense 64, latent 16 (the same PyTorch nets given to Pythae)",
}


def _library(row):
    if row["library"] == "pythae":
        return f"Pythae {row.get('pythae', '')} (PyTorch {row.get('torch', '')})"
    what = "vk.VAE" if row["library"] == "vae_keras" else "minimal Keras model"
    return f"{what}, {row['backend']}"


def render(results):
    from benchmarks import report

    cfg = results["config"]
    lines = [
        "# vae_keras against Pythae",
        "",
        f"Command: `{results['command']}`; finished {results['finished']}, "
        f"{results['wall_s']:.0f} s in all.",
        "",
        report.machine_block(results["machine"], load_at_end=results["load_at_end"]),
        "",
        f"Data: {results['data']['title']} ({results['data']['source']}). Latent 16, BCE + KL, "
        f"Adam 1e-3, batch 128; every model starts from Pythae's initial weights and trains "
        f"1 warm-up epoch, then the models take turns, one epoch each, for the rounds below "
        f"(`benchmarks/peers.py`). Ratios are medians over rounds of the per-round ratio "
        "(range in brackets); below 1 is faster. *CPU s/epoch*: the median CPU time of all the "
        "process' threads during an epoch (spin-waiting threads included). *Minimal Keras model*: one forward pass in "
        "`call`, the negative ELBO by hand, with vk.VAE's compile settings "
        "(`benchmarks/backends.py`). The held-out -ELBO (one z sample per image) is after the "
        "same epochs. -log p(x): importance-sampled, on the weights **Pythae** trained, moved "
        f"into `vk` nets (mean reconstructions equal to {TRANSFER_TOLERANCE:g} on "
        f"{CHECK_IMAGES} held-out images, checked in every run); `vk`: "
        "`vae_keras.evaluation.log_likelihood` (± standard error over images); Pythae: "
        "`VAE.get_nll` under `torch.no_grad()`. K = "
        f"{cfg['ll_samples']:,} samples on the first {cfg['ll_images']:,} held-out images; "
        "the times include vk's tracing on its first call.",
    ]
    rate = results.get("matmul_gflops")
    for block in results["archs"]:
        rows = []
        gflop = next((r["gflop_per_epoch"] for r in block["rows"] if "gflop_per_epoch" in r), None)
        for row in block["rows"]:
            settings = row.get("settings")
            spe = (
                "-"
                if settings is None
                else (f"spe={settings['steps_per_execution']}, jit={settings['jit_compile']}")
            )
            ratio_p = row["ratio_to_pythae"]
            ratio_m = row.get("ratio_to_minimal")
            ll = "-"
            if "neg_ll" in row:
                ll = f"{row['neg_ll']:.2f}"
                if row.get("neg_ll_stderr") is not None:
                    ll += f" ± {row['neg_ll_stderr']:.2f}"
            ll_time = "-" if "ll_s" not in row else f"{row['ll_s']:.1f}"
            if "ll_time_ratio_to_pythae" in row and row["library"] != "pythae":
                ll_time += f" ({row['ll_time_ratio_to_pythae']:.2f}x)"
            rows.append(
                [
                    _library(row),
                    spe,
                    f"{row['median_epoch_s']:.2f} ({row['epoch_s_range'][0]:.2f}-"
                    f"{row['epoch_s_range'][1]:.2f})",
                    f"{row['median_cpu_s']:.2f}",
                    "-"
                    if not (gflop and rate)
                    else f"{gflop / row['median_epoch_s']:.1f} "
                    f"({gflop / row['median_epoch_s'] / min(rate):.0%})",
                    "1"
                    if row["library"] == "pythae"
                    else f"**{ratio_p[0]:.2f}** ({ratio_p[1]:.2f}-{ratio_p[2]:.2f})",
                    "-"
                    if ratio_m is None
                    else f"{ratio_m[0]:.2f} ({ratio_m[1]:.2f}-{ratio_m[2]:.2f})",
                    f"{row['warmup_epoch_s']:.1f}",
                    f"{row['heldout_neg_elbo']:.2f}",
                    ll,
                    ll_time,
                ]
            )
        parameters = block["rows"][0].get("parameters")
        lines += [
            "",
            f"## {ARCH_TITLES[block['arch']]}",
            "",
            f"{parameters:,} parameters; {block['rounds']} timed epochs each after 1 warm-up "
            f"epoch; {1 + block['rounds']} epochs in all before the held-out numbers."
            + (
                ""
                if not (gflop and rate)
                else f" Training FLOPs: {gflop:.1f} GFLOP per epoch, counted from the "
                "architecture (`benchmarks/flops.py`: 3x the forward multiply-adds); the "
                f"float32 2048x2048 matrix product ran at {rate[0]:.0f} and {rate[1]:.0f} "
                "GFLOP/s at the start and the end of this run (NumPy, same cores); *GFLOP/s*: "
                "achieved, and its share of the slower of those two rates."
            ),
            "",
            report.table(
                [
                    "model",
                    "compile settings",
                    "median s/epoch (range)",
                    "CPU s/epoch",
                    "GFLOP/s (of matmul)",
                    "epoch time / Pythae's",
                    "vk.VAE / minimal, same backend",
                    "warm-up epoch (s)",
                    "held-out -ELBO",
                    f"-log p(x), K={cfg['ll_samples']:,}, on Pythae's weights",
                    "estimator time, s (/ Pythae's)",
                ],
                rows,
            ),
        ]
    for error in results.get("errors", []):
        lines += ["", f"**Error**: {error}"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--quick", action="store_true", help="1,024 images, 1-2 rounds (CI)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "peers.md"))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument(
        "--venv",
        default=os.environ.get("VAE_KERAS_PEERS_VENV", str(DEFAULT_VENV)),
        help="Pythae's virtualenv (created if missing)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds for every model")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker()
    backends = [b for b in args.backends.split(",") if b]
    archs = [a for a in args.archs.split(",") if a]
    for value, allowed in ((backends, BACKENDS), (archs, ARCHS)):
        unknown = set(value) - set(allowed)
        if unknown:
            parser.error(f"unknown {sorted(unknown)}; expected some of {allowed}")
    config = json.loads(json.dumps(QUICK if args.quick else FULL))
    if args.rounds is not None:
        config["rounds"] = {arch: args.rounds for arch in ARCHS}
    from benchmarks import common

    start = time.perf_counter()
    from benchmarks import flops

    machine = common.machine_info()
    matmul_start = flops.matmul_rate() / 1e9
    log = lambda message: print(message, flush=True)  # noqa: E731
    python, versions = ensure_pythae(args.venv, log=log)
    log(f"Pythae {versions['pythae']}, PyTorch {versions['torch']} in {args.venv}")
    results = {
        "command": " ".join(["python -m benchmarks.peers", *(argv or sys.argv[1:])]),
        "config": config,
        "machine": machine,
        "archs": [],
        "errors": [],
    }
    with tempfile.TemporaryDirectory(prefix="vk-peers-") as tmp:
        run = Run(python, backends, config, tmp, log)
        try:
            data_path, results["data"] = run.data()
            log(f"data: {results['data']['title']}")
            for arch in archs:
                log(f"  {arch}: {config['rounds'][arch]} rounds")
                results["archs"].append(run.compare(arch, data_path))
        except child.WorkerError as error:
            results["errors"].append(str(error).splitlines()[0])
            raise
        finally:
            run.close()
    results["wall_s"] = time.perf_counter() - start
    results["finished"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    results["load_at_end"] = common.load_average()
    results["matmul_gflops"] = [matmul_start, flops.matmul_rate() / 1e9]
    text = render(results)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

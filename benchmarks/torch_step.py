"""Where one MLP training step's time goes on the PyTorch backend, against a plain PyTorch loop.

    KERAS_BACKEND=torch python -m benchmarks.torch_step [--quick] [--rounds 7] [--threads 1]
        [--out benchmarks/torch_step.md]

Both sides train `benchmarks.peers`' MLP (784-512-16, Pythae's default nets) on
MNIST, batch 128, Adam 1e-3, the loss Pythae's VAE uses (binary cross-entropy
summed over pixels plus the closed-form KL, averaged over the batch):

- **vk.VAE through `fit`**, eager (`jit_compile=False`, what `compile()` picks
  on PyTorch). The pieces of Keras' `TorchTrainer.train_step` are timed on the
  instance while `fit` runs an epoch: the forward pass (`call`: encoder, one
  draw, decoder), the loss (`compute_loss`, the package's negative ELBO, less
  the metric updates inside it), the metric trackers' updates (the package's
  three and Keras' loss tracker), `zero_grad`, the backward pass
  (`torch.Tensor.backward`), the optimizer (`optimizer.apply`) and
  `compute_metrics`. The rest of the epoch's time per step is Keras' own
  per-step overhead: the data adapter, the epoch iterator, the callbacks'
  hooks, the logs.
- **A plain PyTorch loop** over the same nets as `torch.nn` modules
  (`benchmarks.peers_torch`, the ones Pythae trains in `benchmarks.peers`):
  forward, loss, `zero_grad`, backward, `torch.optim.Adam.step`, with the batch
  sliced from one tensor: the steps Pythae's `BaseTrainer.train_step` takes
  (its model's forward pass and loss, `zero_grad`, backward, `step`), without
  its data loader, its callbacks and its `loss.item()`.
- **vk.VAE with `jit_compile=True`** (`torch.compile` of the step): epoch time
  once compiled, and the compile time (the first epoch's time less a compiled
  epoch's).

The variants take turns, one epoch each, for `--rounds` rounds after a
warm-up epoch; the tables give the median over rounds and the range. With
`--threads 1` (the default: one compute thread in each) the numbers hardly
depend on other work on the machine.
"""

import argparse
import os
import sys
import time
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PHASES = ("forward", "loss", "metrics", "zero_grad", "backward", "optimizer", "compute_metrics")


class _Clock:
    """Seconds spent in each wrapped phase, with nested phases taken out of their parent's."""

    def __init__(self):
        self.total = dict.fromkeys(PHASES, 0.0)
        self._stack = []

    def wrap(self, phase, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            self._stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                inner = self._stack.pop()
                spent = time.perf_counter() - start
                self.total[phase] += spent - inner
                if self._stack:
                    self._stack[-1] += spent

        return timed


@contextmanager
def _timed_backward(clock):
    import torch

    original = torch.Tensor.backward
    torch.Tensor.backward = clock.wrap("backward", original)
    try:
        yield
    finally:
        torch.Tensor.backward = original


def _keras_model(seed, jit_compile=False):
    import keras

    import vae_keras as vk
    from benchmarks import peers

    keras.utils.set_random_seed(seed)
    encoder, decoder = peers.build_nets("mlp")
    model = vk.VAE(encoder, decoder, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), jit_compile=jit_compile)
    return model


def _instrument(model, clock):
    """Wraps the pieces of Keras' PyTorch train step on this instance (the package unchanged)."""
    model.call = clock.wrap("forward", model.call)
    model.compute_loss = clock.wrap("loss", model.compute_loss)
    model.zero_grad = clock.wrap("zero_grad", model.zero_grad)
    model.compute_metrics = clock.wrap("compute_metrics", model.compute_metrics)
    model.optimizer.apply = clock.wrap("optimizer", model.optimizer.apply)
    for tracker in model.metrics:  # the package's trackers and Keras' loss tracker
        tracker.update_state = clock.wrap("metrics", tracker.update_state)


def _keras_epoch(model, x, clock=None):
    """One epoch of `fit`: its seconds, and the seconds of each phase `clock` wraps."""
    if clock is None:  # not instrumented (the compiled step: timers would break its graph)
        start = time.perf_counter()
        model.fit(x, epochs=1, batch_size=128, verbose=0, shuffle=False)
        return time.perf_counter() - start, dict.fromkeys(PHASES, 0.0)
    clock.total = dict.fromkeys(PHASES, 0.0)
    start = time.perf_counter()
    with _timed_backward(clock):
        model.fit(x, epochs=1, batch_size=128, verbose=0, shuffle=False)
    return time.perf_counter() - start, dict(clock.total)


class _PlainLoop:
    """The same MLP as torch.nn modules, trained by hand (forward, loss, backward, step)."""

    def __init__(self, seed):
        import torch

        from benchmarks import peers_torch

        torch.manual_seed(seed)
        self.encoder, self.decoder = peers_torch.build_torch_nets("mlp", latent_dim=16)
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizer = torch.optim.Adam(params, lr=1e-3)

    def epoch(self, x):
        import torch
        import torch.nn.functional as F

        clock = dict.fromkeys(PHASES, 0.0)
        start = time.perf_counter()
        for i in range(0, len(x), 128):
            batch = x[i : i + 128]
            t0 = time.perf_counter()
            z_mean, z_log_var = self.encoder(batch)
            z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
            reconstruction = self.decoder(z)
            t1 = time.perf_counter()
            bce = F.binary_cross_entropy(reconstruction, batch, reduction="none")
            kl = -0.5 * (1 + z_log_var - z_mean.square() - z_log_var.exp()).sum(dim=-1)
            loss = (bce.reshape(len(batch), -1).sum(dim=-1) + kl).mean()
            t2 = time.perf_counter()
            self.optimizer.zero_grad()
            t3 = time.perf_counter()
            loss.backward()
            t4 = time.perf_counter()
            self.optimizer.step()
            t5 = time.perf_counter()
            for phase, spent in zip(
                ("forward", "loss", "zero_grad", "backward", "optimizer"),
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4),
            ):
                clock[phase] += spent
        return time.perf_counter() - start, clock


def _limit_threads(threads):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)


def measure(x_keras, x_torch, rounds, seed=1234, compiled=True, log=print):
    """Per-step milliseconds of each phase per round, and the compiled model's times."""
    import numpy as np

    steps = -(-len(x_keras) // 128)
    clock = _Clock()
    eager = _keras_model(seed)
    _instrument(eager, clock)
    plain = _PlainLoop(seed)
    variants = {
        "keras": lambda: _keras_epoch(eager, x_keras, clock),
        "plain": lambda: plain.epoch(x_torch),
    }
    if compiled:
        fast = _keras_model(seed, jit_compile=True)
        variants["compiled"] = lambda: _keras_epoch(fast, x_keras)
    first = {name: run()[0] for name, run in variants.items()}  # warm-up (compiles)
    per_round = {name: [] for name in variants}
    for r in range(rounds):
        for name, run in variants.items():
            wall, phases = run()
            per_round[name].append(
                {"step": 1e3 * wall / steps, **{p: 1e3 * s / steps for p, s in phases.items()}}
            )
        log(
            f"  round {r + 1}: "
            + ", ".join(f"{n} {v[-1]['step']:.2f} ms" for n, v in per_round.items())
        )
    result = {"steps": steps, "first_epoch_s": first, "rounds": per_round}
    if compiled:
        compiled_epoch = np.median([row["step"] for row in per_round["compiled"]]) * steps / 1e3
        result["compile_s"] = first["compiled"] - compiled_epoch
    return result


def _summary(rows, key):
    import numpy as np

    values = np.array([row[key] for row in rows])
    return float(np.median(values)), float(values.min()), float(values.max())


def _machine(info):
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, GPU: {info['gpu']}; "
        f"Keras {info['keras']}, PyTorch {info['torch']}, Python {info['python']}."
    )


def report(result, meta):
    keras_rows, plain_rows = result["rounds"]["keras"], result["rounds"]["plain"]
    for rows in (keras_rows, plain_rows):
        for row in rows:
            row["overhead"] = row["step"] - sum(row[p] for p in PHASES)
    names = {
        "forward": "forward pass (encoder, one draw, decoder)",
        "loss": "loss (negative ELBO; metric updates taken out)",
        "metrics": "metric trackers' updates",
        "zero_grad": "`zero_grad`",
        "backward": "backward pass",
        "optimizer": "optimizer (Adam)",
        "compute_metrics": "`compute_metrics` (the logs' values)",
        "overhead": "the rest: Keras' per-step overhead (data adapter, epoch iterator, callbacks' hooks) / the plain loop's slicing",
        "step": "**one training step, in all**",
    }

    def cell(rows, key):
        median, low, high = _summary(rows, key)
        return f"{median:.2f} ({low:.2f}-{high:.2f})"

    lines = [
        "# One MLP training step on the PyTorch backend, piece by piece",
        "",
        f"Command: `{meta['command']}`; {meta['finished']}. {meta['machine']}",
        "",
        f"{meta['data']}; MLP 784-512-16 (Pythae's default nets), batch 128, Adam 1e-3, "
        f"{result['steps']} steps an epoch, torch threads: {meta['threads']}. "
        f"Milliseconds per step: median over {len(keras_rows)} rounds of one epoch each, "
        "the variants in turns (range in brackets). How each piece is timed: "
        "`benchmarks/torch_step.py`.",
        "",
        "| piece of the step | vk.VAE through `fit` (Keras' trainer), ms | plain PyTorch loop, ms |",
        "|---|---|---|",
    ]
    for key in (*PHASES, "overhead", "step"):
        plain = "-" if key in ("metrics", "compute_metrics") else cell(plain_rows, key)
        lines.append(f"| {names[key]} | {cell(keras_rows, key)} | {plain} |")
    ratio = [k["step"] / p["step"] for k, p in zip(keras_rows, plain_rows)]
    median_ratio = sorted(ratio)[len(ratio) // 2]
    lines += [
        "",
        f"vk.VAE's step over the plain loop's: {median_ratio:.2f} "
        f"({min(ratio):.2f}-{max(ratio):.2f}).",
    ]
    if "compiled" in result["rounds"]:
        compiled = result["rounds"]["compiled"]
        ratio = [c["step"] / k["step"] for c, k in zip(compiled, keras_rows)]
        lines += [
            "",
            "## `jit_compile=True` (`torch.compile` of the step)",
            "",
            "| | ms per step | first epoch, s | compile time, s |",
            "|---|---|---|---|",
            f"| vk.VAE, eager | {cell(keras_rows, 'step')} | "
            f"{result['first_epoch_s']['keras']:.1f} | - |",
            f"| vk.VAE, `jit_compile=True` | {cell(compiled, 'step')} | "
            f"{result['first_epoch_s']['compiled']:.1f} | {result['compile_s']:.1f} |",
            "",
            f"Compiled over eager, per step: {sorted(ratio)[len(ratio) // 2]:.2f} "
            f"({min(ratio):.2f}-{max(ratio):.2f}). The compile time is paid once per "
            "model (again after `compile()` is called anew).",
        ]
    lines += ["", f"Load average (1, 5, 15 min) at the start / end: {meta['load']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,024 images, 2 rounds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="skip jit_compile=True")
    parser.add_argument("--out", default=None, help="Markdown report (default: print only)")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if os.environ["KERAS_BACKEND"] != "torch":
        parser.error("run with KERAS_BACKEND=torch")
    if args.quick:
        args.rounds, args.n_train = 2, 1024
    if args.threads:
        _limit_threads(args.threads)
    import numpy as np
    import torch

    from benchmarks import common

    load_start = common.load_average()
    data = common.load("mnist", allow_download=False, n_train=args.n_train, n_test=100)
    x = np.asarray(data["x_train"], "float32")
    x_torch = torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy())  # NCHW for torch.nn
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    result = measure(x, x_torch, args.rounds, compiled=not args.no_compile, log=log)
    meta = {
        "command": "KERAS_BACKEND=torch python -m benchmarks.torch_step "
        + " ".join(argv or sys.argv[1:]),
        "finished": time.strftime("finished %Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": _machine(common.machine_info()),
        "data": data["title"],
        "threads": args.threads or "default",
        "load": f"{load_start} / {common.load_average()}",
    }
    text = report(result, meta)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

"""JAX engine: one device vs `keras.distribution.DataParallel` on two virtual CPUs.

Run by tests/test_distribution.py in a fresh process, because XLA reads the
device count when JAX initialises:

    python tests/distributed/run_jax.py OUT_DIR SINGLE_DEVICE_MODEL.keras

Writes OUT_DIR/results.json.
"""

import contextlib
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
).strip()

import keras  # noqa: E402
import scenarios  # noqa: E402

# Every batch must split evenly over the devices under JAX (an array sharded
# over two devices needs an even batch axis), so the odd-sized scenario is
# TensorFlow's alone.
NAMES = ("vae", "cvae_weighted_warmup", "vae_free_bits", "cvae_prior_masked")


def main(out_dir, single_device_model):
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    results = {
        "devices": [str(d) for d in devices],
        "replicas": len(devices),
        "scenarios": scenarios.compare_all(contextlib.nullcontext, distribution.scope, NAMES),
        "saving": scenarios.save_and_load(distribution.scope, single_device_model, out_dir),
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])

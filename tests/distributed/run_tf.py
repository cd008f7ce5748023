"""TensorFlow engine: one device vs `tf.distribute.MirroredStrategy` on two virtual CPUs.

Run by tests/test_distribution.py in a fresh process, because the logical
devices must be configured before TensorFlow initialises:

    python tests/distributed/run_tf.py OUT_DIR SINGLE_DEVICE_MODEL.keras

Writes OUT_DIR/results.json.
"""

import contextlib
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import scenarios  # noqa: E402

NAMES = tuple(scenarios.SCENARIOS)


def main(out_dir, single_device_model):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    results = {
        "devices": devices,
        "replicas": strategy.num_replicas_in_sync,
        "scenarios": scenarios.compare_all(contextlib.nullcontext, strategy.scope, NAMES),
        "saving": scenarios.save_and_load(strategy.scope, single_device_model, out_dir),
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])

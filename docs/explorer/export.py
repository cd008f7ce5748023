"""Exports the 2-D decoders of notebooks 03 and 04 for the site's latent explorer page.

    python docs/explorer/export.py           # writes docs/explorer/decoders/
    python docs/explorer/export.py --check   # exit status 1 if that export is out of date

Reads `docs/explorer/models/vae_2d.keras` (notebook 03's 2-D MLP VAE) and `cvae_2d.keras`
(notebook 04's 2-D MLP CVAE), which the notebooks save, and writes for each:

- `decoders/NAME.bin`: the decoder's Dense kernels and biases as little-endian float16 (float32
  if float16 is not precise enough, see below), in the order the JSON lists them;
- `decoders/NAME.json`: the layer table the page's JavaScript runs (units, activation, whether
  the one-hot label is concatenated to the layer's input), the sha256 of the `.keras` file it came
  from, and a scatter of held-out MNIST digits encoded by the same model (`z_mean`, rounded to
  0.01), loaded through `vae_keras.datasets` as the notebooks load it.

Before writing, the exported decoder is run in NumPy on random codes and labels and compared with
the Keras decoder; if a pixel differs by more than `MAX_EXPORT_ERROR` in float16, the weights are
stored as float32 instead, and the export stops if even those differ by more.
`--check` rebuilds the export in memory and compares: the `.keras` hashes and the weights exactly,
the scatter within 0.011 (backends round differently); when MNIST cannot be loaded, or gives
other held-out digits than the export's, it says that the scatter was not checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
DECODERS = HERE / "decoders"
NAMES = ("vae_2d", "cvae_2d")
FORMAT = 1
# float16 halves the download; its rounding errors usually stay far below the canvas' 1/255.
DTYPES = {"float16": "<f2", "float32": "<f4"}
MAX_EXPORT_ERROR = 0.5 / 255  # the exported decoder against Keras' float32 one, per pixel
MAX_SCATTER_POINTS = 3000
Z_RANGE = (-4.0, 4.0)  # the square the page shows, widened to hold 99.5% of the scatter
SCATTER_TOLERANCE = 0.011


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def dense_layers(decoder, conditional):
    """The decoder as a chain of Dense layers; raises if it is anything else.

    Returns a list of `(layer, label_concatenated)` in order. The chain the page runs: z (then
    concatenated with the one-hot label when `label_concatenated`), Dense, ... , and a last
    Dense reshaped to the image.
    """
    import keras

    label_input = decoder.inputs[1] if conditional else None
    layers = []
    tensor = decoder.outputs[0]
    while True:
        layer = tensor._keras_history.operation
        if isinstance(layer, keras.layers.InputLayer):
            break
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        if isinstance(layer, keras.layers.Reshape):
            tensor = inputs[0]
            continue
        if not isinstance(layer, keras.layers.Dense):
            raise ValueError(
                f"the explorer runs MLP decoders (Dense layers only); the decoder "
                f"{decoder.name!r} has a {type(layer).__name__} layer {layer.name!r}"
            )
        source = inputs[0]._keras_history.operation
        with_label = False
        if isinstance(source, keras.layers.Concatenate):
            parts = source.input
            if not conditional or len(parts) != 2 or parts[1] is not label_input:
                raise ValueError(
                    f"the explorer expects Dense inputs concatenated with the one-hot label "
                    f"(last); received {source.name!r} in {decoder.name!r}"
                )
            with_label, tensor = True, parts[0]
        else:
            tensor = inputs[0]
        layers.append((layer, with_label))
    if tensor is not decoder.inputs[0]:
        raise ValueError(f"the decoder {decoder.name!r} does not start from its z input")
    layers.reverse()
    activations = [layer.activation.__name__ for layer, _ in layers]
    if activations[-1] != "sigmoid" or any(a not in ("relu", "linear") for a in activations[:-1]):
        raise ValueError(
            f"the explorer runs ReLU (or linear) hidden layers and a sigmoid output; the decoder "
            f"{decoder.name!r} has activations {activations}"
        )
    return layers


def decoder_weights(model, dtype="float16"):
    """The layer table and the weight bytes of a VAE's or CVAE's decoder."""
    num_classes = getattr(model, "num_classes", None)
    shape = tuple(model.decoder.outputs[0].shape[1:])
    if model.latent_dim != 2 or shape not in ((28, 28, 1), (28, 28)):
        raise ValueError(
            f"the explorer shows 2-D latent spaces decoded to 28x28 images; received "
            f"latent_dim={model.latent_dim} and images of shape {shape}"
        )
    table, chunks, offset = [], [], 0
    for layer, with_label in dense_layers(model.decoder, num_classes is not None):
        kernel, bias = (np.asarray(w, dtype=DTYPES[dtype]) for w in layer.get_weights())
        table.append(
            {
                "inputs": int(kernel.shape[0]),
                "units": int(kernel.shape[1]),
                "label": with_label,
                "activation": layer.activation.__name__,
                "kernel": offset,  # in values (not bytes) from the start of the .bin file
                "bias": offset + kernel.size,
            }
        )
        offset += kernel.size + bias.size
        chunks += [kernel.tobytes(), bias.tobytes()]
    return table, b"".join(chunks)


def run_exported(table, weights, z, labels, num_classes, dtype="float16"):
    """The page's computation in NumPy (float64 over the exported weights)."""
    values = np.frombuffer(weights, dtype=DTYPES[dtype]).astype("float64")
    one_hot = None if labels is None else np.eye(num_classes)[labels]
    h = np.asarray(z, dtype="float64")
    for layer in table:
        if layer["label"]:
            h = np.concatenate([h, one_hot], axis=1)
        kernel = values[layer["kernel"] : layer["bias"]].reshape(layer["inputs"], layer["units"])
        h = h @ kernel + values[layer["bias"] : layer["bias"] + layer["units"]]
        h = 1.0 / (1.0 + np.exp(-h)) if layer["activation"] == "sigmoid" else np.maximum(h, 0.0)
    return h


def export_error(model, table, weights, z_range, dtype="float16"):
    """Largest per-pixel difference between the exported decoder and the Keras one."""
    from vae_keras import plotting

    rng = np.random.default_rng(0)
    z = rng.uniform(*z_range, size=(500, 2)).astype("float32")
    num_classes = getattr(model, "num_classes", None)
    labels = None if num_classes is None else np.arange(500) % num_classes
    expected = plotting.decode(model.decoder, z, labels=labels, num_classes=num_classes)
    exported = run_exported(table, weights, z, labels, num_classes, dtype)
    return float(np.max(np.abs(exported - expected.reshape(500, -1))))


def load_held_out():
    """The held-out MNIST digits as the notebooks load them, and a description."""
    import vae_keras as vk

    data, info = vk.datasets.load_mnist(return_info=True)
    (_, _), (x_test, y_test) = data
    n = min(MAX_SCATTER_POINTS, x_test.shape[0])
    images, labels = x_test[:n], y_test[:n].astype("int64")
    description = (
        f"the first {n:,} of the {info['n_test']:,} held-out MNIST digits"
        if n < info["n_test"]
        else f"the {n:,} held-out MNIST digits"
    )
    return images, labels, description


def scatter(model, images, labels):
    """`z_mean` of the images, rounded to 0.01, as a flat list `[z1, z2, z1, z2, ...]`."""
    x = (images.astype("float32") / 255.0)[..., None]
    num_classes = getattr(model, "num_classes", None)
    inputs = x if num_classes is None else [x, np.eye(num_classes, dtype="float32")[labels]]
    z_mean = np.asarray(model.encoder.predict(inputs, batch_size=1000, verbose=0)[0])
    return [round(float(v), 2) + 0.0 for v in z_mean.reshape(-1)]  # + 0.0: no "-0.0"


def build(name, models_dir, held_out, dtype=None):
    """The JSON document and the weight bytes for one model.

    `dtype`: the weights' type; `None` picks float16 when it is precise enough, else float32.
    """
    import keras

    path = Path(models_dir) / f"{name}.keras"
    source = path.read_bytes()
    model = keras.models.load_model(path)
    points, z_range = None, list(Z_RANGE)
    if held_out is not None:
        images, labels, description = held_out
        points = scatter(model, images, labels)
        half = max(Z_RANGE[1], float(np.ceil(np.percentile(np.abs(points), 99.5))))
        z_range = [-half, half]
    for chosen in [dtype] if dtype else list(DTYPES):
        table, weights = decoder_weights(model, chosen)
        error = export_error(model, table, weights, z_range, chosen)
        if error <= MAX_EXPORT_ERROR:
            break
    else:
        raise ValueError(
            f"{name}: the {chosen} decoder differs from the Keras one by {error * 255:.2f}/255 "
            f"at one pixel, more than {MAX_EXPORT_ERROR * 255:.2f}/255"
        )
    num_classes = getattr(model, "num_classes", None)
    document = {
        "format": FORMAT,
        "name": name,
        "kind": "VAE" if num_classes is None else "CVAE",
        "num_classes": num_classes,
        "image_shape": [28, 28],
        "z_range": z_range,
        "source": {"file": f"{name}.keras", "sha256": sha256(source)},
        "weights": {
            "file": f"{name}.bin",
            "dtype": chosen,
            "sha256": sha256(weights),
            "layers": table,
            "max_abs_error": round(error, 6),  # against Keras, on 500 random codes
        },
        "scatter": None,
    }
    if points is not None:
        document["scatter"] = {
            "description": description,
            "labels": "".join(str(int(v)) for v in labels),
            "z": points,
        }
    return document, weights


def try_held_out():
    try:
        with warnings.catch_warnings():  # the offline split's notice; the description says it
            warnings.simplefilter("ignore", UserWarning)
            return load_held_out(), None
    except (OSError, RuntimeError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


def write(models_dir, out_dir):
    held_out, problem = try_held_out()
    if held_out is None:
        raise SystemExit(f"export: the held-out digits could not be loaded ({problem})")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        document, weights = build(name, models_dir, held_out)
        (out_dir / f"{name}.bin").write_bytes(weights)
        (out_dir / f"{name}.json").write_text(json.dumps(document, separators=(",", ":")) + "\n")
        error = document["weights"]["max_abs_error"] * 255
        print(
            f"{name}: {len(weights) / 1024:.0f} kB of weights, {len(document['scatter']['z']) // 2}"
            f" encoded digits; exported decoder within {error:.3f}/255 of Keras"
        )


def check(models_dir, out_dir):
    """The problems that make the export out of date; empty when it is current."""
    problems, notes = [], []
    held_out, problem = try_held_out()
    if held_out is None:
        notes.append(f"scatter not checked: MNIST could not be loaded ({problem})")
    for name in NAMES:
        model_path = Path(models_dir) / f"{name}.keras"
        json_path, bin_path = out_dir / f"{name}.json", out_dir / f"{name}.bin"
        missing = [str(p) for p in (model_path, json_path, bin_path) if not p.is_file()]
        if missing:
            problems.append(f"{name}: missing {', '.join(missing)}")
            continue
        stored = json.loads(json_path.read_text())
        if stored.get("source", {}).get("sha256") != sha256(model_path.read_bytes()):
            problems.append(f"{name}: {model_path.name} changed since the export")
            continue
        dtype = stored.get("weights", {}).get("dtype")
        if dtype not in DTYPES:
            problems.append(f"{name}: unknown weight type {dtype!r}")
            continue
        document, weights = build(name, models_dir, held_out, dtype)
        if bin_path.read_bytes() != weights:
            problems.append(f"{name}: {bin_path.name} differs from the model's weights")
        keys = ["format", "kind", "num_classes", "image_shape"]
        if document["scatter"] is not None:
            keys.append("z_range")
        for key in keys:
            if stored.get(key) != document[key]:
                problems.append(f"{name}: {key} is {stored.get(key)!r}, expected {document[key]!r}")
        stored_weights = {k: v for k, v in stored["weights"].items() if k != "max_abs_error"}
        if stored_weights != {k: v for k, v in document["weights"].items() if k != "max_abs_error"}:
            problems.append(f"{name}: the layer table or weight hash differs")
        if document["scatter"] is not None:
            new, old = document["scatter"], stored.get("scatter") or {}
            if old.get("labels") != new["labels"] or len(old.get("z", [])) != len(new["z"]):
                notes.append(
                    f"{name}: scatter not checked: it was made from {old.get('description')}, "
                    f"and MNIST here gives {new['description']}"
                )
            else:
                gap = float(np.max(np.abs(np.array(old["z"]) - np.array(new["z"]))))
                if gap > SCATTER_TOLERANCE:
                    problems.append(f"{name}: the scatter moved by up to {gap:.3f}")
    return problems, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is current")
    parser.add_argument("--models", type=Path, default=MODELS, help="folder of the .keras files")
    parser.add_argument("--out", type=Path, default=DECODERS, help="folder of the export")
    args = parser.parse_args(argv)
    if not args.check:
        write(args.models, args.out)
        return 0
    problems, notes = check(args.models, args.out)
    for line in notes + problems:
        print(line)
    if problems:
        print("the explorer's export is out of date: run python docs/explorer/export.py")
        return 1
    print(f"the explorer's export in {args.out} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())

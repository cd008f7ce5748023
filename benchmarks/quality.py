"""Quality at a fixed budget: held-out negative ELBO and log-likelihood of the notebooks' models.

Next to the one-sample negative ELBO of `evaluate` (on the whole held-out split),
each model gets the importance-sampled bound L_K (Burda et al., 2016) with
K = 5,000 samples per image, `vae_keras.evaluation.log_likelihood`, on the first
`LL_IMAGES` held-out images, and the ELBO on the same images (the mean of the
same 5,000 log-weights), so the two columns compare like with like. L_K decodes
every image K times; with the convolutional decoders that is the slow part, so
it runs on a subset.
"""

import time

import numpy as np

from benchmarks import common
from benchmarks import models as bm

LL_SAMPLES = 5000  # K, importance samples per image (Burda et al. use 5,000)
LL_IMAGES = 100  # held-out images that get L_K
# With one training epoch (the --quick run, which only proves that the harness runs),
# a much smaller L_K.
QUICK_LL_SAMPLES, QUICK_LL_IMAGES = 50, 20


def heldout_log_likelihood(model, x_test, num_samples, num_images, seed=0):
    """Mean -L_K and -ELBO (nats per image) on the first `num_images`, with the wall time."""
    from vae_keras import evaluation

    subset = (
        x_test[:num_images]
        if not isinstance(x_test, list)
        else [part[:num_images] for part in x_test]
    )
    start = time.perf_counter()
    log_w = evaluation.log_importance_weights(model, subset, num_samples=num_samples, seed=seed)
    top = log_w.max(axis=1, keepdims=True)
    bound = top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1))
    return {
        "heldout_neg_ll": float(-bound.mean()),
        "heldout_neg_ll_stderr": float(bound.std(ddof=1) / np.sqrt(len(bound)))
        if len(bound) > 1
        else None,
        "heldout_neg_elbo_subset": float(-log_w.mean()),
        "ll_samples": int(num_samples),
        "ll_images": int(log_w.shape[0]),
        "ll_wall_s": time.perf_counter() - start,
    }


def run(data, epochs, log=print, ll_samples=None, ll_images=None):
    quick = epochs <= 1
    if ll_samples is None:
        ll_samples = QUICK_LL_SAMPLES if quick else LL_SAMPLES
    if ll_images is None:
        ll_images = QUICK_LL_IMAGES if quick else LL_IMAGES
    rows = []
    for name, kind, builder in bm.notebook_models():
        model = bm.build_notebook_model(kind, builder)
        x_train = data["x_train"] if kind == "vae" else [data["x_train"], data["y_train"]]
        x_test = data["x_test"] if kind == "vae" else [data["x_test"], data["y_test"]]
        timer = common.epoch_timer()
        start = time.perf_counter()
        model.fit(
            x_train, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0, callbacks=[timer]
        )
        wall = time.perf_counter() - start
        logs = model.evaluate(x_test, batch_size=1000, verbose=0, return_dict=True)
        row = {
            "model": name,
            "parameters": bm.parameter_count(model),
            "settings": bm.resolved_settings(model),
            "epochs": epochs,
            "train_wall_s": wall,
            "first_epoch_s": timer.times[0],
            "median_epoch_s": float(np.median(timer.times[1:] or timer.times)),
            "heldout_neg_elbo": float(logs["loss"]),
            "heldout_reconstruction": float(logs["reconstruction_loss"]),
            "heldout_kl": float(logs["kl_loss"]),
            # the data are grey levels in [0, 1]: with "bernoulli", -ELBO and -L_K are
            # cross-entropies, not densities (the report says so in each row)
            "likelihood": model.likelihood,
        }
        row.update(heldout_log_likelihood(model, x_test, ll_samples, ll_images))
        log(
            f"    {name}: -ELBO {row['heldout_neg_elbo']:.2f}, -L_{ll_samples} "
            f"{row['heldout_neg_ll']:.2f} (first {row['ll_images']} images, "
            f"{row['ll_wall_s']:.0f} s) after {epochs} epochs, {wall:.1f} s"
        )
        rows.append(row)
    return rows

"""Quality at a fixed budget: held-out negative ELBO of the notebooks' models."""

import time

import numpy as np

from benchmarks import common
from benchmarks import models as bm


def run(data, epochs, log=print):
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
        }
        log(f"    {name}: -ELBO {row['heldout_neg_elbo']:.2f} after {epochs} epochs, {wall:.1f} s")
        rows.append(row)
    return rows

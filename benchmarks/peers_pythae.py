"""The Pythae worker of `benchmarks.peers`: runs in Pythae's own virtualenv.

`benchmarks.peers` starts it as `<venv>/bin/python -m benchmarks.peers_pythae`
and sends it requests (one JSON line each, see `benchmarks/child.py`):

- `setup`: loads the data split `benchmarks.peers` wrote, builds Pythae's `VAE`
  (BCE reconstruction loss, latent 16) with its default MLP nets or with the
  convolutional nets of `peers_torch.py`, and saves its initial weights for the
  Keras models to start from;
- `train`: Pythae's `TrainingPipeline` with `BaseTrainerConfig` (Adam, learning
  rate 1e-3, batch size 128), its epochs started one at a time by the parent;
- `evaluate`: the held-out negative ELBO (one z sample per image), as
  `vk.VAE.evaluate` computes it;
- `save`: the trained weights and the mean reconstruction of some held-out
  images, for the check that the weights moved into `vk` nets exactly;
- `loglik`: Pythae's own importance-sampled estimate, `VAE.get_nll`.

Only PyTorch, NumPy and Pythae are imported: Keras is not installed here.
"""

import os
import sys
import tempfile
import time

import numpy as np
import torch

from benchmarks import child, peers_torch


def _data(path):
    with np.load(path) as data:
        # Pythae takes channels-first images
        return {k: np.ascontiguousarray(data[k].transpose(0, 3, 1, 2)) for k in data.files}


class Session:
    def __init__(self):
        self.model = self.data = None

    def setup(self, request):
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder

        torch.manual_seed(request["seed"])
        self.data = _data(request["data"])
        self.arch = request["arch"]
        config = VAEConfig(
            input_dim=(1, 28, 28), latent_dim=request["latent_dim"], reconstruction_loss="bce"
        )
        if self.arch == "mlp":
            self.model = VAE(config)  # Pythae's default MLP: 784-512-latent, as vk.build_mlp_*
        else:
            encoder_net, decoder_net = peers_torch.build_torch_nets("conv", config.latent_dim)

            class Encoder(BaseEncoder):
                def __init__(self):
                    super().__init__()
                    self.net = encoder_net

                def forward(self, x):
                    mean, log_var = self.net(x)
                    return ModelOutput(embedding=mean, log_covariance=log_var)

            class Decoder(BaseDecoder):
                def __init__(self):
                    super().__init__()
                    self.net = decoder_net

                def forward(self, z):
                    return ModelOutput(reconstruction=self.net(z))

            self.model = VAE(config, encoder=Encoder(), decoder=Decoder())
        peers_torch.save_layers(
            request["initial_weights"],
            {"encoder": self.model.encoder, "decoder": self.model.decoder},
        )
        import pythae

        return {
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "pythae": pythae.__version__ if hasattr(pythae, "__version__") else _version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }

    def train(self, request):
        from pythae.pipelines import TrainingPipeline
        from pythae.trainers import BaseTrainerConfig
        from pythae.trainers.training_callbacks import TrainingCallback

        gate = child.EpochGate()

        class Gate(TrainingCallback):
            def on_epoch_begin(self, training_config, **kwargs):
                gate.begin()

            def on_epoch_end(self, training_config, **kwargs):
                gate.end()

        with tempfile.TemporaryDirectory() as out:
            config = BaseTrainerConfig(
                output_dir=out,
                num_epochs=request["epochs"],
                learning_rate=1e-3,
                per_device_train_batch_size=128,
                per_device_eval_batch_size=1000,
                optimizer_cls="Adam",
                seed=request["seed"],
                no_cuda=not request.get("cuda", False),
            )
            pipeline = TrainingPipeline(training_config=config, model=self.model)
            start = time.perf_counter()
            pipeline(train_data=self.data["x_train"], callbacks=[Gate()])
            wall = time.perf_counter() - start
        # self.model is the trained model after the last epoch (the trainer also keeps a
        # deep copy of the best epoch's, which it saves; its copying is part of its epochs)
        return {"trained": True, "train_wall_s": wall}

    def _device(self):
        return next(self.model.parameters()).device

    def evaluate(self, request):
        torch.manual_seed(request["seed"])
        self.model.eval()
        x = torch.from_numpy(self.data["x_test"])
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(x), 1000):
                batch = x[start : start + 1000].to(self._device())
                total += float(self.model({"data": batch}).loss) * len(batch)
        return {"heldout_neg_elbo": total / len(x)}

    def save(self, request):
        self.model.eval()
        x = torch.from_numpy(self.data["x_test"][: request["images"]]).to(self._device())
        with torch.no_grad():
            mean = self.model.encoder(x).embedding
            reconstruction = self.model.decoder(mean)["reconstruction"].cpu().numpy()
        peers_torch.save_layers(
            request["weights"], {"encoder": self.model.encoder, "decoder": self.model.decoder}
        )
        np.save(request["reconstruction"], reconstruction.transpose(0, 2, 3, 1))
        return {"saved": True}

    def loglik(self, request):
        """Pythae's `get_nll` (under `torch.no_grad`, in eval mode) on the first images."""
        torch.manual_seed(request["seed"])
        self.model.eval()
        x = torch.from_numpy(self.data["x_test"][: request["images"]]).to(self._device())
        start = time.perf_counter()
        with torch.no_grad():
            log_p = self.model.get_nll(x, n_samples=request["samples"], batch_size=100)
        return {"neg_ll": -float(log_p), "ll_s": time.perf_counter() - start}


def _version():
    from importlib import metadata

    return metadata.version("pythae")


def main():
    os.environ.setdefault("TQDM_DISABLE", "1")
    session = Session()
    child.serve(
        {
            "setup": session.setup,
            "train": session.train,
            "evaluate": session.evaluate,
            "save": session.save,
            "loglik": session.loglik,
        }
    )


if __name__ == "__main__":
    sys.exit(main())

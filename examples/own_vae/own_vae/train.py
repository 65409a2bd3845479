"""Train :class:`~own_vae.model.ConvVAE` with a plain PyTorch loop (no lsx trainer).

    python -m own_vae.train --epochs 3 --out own_vae.safetensors

lsx is used only to read the images (``lsx.data.load_dataset("mnist5k")``, bundled, nothing is
downloaded); any array of images in [0, 1] of shape (n, 1, 28, 28) would do.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from own_vae.model import ConvVAE, elbo_loss


def train(
    x: np.ndarray, epochs: int = 3, latent_dim: int = 8, batch_size: int = 64, seed: int = 0
) -> ConvVAE:
    """A ConvVAE fitted to images ``x`` of shape (n, C, H, W) in [0, 1]."""
    torch.manual_seed(seed)
    data = torch.tensor(np.asarray(x, dtype=np.float32))  # a copy: lsx arrays are read-only
    vae = ConvVAE(channels=data.shape[1], size=data.shape[2], latent_dim=latent_dim)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(data))
        total = 0.0
        for start in range(0, len(data), batch_size):
            batch = data[order[start : start + batch_size]]
            loss, _, _ = elbo_loss(batch, *vae(batch))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(data):.1f}")
    return vae.eval()


def main() -> None:
    from safetensors.torch import save_model

    from lsx.data import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default="own_vae.safetensors")
    args = p.parse_args()
    torch.set_num_threads(1)  # small model, shared CPUs
    vae = train(load_dataset("mnist5k").x_train, epochs=args.epochs)
    save_model(vae, args.out)  # safetensors: weights only, no pickle
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

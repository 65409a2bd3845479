"""Supervised autoencoder with a configured latent space (LSC): "Latent space configuration for
improved generalization in supervised autoencoder neural networks", N. Gabdullin, arXiv
2402.08441 (2024); docs/methods.md.

Loss = ``recon_weight`` * pixel MSE + ``geo_weight`` * L_G (+ ``classifier_weight`` * CE)::

    L_G = (1 / B) sum_j f_d(||z_j - C_{y_j}||, r_{y_j}),   f_d(x, r) = exp(ReLU(x - r)) - 1

Points are pulled INTO the sphere of radius r around their class centre, not onto the centre.
Centres C and radii r are fixed before training (:mod:`lsx.models.centres`) and stored as
buffers, so a checkpoint carries its configuration. With several label attributes (``textures``:
pattern, colour) the latent is split into sub-spaces, one per attribute, each with its own
centres; L_G is summed over attributes. Labels are then predicted without decoder or
classifier: the nearest configured centre (``lsx.analysis.clusters``).

NOT FOUND in P1 (lsx defaults, each a config field): architecture (``lsx.models.base`` nets),
loss weights (1, 1, 0), whether L_G is a sum or a mean (lsx: sum / batch size), centre design and
radii, latent size, the encoder-configuration mechanism (docs/methods.md). ``encoder_config`` is
an lsx interpretation, not from the paper: ``l2norm`` puts each sub-space's latent on the sphere
through its centres; ``fixed_projection`` ends the encoder in a fixed, non-trained layer whose
rows are the centres (z_a = h_a @ C_a), so z lies in their span.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import ModelConfig, _fail, option
from lsx.errors import ConfigError, DataShapeError
from lsx.models import centres as cfgs
from lsx.models.base import Decoder, Encoder, Losses, check_input, latent_shape, per_sample_mse

ENCODER_CONFIGS = ("none", "l2norm", "fixed_projection")


@dataclass(frozen=True)
class SAEConfig(ModelConfig):
    """Config of the supervised AE; see the module docstring for the fields' roles."""

    kind = "sae"
    n_classes: tuple[int, ...] = option(
        (10,), "classes per label attribute (Dataset.label_names order)"
    )
    attribute_dims: tuple[int, ...] = option(
        (), "latent dims per attribute; () = latent_dim split evenly"
    )
    configuration: str = option(
        "auto",
        "centre design: auto onehot simplex an_root random file",
        choices=cfgs.DESIGNS,
    )
    centers_file: str = option(
        "", 'JSON/CSV of centres (configuration="file"); read once into centers'
    )
    centers: tuple[tuple[float, ...], ...] = option(
        (), "the user-supplied centres, all attributes' rows"
    )
    center_scale: float = option(
        1.0, "norm of generated centres (NOT FOUND in P1)", low=0.0, low_open=True
    )
    centers_seed: int = option(0, "seed of the an_root and random designs", low=0)
    radius_fraction: float = option(
        0.5,
        "r = fraction * min centre distance / 2; > 1: spheres overlap",
        low=0.0,
        high=4.0,
        low_open=True,
    )
    radius_mode: str = option("per_class", "per_class | shared", choices=cfgs.RADIUS_MODES)
    geo_weight: float = option(
        1.0, "weight of L_G (0 = a plain AE with the configuration unused)", low=0.0
    )
    recon_weight: float = option(1.0, low=0.0)
    classifier_weight: float = option(
        0.0, "> 0 adds a linear head + cross-entropy per attribute", low=0.0
    )
    encoder_config: str = option(
        "none",
        "l2norm | fixed_projection: lsx interpretation, not from the paper",
        choices=ENCODER_CONFIGS,
    )
    held_out: tuple[int, ...] = option(
        (), "primary-attribute classes never trained on (unseen classes)"
    )
    max_excess: float = option(
        20.0,
        "f_d is continued linearly beyond this excess (finite gradients)",
        low=1.0,
        high=80.0,
    )

    def __post_init__(self) -> None:
        super().__post_init__()  # checks every field's declared rule (lsx.config.check_fields)
        if isinstance(self.n_classes, int) and not isinstance(self.n_classes, bool):
            object.__setattr__(self, "n_classes", (self.n_classes,))  # --n-classes 10
        n = self.n_classes
        if not (isinstance(n, tuple) and 1 <= len(n) <= 16 and all(_is_int(k, 2) for k in n)):
            _fail(self, "n_classes", "a tuple of 1 to 16 ints >= 2 (classes per attribute)", n)
        dims = self.attribute_dims
        if dims != () and not (
            isinstance(dims, tuple) and len(dims) == len(n) and all(_is_int(k, 1) for k in dims)
        ):
            _fail(self, "attribute_dims", f"() or a tuple of {len(n)} ints >= 1", dims)
        if dims and sum(dims) != self.latent_dim:
            _fail(
                self, "attribute_dims", f"() or dims summing to latent_dim={self.latent_dim}", dims
            )
        if self.latent_dim < len(n):
            _fail(
                self, "latent_dim", f"an int >= {len(n)} (one per label attribute)", self.latent_dim
            )
        held = self.held_out
        if not (isinstance(held, tuple) and all(_is_int(k, 0, n[0] - 1) for k in held)):
            _fail(self, "held_out", f"a tuple of class indices in 0..{n[0] - 1}", held)
        if len(set(held)) > n[0] - 2:
            _fail(self, "held_out", f"at most {n[0] - 2} classes (two must stay to train)", held)
        if self.encoder_config != "none" and self.spatial:
            raise ConfigError(
                f"SAEConfig: encoder_config={self.encoder_config!r} needs a vector latent; "
                "set spatial=false or encoder_config='none'."
            )
        self._check_centers()

    def _check_centers(self) -> None:
        if not isinstance(self.centers_file, str):
            _fail(self, "centers_file", "a path (str) or ''", self.centers_file)
        rows = cfgs.resolve_centers(
            self.configuration, self.n_classes, self.dims, self.centers, self.centers_file
        )
        object.__setattr__(self, "centers", rows)  # file centres live in the config (checkpoint)

    @property
    def dims(self) -> tuple[int, ...]:
        """Latent dimensions of each attribute's sub-space (even split, remainder to the first)."""
        if self.attribute_dims:
            return self.attribute_dims
        k = len(self.n_classes)
        base, extra = divmod(self.latent_dim, k)
        return tuple(base + (1 if a < extra else 0) for a in range(k))

    @classmethod
    def dataset_fields(cls, dataset) -> dict:  # noqa: ANN001 - lsx.data.Dataset
        """Fields a dataset determines: one class count per label attribute."""
        return {"n_classes": tuple(len(names) for names in dataset.label_names.values())}


def _is_int(v: object, low: int, high: int | None = None) -> bool:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= low
    return ok and (high is None or v <= high)


def geometric_loss(
    z: torch.Tensor, y: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor, max_excess: float
) -> torch.Tensor:
    """L_G normalised by batch size: mean over the batch of exp(ReLU(||z - C_y|| - r_y)) - 1.

    ``z`` (B, d), ``y`` (B,) int64, ``centers`` (n, d), ``radii`` (n,). Numerically guarded:
    the excess is clamped at ``max_excess`` for expm1 and continued linearly beyond it, so the
    value stays finite and far points still get a gradient.
    """
    dist = ((z - centers[y]).pow(2).sum(1) + 1e-12).sqrt()  # (B,); eps: finite grad at 0
    excess = F.relu(dist - radii[y])
    clamped = excess.clamp(max=max_excess)
    f = torch.expm1(clamped) + torch.exp(clamped) * (excess - clamped)  # linear past the clamp
    return f.sum() / max(len(z), 1)


class SAE(nn.Module):
    """Encoder + decoder trained with reconstruction and the geometric loss L_G."""

    def __init__(self, config: SAEConfig) -> None:
        super().__init__()
        self.config = config
        dims, n_classes = config.dims, config.n_classes
        self.slices = []
        start = 0
        for d in dims:
            self.slices.append((start, start + d))
            start += d
        rows = list(config.centers)
        for a, (k, d) in enumerate(zip(n_classes, dims, strict=True)):
            if config.configuration == "file":
                # on the CPU even under a `torch.device("meta")` context (listing builds the
                # model there to read its shapes): the radii below need the values
                c = torch.tensor(rows[:k], dtype=torch.float64, device="cpu")
                rows = rows[k:]
            else:
                seed = config.centers_seed + a
                design = config.configuration
                c = torch.from_numpy(
                    cfgs.make_centers(design, k, d, scale=config.center_scale, seed=seed)
                )
            r = torch.from_numpy(
                cfgs.make_radii(c.numpy(), config.radius_fraction, config.radius_mode)
            )
            self.register_buffer(f"centers_{a}", c.float())  # C in the paper, (n_a, d_a)
            self.register_buffer(f"radii_{a}", r.float())  # r_c in the paper, (n_a,)
            for i, j, excess in cfgs.sphere_overlaps(c.numpy(), r.numpy())[:3]:
                warnings.warn(
                    f"sae attribute {a}: the spheres of classes {i} and {j} overlap by "
                    f"{excess:.3g} (radii sum exceeds their centre distance); lower "
                    "radius_fraction to at most 1.",
                    stacklevel=2,
                )
        enc_out = sum(n_classes) if config.encoder_config == "fixed_projection" else None
        enc_cfg = config if enc_out is None else _plain(config, enc_out)
        self.encoder = Encoder(enc_cfg)
        self.decoder = Decoder(config)
        self.heads = nn.ModuleList()
        if config.classifier_weight > 0:  # optional, off by default
            self.heads = nn.ModuleList(
                nn.Linear(d, k) for k, d in zip(n_classes, dims, strict=True)
            )

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, C, H, W) -> (batch, *latent_shape); the encoder configuration is applied."""
        h = self.encoder(x)
        mode = self.config.encoder_config
        if mode == "none":
            return h
        parts, start = [], 0
        for a, (lo, hi) in enumerate(self.slices):
            c = self.centers(a)
            if mode == "fixed_projection":  # fixed last layer whose rows are the centres
                k = len(c)
                parts.append(h[:, start : start + k] @ c)  # (B, n_a) @ (n_a, d_a)
                start += k
            else:  # l2norm: z_a on the sphere through the centres
                norm = c.norm(dim=1).mean()
                parts.append(norm * F.normalize(h[:, lo:hi], dim=1))
        return torch.cat(parts, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        """Reconstruction + weighted L_G (+ CE); with ``y=None`` only the reconstruction term."""
        check_input(x, self.config)
        if y is not None:
            y = self._check_labels(y, len(x))
            if self.config.held_out:  # unseen classes: drop their samples entirely
                keep = ~torch.isin(y[:, 0], torch.tensor(self.config.held_out, device=y.device))
                x, y = x[keep], y[keep]
                if len(x) == 0:
                    zero = sum(p.sum() * 0.0 for p in self.parameters())
                    return Losses(
                        total=zero, terms={"recon": zero.detach(), "cluster": zero.detach()}
                    )
        z = self.encode(x)
        recon = per_sample_mse(self.decode(z), x).mean()
        total = self.config.recon_weight * recon
        terms = {"recon": recon}
        if y is None:
            return Losses(total=total, terms=terms)
        zc = self.configured(z)
        geo = zc.new_zeros(())
        ce = zc.new_zeros(())
        inside = zc.new_zeros(())
        for a, (lo, hi) in enumerate(self.slices):
            za, ya, c, r = zc[:, lo:hi], y[:, a], self.centers(a), self.radii(a)
            geo = geo + geometric_loss(za, ya, c, r, self.config.max_excess)
            with torch.no_grad():  # monitoring: in-sphere rate ~ accuracy (docs/methods.md)
                inside += ((za - c[ya]).norm(dim=1) <= r[ya]).float().mean() / len(self.slices)
            if len(self.heads):
                ce = ce + F.cross_entropy(self.heads[a](za), ya)
        total = total + self.config.geo_weight * geo
        terms.update(cluster=geo, in_sphere=inside)
        if len(self.heads):
            total = total + self.config.classifier_weight * ce
            terms["ce"] = ce
        return Losses(total=total, terms=terms)

    # ---------------------------------------------------------------- extras

    def centers(self, attribute: int = 0) -> torch.Tensor:
        """Configured centres of one attribute, (n_classes, sub-space dims)."""
        return getattr(self, f"centers_{attribute}")

    def radii(self, attribute: int = 0) -> torch.Tensor:
        """Sphere radii of one attribute, (n_classes,)."""
        return getattr(self, f"radii_{attribute}")

    def configured(self, z: torch.Tensor) -> torch.Tensor:
        """The vector the configuration acts on, (batch, latent_dim): ``z`` itself, or for a
        spatial latent its mean over positions (lsx default; NOT FOUND in P1)."""
        return z.flatten(2).mean(2) if z.dim() == 4 else z

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)

    def _check_labels(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        """Labels as (batch, n_attributes) int64, checked against the configured classes."""
        n = self.config.n_classes
        y = y[:, None] if y.dim() == 1 else y
        if y.dim() != 2 or y.shape != (batch, len(n)):
            raise DataShapeError(
                f"The sae model has {len(n)} label attribute(s) (n_classes={list(n)}) but got "
                f"labels of shape {tuple(y.shape)} for a batch of {batch}. Train it on the "
                "dataset it was configured for, or set --n-classes to one count per attribute."
            )
        y = y.long()
        for a, k in enumerate(n):
            if len(y) and (int(y[:, a].min()) < 0 or int(y[:, a].max()) >= k):
                raise DataShapeError(
                    f"Attribute {a} has label {int(y[:, a].max())} but the sae model was "
                    f"configured for {k} classes (n_classes={list(n)}); set --n-classes to the "
                    "dataset's class counts."
                )
        return y


def _plain(config: SAEConfig, out: int) -> ModelConfig:
    """The shared-net config of an encoder whose last layer has ``out`` features."""
    return ModelConfig(
        input_shape=config.input_shape,
        latent_dim=out,
        hidden_dim=config.hidden_dim,
        arch=config.arch,
        spatial=False,
    )

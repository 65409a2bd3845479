"""What a model kind is: :class:`ModelSpec`, the entry type of the registry ``lsx.models.MODELS``.

Its own module so that plugin discovery (:mod:`lsx.models.plugins`) can check a plugin's spec
without importing the registry that it fills.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lsx.config import ModelConfig


@dataclass(frozen=True)
class ModelSpec:
    """One model kind: its classes, how the app names it and what it can do.

    Attributes
    ----------
    config_cls, module_cls : type
        The frozen config dataclass and the ``nn.Module`` built from it.
    summary : str
        One line, shown next to the kind in the app and the CLI.
    label : str
        Display name (the model family as papers write it: "AE", "SC-VAE").
    conv_label : str
        The name when the run's network is convolutional (``config.resolved_arch == "conv"``),
        e.g. "CAE" for a plain autoencoder; "" = always ``label``. Use :func:`display_label`.
    has_posterior : bool
        The module has ``posterior(x) -> (mu, logvar)``, a Gaussian q(z|x) (the VAE family).
    dictionary : str
        What the rows of its dictionary are called ("atoms", "codebook vectors"); "" = it has
        none. Models with one are what ``lsx.analysis.atoms`` computes usage statistics of.
    sparse_codes : bool
        Its ``code(x)`` is a float sparse code whose support varies (L0/L1 statistics apply);
        a VQ-VAE's one index per position is not.
    has_centres : bool
        Configured latent centres: ``centers(attribute)`` and ``radii(attribute)`` (sae).
    spatial : bool
        Supports a spatial latent tensor (``spatial=True`` in its config).
    partner : str or None
        The kind it is compared with on the Atoms page (symmetric: scvae <-> vqvae).
    manifold : bool
        One of the kinds the Manifold page compares (the paper's CAE, DAE and VAE).
    """

    config_cls: type[ModelConfig]
    module_cls: type[nn.Module]
    summary: str
    label: str
    conv_label: str = ""
    has_posterior: bool = False
    dictionary: str = ""
    sparse_codes: bool = False
    has_centres: bool = False
    spatial: bool = True
    partner: str | None = None
    manifold: bool = False

    @property
    def has_dictionary(self) -> bool:
        """Atoms (scvae) or a codebook (vqvae): ``lsx.analysis.atoms`` recognises the model."""
        return bool(self.dictionary)

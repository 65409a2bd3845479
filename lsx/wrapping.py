"""A model trained outside lsx as an lsx model (:func:`wrap`) and as a run (:func:`export_run`).

``wrap`` puts lsx's model contract (``config``, ``latent_shape``, ``encode``, ``decode``,
``loss``, optionally ``posterior``) around any encoder/decoder pair or any module with
``encode``/``decode`` methods, so the notebook (:func:`lsx.notebook.explore`) and the Python
API take it like a model of their own. ``export_run`` copies its weights into a model of an
installed plugin kind (:mod:`lsx.models.plugins`), checks that the copy computes the same
latents, and saves it as ``config.json`` + ``model.safetensors``: the app then opens it like
any run. See docs/own-model.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lsx.checkpoint import CONFIG_NAME, WEIGHTS_NAME, save_checkpoint
from lsx.config import ModelConfig, option
from lsx.data import Dataset, load_dataset
from lsx.errors import CheckpointError, ConfigError, DataShapeError
from lsx.models import BUILTIN_KINDS, MODELS, PLUGIN_PROBLEMS, PLUGINS, build_model, make_config
from lsx.models.base import Losses, gaussian_kl, per_sample_mse
from lsx.models.plugins import missing_kind_reason

EXPORT_CHECK_BATCH = 4  # random inputs on which the exported model must give the same latents
EXPORT_ATOL = 1e-5  # same weights, same ops: equal up to float reassociation at most


@dataclass(frozen=True)
class WrappedConfig(ModelConfig):
    """What lsx knows of a wrapped model: its input shape, latent size and a name."""

    kind = "wrapped"
    name: str = option("wrapped", "shown as the model's title in the notebook")


def _owner(fn: Any) -> nn.Module | None:
    """The module whose weights ``fn`` uses: the module itself, or the owner of a bound method."""
    if isinstance(fn, nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


class WrappedModel(nn.Module):
    """A module trained elsewhere behind lsx's model contract. Build it with :func:`wrap`."""

    def __init__(
        self,
        encode_fn: Callable[[torch.Tensor], Any],
        decode_fn: Callable[[torch.Tensor], torch.Tensor],
        posterior_fn: Callable[[torch.Tensor], Any] | None,
        parts: dict[str, nn.Module],
        input_shape: tuple[int, int, int],
        name: str,
    ) -> None:
        super().__init__()
        for key, module in parts.items():  # registered: .to(), .eval() and the weights follow
            self.add_module(key, module)
        # a tuple, not attributes: a module assigned to an attribute would be registered twice
        self._fns = (encode_fn, decode_fn, posterior_fn)
        self._single = list(parts) == ["net"]
        self._input_shape = input_shape
        self._name = name
        self._latent_shape: tuple[int, ...] = ()
        self.config: WrappedConfig = WrappedConfig(input_shape=input_shape, name=name)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self._latent_shape

    @property
    def posterior(self) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``posterior(x) -> (mu, logvar)``; an AttributeError when the wrapped model has none,
        so ``callable(getattr(model, "posterior", None))`` answers like for lsx's own kinds."""
        if self._fns[2] is None and not self._pair_encoder:
            raise AttributeError("this wrapped model has no posterior (pass posterior=...)")
        return self._posterior

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = (self._fns[2] or self._fns[0])(x)
        return out[0], out[1]

    @property
    def _pair_encoder(self) -> bool:
        return getattr(self, "_encoder_gives_pair", False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent: the encoder's output, or its first element (a VAE's mean) for a tuple."""
        out = self._fns[0](x)
        return out[0] if isinstance(out, tuple | list) else out

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._fns[1](z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        """Mean squared reconstruction error (plus the KL of the posterior when there is one):
        what lsx reports; the model's own training objective stays in the user's code."""
        recon = per_sample_mse(self.reconstruct(x), x).mean()
        terms = {"recon": recon}
        if callable(getattr(self, "posterior", None)):
            terms["kl"] = gaussian_kl(*self.posterior(x)).mean()
        return Losses(total=sum(terms.values()), terms=terms)  # type: ignore[arg-type]

    def export_state(self) -> dict[str, torch.Tensor]:
        """The wrapped modules' weights on the CPU: the single module's own names, or
        ``encoder.*`` / ``decoder.*`` for a pair."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        return {k.removeprefix("net."): v for k, v in state.items()} if self._single else state


def wrap(
    encoder: nn.Module | Callable[[torch.Tensor], Any],
    decoder: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None,
    input_shape: tuple[int, int, int],
    *,
    posterior: Callable[[torch.Tensor], Any] | None = None,
    name: str = "wrapped",
) -> WrappedModel:
    """Turn a trained encoder and decoder into an lsx model (for the notebook and the API).

    Parameters
    ----------
    encoder : nn.Module or a method of one
        ``x (batch, *input_shape) -> z``; or ``-> (mu, logvar)``, as most VAEs return: the latent
        is then ``mu`` and the pair is the model's ``posterior``. With ``decoder=None``: one
        module with ``encode`` and ``decode`` methods.
    decoder : nn.Module, a method of one, or None
        ``z -> x_hat`` with the shape of ``x``.
    input_shape : (channels, height, width)
        The images the model takes, in [0, 1]; 1 or 3 channels.
    posterior : callable, optional
        ``x -> (mu, logvar)`` of a Gaussian q(z|x), when the encoder does not return it.
    name : str
        The model's title in the notebook.

    Returns
    -------
    WrappedModel
        In eval mode (so are the modules it wraps: they are the same objects, not copies).

    Raises
    ------
    ConfigError
        Not modules (or methods of modules), a module without ``encode``/``decode``, a bad
        ``input_shape``.
    DataShapeError
        ``decode(encode(x))`` does not have the shape of ``x`` (both shapes are named).
    """
    input_shape = _shape(input_shape)
    if decoder is None:
        if not (isinstance(encoder, nn.Module) and callable(getattr(encoder, "encode", None))
                and callable(getattr(encoder, "decode", None))):  # fmt: skip
            raise ConfigError(
                "wrap(module, None, input_shape) needs an nn.Module with encode(x) and decode(z) "
                f"methods; got a {type(encoder).__name__}. Pass wrap(encoder, decoder, "
                "input_shape) for two modules."
            )
        encode_fn, decode_fn = encoder.encode, encoder.decode
        if posterior is None and callable(getattr(encoder, "posterior", None)):
            posterior = encoder.posterior
    else:
        encode_fn, decode_fn = encoder, decoder
    owners = [_owner(encode_fn), _owner(decode_fn)]
    if None in owners:
        which, fn = ("encoder", encode_fn) if owners[0] is None else ("decoder", decode_fn)
        raise ConfigError(
            f"the {which} must be an nn.Module or a method of one, so that its weights move, "
            f"switch to eval mode and can be exported; got a {type(fn).__name__}."
        )
    same = owners[0] is owners[1]
    parts = {"net": owners[0]} if same else {"encoder": owners[0], "decoder": owners[1]}
    model = WrappedModel(encode_fn, decode_fn, posterior, parts, input_shape, str(name))  # type: ignore[arg-type]
    model.eval()
    _probe(model)
    return model


def _shape(input_shape: Any) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, tuple | list) else None
    ok = shape is not None and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
    if not ok or shape[0] not in (1, 3):  # type: ignore[index]
        raise ConfigError(
            f"input_shape must be (channels, height, width) with 1 or 3 channels; got "
            f"{input_shape!r}."
        )
    return shape  # type: ignore[return-value]


def _probe(model: WrappedModel) -> None:
    """Run two random inputs through: learn the latent shape, refuse a decoder that does not
    return the input's shape."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        x = torch.rand(2, *model._input_shape, device=device)
        raw = model._fns[0](x)
        model._encoder_gives_pair = isinstance(raw, tuple | list) and len(raw) == 2
        z = model.encode(x)
        if not isinstance(z, torch.Tensor) or z.dim() < 2 or z.shape[0] != 2:
            raise DataShapeError(
                f"encode(x) must return a tensor of shape (batch, ...) (or a (mu, logvar) pair of "
                f"them); for x of shape {tuple(x.shape)} it returned {_describe(z)}."
            )
        x_hat = model.decode(z)
        if not isinstance(x_hat, torch.Tensor) or tuple(x_hat.shape) != tuple(x.shape):
            raise DataShapeError(
                f"decode(encode(x)) has shape {_describe(x_hat)} but x has shape "
                f"{tuple(x.shape)}: the decoder must return images of the input's shape. Check "
                "input_shape, or crop/resize inside the decoder."
            )
    model._latent_shape = tuple(z.shape[1:])
    spatial = len(model._latent_shape) == 3
    model.config = WrappedConfig(
        input_shape=model._input_shape,
        latent_dim=model._latent_shape[0] if spatial else math.prod(model._latent_shape),
        spatial=spatial,
        arch="conv" if spatial else "auto",
        name=model._name,
    )


def _describe(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


# ------------------------------------------------------------------------------ export


def export_run(
    wrapped: WrappedModel,
    folder: str | Path,
    plugin_kind: str,
    *,
    data: str | Dataset | None = None,
    overwrite: bool = False,
    **fields: Any,
) -> Path:
    """Save a wrapped model as a run folder of an installed plugin kind, for the app.

    The plugin kind's model is built from its config (``input_shape`` and ``latent_dim`` from
    the wrapped model, other fields from ``fields`` or their defaults), the wrapped weights are
    copied into it by name (the plugin module may hold them under one prefix, e.g. ``vae.``),
    and its latents must equal the wrapped model's on random inputs before anything is written.

    Parameters
    ----------
    wrapped : WrappedModel
        From :func:`wrap`.
    folder : str or Path
        The run folder to write (``config.json`` + ``model.safetensors``); put it in the
        checkpoints folder (``LSX_CHECKPOINTS``) for the app to list it.
    plugin_kind : str
        A kind provided by an installed package (``python -m lsx kinds`` lists them).
    data : str or Dataset, optional
        The dataset the model was trained on (e.g. ``"mnist5k"``); the app maps its images.
    overwrite : bool
        Replace a run already in ``folder``.
    **fields
        Config fields of the plugin kind.

    Returns
    -------
    Path
        The run folder.

    Raises
    ------
    ConfigError
        Not a wrapped model, a built-in or uninstalled kind, bad config fields.
    CheckpointError
        Weights that do not fit the plugin's module, different latents, an existing run.
    DataShapeError
        A dataset whose images have another shape than the model's input.
    """
    if not isinstance(wrapped, WrappedModel):
        raise ConfigError(
            f"export_run takes a model from lsx.wrap(...); got a {type(wrapped).__name__}. A model "
            "of an lsx kind is saved with lsx.checkpoint.save_checkpoint."
        )
    _check_plugin_kind(plugin_kind)
    folder = Path(folder)
    if not overwrite and ((folder / CONFIG_NAME).exists() or (folder / WEIGHTS_NAME).exists()):
        raise CheckpointError(f"{folder} already holds a run; pick a new folder or overwrite=True.")
    given = {"latent_dim": wrapped.config.latent_dim, **fields}
    known = {f for f in MODELS[plugin_kind].config_cls.__dataclass_fields__}
    given = {k: v for k, v in given.items() if k in known or k in fields}
    config = make_config(plugin_kind, input_shape=wrapped.config.input_shape, **given)
    model = build_model(config).eval()
    try:
        model.load_state_dict(_renamed(wrapped.export_state(), model, plugin_kind), strict=True)
    except RuntimeError as err:  # same names, other shapes: built with other config fields
        detail = "; ".join(line.strip() for line in str(err).splitlines()[1:3])
        raise CheckpointError(
            f"the wrapped weights do not fit a {plugin_kind!r} model built from {config}: "
            f"{detail}. Pass export_run the config fields the wrapped model was built with."
        ) from None
    _check_same_latents(wrapped, model, plugin_kind)
    save_checkpoint(model, config, folder, data=_data_record(data, config))
    return folder


def _check_plugin_kind(kind: str) -> None:
    if kind in BUILTIN_KINDS:
        raise ConfigError(
            f"{kind!r} is a built-in kind; export_run writes a run of a plugin kind (a package "
            "that declares an 'lsx.models' entry point; see docs/own-model.md)."
        )
    if kind not in PLUGINS:
        installed = ", ".join(sorted(PLUGINS)) or "none"
        raise ConfigError(
            f"{missing_kind_reason(kind, None, PLUGIN_PROBLEMS)}. Installed plugin kinds: "
            f"{installed}."
        )


def _renamed(
    source: dict[str, torch.Tensor], model: nn.Module, kind: str
) -> dict[str, torch.Tensor]:
    """``source`` under the plugin module's names: the same names, or all under one prefix."""
    target = list(model.state_dict())
    if set(source) == set(target):
        return source
    for name in target:
        for key in source:
            if name.endswith("." + key):
                prefix = name[: -len(key)]
                if {prefix + k for k in source} == set(target):
                    return {prefix + k: v for k, v in source.items()}
    missing = sorted(set(target) - set(source))[:4]
    extra = sorted(set(source) - set(target))[:4]
    raise CheckpointError(
        f"the wrapped weights do not fit a {kind!r} model: it has {len(target)} tensors, the "
        f"wrapped model {len(source)}; e.g. {kind} needs {missing} and the wrapped model has "
        f"{extra}. Wrap the same classes that the plugin's module builds, or pass the config "
        "fields it was built with."
    )


def _check_same_latents(wrapped: WrappedModel, model: nn.Module, kind: str) -> None:
    """Both models on the wrapped one's device (the same kernels: no CPU/GPU rounding gap)."""
    param = next(wrapped.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        x = torch.rand(EXPORT_CHECK_BATCH, *wrapped.config.input_shape).to(device)
        z_wrapped = wrapped.encode(x).cpu()
        z_plugin = model.to(device).encode(x).cpu()
    model.cpu()
    if z_wrapped.shape != z_plugin.shape or not torch.allclose(
        z_wrapped, z_plugin, rtol=0.0, atol=EXPORT_ATOL
    ):
        diff = (
            f"max difference {float((z_wrapped - z_plugin).abs().max()):.3g}"
            if z_wrapped.shape == z_plugin.shape
            else f"shapes {tuple(z_wrapped.shape)} vs {tuple(z_plugin.shape)}"
        )
        raise CheckpointError(
            f"a {kind!r} model with the wrapped weights computes other latents than the wrapped "
            f"model ({diff}); nothing was written. The plugin's encode must be the wrapped "
            "model's (e.g. the posterior mean for a VAE)."
        )


def _data_record(data: str | Dataset | None, config: ModelConfig) -> dict[str, Any]:
    """What ``config.json`` records about the dataset (the fields ``lsx train`` writes)."""
    if data is None:
        return {}
    dataset = load_dataset(data) if isinstance(data, str) else data
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"data must be a dataset name or a Dataset; got {type(data).__name__}.")
    if tuple(dataset.input_shape) != tuple(config.input_shape):
        raise DataShapeError(
            f"{dataset.spec} has images of shape {tuple(dataset.input_shape)}; the model takes "
            f"{tuple(config.input_shape)}. Pass the dataset the model was trained on."
        )
    return {
        "spec": dataset.spec,
        "hash": dataset.content_hash,
        "image_size": None,
        "input_shape": list(dataset.input_shape),
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "label_names": {k: list(v) for k, v in dataset.label_names.items()},
    }

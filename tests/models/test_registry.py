"""The registry cannot lie: every capability a ``ModelSpec`` claims is checked against the model
classes themselves, and every rule a config field declares (``lsx.config.option``) is enforced by
the config and drawn by the form."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lsx.analysis.atoms import has_atoms, has_codebook
from lsx.config import TrainConfig, bound_value
from lsx.errors import ConfigError
from lsx.models import (
    CAPABILITIES,
    MODELS,
    build_model,
    display_label,
    kinds_with,
    make_config,
    spec_for,
)

KINDS = sorted(MODELS)


def tiny(kind: str, **kw) -> torch.nn.Module:
    fields = {"input_shape": (1, 16, 16), "latent_dim": 3, "hidden_dim": 8, **kw}
    return build_model(make_config(kind, **fields)).eval()


# ------------------------------------------------------------------------------ capabilities


def test_labels_are_set_and_unique():
    labels = [spec.label for spec in MODELS.values()]
    assert all(labels)
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("kind", KINDS)
def test_has_posterior_means_a_callable_gaussian_posterior(kind):
    model = tiny(kind)
    posterior = getattr(model, "posterior", None)
    assert MODELS[kind].has_posterior == callable(posterior)
    if MODELS[kind].has_posterior:
        mu, logvar = posterior(torch.rand(2, 1, 16, 16))
        assert mu.shape == logvar.shape == (2, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_dictionary_is_what_the_atom_analysis_recognises(kind):
    model, spec = tiny(kind), MODELS[kind]
    assert spec.has_dictionary == (has_atoms(model) or has_codebook(model))
    assert (spec.dictionary == "atoms") == has_atoms(model)
    assert (spec.dictionary == "codebook vectors") == has_codebook(model)
    assert spec.dictionary in ("", "atoms", "codebook vectors")


@pytest.mark.parametrize("kind", KINDS)
def test_sparse_codes_are_float_codes_over_atoms(kind):
    model, spec = tiny(kind), MODELS[kind]
    if not spec.has_dictionary:
        assert not spec.sparse_codes
        return
    code = model.code(torch.rand(2, 1, 16, 16))
    assert spec.sparse_codes == (has_atoms(model) and code.is_floating_point())


@pytest.mark.parametrize("kind", KINDS)
def test_has_centres_means_configured_centres_and_radii(kind):
    model = tiny(kind)
    has = callable(getattr(model, "centers", None)) and callable(getattr(model, "radii", None))
    assert MODELS[kind].has_centres == has
    if has:
        assert model.centers(0).shape[1] == 3  # one centre per class, in the latent space


@pytest.mark.parametrize("kind", KINDS)
def test_spatial_support_builds_a_spatial_latent(kind):
    if not MODELS[kind].spatial:
        with pytest.raises(ConfigError):
            tiny(kind, spatial=True, arch="conv")
        return
    z = tiny(kind, spatial=True, arch="conv").encode(torch.rand(2, 1, 16, 16))
    assert tuple(z.shape) == (2, 3, 4, 4)


def test_partners_are_symmetric_registered_dictionary_kinds():
    partners = {kind: spec.partner for kind, spec in MODELS.items() if spec.partner}
    assert partners  # the Atoms page compares scvae with vqvae
    for kind, other in partners.items():
        assert other in MODELS
        assert other != kind
        assert MODELS[other].partner == kind
        assert MODELS[kind].has_dictionary
        assert MODELS[other].has_dictionary


def test_manifold_kinds_are_the_papers_three_in_order():
    assert {k: MODELS[k].label for k in kinds_with("manifold")} == {
        "ae": "AE",
        "dae": "DAE",
        "vae": "VAE",
    }
    assert list(kinds_with("manifold")) == ["ae", "dae", "vae"]


@pytest.mark.parametrize(
    ("kind", "shape", "arch", "expected"),
    [
        ("ae", (1, 8, 8), "auto", "AE"),  # 8x8 digits: an MLP, not a convolutional AE
        ("ae", (1, 28, 28), "auto", "CAE"),  # the paper's convolutional AE
        ("ae", (1, 28, 28), "mlp", "AE"),
        ("vae", (1, 28, 28), "auto", "VAE"),  # no conv_label: always its label
        ("vae", (1, 8, 8), "auto", "VAE"),
    ],
)
def test_display_label_says_cae_only_for_a_convolutional_network(kind, shape, arch, expected):
    config = make_config(kind, input_shape=shape, arch=arch)
    assert display_label(config) == expected
    assert all(not s.conv_label or s.conv_label != s.label for s in MODELS.values())


def test_kinds_with_answers_every_capability_and_refuses_others():
    for capability in CAPABILITIES:
        expected = tuple(k for k, s in MODELS.items() if getattr(s, capability))
        assert kinds_with(capability) == expected
    assert kinds_with("has_dictionary") == ("scvae", "vqvae")
    with pytest.raises(ConfigError, match=r"Unknown model capability 'atoms'; use one of"):
        kinds_with("atoms")


def test_the_app_tables_come_from_the_registry():
    from lsx.app.atoms import PARTNER
    from lsx.app.manifold import KIND_LABELS

    assert KIND_LABELS == {"ae": "AE", "dae": "DAE", "vae": "VAE"}
    assert PARTNER == {"scvae": "vqvae", "vqvae": "scvae"}


# ------------------------------------------------------------------------------ declared rules


def _cases():
    """(config class, field, a value outside its declared rule) for every declared rule."""
    classes = [(kind, MODELS[kind].config_cls) for kind in KINDS] + [("train", TrainConfig)]
    for name, cls in classes:
        base = cls()
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if meta.get("choices"):
                yield pytest.param(cls, f.name, "no-such-choice", id=f"{name}.{f.name}.choice")
            low, high = bound_value(base, meta.get("low")), bound_value(base, meta.get("high"))
            if low is not None:
                bad = low if meta.get("low_open") else low - 1
                yield pytest.param(cls, f.name, type(f.default)(bad), id=f"{name}.{f.name}.low")
            if high is not None:
                yield pytest.param(
                    cls, f.name, type(f.default)(high + 1), id=f"{name}.{f.name}.high"
                )


@pytest.mark.parametrize(("cls", "name", "value"), list(_cases()))
def test_every_declared_rule_is_enforced(cls, name, value):
    extra = {"latent_dim": 4, "n_classes": (3,)} if cls is MODELS["sae"].config_cls else {}
    if name in extra:
        extra.pop(name)
    with pytest.raises(ConfigError, match=rf"The '{name}' field of {cls.__name__} must be"):
        cls(**extra, **{name: value})


@pytest.mark.parametrize("kind", KINDS)
def test_every_numeric_or_choice_field_of_a_model_config_declares_its_rule(kind):
    """A field the form draws as a number or a choice has its rule in the metadata: no bound
    lives only in ``__post_init__`` code the form cannot see."""
    for f in dataclasses.fields(MODELS[kind].config_cls):
        name = f.name
        if f.type in ("int", "float"):
            assert "low" in f.metadata or name == "step", f"{kind}.{name} declares no bounds"
        if f.type == "str" and name not in ("centers_file",):
            assert f.metadata.get("choices"), f"{kind}.{name} declares no choices"


def test_spec_for_names_the_known_kinds():
    assert spec_for("scvae").partner == "vqvae"
    with pytest.raises(ConfigError, match=r"unknown model kind 'vea'"):
        spec_for("vea")


@pytest.mark.parametrize("kind", [*KINDS, "train"])
def test_the_form_draws_the_declared_numeric_bounds(kind):
    from lsx.app.forms import field_specs

    cls = TrainConfig if kind == "train" else MODELS[kind].config_cls
    declared = {f.name: f.metadata for f in dataclasses.fields(cls)}
    for spec in field_specs(cls):
        meta = declared[spec.name]
        for key in ("low", "high"):
            value = meta.get(key)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            assert getattr(spec, key) == (value if number else None), f"{kind}.{spec.name}.{key}"
        assert spec.help.startswith(meta.get("help", "")), f"{kind}.{spec.name}"


def test_a_bound_may_name_another_field_or_be_a_function():
    from lsx.config import check_fields, option

    @dataclasses.dataclass(frozen=True)
    class Pair:
        small: int = option(2, low=1)
        large: int = option(4, low="small", high=lambda: 8)

        def __post_init__(self) -> None:
            check_fields(self)

    Pair(small=3, large=3)
    with pytest.raises(ConfigError, match=r"'large' field of Pair must be an int >= 3 \(small\)"):
        Pair(small=3, large=2)
    with pytest.raises(ConfigError, match=r"'large' field of Pair must be .* <= 8\. Got 9"):
        Pair(large=9)
    with pytest.raises(ConfigError, match=r"'small' field of Pair must be an int >= 1"):
        Pair(small="x")  # the named bound holds no number: the field's own check reports it

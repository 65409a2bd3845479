"""scvae: the ISTA layer against scikit-learn's lasso (the correctness oracle), the DCT init
against docs/methods.md, the official code's pitfalls, config errors and divergence handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import SparseCoder
from sklearn.linear_model import Lasso

from lsx.checkpoint import load_checkpoint, save_checkpoint
from lsx.config import TrainConfig
from lsx.errors import ConfigError, TrainingError
from lsx.models import build_model, make_config
from lsx.models.scvae import overcomplete_dct, soft_threshold
from lsx.train import Trainer


def scvae(**kw):
    fields = dict(input_shape=(1, 16, 16), latent_dim=4, hidden_dim=16, spatial=True, arch="conv")
    return build_model(make_config("scvae", **{**fields, **kw}))


def fixed_ista(latent_dim: int, n_atoms: int, lam: float, steps: int, dict_init: str = "dct"):
    """The model's ISTA layer with a frozen dictionary, step 1/L and threshold lam/L, float64."""
    model = scvae(
        latent_dim=latent_dim, n_atoms=n_atoms, lam=lam, n_ista_steps=steps, step=1.0,
        learn_step=False, learn_threshold=False, learn_dict=False, dict_init=dict_init,
    )  # fmt: skip
    return model.ista.double()


def lasso_objective(z, s, atoms, lam):
    return 0.5 * ((z - s @ atoms) ** 2).sum(1) + lam * np.abs(s).sum(1)


# ------------------------------------------------------------------------------ the oracle
# Our layer minimises 1/2 ||z - D s||^2 + lam ||s||_1 per position (D = atoms.T, n rows).
# sklearn's Lasso minimises 1/(2 n_samples) ||y - X w||^2 + alpha ||w||_1 with X = D (n_samples
# = n = latent_dim rows), y = z, w = s: multiplying by n gives our problem with lam = n * alpha,
# so alpha = lam / latent_dim. SparseCoder(lasso_cd) divides transform_alpha by n_features
# itself, so transform_alpha = lam. Tolerance: 1e-6 on every code, float64, 10,000 ISTA steps
# (measured gap 3e-9 to 5e-8; ISTA converges as O(1/t), 3,000 steps left 2e-5).
ORACLE_ATOL = 1e-6


@pytest.mark.parametrize(
    ("latent_dim", "n_atoms", "lam", "dict_init"),
    [(16, 32, 0.5, "dct"), (25, 40, 0.4, "dct"), (10, 20, 0.3, "dct"), (12, 30, 0.3, "random")],
)
def test_ista_layer_matches_sklearn_lasso_and_sparse_coder(latent_dim, n_atoms, lam, dict_init):
    ista = fixed_ista(latent_dim, n_atoms, lam, 10_000, dict_init)
    atoms = ista.atoms.numpy()  # (K, n)
    z = np.random.default_rng(1).normal(size=(12, latent_dim))
    ours = ista(torch.from_numpy(z)).numpy()
    lasso = np.stack(
        [
            Lasso(alpha=lam / latent_dim, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
            .fit(atoms.T, zi)
            .coef_
            for zi in z
        ]
    )
    coder = SparseCoder(
        atoms, transform_algorithm="lasso_cd", transform_alpha=lam, transform_max_iter=200_000
    ).transform(z)
    np.testing.assert_allclose(ours, lasso, rtol=0, atol=ORACLE_ATOL)
    np.testing.assert_allclose(ours, coder, rtol=0, atol=1e-5)  # lasso_cd's own default tol
    assert ((ours != 0) == (lasso != 0)).all()  # same support: exact zeros from the threshold
    assert 0.1 < (ours != 0).mean() < 0.9  # a problem where sparsity is not trivial


def test_more_ista_steps_lower_the_lasso_objective_towards_the_optimum():
    z = np.random.default_rng(2).normal(size=(20, 16))
    objectives = []
    for steps in (1, 5, 50, 2000):
        ista = fixed_ista(16, 32, 0.5, steps)
        s = ista(torch.from_numpy(z)).numpy()
        objectives.append(lasso_objective(z, s, ista.atoms.numpy(), 0.5).sum())
    assert all(a >= b - 1e-9 for a, b in zip(objectives, objectives[1:], strict=False))
    assert objectives[0] > objectives[-1] * 1.05  # one step is clearly not converged


def test_first_iterate_is_textbook_ista_not_the_official_unscaled_start():
    # official code: s_0 = soft(D^T z, lam / c), without 1/c (docs/methods.md); lsx: from s_0 = 0
    ista = fixed_ista(16, 32, 0.5, 1)
    z = torch.randn(5, 16, dtype=torch.float64)
    big_l = float(torch.linalg.matrix_norm(ista.atoms, ord=2) ** 2)
    expected = soft_threshold(z @ ista.atoms.t() / big_l, torch.tensor(0.5 / big_l))
    torch.testing.assert_close(ista(z), expected)


# ------------------------------------------------------------------------------ dictionary


def reference_init_dct(n=16, m=23, k=512):
    """docs/methods.md, verbatim in numpy (matches the official code to 3e-17)."""
    v = np.zeros((n, m))
    for j in range(m):
        col = np.cos(np.arange(n) * j * np.pi / m)
        if j > 0:
            col = col - col.mean()
        v[:, j] = col / np.linalg.norm(col)
    d = np.kron(v, v)
    d = d / np.sqrt((d**2).sum(0, keepdims=True))
    idx = np.arange(n * n).reshape(n, n, order="F").reshape(n * n, order="C")
    return d[idx, :k]


def test_dct_init_equals_the_official_256x512_dictionary():
    ours = overcomplete_dct(256, 512).double().numpy()  # (K, n): atoms = D.T
    np.testing.assert_allclose(ours, reference_init_dct().T, atol=1e-6)


@pytest.mark.parametrize(("latent_dim", "n_atoms"), [(3, 64), (16, 64), (10, 7), (12, 48), (2, 5)])
def test_dct_atoms_have_unit_norm(latent_dim, n_atoms):
    atoms = overcomplete_dct(latent_dim, n_atoms)
    assert atoms.shape == (n_atoms, latent_dim)
    assert torch.isfinite(atoms).all()
    torch.testing.assert_close(atoms.norm(dim=1), torch.ones(n_atoms))
    if latent_dim >= 10:  # in 2-3 dimensions many of 64 DCT atoms nearly coincide, by nature
        gram = (atoms @ atoms.t()).abs() - torch.eye(n_atoms)
        assert float(gram.max()) < 1 - 1e-4  # no two atoms coincide


def test_frozen_and_learned_parameters_per_config():
    frozen = scvae(learn_step=False, learn_threshold=False, learn_dict=False)
    assert not [n for n, _ in frozen.ista.named_parameters()]
    assert {"ista.atoms_raw", "ista.rho", "ista.log_lam"} <= set(frozen.state_dict())
    learned = scvae(learn_dict=True, ista_params="per_step", n_ista_steps=5)
    params = dict(learned.ista.named_parameters())
    assert params["rho"].shape == (5,)
    assert params["log_lam"].shape == (5,)
    torch.testing.assert_close(learned.atoms.norm(dim=1), torch.ones(64))  # unit-norm atoms
    eta, lam = scvae(step=0.5, lam=0.3).ista.steps()
    big_l = torch.linalg.matrix_norm(overcomplete_dct(4, 64), ord=2) ** 2
    torch.testing.assert_close(eta, torch.full((16,), 0.5) / big_l)
    torch.testing.assert_close(lam, torch.full((16,), 0.3))


def test_gradients_reach_encoder_dictionary_step_and_threshold():
    model = scvae(learn_dict=True, l1_weight=0.1)
    model.loss(torch.rand(4, 1, 16, 16)).total.backward()
    for name in ("ista.atoms_raw", "ista.rho", "ista.log_lam", "encoder.net.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


# ------------------------------------------------------------------------------ model


def test_encode_is_dictionary_times_code_and_codes_are_sparse_grids():
    model = scvae(lam=0.5).eval()
    x = torch.rand(3, 1, 16, 16)
    s = model.code(x)
    assert s.shape == (3, 64, 4, 4)
    assert (s == 0).any()
    z = torch.einsum("bkhw,kn->bnhw", s, model.atoms)
    torch.testing.assert_close(model.encode(x), z)
    z_e = model.encoder(x)  # rms-normalised before ISTA: ||z_p|| = sqrt(latent_dim)
    z_e = z_e * torch.rsqrt(z_e.pow(2).mean(1, keepdim=True) + 1e-6)
    torch.testing.assert_close(z_e.norm(dim=1), torch.full((3, 4, 4), 2.0), atol=1e-3, rtol=0)


def test_vector_latent_is_a_one_by_one_grid():
    model = build_model(make_config("scvae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    x = torch.rand(2, 1, 8, 8)
    assert model.code(x).shape == (2, 64, 1, 1)
    assert model.encode(x).shape == (2, 3)


def test_loss_terms_and_their_weights():
    x = torch.rand(4, 1, 16, 16)
    torch.manual_seed(0)
    plain = scvae(latent_weight=1.0, l1_weight=0.0).loss(x)
    assert set(plain.terms) == {"recon", "latent", "l1"}
    t = plain.terms
    torch.testing.assert_close(plain.total, t["recon"] + t["latent"])
    torch.manual_seed(0)
    weighted = scvae(latent_weight=2.0, l1_weight=0.5).loss(x)
    torch.testing.assert_close(weighted.total, t["recon"] + 2 * t["latent"] + 0.5 * t["l1"])


def test_round_trip_with_per_step_parameters_and_learned_dictionary(tmp_path):
    model = scvae(learn_dict=True, ista_params="per_step", n_ista_steps=4).eval()
    with torch.no_grad():
        model.ista.rho.add_(torch.linspace(-1, 1, 4))  # as if trained
    save_checkpoint(model, model.config, tmp_path)
    loaded, _ = load_checkpoint(tmp_path)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(loaded.code(x), model.code(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("n_atoms", 1, r"'n_atoms' field of SCVAEConfig must be an int >= 2"),
        ("n_atoms", 2.5, r"'n_atoms' field of SCVAEConfig must be an int"),
        (
            "n_ista_steps",
            0,
            r"'n_ista_steps' field of SCVAEConfig must be an int >= 1 and <= 10000. Got 0 ",
        ),
        ("lam", 0.0, r"'lam' field of SCVAEConfig must be a finite number > 0"),
        ("lam", float("nan"), r"'lam' field of SCVAEConfig must be a finite number"),
        ("step", 2.0, r"'step' field of SCVAEConfig must be a number in \(0, 2\)"),
        ("step", -0.1, r"'step' field .* ISTA diverges at 2 and above\)\. Got -0.1"),
        ("ista_params", "tied", r"'ista_params' field of SCVAEConfig must be one of 'shared'"),
        ("dict_init", "pca", r"'dict_init' field of SCVAEConfig must be one of 'dct', 'random'"),
        ("learn_dict", "yes", r"'learn_dict' field of SCVAEConfig must be true or false"),
        ("latent_norm", "layer", r"'latent_norm' field of SCVAEConfig must be one of 'rms'"),
        ("l1_weight", -1.0, r"'l1_weight' field of SCVAEConfig must be a finite number >= 0"),
        ("latent_dim", 1, r"'latent_dim' field of SCVAEConfig must be an int >= 2 \(an atom"),
    ],
)
def test_invalid_k_t_threshold_or_step_is_a_clear_config_error(field, value, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config("scvae", **{field: value})


def test_a_diverged_dictionary_stops_with_a_message():
    model = scvae(learn_dict=True)
    with torch.no_grad():
        model.ista.atoms_raw[3, 1] = float("inf")
    with pytest.raises(TrainingError, match=r"dictionary has diverged: 1 of 256 values of "):
        model.loss(torch.rand(2, 1, 16, 16))


def test_nan_codes_stop_training_with_a_message(tiny_dataset):
    model = build_model(
        make_config("scvae", input_shape=(1, 8, 8), latent_dim=4, hidden_dim=16, arch="conv",
                    spatial=True)
    )  # fmt: skip
    with torch.no_grad():
        model.encoder.net[0].bias.fill_(float("nan"))  # an encoder that went NaN
    with pytest.raises(TrainingError, match=r"sparse codes went NaN/Inf"):
        model.code(torch.rand(2, 1, 8, 8))
    trainer = Trainer(model, tiny_dataset, TrainConfig(epochs=2, batch_size=8, device="cpu"))
    with pytest.raises(TrainingError, match=r"Training stopped: the loss or its gradient was NaN"):
        trainer.fit()

"""vqvae: nearest-code assignment against a brute-force cdist, straight-through gradients, the
loss terms, code shapes and config errors."""

from __future__ import annotations

import pytest
import torch

from lsx.errors import ConfigError
from lsx.models import build_model, make_config


def vqvae(**kw):
    fields = dict(input_shape=(3, 16, 16), latent_dim=4, hidden_dim=16, spatial=True, arch="conv")
    return build_model(make_config("vqvae", **{**fields, **kw}))


def test_codes_are_the_nearest_codebook_vectors():
    model = vqvae(n_codes=10).eval()
    with torch.no_grad():
        model.codebook.normal_()  # spread the codes so ties are impossible
    x = torch.rand(5, 3, 16, 16)
    idx = model.code(x)
    assert idx.shape == (5, 4, 4)
    assert idx.dtype == torch.int64
    z_e = model.encoder(x).movedim(1, -1).reshape(-1, 4)  # (B*h*w, n)
    brute = torch.cdist(z_e, model.codebook).argmin(1)
    assert torch.equal(idx.reshape(-1), brute)
    z_q = model.encode(x)  # the codebook vector at every position
    torch.testing.assert_close(z_q.movedim(1, -1), model.codebook[idx])


def test_straight_through_gradients_reach_the_encoder():
    model = vqvae()
    losses = model.loss(torch.rand(4, 3, 16, 16))
    losses.terms["recon"].backward(retain_graph=True)
    enc = model.encoder.net[0].weight.grad
    assert enc is not None
    assert enc.abs().sum() > 0
    assert model.codebook.grad is None  # recon does not move the codes (sg[e - z_e])
    model.zero_grad()
    losses.terms["codebook"].backward()
    assert model.codebook.grad.abs().sum() > 0
    assert model.encoder.net[0].weight.grad is None or (
        model.encoder.net[0].weight.grad.abs().sum() == 0
    )  # the codebook term moves only the codes


def test_loss_is_recon_plus_codebook_plus_weighted_commitment():
    model = vqvae(commitment=0.4)
    losses = model.loss(torch.rand(4, 3, 16, 16))
    t = losses.terms
    assert set(t) == {"recon", "codebook", "commitment"}
    torch.testing.assert_close(t["codebook"], t["commitment"])  # same value, other gradients
    torch.testing.assert_close(losses.total, t["recon"] + t["codebook"] + 0.4 * t["commitment"])


def test_vector_latent_gets_one_code_per_image():
    model = build_model(make_config("vqvae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    assert model.code(torch.rand(6, 1, 8, 8)).shape == (6, 1, 1)
    assert model.encode(torch.rand(6, 1, 8, 8)).shape == (6, 3)


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("n_codes", 1, r"'n_codes' field of VQVAEConfig must be an int >= 2"),
        ("n_codes", "64", r"'n_codes' field of VQVAEConfig must be an int"),
        ("commitment", -0.25, r"'commitment' field of VQVAEConfig must be a finite number >= 0"),
    ],
)
def test_invalid_codebook_settings_are_config_errors(field, value, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config("vqvae", **{field: value})


# ------------------------------------------------------------------ remedies against collapse


def test_defaults_are_the_plain_vqvae_and_old_checkpoints_load_unchanged(tmp_path):
    """The shipped demo was written before the remedies existed: its config has none of their
    keys, its weights none of their buffers; it loads strictly and codes as before."""
    import json
    import shutil
    from pathlib import Path

    from lsx.checkpoint import load_checkpoint

    demo = Path(__file__).resolve().parents[2] / "checkpoints" / "demo-vqvae-mnist5k"
    header = json.loads((demo / "config.json").read_text())
    assert "codebook_update" not in header["config"]  # really an old checkpoint
    run = tmp_path / "old"
    shutil.copytree(demo, run)
    model, config = load_checkpoint(run)
    assert (config.codebook_update, config.dead_code_restart, config.kmeans_init) == (
        "loss", 0, False
    )  # fmt: skip
    assert not [k for k in model.state_dict() if "ema" in k]
    assert not any(k in model.state_dict() for k in ("idle_steps", "restarts", "kmeans_done"))
    assert model.codebook.requires_grad
    idx = model.code(torch.rand(2, 1, 28, 28))
    assert idx.shape == (2, 7, 7)


def test_ema_update_equals_a_hand_computed_one():
    """K = 2, n = 2, decay 0.5: cluster sizes, EMA sums and the Laplace-smoothed division
    worked out by hand (van den Oord et al. appendix A.1, Sonnet's VectorQuantizerEMA)."""
    model = vqvae(latent_dim=2, n_codes=2, codebook_update="ema", ema_decay=0.5)
    with torch.no_grad():
        model.codebook.copy_(torch.tensor([[0.0, 0.0], [4.0, 4.0]]))
        model.ema_w.copy_(model.codebook)
    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    idx = torch.tensor([0, 0, 0, 1])
    model.update_codebook(rows, idx)
    # sizes 0.5*1 + 0.5*3 = 2 and 0.5*1 + 0.5*1 = 1; sums 0.5*(0,0) + 0.5*(2,2) = (1,1) and
    # 0.5*(4,4) + 0.5*(5,5) = (4.5,4.5); total 3, smoothing (s + eps) / (3 + 2 eps) * 3
    eps = 1e-5
    sizes = torch.tensor([(2 + eps) / (3 + 2 * eps) * 3, (1 + eps) / (3 + 2 * eps) * 3])
    expected = torch.tensor([[1.0, 1.0], [4.5, 4.5]]) / sizes[:, None]
    torch.testing.assert_close(model.ema_cluster_size, torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(model.ema_w, torch.tensor([[1.0, 1.0], [4.5, 4.5]]))
    torch.testing.assert_close(model.codebook, expected)
    # ~ the mean of the old code (one pseudo-count) and its three batch points
    assert abs(float(model.codebook[0, 0]) - 0.5) < 1e-4


def test_ema_codes_move_only_in_training_and_never_by_the_optimiser():
    model = vqvae(codebook_update="ema")
    assert not model.codebook.requires_grad
    x = torch.rand(4, 3, 16, 16)
    before = model.codebook.clone()
    model.eval()
    model.loss(x)
    assert torch.equal(model.codebook, before)  # evaluation leaves the codebook alone
    model.train()
    losses = model.loss(x)
    assert not torch.equal(model.codebook, before)
    t = losses.terms
    torch.testing.assert_close(losses.total, t["recon"] + 0.25 * t["commitment"])
    assert not t["codebook"].requires_grad  # logged, not optimised
    losses.total.backward()
    assert model.codebook.grad is None


def test_dead_code_restart_leaves_no_dead_code_after_a_restart_step():
    torch.manual_seed(0)
    model = vqvae(n_codes=8, dead_code_restart=1).train()
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        rows = model._rows(model.encoder(x))
        model.codebook[:4] = rows[:4]  # four live codes at encoder outputs
        model.codebook[4:] = 1e3  # four planted codes far from every output: unused
    used = torch.unique(model.code(x))
    assert set(used.tolist()) <= {0, 1, 2, 3}
    losses = model.loss(x)
    losses.total.backward()  # the in-place restart did not break the graph
    assert int(model.restarts) == 4
    assert int(model.idle_steps.max()) == 0
    for k in range(4, 8):  # each restarted code sits on one of the batch's encoder outputs
        assert (rows - model.codebook[k]).abs().sum(1).min() < 1e-6
    assert len(torch.unique(model.codebook[4:], dim=0)) == 4  # distinct outputs
    assert set(torch.unique(model.code(x)).tolist()) == set(range(8))  # zero dead codes


def test_dead_code_restart_waits_for_n_idle_steps():
    torch.manual_seed(0)
    model = vqvae(n_codes=4, dead_code_restart=3).train()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        model.codebook[3] = 1e3
    far = model.codebook[3].clone()
    model.loss(x)
    model.loss(x)
    assert int(model.restarts) == 0
    assert torch.equal(model.codebook[3], far)
    model.loss(x)
    assert int(model.restarts) >= 1
    assert not torch.equal(model.codebook[3], far)


def test_kmeans_equals_sklearn_lloyd_from_the_same_init():
    """Oracle: sklearn's KMeans (Lloyd, tol 0) started from the same centres."""
    import numpy as np
    from sklearn.cluster import KMeans

    from lsx.models.vqvae import kmeans

    rng = np.random.default_rng(0)
    blobs = rng.normal(size=(5, 3)) * 5
    pts = (blobs[rng.integers(5, size=400)] + rng.normal(size=(400, 3))).astype(np.float64)
    init = pts[rng.choice(400, 5, replace=False)]
    ref = KMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(pts)
    ours = kmeans(torch.from_numpy(pts), 5, iters=300, init=torch.from_numpy(init)).numpy()
    np.testing.assert_allclose(ours, ref.cluster_centers_, atol=1e-8)
    # k-means++ seeding: as good as sklearn's best of 10 within 5 %, far better than random rows
    g = torch.Generator().manual_seed(0)
    seeded = kmeans(torch.from_numpy(pts), 5, iters=300, generator=g).numpy()

    def inertia(c):
        return float(((pts[:, None] - c[None]) ** 2).sum(-1).min(1).sum())

    best = KMeans(5, n_init=10, random_state=0).fit(pts).inertia_
    assert inertia(seeded) <= 1.05 * best
    assert inertia(seeded) < inertia(pts[:5])


def test_kmeans_init_runs_once_on_the_first_training_batch_and_survives_a_reload(tmp_path):
    from lsx.checkpoint import load_checkpoint, save_checkpoint
    from lsx.models.vqvae import kmeans

    torch.manual_seed(0)
    model = vqvae(n_codes=6, kmeans_init=True, codebook_update="ema").train()
    x = torch.rand(3, 3, 16, 16)
    model.eval()
    model.loss(x)
    assert not bool(model.kmeans_done)  # evaluation does not initialise
    model.train()
    rows = model._rows(model.encoder(x)).detach()
    state = torch.get_rng_state()
    expected = kmeans(rows, 6)
    torch.set_rng_state(state)
    model.init_codebook(rows)
    torch.testing.assert_close(model.codebook, expected)
    torch.testing.assert_close(model.ema_w, expected)
    assert bool(model.kmeans_done)
    # k-means centres fit the outputs far better than the uniform(-1/K, 1/K) init
    fresh = vqvae(n_codes=6)
    assert (
        torch.cdist(rows, model.codebook).min(1).values.pow(2).sum()
        < torch.cdist(rows, fresh.codebook).min(1).values.pow(2).sum()
    )
    model.loss(x)  # the EMA step moves the codes; no second k-means
    save_checkpoint(model, model.config, tmp_path / "run")
    loaded, config = load_checkpoint(tmp_path / "run")
    assert config.kmeans_init
    assert config.codebook_update == "ema"
    for name in ("codebook", "ema_w", "ema_cluster_size", "kmeans_done"):
        torch.testing.assert_close(getattr(loaded, name), getattr(model, name))
    loaded.train()
    loaded.init_codebook = lambda rows: pytest.fail("k-means ran again after a reload")
    loaded.loss(x)  # resumed: kmeans_done is read from the weights
    assert loaded._kmeans_seen


def test_first_training_loss_calls_kmeans_once():
    torch.manual_seed(0)
    model = vqvae(n_codes=6, kmeans_init=True).train()
    calls = []
    original = model.init_codebook
    model.init_codebook = lambda rows: (calls.append(rows.shape), original(rows))[1]
    x = torch.rand(3, 3, 16, 16)
    model.loss(x)
    model.loss(x)
    assert calls == [(3 * 4 * 4, 4)]


def test_restart_state_round_trips_through_safetensors(tmp_path):
    from lsx.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = vqvae(n_codes=8, dead_code_restart=1).train()
    with torch.no_grad():
        model.codebook[4:] = 1e3
    model.loss(torch.rand(2, 3, 16, 16))
    save_checkpoint(model, model.config, tmp_path / "run")
    loaded, _ = load_checkpoint(tmp_path / "run")
    assert int(loaded.restarts) == int(model.restarts) > 0
    assert torch.equal(loaded.idle_steps, model.idle_steps)


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("codebook_update", "adam", r"'codebook_update' field of VQVAEConfig must be one of"),
        ("ema_decay", 1.0, r"'ema_decay' field of VQVAEConfig must be a finite number"),
        ("dead_code_restart", -1, r"'dead_code_restart' field of VQVAEConfig must be an int"),
        ("kmeans_init", "yes", r"'kmeans_init' field of VQVAEConfig must be"),
    ],
)
def test_invalid_remedy_settings_are_config_errors(field, value, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config("vqvae", **{field: value})

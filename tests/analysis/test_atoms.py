"""lsx.analysis.atoms: every statistic against a brute-force numpy computation over the whole
set (batched accumulation must not change anything), on fake models whose codes are known."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from lsx.analysis.atoms import (
    atom_stats,
    code_stats,
    dictionary_images,
    dominant_atom,
    mean_latent,
    perplexity,
)
from lsx.errors import ConfigError, DataShapeError
from lsx.models import build_model, make_config

N, K, GRID = 50, 6, (2, 3)
RNG = np.random.default_rng(0)
# sparse codes with exact zeros; sample 7 is all zero; atom 5 is never used (dead)
CODES = RNG.normal(size=(N, K, *GRID)) * (RNG.uniform(size=(N, K, *GRID)) < 0.35)
CODES[:, 5] = 0.0
CODES[7] = 0.0
LABELS = np.arange(N) % 3
INDICES = RNG.integers(0, 4, size=(N, *GRID))  # codes 4 and 5 of 6 are dead


class FakeCoder(nn.Module):
    """code(x) returns CODES (or INDICES) rows, found from the sample id written in pixel 0."""

    def __init__(self, quantize: bool = False) -> None:
        super().__init__()
        self.config = SimpleNamespace(kind="vqvae" if quantize else "scvae", input_shape=(1, 4, 4))
        table = torch.from_numpy(INDICES if quantize else CODES)
        self.register_buffer("table", table)
        vectors = torch.eye(K, 3, dtype=torch.float32)
        if quantize:
            self.register_buffer("codebook", vectors)
        else:
            self.register_buffer("atoms", vectors)
        self.latent_shape = (3, *GRID)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0].round().long()]


def images() -> np.ndarray:
    x = np.zeros((N, 1, 4, 4), np.float32)
    x[:, 0, 0, 0] = np.arange(N)  # the sample id (values outside [0, 1] are fine here)
    return x


@pytest.mark.parametrize("batch_size", [7, 1000])
def test_atom_stats_equal_brute_force_over_the_whole_set(batch_size):
    stats = atom_stats(FakeCoder(), images(), LABELS, batch_size=batch_size)
    active = CODES != 0  # (N, K, h, w)
    n_pos = N * math.prod(GRID)
    assert stats.n_positions == n_pos
    np.testing.assert_array_equal(stats.counts, active.sum((0, 2, 3)))
    flat = active.transpose(0, 2, 3, 1).reshape(-1, K).astype(float)
    np.testing.assert_allclose(stats.coactivation, flat.T @ flat / n_pos)
    np.testing.assert_allclose(np.diag(stats.coactivation), stats.usage)
    np.testing.assert_allclose(stats.l0, active.sum(1).mean((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(stats.l1, np.abs(CODES).sum(1).mean((1, 2)), rtol=1e-6)
    dominant = np.abs(CODES).sum((2, 3)).argmax(1)
    dominant[7] = -1  # all codes zero
    np.testing.assert_array_equal(stats.dominant, dominant)
    for c in range(3):
        expect = active[LABELS == c].mean((0, 2, 3))
        np.testing.assert_allclose(stats.class_usage[c], expect)
    np.testing.assert_allclose(stats.mean_code, CODES.mean(0), rtol=1e-6, atol=1e-7)
    mean_active = np.abs(CODES).sum((0, 2, 3)) / np.maximum(active.sum((0, 2, 3)), 1)
    np.testing.assert_allclose(stats.mean_active, mean_active, rtol=1e-6)
    assert stats.zero_fraction == pytest.approx(1 - active.mean())
    v = CODES.ravel()
    hoyer = (math.sqrt(v.size) - np.abs(v).sum() / np.linalg.norm(v)) / (math.sqrt(v.size) - 1)
    assert stats.hoyer == pytest.approx(hoyer)
    per_class = stats.per_class(LABELS, n_classes=4)
    for c in range(3):
        np.testing.assert_allclose(per_class["l0"][c], stats.l0[LABELS == c].mean(), rtol=1e-6)
        np.testing.assert_allclose(per_class["l1"][c], stats.l1[LABELS == c].mean(), rtol=1e-6)
    assert np.isnan(per_class["l0"][3])  # a class without samples
    np.testing.assert_array_equal(stats.dead, [5])
    assert stats.share_used == pytest.approx(5 / 6)


def test_code_stats_usage_perplexity_and_dominant_code():
    stats = code_stats(FakeCoder(quantize=True), images(), LABELS, batch_size=9)
    counts = np.bincount(INDICES.ravel(), minlength=K)
    np.testing.assert_array_equal(stats.counts, counts)
    p = counts[counts > 0] / counts.sum()
    assert stats.perplexity == pytest.approx(float(np.exp(-(p * np.log(p)).sum())))
    np.testing.assert_array_equal(stats.dead, [4, 5])
    assert stats.share_used == pytest.approx(4 / 6)
    per_sample = np.stack([np.bincount(r.ravel(), minlength=K) for r in INDICES])
    np.testing.assert_array_equal(stats.dominant, per_sample.argmax(1))  # ties: lowest index
    np.testing.assert_allclose(stats.class_usage.sum(1), 1.0)
    np.testing.assert_allclose(
        stats.class_usage[1], (per_sample[LABELS == 1] / 6).mean(0), rtol=1e-12
    )


def test_perplexity_is_the_effective_number_in_use():
    assert perplexity(np.array([5, 5, 5, 5])) == pytest.approx(4.0)
    assert perplexity(np.array([9, 0, 0])) == pytest.approx(1.0)
    assert perplexity(np.zeros(3)) == 0.0


def test_dominant_atom_dispatches_on_capability():
    dom, k = dominant_atom(FakeCoder(), images())
    assert k == K
    assert dom[7] == -1
    dom, k = dominant_atom(FakeCoder(quantize=True), images())
    assert k == K
    assert dom.min() >= 0
    ae = build_model(make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    with pytest.raises(ConfigError, match=r"needs an 'scvae' or 'vqvae' run; this one is 'ae'"):
        dominant_atom(ae, np.zeros((2, 1, 8, 8), np.float32))


def real_scvae():
    config = make_config(
        "scvae", input_shape=(1, 16, 16), latent_dim=4, hidden_dim=16, spatial=True,
        arch="conv", n_atoms=8, lam=0.3,
    )  # fmt: skip
    return build_model(config).eval()


def test_real_scvae_counts_agree_with_its_codes():
    model = real_scvae()
    x = np.random.default_rng(1).uniform(size=(20, 1, 16, 16)).astype(np.float32)
    stats = atom_stats(model, x, batch_size=6)
    s = model.code(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_array_equal(stats.counts, (s != 0).sum((0, 2, 3)))
    assert stats.class_usage is None
    z = mean_latent(model, stats.mean_code)  # D @ mean code == mean of encode(x)
    np.testing.assert_allclose(z, model.encode(torch.from_numpy(x)).mean(0).detach(), atol=1e-5)


def test_dictionary_images_decode_each_vector_everywhere_plus_base():
    model = real_scvae()
    atoms = model.atoms.numpy()
    base = np.random.default_rng(2).normal(size=(4, 4, 4)).astype(np.float32)
    out = dictionary_images(model, atoms, scale=np.arange(8, dtype=np.float32), base=base)
    assert out.shape == (8, 1, 16, 16)
    z3 = torch.from_numpy(base + 3 * atoms[3][:, None, None])[None]
    np.testing.assert_allclose(out[3], model.decode(z3)[0].detach().numpy(), atol=1e-6)
    with pytest.raises(DataShapeError, match=r"vectors must have shape \(K, 4\)"):
        dictionary_images(model, atoms[:, :3])


def test_wrong_model_or_labels_are_clear_errors():
    ae = build_model(make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    x8 = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ConfigError, match=r"need a sparse-coding model \(kind 'scvae'\); got"):
        atom_stats(ae, x8)
    with pytest.raises(ConfigError, match=r"need a vector-quantised model \(kind 'vqvae'\)"):
        code_stats(ae, x8)
    with pytest.raises(DataShapeError, match=r"one non-negative int label per image, shape"):
        atom_stats(FakeCoder(), images(), LABELS[:-1])
    with pytest.raises(DataShapeError, match=r"need at least one image; got an empty array"):
        atom_stats(FakeCoder(), images()[:0])
    with pytest.raises(DataShapeError, match=r"n_classes=2 but y holds labels up to 2"):
        atom_stats(FakeCoder(), images(), LABELS, n_classes=2)


# ------------------------------------------------------------------ atom gallery (issue #17 item 8)


def real_vqvae():
    config = make_config(
        "vqvae", input_shape=(1, 16, 16), latent_dim=4, hidden_dim=16, spatial=True,
        arch="conv", n_codes=8,
    )  # fmt: skip
    return build_model(config).eval()


def test_atom_effect_is_zero_at_s_zero_and_differs_between_atoms():
    from lsx.analysis.atom_gallery import atom_effects, grid_centre

    model = real_scvae()
    rng = np.random.default_rng(3)
    atoms = rng.normal(size=(8, 4)).astype(np.float32)  # distinct (the DCT init repeats some)
    base = rng.normal(size=(4, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(atom_effects(model, atoms, base, scale=0.0), 0.0)
    eff = atom_effects(model, atoms, base, scale=2.0)
    assert eff.shape == (8, 1, 16, 16)
    flat = eff.reshape(8, -1)
    assert all(not np.allclose(flat[i], flat[j]) for i in range(8) for j in range(i))
    r, c = grid_centre(model)  # the oracle: switch atom 5 on at the centre cell by hand
    z = base.copy()
    z[:, r, c] += 2.0 * atoms[5]
    with torch.inference_mode():
        want = model.decode(torch.from_numpy(z)[None]) - model.decode(torch.from_numpy(base)[None])
    np.testing.assert_allclose(eff[5], want[0].numpy(), atol=1e-5)
    with pytest.raises(DataShapeError, match=r"position \(9, 0\) is outside the 4x4 latent grid"):
        atom_effects(model, atoms, base, position=(9, 0))


def test_vqvae_code_effect_replaces_the_cell():
    from lsx.analysis.atom_gallery import atom_effects

    model = real_vqvae()
    book = model.codebook.detach().numpy()
    base = np.random.default_rng(4).normal(size=(4, 4, 4)).astype(np.float32)
    eff = atom_effects(model, book, base, position=(0, 1), replace=True)
    z = base.copy()
    z[:, 0, 1] = book[2]
    with torch.inference_mode():
        want = model.decode(torch.from_numpy(z)[None]) - model.decode(torch.from_numpy(base)[None])
    np.testing.assert_allclose(eff[2], want[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("batch_size", [7, 1000])
def test_top_activations_are_sorted_and_come_from_the_data(batch_size):
    from lsx.analysis.atom_gallery import top_activations

    top = top_activations(FakeCoder(), images(), top=4, batch_size=batch_size)
    peak = np.abs(CODES).reshape(N, K, -1)  # brute force: strongest cell of each input
    for k in range(K - 1):  # atom 5 is dead: all activations 0, any order
        want = np.sort(peak[:, k].max(1))[::-1][:4]
        np.testing.assert_allclose(top.value[k], want, rtol=1e-6)
        assert np.all(np.diff(top.value[k]) <= 0)  # strongest first
        for i, (r, c), v in zip(top.index[k], top.cell[k], top.value[k], strict=True):
            assert abs(CODES[i, k, r, c]) == pytest.approx(v)  # the example really has it there
    assert top.grid == GRID
    few = top_activations(FakeCoder(), images()[:2], top=3)
    assert (few.index[:, 2] == -1).all()
    assert np.isnan(few.value[:, 2]).all()


def test_top_activations_of_a_vqvae_are_the_closest_encoder_outputs():
    from lsx.analysis.atom_gallery import top_activations

    model = real_vqvae()
    x = np.random.default_rng(5).uniform(size=(12, 1, 16, 16)).astype(np.float32)
    top = top_activations(model, x, top=3, batch_size=5)
    with torch.inference_mode():
        z = model.encoder(torch.from_numpy(x)).movedim(1, -1)  # (n, h, w, d)
        d = ((z[..., None, :] - model.codebook) ** 2).sum(-1)  # (n, h, w, K)
    best = -d.flatten(1, 2).min(1).values.T.numpy()  # (K, n)
    np.testing.assert_allclose(top.value, np.sort(best, 1)[:, ::-1][:, :3], rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match=r"top must be an int >= 1"):
        top_activations(model, x, top=0)


def test_cell_patches_cut_the_cell_and_its_neighbours():
    from lsx.analysis.atom_gallery import cell_patches

    x = np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 1, 16, 16)
    p = cell_patches(x, np.array([1, -1, 0]), np.array([[1, 1], [0, 0], [0, 0]]), (4, 4))
    assert p.shape == (3, 1, 12, 12)
    np.testing.assert_array_equal(p[0], x[1, :, 0:12, 0:12])  # cell (1, 1) = pixels 4..8
    np.testing.assert_array_equal(p[1], 0.0)  # no example
    np.testing.assert_array_equal(p[2], x[0, :, 0:12, 0:12])  # the border cell is shifted in
    whole = cell_patches(x, np.array([0]), np.array([[0, 0]]), (1, 1))
    np.testing.assert_array_equal(whole[0], x[0])

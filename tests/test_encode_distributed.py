"""``lsx encode`` under torchrun: 2 CPU processes over gloo write one latent store.

A tiny ``ae`` run (1 epoch) on 3,000 synthetic 8x8 images (``lsx synth-npy``), encoded in batches
of 128 (24 batches: 12 per process). The reference is one process in this process, itself checked
against :func:`lsx.analysis.embedding.embed` on all rows. Every store written by 2 processes, or
killed and resumed with another number of processes, must equal it bit for bit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lsx.analysis.embedding import embed
from lsx.checkpoint import load_checkpoint, read_header, save_checkpoint, weights_sha256
from lsx.cli import main
from lsx.data.lazy import open_source
from lsx.files import LOCK_NAME, FolderLock
from lsx.latents import progress as prog
from lsx.latents.store import MANIFEST_NAME, StaleStoreError, open_store, store_dir_for
from lsx.latents.writer import _check_agreement, encode_to_store

ROOT = Path(__file__).resolve().parents[1]
N, BATCH = 3000, 128
ARRAYS = ("z.npy", "recon_error.npy", "rows.npy", "labels-class.npy")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSX_FAULT")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", LSX_DIST_TIMEOUT_S="60", **extra)
    return env


def _encode_argv(run: Path, spec: str) -> list[str]:
    return ["encode", "--run-dir", str(run), "--data", spec, "--device", "cpu"] + [
        "--batch-size",
        str(BATCH),
    ]


def _torchrun(run: Path, spec: str, nproc: int = 2, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.run(
        [*cmd, f"--nproc-per-node={nproc}", "-m", "lsx", *_encode_argv(run, spec)],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, bytes]]:
    """(run folder, data spec, the one-process store's array files as bytes)."""
    folder = tmp_path_factory.mktemp("encode-ddp")
    data = folder / "x.npy"
    assert main(["synth-npy", "--out", str(data), "--n", str(N), "--size", "8"]) == 0
    spec = f"npy:{data}"
    torch.set_num_threads(1)
    train = ["train", "--model", "ae", "--data", spec, "--latent-dim", "2", "--hidden-dim", "16"]
    train += ["--epochs", "1", "--batch-size", "256", "--device", "cpu", "--no-progress"]
    assert main([*train, "--out", str(folder), "--name", "run"]) == 0
    run = folder / "run"
    assert main(_encode_argv(run, spec)) == 0
    store_dir = store_dir_for(run, spec)
    model, _ = load_checkpoint(run)
    source = open_source(spec)
    oracle = embed(model, source.read(np.arange(N)), batch_size=BATCH)
    store = open_store(store_dir)
    np.testing.assert_array_equal(store.z, oracle.z)  # the reference is right, independently
    np.testing.assert_array_equal(store.recon_error, oracle.recon_error)
    assert store.manifest["world_size"] == 1
    reference = {name: (store_dir / name).read_bytes() for name in ARRAYS}
    shutil.rmtree(store_dir.parent)
    return run, spec, reference


@pytest.fixture
def run_copy(trained, tmp_path) -> tuple[Path, str, dict[str, bytes]]:
    """The trained run copied, without stores: each test encodes from scratch."""
    run, spec, reference = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy, spec, reference


def _assert_same_store(store_dir: Path, reference: dict[str, bytes], world_size: int) -> None:
    for name in ARRAYS:
        assert (store_dir / name).read_bytes() == reference[name], name
    store = open_store(store_dir)
    assert (store.manifest["rows_done"], store.manifest["complete"]) == (N, True)
    assert store.manifest["world_size"] == world_size
    assert not (store_dir / prog.PROGRESS_DIR).exists()  # progress cleaned up
    assert not (store_dir / LOCK_NAME).exists()
    # the manifest that says complete was written after every array file
    written = max((store_dir / name).stat().st_mtime_ns for name in ARRAYS)
    assert (store_dir / MANIFEST_NAME).stat().st_mtime_ns >= written


def test_two_processes_write_the_same_store_as_one(run_copy):
    run, spec, reference = run_copy
    done = _torchrun(run, spec)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("3,000 rows x 2 dims in ")
    assert "on 2 processes (gloo), cpu" in done.stderr
    assert "rank 0 of 2: 1,536/1,536 rows (100 %)" in done.stderr  # 12 of the 24 batches
    _assert_same_store(store_dir_for(run, spec), reference, world_size=2)


def test_a_rank_killed_midway_leaves_no_complete_manifest_and_one_process_resumes(run_copy):
    run, spec, reference = run_copy
    store_dir = store_dir_for(run, spec)
    # rank 1 (rows 1,536..3,000) dies before its 11th batch; it flushed after its 8th
    crash = _torchrun(run, spec, LSX_FAULT_RANK="1", LSX_FAULT_STEP="10")
    assert crash.returncode != 0, crash.stderr
    manifest = json.loads((store_dir / MANIFEST_NAME).read_text())
    assert manifest["complete"] is False  # written last, after all ranks: never reached
    with pytest.raises(StaleStoreError, match="incomplete"):
        open_store(store_dir)
    part = json.loads((store_dir / prog.PROGRESS_DIR / "part-1536-3000.json").read_text())
    assert part["done"] == 1536 + 8 * BATCH
    done = prog.read_done(store_dir, N, 0)
    assert prog.merge([*done, (1536, 1536 + 8 * BATCH)]) == done  # rank 1's rows counted
    assert prog.rows_in(done) < N
    FolderLock(store_dir).acquire().release()  # no process holds the lock any more

    seen: list[int] = []
    torch.set_num_threads(1)
    model, _ = load_checkpoint(run)
    encode_to_store(
        model,
        open_source(spec),
        store_dir,
        checkpoint_sha=weights_sha256(run),
        batch_size=1000,  # ignored on resume: the batches stay those of the first attempt
        progress=lambda d, n: seen.append(d),
    )
    assert seen[0] == prog.rows_in(done) + BATCH  # only what was not recorded is encoded
    assert len(seen) == (N - prog.rows_in(done) + BATCH - 1) // BATCH
    _assert_same_store(store_dir, reference, world_size=1)


def test_one_process_killed_midway_resumes_with_two(run_copy):
    run, spec, reference = run_copy
    store_dir = store_dir_for(run, spec)
    cmd = [sys.executable, "-m", "lsx", *_encode_argv(run, spec)]
    crash = subprocess.run(
        cmd, cwd=ROOT, env=_env(LSX_FAULT_RANK="0", LSX_FAULT_STEP="10"), capture_output=True
    )
    assert crash.returncode == 13
    assert prog.read_done(store_dir, N, 0) == [(0, 8 * BATCH)]  # the last flush
    done = _torchrun(run, spec)
    assert done.returncode == 0, done.stderr
    assert "rank 0 of 2: 1,024/1,024 rows" in done.stderr  # 16 batches left: 8 each
    _assert_same_store(store_dir, reference, world_size=2)


def test_a_store_locked_by_another_encode_stops_every_rank(run_copy):
    run, spec, _ = run_copy
    store_dir = store_dir_for(run, spec)
    start = time.monotonic()
    with FolderLock(store_dir):
        locked = _torchrun(run, spec)
    assert time.monotonic() - start < 60  # no rank waits for a peer that gave up
    assert locked.returncode != 0
    out = locked.stdout + locked.stderr
    assert out.count(f"error: Another `lsx encode` is writing {store_dir}") == 2, out
    assert re.search(r"exitcode\s*:\s*2", out), out  # lsx's error code, not an abort
    assert not (store_dir / MANIFEST_NAME).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_with_other_weights_are_refused_on_every_rank(run_copy, tmp_path):
    run, spec, _ = run_copy
    other = tmp_path / "other"
    shutil.copytree(run, other)
    model, config = load_checkpoint(run)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # rank 1 reads a changed copy of the weights
    save_checkpoint(model, config, other, data=read_header(run)["data"])
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lsx", *_encode_argv(folder, spec)],
            cwd=ROOT,
            env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
            | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r, folder in ((0, run), (1, other))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        assert "The 2 processes disagree on what to encode: rank 0 has checkpoint_sha" in err
        assert f"(rank 1: '{weights_sha256(other)}')" in err
    assert not store_dir_for(run, spec).exists()


class _Fake:
    """Two ranks seen from rank 0, the other rank's view given."""

    rank, world_size = 0, 2

    def __init__(self, theirs: dict) -> None:
        self.theirs = theirs

    def gather_objects(self, obj: dict) -> list[dict]:
        return [obj, self.theirs]


def test_agreement_names_the_field_that_differs():
    mine = {"source": {"spec": "npy:x", "hash": "aaa"}, "batch_size": 128, "split": "all"}
    _check_agreement(_Fake(dict(mine)), mine)  # the same: fine
    with pytest.raises(Exception, match=r"rank 0 has source hash 'aaa' \(rank 1: 'bbb'\)"):
        _check_agreement(_Fake({**mine, "source": {"spec": "npy:x", "hash": "bbb"}}), mine)
    with pytest.raises(Exception, match=r"batch_size 128 \(rank 1: 256\)"):
        _check_agreement(_Fake({**mine, "batch_size": 256}), mine)


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_shares_cover_the_undone_batches_once_in_order_and_balanced(world):
    n, bs = 1000, 64  # 16 batches, the last one 40 rows
    for done in ([], [(0, 128), (384, 512)], [(64, 1000)], [(0, 1000)], [(0, 100)]):
        pieces = prog.share(done, n, bs, world)
        assert len(pieces) == world
        flat = [r for ranges in pieces for r in ranges]
        assert prog.merge(flat + done) == [(0, n)]
        rows = [i for a, b in flat for i in range(a, b)]
        assert rows == sorted(set(rows))  # each row once, in order
        assert all(a % bs == 0 and (b % bs == 0 or b == n) for a, b in flat)  # on the grid
        counts = [sum(-(-(b - a) // bs) for a, b in ranges) for ranges in pieces]
        assert max(counts) - min(counts) <= 1
        if not done:
            assert all(len(ranges) <= 1 for ranges in pieces)  # a contiguous range each

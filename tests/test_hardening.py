"""Hardening: capped JSON reads, run listing that never builds or breaks, pickles and NaN named."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import time
import tracemalloc
from pathlib import Path

import pytest
import torch

import lsx.checkpoint as ckpt
from lsx.checkpoint import (
    CONFIG_NAME,
    METRICS_NAME,
    STATUS_NAME,
    WEIGHTS_NAME,
    inspect_run,
    list_runs,
    load_checkpoint,
    save_checkpoint,
)
from lsx.errors import CheckpointError, DatasetError, LsxError
from lsx.models import build_model, make_config
from tests.waiting import within

MB = 1_000_000


@pytest.fixture(autouse=True)
def _fresh_run_cache():
    cache = getattr(ckpt, "_inspect_cached", None)  # (absent before the hardening)
    if cache is not None:
        cache.cache_clear()
    yield
    if cache is not None:
        cache.cache_clear()


def make_run(path: Path, kind: str = "ae", **fields) -> torch.nn.Module:
    config = make_config(kind, input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, **fields)
    model = build_model(config)
    save_checkpoint(model, config, path, data={"spec": "digits"})
    return model


def edit_config(run_dir: Path, **fields) -> None:
    header = json.loads((run_dir / CONFIG_NAME).read_text())
    header["config"].update(fields)
    (run_dir / CONFIG_NAME).write_text(json.dumps(header))


def sparse_file(path: Path, head: bytes, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space beyond ``head``."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)


def peak_bytes(fn):
    """(result or exception, tracemalloc peak in bytes) of ``fn()``."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as err:  # returned for the caller to check
            out = err
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------ item 2: caps


def test_a_200_mb_config_is_refused_without_reading_it(tmp_path):
    make_run(tmp_path / "good")
    make_run(tmp_path / "huge")
    sparse_file(tmp_path / "huge" / CONFIG_NAME, b'{"format_version": 1, "pad": "', 200 * MB)
    (runs, skipped), peak = peak_bytes(lambda: list_runs(tmp_path))
    assert [r.name for r in runs] == ["good"]
    assert re.search(r"config.json .* is too large: 200,000,000 bytes", dict(skipped)["huge"])
    assert peak < 5 * MB, peak
    err, peak = peak_bytes(lambda: load_checkpoint(tmp_path / "huge"))
    assert isinstance(err, CheckpointError)
    assert "lsx reads at most 16,000,000 bytes" in str(err)
    assert peak < 5 * MB, peak


def test_listing_again_re_reads_nothing_until_a_file_changes(tmp_path, monkeypatch):
    make_run(tmp_path / "a")
    make_run(tmp_path / "b")
    calls = []
    real = ckpt.read_header
    monkeypatch.setattr(ckpt, "read_header", lambda d: calls.append(Path(d).name) or real(d))
    first = list_runs(tmp_path)
    assert sorted(calls) == ["a", "b"]  # once per run
    second = list_runs(tmp_path)
    assert sorted(calls) == ["a", "b"]  # nothing parsed again
    assert [r.name for r in second[0]] == [r.name for r in first[0]]
    config = tmp_path / "a" / CONFIG_NAME
    stamp = config.stat().st_mtime_ns + 10**9
    os.utime(config, ns=(stamp, stamp))
    list_runs(tmp_path)
    assert sorted(calls) == ["a", "a", "b"]  # only the changed run


def test_the_run_cache_is_bounded():
    assert ckpt._inspect_cached.cache_info().maxsize == ckpt.RUN_CACHE_SIZE <= 256


def test_status_and_metrics_are_capped(tmp_path):
    make_run(tmp_path / "r")
    sparse_file(tmp_path / "r" / STATUS_NAME, b"{", 50 * MB)
    lines = b"".join(
        json.dumps({"epoch": i, "train_loss": 1.0 / i}).encode() + b"\n" for i in range(1, 2001)
    )
    (tmp_path / "r" / METRICS_NAME).write_bytes(b"x" * (40 * MB) + b"\n" + lines)
    info, peak = peak_bytes(lambda: inspect_run(tmp_path / "r"))
    assert info.status["state"] == "unknown"
    assert "too large" in info.status["message"]
    assert info.final_metrics["epoch"] == 2000  # the tail is read, not the 40 MB before it
    assert peak < 5 * MB, peak


def test_read_json_capped_names_each_failure(tmp_path):
    from lsx.files import read_json_capped

    cases = {
        "deep.json": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        "digits.json": (b"9" * 5000, "not valid JSON"),
        "latin1.json": ('{"a": "\xe9"}'.encode("latin-1"), "not UTF-8"),
        "bad.json": (b"{not json", "not valid JSON"),
        "big.json": (b" " * 2000, "too large: 2,000 bytes"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=message):
            read_json_capped(
                tmp_path / name, 1000 if name == "big.json" else MB, "x", CheckpointError
            )
    with pytest.raises(LsxError, match="Cannot read the x"):
        read_json_capped(tmp_path / "missing.json", MB, "x")


def test_json_reads_refuse_a_fifo_and_a_device_without_blocking(tmp_path):
    from lsx.files import read_json_capped

    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    try:
        err = within(10, lambda: read_json_capped(tmp_path / "pipe.json", MB, "status.json"))
        assert isinstance(err, LsxError)
        assert "is a FIFO (named pipe)" in str(err)
        err = within(10, lambda: read_json_capped(tmp_path / "zero.json", MB, "status.json"))
        assert isinstance(err, LsxError)
        assert "is a device" in str(err)
    finally:  # unblock a regressed reader: a writer that opens and closes gives it EOF
        _release_fifo(tmp_path / "pipe.json")


def _release_fifo(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # no reader waiting: nothing to release
        pass


def test_cache_and_store_manifests_are_capped(tmp_path):
    from lsx.cache import read_manifest
    from lsx.latents.store import MANIFEST_NAME, _read_manifest

    sparse_file(tmp_path / "projection-x.json", b"{", 200 * MB)
    (manifest, reason), peak = peak_bytes(lambda: read_manifest(tmp_path / "projection-x.json"))
    assert manifest is None
    assert "too large" in reason
    assert peak < 5 * MB, peak
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / MANIFEST_NAME).write_bytes(b"[" * 100_000)
    with pytest.raises(DatasetError, match=r"unreadable: .*nested too deeply.*lsx encode"):
        _read_manifest(tmp_path / "s")


# ------------------------------------------------------------------------------ item 3: listing


def test_a_deeply_nested_config_is_skipped_and_the_rest_listed(tmp_path):
    make_run(tmp_path / "good")
    make_run(tmp_path / "deep")
    (tmp_path / "deep" / CONFIG_NAME).write_text("[" * 100_000 + "]" * 100_000)
    runs, skipped = list_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    assert "nested too deeply" in dict(skipped)["deep"]
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(tmp_path / "deep")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_shape": [3, 4096, 4096]}, r"larger than lsx's limit of 256x256 pixels"),
        (  # valid fields, but a 805,306,368-parameter first layer: 3 GiB
            {"input_shape": [3, 256, 256], "arch": "mlp", "hidden_dim": 4096},
            r"model of [\d,]+ parameters \([\d.]+ GiB as float32\); lsx builds at most",
        ),
    ],
)
def test_oversized_configs_are_refused_before_any_model_is_built(tmp_path, fields, message):
    make_run(tmp_path / "big")
    edit_config(tmp_path / "big", **fields)
    start = time.perf_counter()
    (runs, skipped), peak = peak_bytes(lambda: list_runs(tmp_path))
    assert not runs
    assert re.search(message, dict(skipped)["big"]), skipped
    err, _ = peak_bytes(lambda: load_checkpoint(tmp_path / "big"))
    assert isinstance(err, CheckpointError)
    assert re.search(message, str(err))
    assert time.perf_counter() - start < 5.0
    assert peak < 20 * MB, peak


def test_listing_builds_models_on_the_meta_device_only(tmp_path, monkeypatch):
    make_run(tmp_path / "a")
    make_run(tmp_path / "b", "vae")
    devices = []
    real = ckpt.build_model

    def spy(config):
        devices.append(torch.empty(0).device.type)  # the default device inside the call
        return real(config)

    monkeypatch.setattr(ckpt, "build_model", spy)
    runs, skipped = list_runs(tmp_path)
    assert [r.name for r in runs] == ["a", "b"]
    assert not skipped
    assert devices == ["meta", "meta"]
    assert torch.empty(0).device.type == "cpu"  # nothing leaks out of the context


def test_any_exception_in_one_folder_is_a_skip_reason(tmp_path, monkeypatch):
    make_run(tmp_path / "good")
    make_run(tmp_path / "odd")
    real = ckpt._inspect

    def flaky(run_dir: Path):
        if run_dir.name == "odd":
            raise TypeError("unsupported operand " + "x" * 1000)
        return real(run_dir)

    monkeypatch.setattr(ckpt, "_inspect", flaky)
    runs, skipped = list_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    reason = dict(skipped)["odd"]
    assert "TypeError: unsupported operand" in reason
    assert len(reason) <= ckpt.MAX_REASON_CHARS


def test_weights_over_the_limit_are_refused_from_the_header(tmp_path):
    make_run(tmp_path / "r")
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}})
    raw = header.encode()
    sparse_file(
        tmp_path / "r" / WEIGHTS_NAME, struct.pack("<Q", len(raw)) + raw, 8 + len(raw) + 2**32
    )
    err, peak = peak_bytes(lambda: load_checkpoint(tmp_path / "r"))
    assert isinstance(err, CheckpointError)
    assert "holds 4.0 GiB of tensors; lsx loads at most 2 GiB" in str(err)
    assert peak < 5 * MB


def test_a_weights_fifo_never_blocks_the_listing(tmp_path):
    make_run(tmp_path / "good")
    make_run(tmp_path / "pipe")
    (tmp_path / "pipe" / WEIGHTS_NAME).unlink()
    os.mkfifo(tmp_path / "pipe" / WEIGHTS_NAME)
    try:
        runs, skipped = within(20, lambda: list_runs(tmp_path))
    finally:
        _release_fifo(tmp_path / "pipe" / WEIGHTS_NAME)
    assert [r.name for r in runs] == ["good"]
    assert "is a FIFO" in dict(skipped)["pipe"]


# ------------------------------------------------------------------------------ item 8


def test_runs_with_nan_weights_are_flagged_at_listing(tmp_path):
    config = make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    save_checkpoint(model, config, tmp_path / "nan")
    make_run(tmp_path / "good")
    runs, skipped = list_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    assert re.search(
        r"\d+ of \d+ tensors hold NaN or Inf .*training diverged", dict(skipped)["nan"]
    )


def test_large_weights_are_listed_with_a_not_checked_note(tmp_path, monkeypatch):
    make_run(tmp_path / "r")
    monkeypatch.setattr(ckpt, "NAN_CHECK_MAX_BYTES", 10)
    info = inspect_run(tmp_path / "r")
    assert any("not checked for NaN/Inf" in note for note in info.notes)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
@pytest.mark.parametrize("payload", ["evil", "dict", "list"])
def test_pickles_of_every_protocol_are_called_pickles(tmp_path, protocol, payload):
    make_run(tmp_path)
    marker = tmp_path / "marker.txt"
    obj = {"evil": _Evil(marker), "dict": {"w": [1, 2]}, "list": [1.5, "x"]}[payload]
    (tmp_path / WEIGHTS_NAME).write_bytes(pickle.dumps(obj, protocol=protocol))
    with pytest.raises(CheckpointError, match="is a pickle or torch.save archive"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("first", [b"(", b"c", b"]", b"}", b"P", b"\x80"])
def test_safetensors_that_start_and_end_like_a_pickle_are_not_pickles(tmp_path, first):
    """A header length whose low byte is a pickle opcode, data whose last byte is "."."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}).encode()
    n = len(header) + (first[0] - len(header)) % 256  # pad the JSON with spaces to that length
    data = struct.pack("<Q", n) + header.ljust(n) + bytes([1, 2, 46])  # 46 == ord(".")
    (tmp_path / WEIGHTS_NAME).write_bytes(data)
    assert data[:1] == first
    assert data[-1:] == b"."
    ckpt._refuse_pickles(tmp_path)  # no error
    assert ckpt.read_weights_header(tmp_path / WEIGHTS_NAME).shapes == {"w": (3,)}


def test_the_demo_runs_are_all_listed_and_finite():
    runs, skipped = list_runs(Path(__file__).resolve().parents[1] / "checkpoints")
    assert runs
    assert not skipped
    assert all(not info.notes for info in runs)  # each was checked for NaN/Inf

"""Fuzz the checkpoint/config loader and the image decoder with seeded mutations of valid files.

Each case must end, within a deadline, in a result or an lsx error (an ``LsxError`` subclass):
no other exception type escapes, nothing hangs, and the Python memory peak stays bounded.
Mutations: bit flips, truncation, byte insertion, JSON value swaps, huge numbers, deep nesting.
The default run holds a few hundred cases; ``--runslow`` runs ten times more.
"""

from __future__ import annotations

import json
import random
import threading
import tracemalloc
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lsx.checkpoint as ckpt
from lsx.checkpoint import CONFIG_NAME, WEIGHTS_NAME, inspect_run, load_checkpoint
from lsx.data.images import decode_image, normalize_mode, to_array
from lsx.errors import LsxError
from lsx.models import build_model, make_config

CASE_SECONDS = 10.0  # one case; a regression that hangs fails here instead of hanging pytest
PEAK_BYTES = 64_000_000  # Python allocations of one case (tracemalloc)
N_CASES = 300  # per file kind (600 images) in the default run; x10 under --runslow


def _n_cases(request: pytest.FixtureRequest) -> int:
    return N_CASES * (10 if request.config.getoption("--runslow") else 1)


def _checked(fn) -> tuple[object, int]:
    """Run ``fn`` in a thread with a deadline and tracemalloc; (result or LsxError, peak)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["out"] = fn()
        except BaseException as err:  # noqa: BLE001 - judged below
            box["out"] = err

    tracemalloc.start()
    try:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(CASE_SECONDS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not thread.is_alive(), f"case still running after {CASE_SECONDS} s"
    out = box["out"]
    if isinstance(out, BaseException) and not isinstance(out, LsxError):
        raise AssertionError(f"{type(out).__name__} escaped: {out}") from out
    return out, peak


# ------------------------------------------------------------------------------ mutations

_HUGE = [10**30, -(10**30), 1e308, -1e308, 2**63, 2**64 + 1, 10**4000, 0, -1, 1.5, 4097, 65536]
_ODD = [None, True, "", "x" * 10_000, [], {}, [1, 2, 3], [3, 4096, 4096], {"kind": "ae"}, "nan"]


def _bytes_mutation(rng: random.Random, data: bytes) -> bytes:
    """Bit flips, truncation, insertion or a duplicated slice."""
    buf = bytearray(data)
    op = rng.randrange(4)
    if op == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        del buf[rng.randrange(len(buf)) :]
    elif op == 2:
        i = rng.randrange(len(buf) + 1)
        buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        i = rng.randrange(len(buf))
        j = min(len(buf), i + rng.randint(1, 256))
        buf[i:i] = buf[i:j] * rng.randint(1, 50)
    return bytes(buf)


def _leaves(obj: object, path: tuple = ()) -> list[tuple]:
    if isinstance(obj, dict):
        return [path] + [p for k, v in obj.items() for p in _leaves(v, (*path, k))]
    if isinstance(obj, list):
        return [path] + [p for i, v in enumerate(obj) for p in _leaves(v, (*path, i))]
    return [path]


def _json_mutation(rng: random.Random, doc: dict) -> bytes:
    """Swap a value (huge numbers, odd types), drop a key, or nest the document deeply."""
    doc = json.loads(json.dumps(doc))
    op = rng.randrange(4)
    if op == 3:  # deep nesting, around or inside the document
        depth = rng.choice([100, 5_000, 100_000])
        inner = json.dumps(doc) if rng.random() < 0.5 else "1"
        return ("[" * depth + inner + "]" * depth).encode()
    paths = [p for p in _leaves(doc) if p]
    path = rng.choice(paths)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if op == 0:
        parent[path[-1]] = rng.choice(_HUGE)
    elif op == 1:
        parent[path[-1]] = rng.choice(_ODD)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(_HUGE + _ODD)
    return json.dumps(doc).encode()


# ------------------------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "run"
    config = make_config("vae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    ckpt.save_checkpoint(build_model(config), config, path, data={"spec": "digits"})
    return path


def _load_both(run_dir: Path) -> None:
    ckpt._inspect_cached.cache_clear()  # the file changed; its stat may not have (same size)
    for fn in (inspect_run, load_checkpoint):
        try:
            fn(run_dir)
        except LsxError:
            continue


def test_fuzz_config_json(run_dir, request):
    good = (run_dir / CONFIG_NAME).read_bytes()
    doc = json.loads(good)
    rng = random.Random(1234)
    try:
        for case in range(_n_cases(request)):
            data = _bytes_mutation(rng, good) if case % 3 == 0 else _json_mutation(rng, doc)
            (run_dir / CONFIG_NAME).write_bytes(data)
            _, peak = _checked(lambda: _load_both(run_dir))
            assert peak < PEAK_BYTES, (case, peak)
    finally:
        (run_dir / CONFIG_NAME).write_bytes(good)


def test_fuzz_weights(run_dir, request):
    good = (run_dir / WEIGHTS_NAME).read_bytes()
    n = int.from_bytes(good[:8], "little")
    header = json.loads(good[8 : 8 + n])
    rng = random.Random(5678)
    try:
        for case in range(_n_cases(request)):
            if case % 2 == 0:
                data = _bytes_mutation(rng, good)
            else:  # a header with swapped values, the data kept
                raw = _json_mutation(rng, header)
                data = len(raw).to_bytes(8, "little") + raw + good[8 + n :]
            (run_dir / WEIGHTS_NAME).write_bytes(data)
            _, peak = _checked(lambda: _load_both(run_dir))
            assert peak < PEAK_BYTES, (case, peak)
    finally:
        (run_dir / WEIGHTS_NAME).write_bytes(good)
    model, _ = load_checkpoint(run_dir)  # the restored run loads
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ------------------------------------------------------------------------------ images


def _samples() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")
    out = []
    for img, fmt, kw in [
        (rgb, "PNG", {}),
        (rgb.convert("RGBA"), "PNG", {}),
        (rgb.convert("P"), "PNG", {"transparency": 0}),
        (rgb, "JPEG", {"quality": 80}),
        (rgb.convert("L"), "JPEG", {"progressive": True}),
        (rgb, "WEBP", {"quality": 70}),
    ]:
        buf = BytesIO()
        img.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    return out


def _decode(data: bytes) -> None:
    img = decode_image(data, name="fuzz.png", draft_size=(8, 8))
    normalize_mode(img)
    to_array(img, size=(8, 8), channels=3)


def test_fuzz_image_decoder(request):
    samples = _samples()
    for sample in samples:
        _decode(sample)  # the originals decode
    rng = random.Random(91011)
    decoded = 0
    for case in range(2 * _n_cases(request)):
        data = _bytes_mutation(rng, rng.choice(samples))
        if case % 10 == 0:  # bigger damage: several mutations
            for _ in range(rng.randint(2, 6)):
                data = _bytes_mutation(rng, data) if data else data
        if not data:
            data = b"\x89PNG"
        out, peak = _checked(lambda d=data: _decode(d))
        decoded += not isinstance(out, LsxError)
        assert peak < PEAK_BYTES, (case, peak)
    assert decoded > 0  # some mutations (e.g. in pixel data) still decode

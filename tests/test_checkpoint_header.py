"""Regression (found by issue 3): a safetensors file whose 8-byte header length starts with byte
0x80 (headers of 640-1408 bytes) looks like a pickle's first byte; it must still load."""

from __future__ import annotations

import struct

import pytest
import torch
from safetensors.torch import save_file

from lsx.checkpoint import WEIGHTS_NAME, _refuse_pickles
from lsx.errors import CheckpointError


def test_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    for pad in range(0, 800):
        save_file({"w": torch.zeros(2)}, tmp_path / WEIGHTS_NAME, metadata={"pad": "x" * pad})
        head = (tmp_path / WEIGHTS_NAME).read_bytes()[:9]
        if head[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length whose first byte is 0x80")
    assert struct.unpack("<Q", head[:8])[0] % 256 == 0x80
    _refuse_pickles(tmp_path)  # no error: the JSON header starts at offset 8
    torch.save({"w": torch.zeros(2)}, tmp_path / WEIGHTS_NAME)  # a zip archive ("PK")
    with pytest.raises(CheckpointError, match=r"is a pickle or torch.save archive"):
        _refuse_pickles(tmp_path)

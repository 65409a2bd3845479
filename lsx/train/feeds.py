"""What the trainer reads: run data records, label matrices, the epoch's batches and each rank's
share of them, and the two data feeds (a whole Dataset on the device, a lazy source through a
DataLoader)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from lsx.data.base import Dataset
from lsx.data.lazy import ImageSource, torch_dataset

EVAL_CHUNK = 1024  # test rows per forward pass in evaluate()


def data_info(dataset: Dataset | ImageSource, image_size: int | None = None) -> dict[str, Any]:
    """What a run records about its dataset or lazy source (config.json's ``data``)."""
    if isinstance(dataset, ImageSource):
        n_train, n_test = (len(dataset.split_indices(s)) for s in ("train", "test"))
    else:
        n_train, n_test = len(dataset.x_train), len(dataset.x_test)
    return {
        "spec": dataset.spec,
        "hash": dataset.content_hash,
        "image_size": image_size,
        "input_shape": list(dataset.input_shape),
        "n_train": n_train,
        "n_test": n_test,
        "label_names": {k: list(v) for k, v in dataset.label_names.items()},
    }


def label_matrix(dataset: Dataset, split: str) -> np.ndarray:
    """What ``model.loss`` gets as ``y``: the primary labels, shape (n,), when the dataset has one
    label attribute; all attributes in ``label_names`` order, shape (n, n_attributes), otherwise."""
    labels = getattr(dataset, f"labels_{split}")
    return _stack_labels([labels[attr] for attr in dataset.label_names])


def _stack_labels(columns: list[np.ndarray]) -> np.ndarray:
    columns = [np.asarray(c, dtype=np.int64) for c in columns]
    return columns[0] if len(columns) == 1 else np.stack(columns, axis=1)


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The epoch's shuffled index batches; a function of (seed, epoch) only, so resume can skip
    and every rank of a distributed run sees the same global batches."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


def shard(batch: torch.Tensor, rank: int, world_size: int) -> tuple[torch.Tensor, float, int]:
    """This rank's share of a global batch, its loss weight and its sample count.

    Parameters
    ----------
    batch : Tensor of shape (n_batch,)
        Row indices of one global batch.
    rank, world_size : int

    Returns
    -------
    local : Tensor of shape (n_local,)
        The rank's contiguous part (``tensor_split``: sizes differ by at most one). An empty part
        (a last batch smaller than the world) becomes the batch's first row with weight 0, so
        the rank still joins DDP's gradient all-reduce without changing the gradient.
    weight : float
        ``n_local * world_size / n_batch``: DDP averages the ranks' gradients, so weighting each
        rank's batch-mean loss by it gives the gradient of the mean over the global batch.
    n_local : int
        Samples this rank adds to the metric sums (0 for the stand-in row).
    """
    local = batch.tensor_split(world_size)[rank]
    if len(local) == 0:
        return batch[:1], 0.0, 0
    return local, len(local) * world_size / len(batch), len(local)


# ------------------------------------------------------------------------------ data feeds


class _MemoryData:
    """A whole Dataset on the training device (the fast path when it fits)."""

    def __init__(self, dataset: Dataset, device: torch.device) -> None:
        # dataset arrays are read-only; copy so torch gets writable memory
        self.x_train, self.y_train, self.x_test, self.y_test = (
            torch.from_numpy(a.copy()).to(device)
            for a in (
                dataset.x_train,
                label_matrix(dataset, "train"),
                dataset.x_test,
                label_matrix(dataset, "test"),
            )
        )
        self.n_train, self.n_test = len(self.x_train), len(self.x_test)
        self.y_test_primary = dataset.y_test
        self.device = device

    def train_batches(self, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, ...]]:
        if not batches:
            return
        flat = torch.cat(batches).to(self.device)  # one host-to-device copy per epoch
        for idx in flat.split([len(b) for b in batches]):
            yield self.x_train[idx], self.y_train[idx]

    def test_batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = positions.to(self.device)
        return self.x_test[idx], self.y_test[idx]

    @property
    def snapshot_x(self) -> Any:
        return self.x_test


class _LazyRows:
    """``x_test[positions]`` read from a lazy source (what lsx.snapshots indexes)."""

    def __init__(self, data: _LazyData) -> None:
        self.data, self.device = data, data.device

    def __getitem__(self, positions: torch.Tensor) -> torch.Tensor:
        return self.data.test_batch(positions)[0]


class _LazyData:
    """A lazy ImageSource read batch by batch through ``lsx.data.lazy.torch_dataset`` and a
    DataLoader (``workers`` processes); only the labels are held in memory."""

    def __init__(self, source: ImageSource, device: torch.device, workers: int) -> None:
        self.source, self.device, self.workers = source, device, workers
        self.train_rows = np.asarray(source.split_indices("train"), dtype=np.int64)
        self.test_rows = np.asarray(source.split_indices("test"), dtype=np.int64)
        self.y = _stack_labels([source.labels[attr] for attr in source.label_names])
        self.n_train, self.n_test = len(self.train_rows), len(self.test_rows)
        self.y_test_primary = np.asarray(source.y)[self.test_rows]

    def train_batches(self, batches: list[torch.Tensor]) -> Iterable[tuple[torch.Tensor, ...]]:
        loader = torch.utils.data.DataLoader(
            torch_dataset(self.source, self.train_rows),  # one read() per batch (__getitems__)
            batch_sampler=[b.tolist() for b in batches],  # positions in train_rows
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(0),  # leaves the global RNG (noise) alone
        )
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def test_batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.test_rows[positions.cpu().numpy()]
        x, y = torch.from_numpy(self.source.read(rows)), torch.from_numpy(self.y[rows])
        return x.to(self.device), y.to(self.device)

    @property
    def snapshot_x(self) -> Any:
        return _LazyRows(self)


@torch.no_grad()
def evaluate(model: Any, feed: Any, ctx: Any, acc: torch.dtype) -> dict[str, float]:
    """Mean loss terms of ``model`` over ``feed``'s test split (eval mode, summed over the ranks
    of ``ctx``, a :class:`lsx.distributed.DistContext`; accumulated in ``acc``)."""
    model.eval()
    positions = torch.arange(feed.n_test).tensor_split(ctx.world_size)[ctx.rank]
    chunks = [(p, len(p)) for p in positions.split(EVAL_CHUNK)] or [(torch.arange(1), 0)]
    keys: list[str] = []
    sums: torch.Tensor | None = None
    for pos, n in chunks:  # n = 0: a stand-in row that keeps the ranks' shapes equal
        losses = model.loss(*feed.test_batch(pos))
        keys = ["loss", *losses.terms]
        vals = torch.stack([losses.total, *losses.terms.values()]).to(acc) * n
        sums = vals if sums is None else sums + vals
    assert sums is not None
    packed = torch.cat([sums, torch.tensor([len(positions)], dtype=acc, device=sums.device)])
    values = ctx.all_reduce_sum(packed).tolist()
    model.train()
    return {k: v / max(values[-1], 1) for k, v in zip(keys, values[:-1], strict=True)}

"""``python -m lsx train``: train a model and write a run folder (also under torchrun).

Model options are generated from the config dataclasses of the ``MODELS`` registry, so a new
kind's fields appear here without edits (``--beta``, ``--noise-level``, ``--latent-dim`` ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lsx.commands import DEFAULT_ROOT
from lsx.errors import ConfigError

HELP = "train a model and write a run folder"


def _model_fields() -> dict[str, dataclasses.Field]:
    from lsx.models import MODELS

    out: dict[str, dataclasses.Field] = {}
    for spec in MODELS.values():
        for f in dataclasses.fields(spec.config_cls):
            out.setdefault(f.name, f)
    return out


def parse_value(text: str) -> Any:
    """A model option's value: JSON (``8``, ``0.5``, ``true``, ``[3, 4]``) or a bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare string such as gaussian


class _Given(argparse.Action):
    """Store the value and note that it was given (``args.given``): ``--resume`` refuses a
    ``--model`` or ``--data`` that differs from the run's, never its default."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lsx.config import TrainConfig
    from lsx.models import MODELS

    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument(
        "--model", default="vae", action=_Given, help=f"kind: {', '.join(sorted(MODELS))}"
    )
    p.add_argument(
        "--data", default="mnist5k", action=_Given, help="dataset name, folder:PATH or npy:PATH"
    )
    p.add_argument("--image-size", type=int, default=None, help="resize folder images to this")
    p.add_argument(
        "--lazy",
        action="store_true",
        help="read folder: images on demand in DataLoader workers (--workers) instead of "
        "loading them all; npy:PATH is always read lazily",
    )
    p.add_argument("--name", default=None, help="run folder name (default: kind-data-time)")
    p.add_argument("--out", type=Path, default=DEFAULT_ROOT, help="folder that holds run folders")
    p.add_argument("--resume", action="store_true", help="continue the run --name from its state")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("training")
    for f in dataclasses.fields(TrainConfig):
        g.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(f.default),
            default=None,
            help=f"default {f.default}",
        )
    m = p.add_argument_group("model (fields of the kind's config; see `python -m lsx kinds`)")
    for name, f in _model_fields().items():
        if name == "input_shape":  # always taken from the dataset
            continue
        m.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"model__{name}",
            type=parse_value,
            default=None,
            help=f"default {f.default}",
        )


def run(args: argparse.Namespace) -> int:
    """Train one run; under torchrun every process runs this with the same arguments."""
    from lsx.checkpoint import read_header
    from lsx.config import TrainConfig, config_from_dict
    from lsx.distributed import check_global_batch, env_world_size, initialized

    train_fields = {
        k: v
        for k, v in vars(args).items()
        if k in {f.name for f in dataclasses.fields(TrainConfig)} and v is not None
    }
    name = (
        args.name
        or f"{args.model}-{args.data.replace(':', '-').replace('/', '_')}-"
        f"{time.strftime('%Y%m%d-%H%M%S')}"
    )
    header: dict[str, Any] = {}
    if args.resume:
        _check_resumable(Path(args.out) / name)
        header = read_header(Path(args.out) / name)
        train_cfg = config_from_dict(TrainConfig, {**header.get("train", {}), **train_fields})
    else:
        train_cfg = config_from_dict(TrainConfig, train_fields)
    # before the process group opens: every rank refuses on its own, none waits for a peer
    check_global_batch(train_cfg.batch_size, env_world_size())
    with initialized(train_cfg.device) as ctx:
        name = ctx.broadcast_object(name)  # rank 0's clock names the run
        return _train_run(args, Path(args.out) / name, train_cfg, header, ctx)


def open_training_data(spec: str, image_size: int | None, lazy: bool) -> Any:
    """The data to train on, through :func:`lsx.data.open_data`: in memory, or a lazy source
    for ``npy:``, for ``folder:`` with ``--lazy`` and for folders of more than
    ``lsx.data.LAZY_FOLDER_ABOVE`` images (then a note says so on stderr).

    Parameters
    ----------
    spec : str
        ``--data``: a built-in name, ``folder:PATH`` or ``npy:PATH``.
    image_size : int or None
        ``--image-size``.
    lazy : bool
        ``--lazy`` (or a resumed run that was read lazily); a built-in dataset is then read
        batch by batch from memory, as a source.
    """
    from lsx.data import FOLDER_PREFIX, is_lazy, open_data
    from lsx.data.lazy import DatasetSource

    data = open_data(spec, image_size, lazy=True if lazy else None)
    if lazy and not is_lazy(data):
        return DatasetSource(data)
    if spec.startswith(FOLDER_PREFIX) and not lazy and is_lazy(data):
        print(
            f"note: {len(data):,} images: read on demand, batch by batch, instead of "
            "loaded whole (pass --workers N to decode them in N processes)",
            file=sys.stderr,
        )
    return data


def _train_run(
    args: argparse.Namespace, run_dir: Path, train_cfg: Any, header: dict[str, Any], ctx: Any
) -> int:
    import torch

    from lsx.checkpoint import CONFIG_NAME, read_config
    from lsx.data.lazy import ImageSource
    from lsx.models import build_model, dataset_fields, make_config
    from lsx.train import Trainer, data_info
    from lsx.train.faults import describe_changes

    if args.resume:
        config = read_config(run_dir)
        recorded = header.get("data", {})
        data_spec, image_size = recorded.get("spec", args.data), recorded.get("image_size")
        lazy = bool(recorded.get("lazy", False))
        _refuse_changed_run(args, config, data_spec, image_size, lazy)
    else:
        if (run_dir / CONFIG_NAME).exists():
            raise ConfigError(
                f"{run_dir} already holds a run. Pass --resume to continue it, or "
                "choose another --name; lsx never overwrites a run."
            )
        data_spec, image_size, lazy = args.data, args.image_size, args.lazy
    torch.set_num_threads(train_cfg.threads)
    dataset = open_training_data(data_spec, image_size, lazy)
    for note in dataset.notes if ctx.is_main else ():
        print(f"note: {note}", file=sys.stderr)
    if args.resume:
        recorded_hash = header.get("data", {}).get("hash")
        if recorded_hash and recorded_hash != dataset.content_hash:
            raise ConfigError(
                f"The dataset {data_spec!r} changed since {run_dir} was trained "
                f"(hash {recorded_hash} -> {dataset.content_hash}); start a new run."
            )
    else:
        config = make_config(
            args.model, **{**dataset_fields(args.model, dataset), **_model_args(args)}
        )
    info = data_info(dataset, image_size)
    if isinstance(dataset, ImageSource):
        info["lazy"] = True  # --resume reopens it lazily
    torch.manual_seed(train_cfg.seed)
    trainer = Trainer(
        build_model(config),
        dataset,
        train_cfg,
        run_dir,
        data=info,
        progress=not args.no_progress,
        callbacks=[_print_epoch] if ctx.is_main else [],
        dist=ctx,
    )
    if args.resume:
        changes = trainer.resume(header.get("train"))
        if changes and ctx.is_main:
            print(
                f"resumed at epoch {trainer.epoch}, step {trainer.global_step} with changed "
                f"settings: {describe_changes(changes)}",
                file=sys.stderr,
            )
    if ctx.is_main:
        where = f"{ctx.world_size} processes ({ctx.backend}), " if ctx.distributed else ""
        print(
            f"training {config.kind} on {data_spec} ({info['n_train']} train images"
            f"{', read lazily' if info.get('lazy') else ''}; {where}device {trainer.device}) "
            f"-> {run_dir}",
            file=sys.stderr,
        )
    result = trainer.fit()
    if ctx.is_main:
        print(f"{result.state}: {result.epochs_done} epochs; run folder {run_dir}", file=sys.stderr)
    return 0


def _check_resumable(run_dir: Path) -> None:
    """A clear message when ``--resume`` names a folder without a checkpoint to resume."""
    from lsx.checkpoint import CONFIG_NAME, read_status

    if (run_dir / CONFIG_NAME).exists() or os.path.islink(run_dir / CONFIG_NAME):
        return  # read_header checks the rest
    if not run_dir.is_dir():
        raise ConfigError(
            f"--resume: there is no run {run_dir.name!r} in {run_dir.parent} (no such folder). "
            "Check --name and --out (`python -m lsx runs` lists the runs), or drop --resume to "
            "start it."
        )
    status = read_status(run_dir)
    said = f" (its status.json says {status.get('state')!r})" if status.get("state") else ""
    raise ConfigError(
        f"--resume: {run_dir} holds no checkpoint to resume from{said}: training stopped "
        f"before it wrote {CONFIG_NAME}. Start the run again without --resume (the same --name "
        "works, with whatever settings you want)."
    )


def _refuse_changed_run(
    args: argparse.Namespace, config: Any, data_spec: str, image_size: Any, lazy: bool
) -> None:
    """``--resume`` continues the recorded model on the recorded data: a model field, --model,
    --data, --image-size or --lazy that differs from the run's is refused, never ignored."""
    given = getattr(args, "given", set())
    asked: list[tuple[str, Any, Any]] = []  # (flag, the run's value, the value asked for)
    if "model" in given and args.model != config.kind:
        asked.append(("--model", config.kind, args.model))
    if "data" in given and args.data != data_spec:
        asked.append(("--data", data_spec, args.data))
    if args.image_size is not None and args.image_size != image_size:
        asked.append(("--image-size", image_size, args.image_size))
    if args.lazy and not lazy:
        asked.append(("--lazy", False, True))
    fields = {f.name for f in dataclasses.fields(config)}
    for name, value in _model_args(args).items():
        flag = f"--{name.replace('_', '-')}"
        if name not in fields:
            asked.append(
                (flag, _Plain(f"a model of kind {config.kind!r}, which has no {name}"), value)
            )
        elif not _same(getattr(config, name), value):
            asked.append((flag, getattr(config, name), value))
    if asked:
        flag, old, new = asked[0]
        others = f" (also: {', '.join(a[0] for a in asked[1:])})" if len(asked) > 1 else ""
        raise ConfigError(
            f"{flag} {new!r} cannot change on --resume: the run was built with {old!r}"
            f"{others}. --resume continues the same model on the same data; only training "
            f"settings (--lr, --epochs, ...) may change. Drop {flag}, or start a new run "
            "(another --name) with it."
        )


class _Plain(str):
    """A phrase printed as it is by ``{x!r}``."""

    def __repr__(self) -> str:
        return str(self)


def _same(a: Any, b: Any) -> bool:
    """Equal as config values: ``1 == 1.0``, ``(10,) == [10]``."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _model_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model options given on the command line (``--latent-dim`` ...)."""
    return {k[7:]: v for k, v in vars(args).items() if k.startswith("model__") and v is not None}


def _print_epoch(event: dict[str, Any]) -> None:
    if event.get("event") == "epoch":
        print(
            f"epoch {event['epoch']}/{event['epochs']}  train_loss {event['train_loss']:.5g}  "
            f"test_loss {event['test_loss']:.5g}  {event['samples_per_s']:.0f} samples/s",
            file=sys.stderr,
        )
    elif event.get("event") == "rollback":
        print(f"non-finite loss: rolled back, lr halved to {event['lr']:g}", file=sys.stderr)

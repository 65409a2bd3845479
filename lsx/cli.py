"""Command line: ``python -m lsx train | runs | datasets | demo``.

Model options are generated from the config dataclasses of the ``MODELS`` registry, so a new
kind's fields appear here without edits (``--beta``, ``--noise-level``, ``--latent-dim`` ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lsx.demos import DEMOS
from lsx.errors import ConfigError, LsxError

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "checkpoints"

# Subcommands that live in other modules: name -> module with ``HELP`` (one line),
# ``add_arguments(parser)`` and ``run(args) -> int``. A new command is one line here.
COMMANDS: dict[str, str] = {
    "consistency-experiment": "lsx.experiments.consistency",
    "encode": "lsx.encode",
    "manifold-experiment": "lsx.experiments.manifold",
    "search": "lsx.search",
    "synth-npy": "lsx.synth",
}


def _model_fields() -> dict[str, dataclasses.Field]:
    from lsx.models import MODELS

    out: dict[str, dataclasses.Field] = {}
    for spec in MODELS.values():
        for f in dataclasses.fields(spec.config_cls):
            out.setdefault(f.name, f)
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare string such as gaussian


def _add_train_parser(sub: Any) -> None:
    from lsx.models import MODELS

    p = sub.add_parser(
        "train",
        help="train a model and write a run folder",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default="vae", help=f"kind: {', '.join(sorted(MODELS))}")
    p.add_argument("--data", default="mnist5k", help="dataset name, folder:PATH or npy:PATH")
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
    from lsx.config import TrainConfig

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
            type=_parse_value,
            default=None,
            help=f"default {f.default}",
        )


def _train(args: argparse.Namespace) -> int:
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
        header = read_header(Path(args.out) / name)
        train_cfg = config_from_dict(TrainConfig, {**header.get("train", {}), **train_fields})
    else:
        train_cfg = config_from_dict(TrainConfig, train_fields)
    # before the process group opens: every rank refuses on its own, none waits for a peer
    check_global_batch(train_cfg.batch_size, env_world_size())
    with initialized(train_cfg.device) as ctx:
        name = ctx.broadcast_object(name)  # rank 0's clock names the run
        return _train_run(args, Path(args.out) / name, train_cfg, header, ctx)


LAZY_FOLDER_ABOVE = 20_000  # a folder with more images than this is read lazily without --lazy


def _open_data(spec: str, image_size: int | None, lazy: bool) -> Any:
    """A Dataset in memory, or a lazy ImageSource for ``npy:``, ``folder:`` with --lazy, and
    folders of more than LAZY_FOLDER_ABOVE images (listing a folder decodes nothing)."""
    from lsx.data import load_dataset
    from lsx.data.lazy import FOLDER_PREFIX, NPY_PREFIX, open_source

    if spec.startswith(NPY_PREFIX) or lazy:
        return open_source(spec, image_size=image_size)
    if spec.startswith(FOLDER_PREFIX):
        source = open_source(spec, image_size=image_size)
        if len(source) > LAZY_FOLDER_ABOVE:
            print(
                f"note: {len(source):,} images: read on demand, batch by batch, instead of "
                "loaded whole (pass --workers N to decode them in N processes)",
                file=sys.stderr,
            )
            return source
    return load_dataset(spec, image_size=image_size)


def _train_run(
    args: argparse.Namespace, run_dir: Path, train_cfg: Any, header: dict[str, Any], ctx: Any
) -> int:
    import torch

    from lsx.checkpoint import CONFIG_NAME, read_config
    from lsx.data.lazy import ImageSource
    from lsx.models import build_model, dataset_fields, make_config
    from lsx.train import Trainer, data_info

    if args.resume:
        config = read_config(run_dir)
        recorded = header.get("data", {})
        data_spec, image_size = recorded.get("spec", args.data), recorded.get("image_size")
        lazy = bool(recorded.get("lazy", False))
    else:
        if (run_dir / CONFIG_NAME).exists():
            raise ConfigError(
                f"{run_dir} already holds a run. Pass --resume to continue it, or "
                "choose another --name; lsx never overwrites a run."
            )
        data_spec, image_size, lazy = args.data, args.image_size, args.lazy
    torch.set_num_threads(train_cfg.threads)
    dataset = _open_data(data_spec, image_size, lazy)
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
        trainer.resume()
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


def _runs(args: argparse.Namespace) -> int:
    from lsx.checkpoint import list_runs

    runs, skipped = list_runs(args.out)
    for r in runs:
        last = r.final_metrics.get("test_loss")
        loss = f"test_loss {last:.5g}" if last is not None else ""
        print(f"{r.name:32s} {r.kind:6s} {r.dataset:12s} {loss}")
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    if not runs:
        print(f"no runs in {args.out}; train one with `python -m lsx train`")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from lsx.data import DATASETS

    for name, spec in DATASETS.items():
        print(f"{name:16s} {spec.summary}")
    print(f"{'folder:PATH':16s} your image folder, one subfolder per class (PNG/JPEG)")
    return 0


def _kinds(args: argparse.Namespace) -> int:
    from lsx.models import MODELS

    for kind, spec in MODELS.items():
        fields = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(spec.config_cls))
        print(f"{kind:6s} {spec.summary}\n       {fields}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Retrain the shipped demo runs into a temporary folder, then swap each into place."""
    only = set(args.only or [])
    for name, kind, data, model, train in DEMOS:
        if only and name not in only:
            continue
        tmp = Path(args.out) / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        argv = [
            "train",
            "--model",
            kind,
            "--data",
            data,
            "--out",
            str(args.out),
            "--name",
            tmp.name,
            "--seed",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--no-progress",
        ]
        argv += [
            x
            for k, v in {**model, **train}.items()
            for x in (f"--{k.replace('_', '-')}", json.dumps(v) if isinstance(v, bool) else str(v))
        ]  # a bool as JSON (true/false), the form _parse_value reads back
        if main(argv) != 0:
            raise ConfigError(f"training the demo run {name} failed; see the message above.")
        for junk in (".lock", "train_state.pt"):
            (tmp / junk).unlink(missing_ok=True)
        final = Path(args.out) / name
        old = Path(args.out) / f".old-{name}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lsx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    for cmd, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(cmd, help=module.HELP))
    for cmd, helptext in (
        ("runs", "list valid runs and what was skipped"),
        ("datasets", "list built-in datasets"),
        ("kinds", "list model kinds and their config fields"),
        ("demo", "retrain the shipped demo checkpoints"),
    ):
        p = sub.add_parser(cmd, help=helptext)
        p.add_argument("--out", type=Path, default=DEFAULT_ROOT)
        if cmd == "demo":
            p.add_argument("--only", nargs="*", help="demo run names to retrain")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "runs": _runs, "datasets": _datasets, "kinds": _kinds}
    handlers["demo"] = _demo
    if args.command in COMMANDS:
        handler = importlib.import_module(COMMANDS[args.command]).run
    else:
        handler = handlers[args.command]
    try:
        return handler(args)
    except LsxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last good checkpoint is intact", file=sys.stderr)
        return 130

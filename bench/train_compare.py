"""Issue 7's numbers: training from the app versus the CLI, and the Compare page's server time.

    python bench/train_compare.py                    # both parts
    python bench/train_compare.py --only train --repeats 5
    python bench/train_compare.py --only compare

Prints one JSON object.

``train``: the same run (``--model vae --data mnist5k --epochs 10``, 1 thread, CPU; and a short
``digits`` run) trained (a) by ``python -m lsx train`` in a subprocess, as a user would in a
terminal, and (b) the app's way: ``lsx.app.train_form.prepare_request`` +
``lsx.app.train_jobs.start_job`` (the same CLI in a subprocess, its output to ``train.log``) while
this process does the live view's work as the page's fragments do (every 2 s: status, metrics, log,
loss and metric figures; every 10 s: the aligned snapshots and their animation). Wall time is from
starting to the process's exit; runs alternate CLI/app so load changes hit both. CPU time is the
training process's (user + sys, from ``getrusage(RUSAGE_CHILDREN)``) plus, for the app, this
process's own validation and polling work: it is much less sensitive than wall time to other jobs on
a shared machine. ``app`` uses the app's default of 1000 snapshot points per epoch;
``app_no_snapshots`` sets ``snapshots=0`` to isolate the subprocess + polling cost. ``overhead_*`` =
median(app) / median(cli) - 1. Target: under 10 %.

``compare``: server-side time of ``pages/7_compare.py`` under AppTest for the two mnist5k demo
runs (``demo-ae-mnist5k`` vs ``demo-vae-mnist5k``, 5,000 points each), each in a fresh Python
process, imports and the dataset load (once per server process) not timed. ``cold_s``: empty disk
caches (both checkpoints encode all 5,000 images, kNN, CKA, projections); ``warm_rerun_s``: the
same session again (in-memory caches hit); ``selection_s``: a rerun after selecting 40 points
(gallery: both reconstructions); ``warm_disk_s``: a new process with the disk caches warm.
Target: warm under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMPARE_PAGE = ROOT / "pages" / "7_compare.py"
COMPARE_RUNS = ("demo-ae-mnist5k", "demo-vae-mnist5k")
RUN_FILES = ("config.json", "model.safetensors", "metrics.jsonl", "status.json")
TRAIN_RUNS = {
    "mnist5k": ("vae", "mnist5k", {"latent_dim": 16, "hidden_dim": 32}, {"epochs": 10}),
    "digits": ("vae", "digits", {"latent_dim": 8, "hidden_dim": 64}, {"epochs": 30}),
}
COMMON_TRAIN = {"batch_size": 128, "threads": 1, "device": "cpu", "seed": 0}


# ------------------------------------------------------------------------------ training


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished (reaped) children only
    return usage.ru_utime + usage.ru_stime


def cli_run(root: Path, name: str, kind: str, data: str, model: dict, train: dict) -> dict:
    argv = [sys.executable, "-m", "lsx", "train", "--model", kind, "--data", data, "--out",
            str(root), "--name", name, "--no-progress"]  # fmt: skip
    for key, value in {**model, **COMMON_TRAIN, **train}.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
    return {"wall_s": time.perf_counter() - start, "cpu_s": _children_cpu() - cpu}


def _live_view_work(run_dir: Path, snapshots: bool) -> None:
    """What the page's fragments compute for a running job (no Streamlit rendering): status,
    curves and log every 2 s, the snapshot animation every 10 s (``snapshots``)."""
    from lsx.app import train_jobs, train_page
    from lsx.checkpoint import METRICS_NAME
    from lsx.files import read_jsonl
    from lsx.viz.training import loss_curves, metric_curves, snapshot_animation

    train_jobs.job_view(run_dir)
    history = read_jsonl(run_dir / METRICS_NAME)
    loss_curves(history).to_json()
    if (fig := metric_curves(history)) is not None:
        fig.to_json()
    snaps = train_page.snapshot_view(run_dir) if snapshots else None
    if snaps is not None:
        snapshot_animation(snaps.frames, snaps.epochs, snaps.labels, snaps.class_names).to_json()
    train_jobs.tail(run_dir)


def app_run(root: Path, name: str, kind: str, data: str, model: dict, train: dict) -> dict:
    from lsx.app import train_form, train_jobs

    start, cpu, own = time.perf_counter(), _children_cpu(), time.process_time()
    req = train_form.prepare_request(root, name, kind, data, None, model, {**COMMON_TRAIN, **train})
    run_dir = train_jobs.start_job(req)
    proc = train_jobs.registry().procs[str(run_dir)]
    polls, poll_s = 0, 0.0
    while proc.poll() is None:
        t0 = time.perf_counter()
        _live_view_work(run_dir, snapshots=polls % 5 == 0)
        polls, poll_s = polls + 1, poll_s + time.perf_counter() - t0
        deadline = t0 + 2.0
        while proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.01)
    wall = time.perf_counter() - start
    # CPU: the training process, plus this process's start-up and polling work (the server's)
    cpu = _children_cpu() - cpu + time.process_time() - own
    view = train_jobs.job_view(run_dir)
    if view.state != "completed":
        raise SystemExit(f"app run failed: {view.error}\n{train_jobs.tail(run_dir)}")
    return {"wall_s": wall, "cpu_s": cpu, "polls": polls, "poll_s": poll_s}


def _summary(runs: dict[str, list[dict]]) -> dict:
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall_s", "cpu_s")}
           for k, v in runs.items()}  # fmt: skip
    out = {f"{k}_{m}": [round(r[m], 2) for r in v] for k, v in runs.items() for m in ("wall_s",)}
    for k in runs:
        out[f"{k}_median_wall_s"] = round(med[k]["wall_s"], 2)
        out[f"{k}_median_cpu_s"] = round(med[k]["cpu_s"], 2)
    for k in ("app", "app_no_snapshots"):
        out[f"overhead_wall_{k}"] = round(med[k]["wall_s"] / med["cli"]["wall_s"] - 1, 4)
        out[f"overhead_cpu_{k}"] = round(med[k]["cpu_s"] / med["cli"]["cpu_s"] - 1, 4)
    return out


def bench_train(repeats: int) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="lsx-bench-train-") as tmp:
        root = Path(tmp)
        cli_run(root, "warm-up", "ae", "digits", {"latent_dim": 2}, {"epochs": 1})  # disk cache
        from lsx.data import load_dataset

        for label, (kind, data, model, train) in TRAIN_RUNS.items():
            load_dataset(data)  # the Train page loaded it already to draw the form
            runs: dict[str, list[dict]] = {"cli": [], "app": [], "app_no_snapshots": []}
            for i in range(repeats):  # alternate, so load changes hit every variant
                runs["cli"].append(cli_run(root, f"{label}-cli-{i}", kind, data, model, train))
                runs["app"].append(app_run(root, f"{label}-app-{i}", kind, data, model, train))
                no_snap = {**train, "snapshots": 0}
                runs["app_no_snapshots"].append(
                    app_run(root, f"{label}-app0-{i}", kind, data, model, no_snap)
                )
            polls = [r["poll_s"] / max(r["polls"], 1) for r in runs["app"]]
            out[label] = {
                "run": f"--model {kind} --data {data} "
                + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in {**model, **train}.items()),
                **_summary(runs),
                "live_view_poll_mean_s": round(statistics.mean(polls), 4),
            }
    return out


# ------------------------------------------------------------------------------ compare page


def compare_once(root: Path) -> dict:
    """In this process: the Compare page's first run, reruns, and a selection rerun."""
    os.environ["LSX_CHECKPOINTS"] = str(root)
    import plotly.graph_objects  # noqa: F401  (imports are not what we measure)
    from streamlit.testing.v1 import AppTest  # noqa: TID251  (a benchmark of the app)

    import lsx.app.compare  # noqa: F401
    from lsx.data import load_dataset

    AppTest.from_string("import streamlit as st\nst.write(1)").run()  # AppTest's own warm-up
    start = time.perf_counter()
    load_dataset("mnist5k")
    data_s = time.perf_counter() - start
    at = AppTest.from_file(str(COMPARE_PAGE), default_timeout=900)
    at.session_state["cmp_a"] = str(root / COMPARE_RUNS[0])
    at.session_state["cmp_b"] = str(root / COMPARE_RUNS[1])
    start = time.perf_counter()
    at.run(timeout=900)
    first = time.perf_counter() - start
    if at.exception or at.error:
        raise SystemExit(f"page failed: {[e.value for e in [*at.exception, *at.error]]}")
    reruns = []
    for _ in range(5):
        start = time.perf_counter()
        at.run(timeout=900)
        reruns.append(time.perf_counter() - start)
    points = [{"customdata": i} for i in range(0, 4000, 100)]
    at.session_state["cmp_chart"] = {"selection": {"points": points, "point_indices": [],
                                                   "box": [], "lasso": []}}  # fmt: skip
    start = time.perf_counter()
    at.run(timeout=900)
    selection = time.perf_counter() - start
    return {
        "dataset_load_s": round(data_s, 3),
        "first_s": round(first, 3),
        "reruns_s": [round(t, 3) for t in reruns],
        "selection_s": round(selection, 3),
        "headline": at.markdown[0].value,
        "metrics": {m.label: m.value for m in at.metric},
    }


def bench_compare() -> dict:
    with tempfile.TemporaryDirectory(prefix="lsx-bench-compare-") as tmp:
        root = Path(tmp)
        for name in COMPARE_RUNS:
            (root / name).mkdir()
            for f in RUN_FILES:
                shutil.copy2(ROOT / "checkpoints" / name / f, root / name / f)

        def child() -> dict:
            out = subprocess.run([sys.executable, __file__, "--child", str(root)], check=True,
                                 capture_output=True, text=True)  # fmt: skip
            return json.loads(out.stdout.strip().splitlines()[-1])

        cold, warm = child(), child()
    return {
        "runs": list(COMPARE_RUNS),
        "points": cold["headline"],
        "dataset_load_s": cold["dataset_load_s"],
        "cold_s": cold["first_s"],
        "warm_rerun_s": cold["reruns_s"][0],
        "warm_rerun_median_s": statistics.median(cold["reruns_s"]),
        "selection_s": cold["selection_s"],
        "warm_disk_s": warm["first_s"],
        "metrics": cold["metrics"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("train", "compare"))
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (train)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(compare_once(args.child)))
        return
    result: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    if args.only in (None, "compare"):
        result["compare"] = bench_compare()
    if args.only in (None, "train"):
        result["train"] = bench_train(args.repeats)
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

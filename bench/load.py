"""Load: N concurrent browser sessions against one ``streamlit run app.py`` (issue #18).

    python bench/load.py                                   # 8 sessions, 600 s, 120 s settle
    python bench/load.py --sessions 4 --duration 120 --settle 90

One server starts on a free port of 127.0.0.1 (``--server.address 127.0.0.1``) with
``LSX_CHECKPOINTS`` at a temporary copy of the shipped demo runs (no ``cache/`` folders: the first
projections are really fitted). Headless chromium (Debian's, through Playwright's async API: one
browser, one context per session, so each tab is its own Streamlit session on its own websocket)
runs ``--sessions`` tabs. Each tab loops until ``--duration`` is over: Latent map (switch the
projection to the next of PCA, UMAP, t-SNE and apply it), Lookup (remove the last upload, upload a
small PNG, wait for its nearest images), Home; every step waits until the app is idle, with a
per-step timeout, then ``--think`` seconds.

Every second a sampler GETs ``/_stcore/health`` (latency; a failure counts as the timeout) and
reads the RSS of the server and its child processes from ``/proc``. When the load stops the tabs
close, and the sampler keeps reading RSS for ``--settle`` seconds. ``plateau`` is the median RSS
of the last third of the load; ``returned_within_10pct`` says whether the RSS at the end of the
settle period is at most 110 % of it. ``growth_mb_per_min_last_half`` is the slope of RSS over the
last half of the load, ``..._last_minute_of_settle`` over the settle period's last minute (a leak
keeps growing; projection fits queued during the load may still finish, and allocate, after it).
The sampler also reads the server's CPU time: ``idle_after_load_s`` is when, after the load
stopped, the server first stayed under 5 % of a core for 10 s (queued background fits done), and
``at_idle`` its RSS then. Streamlit keeps a closed tab's session (state, uploaded files) for
``server.disconnectedSessionTTL`` (120 s by default) after its websocket closes, so a settle
period shorter than that still holds every session; ``after_session_ttl`` is the median RSS from
that TTL + 10 s after the load on. ``--samples FILE`` writes every sample (time, phase, health
latency, RSS, CPU seconds) as JSON.

Prints one JSON object. Everything stays on the loopback interface; every loop is bounded by the
clock and every wait by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import re
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, copy_demos, health, start_server, stop  # bench/_server.py

ROOT = Path(__file__).resolve().parents[1]
RUN = "demo-vae-mnist5k"  # 5,000 images: projections cost real time
METHODS = ("PCA", "UMAP", "TSNE")  # the projection picker's labels
GRACE_S = 30.0  # a step that starts before the end of the load may take this much longer
SESSION_TTL_S = 120.0  # Streamlit's server.disconnectedSessionTTL default (1.67)
IDLE_CPU = 0.05  # "idle": under 5 % of one core ...
IDLE_FOR_S = 10  # ... for this many one-second samples in a row
APP = "[data-testid='stApp']"
EXCEPTION = "[data-testid='stException']"


# ------------------------------------------------------------------ server and measurements


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(entry))
    return out


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of ``pid``, RSS of ``pid`` and all its descendants), in MB, from /proc."""

    def one(p: int) -> float:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    tree, todo, total = _children(), [pid], 0.0
    seen: set[int] = set()
    while todo and len(seen) < 10_000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += one(p)
        todo.extend(tree.get(p, []))
    return one(pid), total


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far, from /proc (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Once a second: health latency (s, or the timeout on failure) and RSS (MB), with a phase."""

    def __init__(self, url: str, pid: int, timeout: float) -> None:
        super().__init__(daemon=True)
        self.url, self.pid, self.timeout = url, pid, timeout
        self.phase = "warmup"
        self.samples: list[dict] = []
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.done.is_set():
            tick = time.monotonic()
            latency = health(self.url, self.timeout)
            server, tree = rss_mb(self.pid)
            self.samples.append(
                {
                    "t": round(tick - t0, 2),
                    "phase": self.phase,
                    "health_s": latency,
                    "rss_mb": round(server, 1),
                    "rss_tree_mb": round(tree, 1),
                    "cpu_s": cpu_seconds(self.pid),
                }
            )
            self.done.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


# ------------------------------------------------------------------ one browser session


def small_png(seed: int) -> bytes:
    """A 28x28 digit-like stroke (a few hundred bytes)."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(img)
    x = 8 + seed % 12
    draw.line([(x, 5), (x + 2, 23)], fill=255, width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


async def wait_idle(page, timeout_ms: float) -> None:
    await page.wait_for_selector(
        f"{APP}[data-test-connection-state='CONNECTED']", timeout=timeout_ms
    )
    await page.wait_for_selector(f"{APP}[data-test-script-state='notRunning']", timeout=timeout_ms)
    await page.wait_for_function(
        "document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
        timeout=timeout_ms,
    )


async def go(page, path: str, timeout_ms: float) -> None:
    """Switch page inside the session: the sidebar's link to ``/path`` (no reload). By URL, not
    by title: a fresh server's first visits get the legacy sidebar, whose titles differ."""
    links = "[data-testid='stSidebarNav'] a"
    sel = f"{links}[href$='/{path}']" if path else f"{links}[href$='/'], {links}[href$='/home']"
    await page.locator(sel).first.click(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)


async def step_projection(page, k: int, timeout_ms: float) -> None:
    await go(page, "latent_map", timeout_ms)
    sidebar = page.get_by_test_id("stSidebar")
    await (
        sidebar.get_by_test_id("stSelectbox")
        .filter(has_text="Projection")
        .click(timeout=timeout_ms)
    )
    await page.get_by_role("option", name=METHODS[k % len(METHODS)]).click(timeout=timeout_ms)
    await sidebar.get_by_role("button", name="Apply projection").click(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)
    await page.locator(".js-plotly-plot").first.wait_for(timeout=timeout_ms)


async def step_lookup(page, k: int, timeout_ms: float) -> None:
    await go(page, "lookup", timeout_ms)
    remove = page.get_by_test_id("stFileUploaderDeleteBtn")
    for _ in range(5):  # keep one upload per session: remove the previous one first
        if await remove.count() == 0:
            break
        await remove.first.click(timeout=timeout_ms)
        await wait_idle(page, timeout_ms)
    async with page.expect_file_chooser(timeout=timeout_ms) as chooser:
        await page.get_by_test_id("stFileUploaderDropzone").click(timeout=timeout_ms)
    name = f"load-{k}.png"
    await (await chooser.value).set_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": small_png(k)}]
    )
    await page.get_by_text(re.compile(r"\d+ nearest images")).first.wait_for(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)


async def step_home(page, k: int, timeout_ms: float) -> None:
    await go(page, "", timeout_ms)


STEPS = (step_projection, step_lookup, step_home)


async def session(
    i: int, browser, url: str, deadline: float, think: float, timeout_ms: float
) -> dict:
    """One tab's loop until ``deadline``; returns its step timings and errors."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1400})
    page = await ctx.new_page()
    out: dict = {"steps": [], "errors": [], "exceptions": 0}
    try:
        await page.goto(f"{url}/?run={RUN}", timeout=timeout_ms)  # a visitor lands on Home
        await wait_idle(page, timeout_ms)
        k = 0
        while time.monotonic() < deadline:
            step = STEPS[k % len(STEPS)]
            start = time.perf_counter()
            left_ms = (deadline - time.monotonic() + GRACE_S) * 1000  # no step runs on for long
            try:
                await step(page, k // len(STEPS) + i, min(timeout_ms, left_ms))  # round + tab
                ok = True
            except Exception as err:  # noqa: BLE001 - recorded; the tab starts over
                ok = False
                first = (str(err).splitlines() or [""])[0][:160]
                out["errors"].append(f"{step.__name__}: {type(err).__name__}: {first}")
                if time.monotonic() < deadline:
                    try:
                        await page.goto(f"{url}/?run={RUN}", timeout=timeout_ms)
                    except Exception as again:  # noqa: BLE001 - the next step tries again
                        out["errors"].append(f"reload: {type(again).__name__}")
            out["exceptions"] += await page.locator(EXCEPTION).count()
            out["steps"].append((step.__name__, round(time.perf_counter() - start, 3), ok))
            k += 1
            await asyncio.sleep(think)
    finally:
        await ctx.close()
    return out


async def load(url: str, args: argparse.Namespace, sampler: Sampler) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        try:
            sampler.phase = "load"
            deadline = time.monotonic() + args.duration
            timeout_ms = args.step_timeout * 1000
            results = await asyncio.gather(
                *(
                    session(i, browser, url, deadline, args.think, timeout_ms)
                    for i in range(args.sessions)
                ),
                return_exceptions=True,
            )
        finally:
            await browser.close()
    sampler.phase = "settle"
    return [
        r if isinstance(r, dict) else {"steps": [], "errors": [repr(r)], "exceptions": 0}
        for r in results
    ]


# ------------------------------------------------------------------ summary


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 4)

    return {"n": len(values), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": q(1.0)}


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 2)


def summarise(samples: list[dict], sessions: list[dict], timeout: float, key: str) -> dict:
    by = {ph: [s for s in samples if s["phase"] == ph] for ph in ("warmup", "load", "settle")}
    loaded = by["load"]
    lat = [s["health_s"] if s["health_s"] is not None else timeout for s in loaded]
    third = loaded[-max(1, len(loaded) // 3) :]
    plateau = statistics.median(s[key] for s in third) if third else None
    half = loaded[len(loaded) // 2 :]
    final = by["settle"][-1][key] if by["settle"] else None
    settle = by["settle"]
    idle_at = None
    for j in range(len(settle) - IDLE_FOR_S):
        a, b = settle[j], settle[j + IDLE_FOR_S]
        if a["cpu_s"] is not None and b["cpu_s"] is not None:
            if (b["cpu_s"] - a["cpu_s"]) / max(1e-9, b["t"] - a["t"]) < IDLE_CPU:
                idle_at = a
                break
    t_stop = settle[0]["t"] if settle else None
    late = [s[key] for s in settle if t_stop is not None and s["t"] >= t_stop + SESSION_TTL_S + 10]
    steps: dict[str, list[float]] = {}
    for result in sessions:
        for name, seconds, ok in result["steps"]:
            if ok:
                steps.setdefault(name, []).append(seconds)
    return {
        "health_s": {
            **percentiles(lat),
            "failures": sum(s["health_s"] is None for s in loaded),
            "idle_p50": percentiles([s["health_s"] for s in by["warmup"] if s["health_s"]]).get(
                "p50"
            ),
        },
        "rss_mb": {
            "measure": key,
            "before_load": by["warmup"][-1][key] if by["warmup"] else None,
            "peak_load": max((s[key] for s in loaded), default=None),
            "plateau": plateau,
            "end_of_load": loaded[-1][key] if loaded else None,
            "after_settle": final,
            "min_settle": min((s[key] for s in by["settle"]), default=None),
            "idle_after_load_s": None if idle_at is None else round(idle_at["t"] - t_stop, 1),
            "at_idle": None if idle_at is None else idle_at[key],
            "after_session_ttl": statistics.median(late) if late else None,
            "growth_mb_per_min_last_half": slope_per_min([(s["t"], s[key]) for s in half]),
            # background fits queued during the load may finish after it; a leak keeps growing
            "growth_mb_per_min_last_minute_of_settle": slope_per_min(
                [(s["t"], s[key]) for s in by["settle"][-60:]]
            ),
            "returned_within_10pct": (
                final is not None and plateau is not None and final <= 1.10 * plateau
            ),
        },
        "steps_s": {name: percentiles(v) for name, v in steps.items()},
        "steps_done": sum(len(r["steps"]) for r in sessions),
        "step_errors": sum(len(r["errors"]) for r in sessions),
        "error_examples": sorted({e for r in sessions for e in r["errors"]})[:8],
        "exception_boxes_seen": sum(r["exceptions"] for r in sessions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent browser tabs")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds watched after it")
    parser.add_argument("--think", type=float, default=1.0, help="pause after each step (s)")
    parser.add_argument("--step-timeout", type=float, default=180.0, help="per step (s)")
    parser.add_argument("--health-timeout", type=float, default=5.0, help="per health GET (s)")
    parser.add_argument("--warmup", type=float, default=10.0, help="idle samples before (s)")
    parser.add_argument("--samples", type=Path, default=None, help="also write samples here")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 64:
        parser.error("--sessions must be between 1 and 64")
    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: say its load
    with tempfile.TemporaryDirectory(prefix="lsx-load-") as tmp:
        root = Path(tmp) / "checkpoints"
        copy_demos(root)
        log = Path(tmp) / "streamlit.log"
        started = time.monotonic()
        proc, url, _ = start_server(root, log)
        ready_s = time.monotonic() - started
        sampler = Sampler(url, proc.pid, args.health_timeout)
        try:
            sampler.start()
            time.sleep(args.warmup)
            sessions = asyncio.run(load(url, args, sampler))
            settle_end = time.monotonic() + args.settle
            while time.monotonic() < settle_end and proc.poll() is None:
                time.sleep(0.5)
        finally:
            sampler.done.set()
            sampler.join(timeout=10)
            stop(proc)
        text = log.read_text(errors="replace")
    out = {
        "sessions": args.sessions,
        "duration_s": args.duration,
        "settle_s": args.settle,
        "think_s": args.think,
        "run": RUN,
        "server_ready_s": round(ready_s, 2),
        "disconnected_session_ttl_s": SESSION_TTL_S,
        "machine_load_average_before": load_before,
        "server": summarise(sampler.samples, sessions, args.health_timeout, "rss_mb"),
        "server_and_children_rss_mb": summarise(
            sampler.samples, sessions, args.health_timeout, "rss_tree_mb"
        )["rss_mb"],
        "server_log": {
            "tracebacks": text.count("Traceback"),
            "warnings": sum("WARNING" in line for line in text.splitlines()),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if args.samples is not None:
        args.samples.write_text(json.dumps(sampler.samples))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""The job runner (lsx.jobs) with real child processes: start with a log and a job record, alive,
tail, stop (SIGTERM, exit code), a recycled PID neither trusted nor signalled, one start per key
under concurrent starts, a start that fails, and the folder lock seen from outside (a child
holding FolderLock; released by the kernel when the child is killed)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lsx import jobs
from lsx.errors import LsxError
from lsx.files import LOCK_NAME, lock_holder
from tests.waiting import wait_until

SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(120)"
MATCH = ("lsx", "test-job")  # extra argv words of the children: their identity


def wait_for(predicate, timeout: float = 60.0):
    return wait_until(predicate, timeout, what="the child process")


@pytest.fixture
def registry():
    reg = jobs.Registry()
    yield reg
    for proc in reg.procs.values():  # never leave a child behind
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def sleeper(tmp_path: Path, registry: jobs.Registry, key: str = "k", **kw) -> jobs.Job:
    command = [sys.executable, "-c", SLEEPER, *MATCH]
    return jobs.start(
        command, key=key, log=tmp_path / f"{key}.log", registry=registry, match=MATCH, **kw
    )


def test_start_alive_tail_stop(tmp_path, registry):
    before = time.time()
    job = sleeper(tmp_path, registry, job_file=tmp_path / "job.json", extra={"note": 1})
    assert before <= job.started <= time.time()
    record = json.loads((tmp_path / "job.json").read_text())
    assert record["pid"] == job.pid
    assert record["argv"] == ["-c", SLEEPER, *MATCH]
    assert (record["note"], record["key"], record["log"]) == (1, "k", str(tmp_path / "k.log"))
    assert jobs.Job.from_record(record) == job
    wait_for(lambda: "ready" in jobs.tail(job.log, 5))
    assert jobs.alive(job, registry) == (True, None)
    assert jobs.alive(job) == (True, None)  # seen from another server: by PID and command line
    assert jobs.command_has(job.pid, *MATCH) is True
    assert jobs.stop(job, registry)
    assert "k" in registry.cancelled
    registry.procs["k"].wait(timeout=30)
    assert jobs.alive(job, registry) == (False, -signal.SIGTERM)
    assert not jobs.stop(job, registry)  # nothing left to stop
    assert not jobs.pid_alive(job.pid)


def test_a_recycled_pid_is_neither_trusted_nor_signalled(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", SLEEPER, "something-else"])
    try:
        wait_for(lambda: jobs.command_has(stranger.pid, "something-else"))  # it has exec'd
        assert jobs.command_has(stranger.pid, *MATCH) is False
        job = jobs.Job(stranger.pid, MATCH, "k")  # a job record whose PID now names a stranger
        assert jobs.pid_alive(stranger.pid)
        assert jobs.alive(job) == (False, None)
        assert not jobs.stop(job)
        time.sleep(0.2)
        assert stranger.poll() is None  # not signalled
        assert jobs.alive(jobs.Job(stranger.pid, ("something-else",))) == (True, None)
    finally:
        stranger.kill()
        stranger.wait()
    assert jobs.alive(jobs.Job(stranger.pid, ("something-else",))) == (False, None)  # reaped


def test_one_start_per_key_when_many_threads_start_at_once(tmp_path, registry):
    def check() -> None:
        if registry.running_pid("same") is not None:
            raise LsxError("busy")

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(sleeper, tmp_path, registry, "same", check=check) for _ in range(6)]
    outcomes = [f.exception() or f.result() for f in futures]
    started = [o for o in outcomes if isinstance(o, jobs.Job)]
    assert len(started) == 1, outcomes
    assert all(str(o) == "busy" for o in outcomes if not isinstance(o, jobs.Job))
    assert registry.running_pid("same") == started[0].pid


def test_a_start_that_fails_says_so_and_registers_nothing(tmp_path, registry):
    class Failed(LsxError):
        pass

    missing = str(tmp_path / "no-such-program")
    with pytest.raises(Failed, match="Could not start the test process: .*no-such-program"):
        jobs.start(
            [missing], key="k", log=tmp_path / "x.log", registry=registry,
            job_file=tmp_path / "job.json", what="the test process", error=Failed,
        )  # fmt: skip
    assert registry.procs == {}
    assert not (tmp_path / "job.json").exists()


def test_log_options_tail_and_read_json(tmp_path, registry):
    log = tmp_path / "a.log"
    log.write_text("old line\n")
    command = [sys.executable, "-c", "print('out'); import sys; print('err', file=sys.stderr)"]
    jobs.start(command, key="a", log=log, registry=registry, append=True, header=True)
    registry.procs["a"].wait(timeout=60)
    lines = log.read_text().splitlines()
    assert lines[:2] == ["old line", f"$ -c {command[2]}"]
    assert sorted(lines[2:]) == ["err", "out"]  # stdout and stderr both go to the log
    assert jobs.tail(log, 1) in ("out", "err")
    (tmp_path / "big.log").write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert jobs.tail(tmp_path / "big.log", 2) == "line 99998\nline 99999"
    assert jobs.tail(tmp_path / "missing.log", 5) == ""
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "torn.json").write_text('{"pid": 1')
    for name in ("list.json", "torn.json", "missing.json"):
        assert jobs.read_json(tmp_path / name) is None
    (tmp_path / "ok.json").write_text('{"pid": 1}')
    assert jobs.read_json(tmp_path / "ok.json") == {"pid": 1}


def test_lock_holder_sees_a_child_holding_the_folder_lock_until_it_is_killed(tmp_path):
    folder = tmp_path / "run"
    code = (
        "import sys, time\nfrom lsx.files import FolderLock\n"
        "lock = FolderLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(120)"
    )
    assert lock_holder(folder) is None
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
        env=jobs.child_env(), cwd=jobs.REPO_ROOT,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "held"
        assert lock_holder(folder) == child.pid
    finally:
        child.kill()  # no release: the kernel drops the lock with the process
        child.wait()
    assert (folder / LOCK_NAME).exists()  # the file stays behind ...
    assert lock_holder(folder) is None  # ... but nobody holds it

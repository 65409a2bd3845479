"""Waiting for an observable condition in tests, instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, every: float = 0.05, what: str = "the condition"
) -> T:
    """Call ``predicate`` every ``every`` seconds until it returns something truthy.

    Parameters
    ----------
    predicate : callable
        No arguments; its truthy result ends the wait.
    timeout : float
        Seconds to wait at most.
    every : float
        Seconds between calls.
    what : str
        What is waited for, for the error message.

    Returns
    -------
    The predicate's first truthy value.

    Raises
    ------
    AssertionError
        ``timeout`` seconds passed without a truthy value; the message names ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; it did not happen")
        time.sleep(every)


def rerun_until_shown(at: Any) -> bool:
    """For ``wait_until``: rerun an AppTest once, as the page's polling fragment would, while
    it still shows a background-work notice (``st.info``); True once the notice is gone."""
    if at.info:
        at.run(timeout=60)
    return not at.info


def within(seconds: float, fn: Callable[[], T]) -> T | BaseException:
    """``fn()`` in a thread, or the exception it raised; fail instead of hanging the suite when
    it is still running after ``seconds`` (a read that blocks on a FIFO, a device that never
    ends)."""
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["out"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return box["out"]

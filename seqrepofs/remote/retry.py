"""Bounded retries with exponential backoff, for every request of an HTTP/S3 pull.

Bounded twice: a request gives up after `attempts` consecutive failures that brought no new
bytes (a transfer that keeps progressing through flaky links is not cut off), and after
`max_total` tries or `deadline` seconds in all, whatever the progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import InterruptedTransferError, TransferError, UnreachableError

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try (5xx, cut connection, short body, read timeout)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    max_total: int = 60
    backoff: float = 0.5
    max_backoff: float = 8.0
    deadline: float = 3600.0
    connect_timeout: float = 10.0
    io_timeout: float = 60.0
    cancel: threading.Event | None = None

    def delay(self, failures: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** (failures - 1))


class Attempts:
    """The retry state of one request: call `failed(exc, progressed)` after each failure."""

    def __init__(self, policy: Retry, what: str) -> None:
        self.policy = policy
        self.what = what
        self.failures = 0
        self.total = 0
        self.started = time.monotonic()

    def failed(self, exc: Transient, progressed: bool) -> None:
        """Sleep before the next try, or raise the final error."""
        self.total += 1
        self.failures = 1 if progressed else self.failures + 1
        out_of_time = time.monotonic() - self.started > self.policy.deadline
        limit = min(3, self.policy.attempts) if exc.unreachable else self.policy.attempts
        if self.failures >= limit or self.total >= self.policy.max_total or out_of_time:
            kind = UnreachableError if exc.unreachable else TransferError
            raise kind(f"{exc} (gave up after {self.total} tries)") from None
        wait = self.policy.delay(self.failures)
        cancel = self.policy.cancel
        if cancel is not None:
            if cancel.wait(wait):
                raise InterruptedTransferError("interrupted")
        else:
            time.sleep(wait)


def with_retries(call: Callable[[], T], policy: Retry, what: str) -> T:
    """`call()` retried on Transient failures as the policy allows."""
    attempts = Attempts(policy, what)
    while True:
        try:
            return call()
        except Transient as exc:
            attempts.failed(exc, progressed=False)

"""The errors the client raises, so callers can tell a bad job from a full queue or a slow one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .status import JobStatus

# Longest part of a refused value shown in a message: enough to recognise it.
_SHOWN_CHARS = 80

# Marks "no value given" apart from a value of None, which is worth showing.
_UNSET = object()


class FlotillaError(Exception):
    """The base of every error this client raises on purpose."""


class InvalidJob(FlotillaError, ValueError):
    """A job, or one of its options, that the protocol refuses, caught before anything is
    written: a worker would otherwise dead-letter it as undecodable."""

    def __init__(self, field: str, rule: str, value: object = _UNSET) -> None:
        shown = "" if value is _UNSET else f" (got {_describe(value)})"
        super().__init__(f"invalid {field}: {rule}{shown}")
        self.field = field


class QueueFull(FlotillaError):
    """The queue holds as many jobs as its cap allows (backpressure)."""

    def __init__(self, queue: str, detail: str) -> None:
        super().__init__(detail)
        self.queue = queue


class WaitTimeout(FlotillaError, TimeoutError):
    """A job did not reach a terminal state within the time `wait` was given."""

    def __init__(self, job_id: str, timeout: float, last_status: JobStatus | None) -> None:
        seen = last_status.status if last_status is not None else "not found"
        super().__init__(f"job {job_id} did not finish within {timeout:g} s (last status: {seen})")
        self.job_id = job_id
        self.last_status = last_status


def _describe(value: object) -> str:
    """A refused value for a message: escaped, so a CR or LF in it cannot forge a log line,
    and shortened."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"

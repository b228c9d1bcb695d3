"""A job's full id: the one string that names it in a namespace, whatever queue or partition holds it.

A job with an id of its own is named by that id. A job without one (a fast-path job) is
named by its stream entry id, which is unique within its stream only: two queues, or two
partitions of one, hand out the same entry ids. Its full id therefore carries the queue:
`<queue>:<entry id>`. An own id can take neither form (see `validate.check_job_id`), so a
full id says by its form where the job is.
"""

from __future__ import annotations

import re

# A stream entry id as a fast-path job's id has it: `<ms>-<seq>`.
_ENTRY_ID_FORM = re.compile(r"[0-9]+-[0-9]+")


def is_entry_id_form(value: str) -> bool:
    """Whether `value` has the form of a stream entry id, `<digits>-<digits>`."""
    return _ENTRY_ID_FORM.fullmatch(value) is not None


def names_entry(value: str) -> bool:
    """Whether `value` has the form of an id that names a job without an id of its own: an
    entry id, or anything ending in `:<entry id>` (the full id of one). No producer may give
    a job such an id."""
    _, sep, tail = value.rpartition(":")
    return is_entry_id_form(value) or (bool(sep) and is_entry_id_form(tail))


def full_id(queue: str, id: str) -> str:
    """The full id of job `id` of `queue`: `<queue>:<id>` when `id` is an entry id (a job
    without an id of its own, such as the one `Client.enqueue` returns on the fast path),
    else `id` itself. `queue` is the queue (or partition) the job is in."""
    return f"{queue}:{id}" if is_entry_id_form(id) else id


def parse_full_id(value: str) -> tuple[str | None, str]:
    """Reads a job id as someone gave it: `(queue, entry id)` for a full id
    (`<queue>:<entry id>`, split at the last `:`, the queue not empty), else `(None, value)`:
    an own id or a bare entry id, which say nothing of their queue."""
    queue, sep, entry = value.rpartition(":")
    if sep and queue and is_entry_id_form(entry):
        return queue, entry
    return None, value

"""What a job waits (or waited) for (protocol 2.19), read from its `deps` hash.

The hash `<ns>:{<queue>}:deps:<id>` holds `edges` (how many parents the job has), while it
waits `left` (parents still to wait for) and `blocked` (parents that died under a `wait`
edge), `type`, `created_at`, `job` (its enqueue arguments, packed), and, per parent that
ended, `o:<queue> <id>` (how: `completed`, `dead`, `cancelled`, `expired`, `deleted`) with
`r:<queue> <id>` (its result, JSON text, when it completed with one); a parent that died
under `wait` is `b:<queue> <id>` while the job waits for an operator's retry of it. Once
the job was let go, `left`, `blocked` and `job` go, `released_at` says when, and the hash
is kept a week for the job's handler to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .status import RawFields, _as_bytes, _int, _json_or_none


@dataclass(frozen=True)
class ParentState:
    """One parent of a job, as the job's `deps` hash says it stands."""

    queue: str
    id: str
    # How it ended (`completed`, `dead`, `cancelled`, `expired`, `deleted`); None while
    # it has not.
    outcome: str | None = None
    # Its result (decoded JSON) when it completed with one.
    result: Any = None
    # It died, and the job waits for an operator's retry of it (a `wait` edge).
    blocked: bool = False


@dataclass(frozen=True)
class Dependencies:
    """What a job waits or waited for. `parents` lists the parents that ended (and those
    that block it), by queue and id; a parent still running appears once it ends."""

    edges: int
    # How many parents it still waits for; None once it was let go.
    left: int | None
    parents: list[ParentState] = field(default_factory=list)
    # How many of its parents died under a `wait` edge (0 once it was let go).
    blocked: int = 0
    # When it was let go (ms since the Unix epoch), once it was.
    released_at: int | None = None

    @property
    def waiting(self) -> bool:
        """Whether the job still waits for its parents."""
        return self.left is not None

    def result_of(self, id: str, queue: str | None = None) -> Any:
        """The result of parent `id` (of `queue`, or of any queue), None when it has not
        completed with one."""
        for parent in self.parents:
            if parent.id == id and (queue is None or parent.queue == queue):
                return parent.result
        return None


def parse_dependencies(raw: RawFields) -> Dependencies | None:
    """A `deps` hash as HGETALL answers it (bytes or str); None for an empty one: the job
    never had parents, was cancelled while it waited, or was let go over a week ago."""
    fields = {_as_bytes(k).decode("utf-8", "replace"): _as_bytes(v) for k, v in raw.items()}
    if not fields:
        return None
    parents: dict[tuple[str, str], dict[str, Any]] = {}
    for name, value in fields.items():
        kind, colon, reference = name.partition(":")
        queue, space, parent_id = reference.partition(" ")
        if not colon or not space or kind not in ("o", "r", "b"):
            continue
        parent = parents.setdefault((queue, parent_id), {})
        if kind == "o":
            parent["outcome"] = value.decode("utf-8", "replace")
        elif kind == "r":
            parent["result"] = _json_or_none(value)
        else:
            parent["blocked"] = True
            parent.setdefault("blocked_by", value.decode("utf-8", "replace"))
    states = [
        ParentState(
            queue=queue,
            id=parent_id,
            # A blocking parent has not completed: how it ended is what blocks.
            outcome=seen.get("outcome", seen.get("blocked_by")),
            result=seen.get("result"),
            blocked=seen.get("blocked", False),
        )
        for (queue, parent_id), seen in sorted(parents.items())
    ]
    left = _int(fields.get("left"))
    return Dependencies(
        edges=max(_int(fields.get("edges")) or 0, 0),
        left=None if "left" not in fields else max(left or 0, 0),
        parents=states,
        blocked=max(_int(fields.get("blocked")) or 0, 0),
        released_at=_int(fields.get("released_at")),
    )

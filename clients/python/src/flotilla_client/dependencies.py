"""What a job waits (or waited) for (protocol 2.19), read from its `deps` hash.

The hash `<ns>:{<queue>}:deps:<id>` holds `edges` (how many parents the job has),
`parents` (each one, `<policy> <queue> <id>` a line), `flow` (`<queue> <flow id>`, when its
flow was named), while it waits `left` (parents still to wait for) and `blocked` (parents
that died under a `wait` edge), `type`, `created_at`, `job` (its enqueue arguments,
packed), and, per parent that ended, `o:<queue> <id>` (how: `completed`, `dead`,
`cancelled`, `expired`, `deleted`) with `r:<queue> <id>` (its result, JSON text, when it
completed with one); a parent that died under `wait` is `b:<queue> <id>` while the job
waits for an operator's retry of it. Once the job was let go, `left`, `blocked` and `job`
go, `released_at` says when, and the hash is kept a week for the job's handler to read.
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
    # What the job does if this parent ends without completing (`cancel`, `run`,
    # `wait`); None where the hash does not say.
    policy: str | None = None
    # How it ended (`completed`, `dead`, `cancelled`, `expired`, `deleted`); None while
    # it has not.
    outcome: str | None = None
    # Its result (decoded JSON) when it completed with one.
    result: Any = None
    # It died, and the job waits for an operator's retry of it (a `wait` edge).
    blocked: bool = False


@dataclass(frozen=True)
class Dependencies:
    """What a job waits or waited for. `parents` lists each parent, in the order it was
    given, with its policy and how it ended (`outcome` None while it has not), then any
    other parent the hash names: a hash written without its list of parents names only
    those that ended (or block the job)."""

    edges: int
    # How many parents it still waits for; None once it was let go.
    left: int | None
    parents: list[ParentState] = field(default_factory=list)
    # How many of its parents died under a `wait` edge (0 once it was let go).
    blocked: int = 0
    # When it was let go (ms since the Unix epoch), once it was.
    released_at: int | None = None
    # The flow it was created in, when that flow was named: its id, and the queue (its
    # first job's) that lists its jobs.
    flow_id: str | None = None
    flow_queue: str | None = None

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
    # The parents in the order they were given, each with its policy.
    for line in fields.get("parents", b"").decode("utf-8", "replace").splitlines():
        policy, _, reference = line.partition(" ")
        queue, space, parent_id = reference.partition(" ")
        if space:
            parents.setdefault((queue, parent_id), {})["policy"] = policy
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
    # Those the list names first, as given; any other after them, by queue and id.
    listed = [reference for reference, seen in parents.items() if "policy" in seen]
    order = listed + sorted(reference for reference, seen in parents.items() if "policy" not in seen)
    states = []
    for queue, parent_id in order:
        seen = parents[(queue, parent_id)]
        states.append(
            ParentState(
                queue=queue,
                id=parent_id,
                policy=seen.get("policy"),
                # A blocking parent has not completed: how it ended is what blocks.
                outcome=seen.get("outcome", seen.get("blocked_by")),
                result=seen.get("result"),
                blocked=seen.get("blocked", False),
            )
        )
    left = _int(fields.get("left"))
    flow_queue, space, flow_id = fields.get("flow", b"").decode("utf-8", "replace").partition(" ")
    return Dependencies(
        edges=max(_int(fields.get("edges")) or 0, 0),
        left=None if "left" not in fields else max(left or 0, 0),
        parents=states,
        blocked=max(_int(fields.get("blocked")) or 0, 0),
        released_at=_int(fields.get("released_at")),
        flow_id=flow_id if space else None,
        flow_queue=flow_queue if space else None,
    )

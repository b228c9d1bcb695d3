"""Jobs that wait for other jobs (protocol 2.19): the published flow script (bundled as enqueue_flow.lua), its arguments and replies.

A job may wait for other jobs, its *parents*, to end before it runs. A *flow* of such jobs
(any graph without cycles: a job may have several parents and several children) is
created by one call of the script: everything is checked first (every job as the enqueue
script checks it, every parent known, no cycle, no id twice or taken), then written, so
the whole flow exists or none of it does. A flow has an id of its own, under which its
jobs are listed (`flow:<id>` of its first job's queue) for a week, for `flotilla flows
show`. A job that waits for jobs enqueued before is a flow of one, listed under none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Literal, Union

import redis

from .errors import InvalidJob
from .keys import DEFAULT_QUEUE, Keys
from .script import ScriptJob, all_args

# What a job does if a parent ends without completing (dead, cancelled, expired,
# deleted): `cancel` (it ends cancelled, unrun: the default), `run` (it runs anyway) or
# `wait` (it waits until an operator's retry of the dead parent completes).
Policy = Literal["cancel", "run", "wait"]
POLICIES: tuple[Policy, ...] = ("cancel", "run", "wait")
DEFAULT_POLICY: Policy = "cancel"

_POLICY_NAMES: dict[object, Policy] = {name: name for name in POLICIES}


def check_policy(value: object) -> Policy:
    """A parent's policy: `cancel`, `run` or `wait`."""
    policy = _POLICY_NAMES.get(value) if isinstance(value, str) else None
    if policy is None:
        raise InvalidJob("after", "a policy of cancel, run or wait", value)
    return policy


# ARGV[3], the flow's id: empty lists the flow under none (a job that waits for jobs
# enqueued before is a flow of one, and is not named).
UNNAMED = ""

# What the script answers for each job: enqueued at once, or waiting for its parents.
FlowOutcome = Literal["created", "waiting"]
_OUTCOMES: dict[str, FlowOutcome] = {"created": "created", "waiting": "waiting"}

# The script's refusals, each with nothing written: the flow (BAD_FLOW), or one of its
# jobs as the enqueue script would refuse it (BAD_ARG, BAD_ID).
_REFUSALS = ("BAD_FLOW", "BAD_ARG", "BAD_ID")

# This package, wherever it is installed (or vendored).
_PACKAGE = __name__.rpartition(".")[0]


def flow_script_text() -> str:
    """The flow script's text as bundled: byte for byte protocol/v2/enqueue_flow.lua."""
    return resources.files(_PACKAGE).joinpath("enqueue_flow.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Parent:
    """A job another job waits for: job `id` of `queue` (or of a partition of it), and
    what the waiting job does if this one ends without completing."""

    queue: str
    id: str
    policy: Policy = DEFAULT_POLICY


@dataclass(frozen=True)
class Enqueued:
    """A job of a flow as it was created: its id, the queue (or partition) it is in, and
    `created` (enqueued at once: it waits for nothing still running) or `waiting` (for
    its parents). It names the job as a parent for jobs enqueued after it."""

    id: str
    queue: str
    outcome: FlowOutcome

    @property
    def waiting(self) -> bool:
        """Whether the job waits for its parents."""
        return self.outcome == "waiting"


# A parent as a caller may name it: a Parent; `(queue, id)` or `(queue, id, policy)`; an
# Enqueued (a job created before); or a string: the id of a job of the same flow, else
# an id as `status` takes it (a full id names its queue, any other is of "default").
ParentRef = Union[Parent, Enqueued, tuple[str, str], tuple[str, str, Policy], str]


@dataclass(frozen=True)
class FlowJob:
    """One job of a flow, as `Client.enqueue_flow` takes it. `after` names the jobs it
    waits for (see ParentRef): jobs of the same flow, in any order, or jobs enqueued
    before, in any queue. A job without `id` gets a new UUID, and a job that other jobs
    of the flow name needs one. `delay` (seconds, or a timedelta) or `run_at` (an aware
    datetime, or ms since the Unix epoch) count from when its last parent is done. A job
    of a flow holds no unique or debounce key."""

    type: str
    payload: object = None
    id: str | None = None
    queue: str = DEFAULT_QUEUE
    after: Sequence[ParentRef] = field(default_factory=tuple)
    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff: str | None = None
    delay: float | timedelta | None = None
    run_at: datetime | int | None = None
    expires_in_ms: int | None = None
    expires_at_ms: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class FlowItem:
    """One job as the flow script takes it: checked, placed in its partition, with its
    parents named by the partition that holds each."""

    job: ScriptJob
    parents: Sequence[Parent]


class FlowScript:
    """The flow script registered on one connection: redis-py sends EVALSHA and falls
    back to loading it when the server does not have it yet."""

    def __init__(self, connection: redis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._script = connection.register_script(flow_script_text())

    def run(self, items: Sequence[FlowItem], flow_id: str = UNNAMED, refused_field: str = "flow") -> list[FlowOutcome]:
        """Creates the flow, listed under `flow_id` (empty: under none); answers each
        job's outcome, in order. A refusal raises InvalidJob naming `refused_field`, with
        the script's reason (`BAD_FLOW`: a cycle, a parent not known, a parent already
        ended under `cancel`, an id twice or taken, a flow id taken, too many jobs or
        edges; `BAD_ARG` or `BAD_ID`: a job the enqueue script would refuse); nothing was
        written."""
        args: list[str | int] = [self._keys.namespace, len(items), flow_id]
        for item in items:
            args += all_args(item.job)
            args.append(len(item.parents))
            for parent in item.parents:
                args += [parent.queue, parent.id, parent.policy]
        # The call goes where its first job's stream is (a cluster client routes by it).
        keys = [self._keys.stream(items[0].job.queue)]
        try:
            reply = self._script(keys=keys, args=args)
        except redis.ResponseError as e:
            if str(e).startswith(_REFUSALS):
                raise InvalidJob(refused_field, str(e)) from None
            raise
        return _parse_reply(reply, len(items))


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _parse_reply(reply: object, count: int) -> list[FlowOutcome]:
    if isinstance(reply, (list, tuple)) and len(reply) == count:
        outcomes = [_OUTCOMES.get(_text(word)) for word in reply]
        if all(outcome is not None for outcome in outcomes):
            return [outcome for outcome in outcomes if outcome is not None]
    raise redis.ResponseError(f"unexpected reply from the flow script: {reply!r}")

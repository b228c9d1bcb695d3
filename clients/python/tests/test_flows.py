"""Jobs that wait for other jobs (protocol 2.19): the arguments the client passes to the published flow script, the parents it names, and what it refuses; no Redis needed."""

from __future__ import annotations

import uuid
from typing import Any

import msgpack
import pytest
import redis

from flotilla_client import Client, Enqueued, FlowJob, InvalidJob, Keys, Parent, flow_script_text
from flotilla_client.dependencies import parse_dependencies
from flotilla_client.lookup import ForParents, parse_id_key
from flotilla_client.partitions import partition_for, partition_name
from flotilla_client.status import from_deps

# The 19 enqueue arguments of a job the client gives no options: id and type first, then
# the script's defaults, the queue, protocol version 2 and nothing else set.
PLAIN = ["null", "json", 3, 1_800_000, "exponential:1000:600000", 0, 0, 0, 0]
UNSET_TAIL = ["", "2", "finished", 0, 0, 0, ""]


class RecordingConnection:
    """Stands in for a connection: the flow script records each call and answers as the
    script does, `created` for a job waiting for nothing and `waiting` for the others (or
    raises the error `refusal` when set); every queue has `partitions` partitions, and
    each known job is in the partition `known` names."""

    def __init__(self, partitions: int = 1, refusal: str | None = None) -> None:
        self.calls: list[tuple[list[str], list[Any]]] = []
        self.enqueue_calls: list[list[Any]] = []
        self.queues: list[str] = []
        self.partitions = partitions
        self.refusal = refusal
        self.known: dict[str, str] = {}

    def register_script(self, source: str) -> Any:
        def run(keys: list[str], args: list[Any]) -> list[bytes]:
            if source != flow_script_text():
                # The enqueue script, which creates its job.
                self.enqueue_calls.append(args)
                return [str(args[0]).encode(), b"created"]
            self.calls.append((keys, args))
            if self.refusal is not None:
                raise redis.ResponseError(self.refusal)
            return [b"waiting" if parents else b"created" for parents in parent_counts(args)]

        return run

    def hget(self, _name: str, _key: str) -> bytes:
        return str(self.partitions).encode()

    def sadd(self, _name: str, value: str) -> int:
        self.queues.append(value)
        return 1

    def pipeline(self, transaction: bool = True) -> Any:
        return RecordingPipeline(self)


class RecordingPipeline:
    """Names queues among the known ones, and answers which partition knows a job."""

    def __init__(self, connection: RecordingConnection) -> None:
        self.connection = connection
        self.replies: list[Any] = []

    def sadd(self, _name: str, value: str) -> None:
        self.connection.queues.append(value)
        self.replies.append(1)

    def exists(self, record: str, _id_key: str) -> None:
        queue = record.split("{", 1)[1].split("}", 1)[0]
        job_id = record.rsplit(":job:", 1)[1]
        self.replies.append(int(self.connection.known.get(job_id) == queue))

    def zscore(self, _name: str, _value: str) -> None:
        self.replies.append(None)

    def execute(self) -> list[Any]:
        return self.replies


def parent_counts(args: list[Any]) -> list[int]:
    """How many parents each job of a flow call has, read from its arguments."""
    counts, at = [], 3
    for _ in range(args[1]):
        at += 19
        counts.append(args[at])
        at += 1 + 3 * args[at]
    assert at == len(args), "the arguments match the job count"
    return counts


def jobs_of(args: list[Any]) -> list[tuple[list[Any], list[list[Any]]]]:
    """Each job's 19 enqueue arguments and its parents, from a flow call's arguments."""
    jobs, at = [], 3
    for _ in range(args[1]):
        job = args[at : at + 19]
        count = args[at + 19]
        parents = [args[at + 20 + 3 * i : at + 23 + 3 * i] for i in range(count)]
        jobs.append((job, parents))
        at += 20 + 3 * count
    return jobs


def flow_client(connection: RecordingConnection) -> Client:
    return Client(connection)  # type: ignore[arg-type]


def test_a_diamond_is_one_call_with_every_job_and_its_parents_in_order() -> None:
    connection = RecordingConnection()
    client = flow_client(connection)
    created = client.enqueue_flow(
        [
            FlowJob("fetch", {"n": 1}, id="a"),
            FlowJob("fetch", id="b", after=["a"]),
            FlowJob("fetch", id="c", after=[("default", "a", "run")]),
            FlowJob("merge", id="d", after=["b", Parent("default", "c", "wait")]),
        ]
    )
    assert created == [
        Enqueued(id="a", queue="default", outcome="created"),
        Enqueued(id="b", queue="default", outcome="waiting"),
        Enqueued(id="c", queue="default", outcome="waiting"),
        Enqueued(id="d", queue="default", outcome="waiting"),
    ]
    assert [job.waiting for job in created] == [False, True, True, True]
    ((keys, args),) = connection.calls
    assert keys == ["flotilla:{default}:q"], "the call goes where its first job's stream is"
    assert args[:2] == ["flotilla", 4]
    assert str(uuid.UUID(args[2])) == args[2], "a flow is named by a new UUID"
    jobs = jobs_of(args)
    assert jobs[0][0] == ["a", "fetch", '{"n":1}', *PLAIN[1:], "default", *UNSET_TAIL]
    assert jobs[3][0] == ["d", "merge", *PLAIN, "default", *UNSET_TAIL]
    assert [parents for _, parents in jobs] == [
        [],
        [["default", "a", "cancel"]],
        [["default", "a", "run"]],
        [["default", "b", "cancel"], ["default", "c", "wait"]],
    ]
    assert connection.queues == ["default"], "the queue is named once"


def test_every_option_of_a_job_of_a_flow_is_passed_and_its_time_counts_from_its_parents() -> None:
    connection = RecordingConnection()
    flow_client(connection).enqueue_flow(
        [
            FlowJob(
                "report",
                [1],
                id="r",
                queue="low",
                max_attempts=5,
                timeout_ms=2000,
                backoff="fixed:10",
                delay=1.5,
                expires_at_ms=1_900_000_000_000,
                group="account-42",
                after=[("default", "before")],
            ),
            FlowJob("report", id="s", run_at=1_900_000_000_000, after=["r"]),
        ]
    )
    ((keys, args),) = connection.calls
    assert keys == ["flotilla:{low}:q"]
    (r, r_parents), (s, s_parents) = jobs_of(args)
    assert r == [
        "r", "report", "[1]", "json", 5, 2000, "fixed:10", 0, 1500, 0, 0, "low", "", "2", "finished",
        0, 0, 1_900_000_000_000, "account-42",
    ]
    assert r_parents == [["default", "before", "cancel"]]
    assert s[7:9] == [1_900_000_000_000, 0]
    assert s_parents == [["low", "r", "cancel"]], "a job of the flow is named in the queue it was given"
    assert connection.queues == ["low", "default"]


def test_a_flow_is_named_as_asked() -> None:
    connection = RecordingConnection()
    client = flow_client(connection)
    client.enqueue_flow([FlowJob("noop")], flow_id="nightly-2024-05-01")
    assert connection.calls[0][1][2] == "nightly-2024-05-01"
    with pytest.raises(InvalidJob) as refused:
        client.enqueue_flow([FlowJob("noop")], flow_id="a b")
    assert refused.value.field == "flow_id"
    assert len(connection.calls) == 1


def test_a_job_of_a_flow_without_an_id_gets_a_uuid() -> None:
    connection = RecordingConnection()
    (created,) = flow_client(connection).enqueue_flow([FlowJob("noop")])
    assert str(uuid.UUID(created.id)) == created.id
    assert jobs_of(connection.calls[0][1])[0][0][0] == created.id


def test_enqueue_after_is_a_flow_of_one() -> None:
    connection = RecordingConnection()
    client = flow_client(connection)
    job_id = client.enqueue("noop", {"a": 1}, after=[("default", "p1"), Enqueued("p2", "low", "created"), "mail:1-0"])
    ((keys, args),) = connection.calls
    ((job, parents),) = jobs_of(args)
    assert keys == ["flotilla:{default}:q"] and str(uuid.UUID(job_id)) == job_id
    assert args[:3] == ["flotilla", 1, ""], "a flow of one is not named"
    assert job[:3] == [job_id, "noop", '{"a":1}']
    assert parents == [["default", "p1", "cancel"], ["low", "p2", "cancel"], ["mail", "1-0", "cancel"]]


def test_enqueue_in_and_at_after_parents_pass_their_time() -> None:
    connection = RecordingConnection()
    client = flow_client(connection)
    client.enqueue_in(2, "noop", id="later", after=["p"])
    client.enqueue_at(1_900_000_000_000, "noop", after=["p"], group="g")
    (_, in_args), (_, at_args) = connection.calls
    ((in_job, in_parents),) = jobs_of(in_args)
    ((at_job, _),) = jobs_of(at_args)
    assert in_job[0] == "later" and in_job[7:9] == [0, 2000]
    assert in_parents == [["default", "p", "cancel"]], "an id alone is of the default queue"
    assert at_job[7:9] == [1_900_000_000_000, 0] and at_job[18] == "g"


def test_an_empty_after_enqueues_as_before() -> None:
    connection = RecordingConnection()
    assert flow_client(connection).enqueue("noop", id="own", after=[]) == "own"
    assert connection.calls == [], "no flow"
    ((args),) = connection.enqueue_calls
    assert args[0] == "own" and len(args) == 15, "the enqueue script, called as before"


def test_an_empty_flow_writes_nothing() -> None:
    connection = RecordingConnection()
    assert flow_client(connection).enqueue_flow([]) == []
    assert connection.calls == [] and connection.queues == []


def test_a_flow_on_partitions_places_each_job_by_its_group_or_id_and_names_its_parents_there() -> None:
    connection = RecordingConnection(partitions=4)
    connection.known["before"] = partition_name("default", 3)
    client = flow_client(connection)
    created = client.enqueue_flow(
        [
            FlowJob("noop", id="a"),
            FlowJob("noop", id="b", group="account-42", after=["a", ("default", "before", "run")]),
        ]
    )
    a_queue = partition_name("default", partition_for("a", 4))
    b_queue = partition_name("default", partition_for("account-42", 4))
    assert [(job.id, job.queue) for job in created] == [("a", a_queue), ("b", b_queue)]
    ((keys, args),) = connection.calls
    (a, _), (b, b_parents) = jobs_of(args)
    assert keys == [Keys().stream(a_queue)]
    assert (a[11], b[11]) == (a_queue, b_queue)
    assert b_parents == [[a_queue, "a", "cancel"], [partition_name("default", 3), "before", "run"]]


def test_a_parent_in_no_partition_is_refused_before_anything_is_written() -> None:
    connection = RecordingConnection(partitions=4)
    with pytest.raises(InvalidJob, match="parent nobody is not known in any partition of queue default"):
        flow_client(connection).enqueue("noop", after=[("default", "nobody")])
    assert connection.calls == [] and connection.queues == []


@pytest.mark.parametrize(
    "refusal",
    [
        "BAD_FLOW the flow has a cycle through job x",
        "BAD_FLOW job x: parent nobody is not known in queue default",
        "BAD_ARG job x: expires at 1: expected whole milliseconds",
        "BAD_ID job 1-1: id 1-1 has the form of a stream entry id",
    ],
)
def test_the_scripts_refusals_raise_invalid_job_with_its_reason(refusal: str) -> None:
    client = flow_client(RecordingConnection(refusal=refusal))
    with pytest.raises(InvalidJob) as flow_refused:
        client.enqueue_flow([FlowJob("noop", id="x")])
    assert (flow_refused.value.field, str(flow_refused.value)) == ("flow", f"invalid flow: {refusal}")
    with pytest.raises(InvalidJob) as after_refused:
        client.enqueue("noop", id="x", after=["p"])
    assert (after_refused.value.field, str(after_refused.value)) == ("after", f"invalid after: {refusal}")


def test_another_script_error_is_not_a_refusal() -> None:
    client = flow_client(RecordingConnection(refusal="OOM command not allowed"))
    with pytest.raises(redis.ResponseError, match="OOM") as raised:
        client.enqueue_flow([FlowJob("noop")])
    assert not isinstance(raised.value, InvalidJob)


@pytest.mark.parametrize(
    ("after", "why"),
    [
        ("a", "a list of parents"),
        (Parent("default", "a"), "a list of parents"),
        ([("default",)], "a Parent, \\(queue, id\\)"),
        ([42], "a Parent, \\(queue, id\\)"),
        ([("default", "a", "later")], "a policy of cancel, run or wait"),
        ([Parent("default", "a", "never")], "a policy of cancel, run or wait"),  # type: ignore[arg-type]
        ([("de fault", "a")], "invalid after: 1-256 printable"),
        ([("default", "")], "invalid after: 1-256 printable"),
    ],
)
def test_bad_parents_are_refused_before_anything_is_written(after: Any, why: str) -> None:
    connection = RecordingConnection()
    client = flow_client(connection)
    with pytest.raises(InvalidJob, match=why) as refused:
        client.enqueue("noop", after=after)
    assert refused.value.field == "after"
    with pytest.raises(InvalidJob, match=why):
        client.enqueue_flow([FlowJob("noop", after=after)])
    assert connection.calls == [] and connection.queues == []


def test_a_job_with_parents_holds_no_unique_or_debounce_key() -> None:
    connection = RecordingConnection()
    client = flow_client(connection)
    with pytest.raises(InvalidJob, match="a job that waits for other jobs holds neither") as unique:
        client.enqueue_unique("k", "noop", after=[("default", "p")])  # type: ignore[arg-type]
    with pytest.raises(InvalidJob, match="a job that waits for other jobs holds neither") as debounced:
        client.enqueue_debounced("k", "noop", delay=1, after=[("default", "p")])  # type: ignore[arg-type]
    assert unique.value.field == debounced.value.field == "after"
    with pytest.raises(TypeError):
        FlowJob("noop", unique_key="k")  # type: ignore[call-arg]
    assert connection.calls == []


def test_a_string_naming_jobs_of_the_flow_in_two_queues_is_refused() -> None:
    with pytest.raises(InvalidJob, match="names jobs of the flow in two queues"):
        flow_client(RecordingConnection()).enqueue_flow(
            [FlowJob("noop", id="a"), FlowJob("noop", id="a", queue="low"), FlowJob("noop", after=["a"])]
        )


def test_bad_jobs_of_a_flow_are_refused_naming_their_field() -> None:
    client = flow_client(RecordingConnection())
    for jobs, field in [
        ([FlowJob("no type")], "type"),
        ([FlowJob("noop", id="1-0")], "id"),
        ([FlowJob("noop", max_attempts=0)], "max_attempts"),
        ([FlowJob("noop", delay=-1)], "delay"),
        ([FlowJob("noop", delay=1, run_at=1)], "run_at"),
        ([{"type": "noop"}], "jobs"),
    ]:
        with pytest.raises(InvalidJob) as refused:
            client.enqueue_flow(jobs)  # type: ignore[arg-type]
        assert refused.value.field == field, jobs
    with pytest.raises(InvalidJob) as not_a_list:
        client.enqueue_flow(FlowJob("noop"))  # type: ignore[arg-type]
    assert not_a_list.value.field == "jobs"


# A waiting job's `deps` hash holds its enqueue arguments as Lua's cmsgpack packs them: an
# array of 19 strings (array16, past 15).
ARGS = [
    b"d", b"merge", b'{"n":1}', b"json", b"5", b"2000", b"fixed:10", b"0", b"1500", b"0", b"0", b"low", b"",
    b"2", b"finished", b"0", b"0", b"1900000000000", b"account-42",
]


def test_an_id_key_holding_waiting_names_a_job_waiting_for_its_parents() -> None:
    assert parse_id_key(b"waiting") == ForParents()
    assert parse_id_key("waiting") == ForParents()
    assert parse_id_key(b"waiting ") is None


def test_a_job_waiting_for_its_parents_reads_from_what_it_was_given() -> None:
    args = msgpack.unpackb(msgpack.packb(ARGS), raw=True)
    status = from_deps("low", "d", args, b"1700000000000")
    assert (status.id, status.queue, status.status, status.type) == ("d", "low", "waiting", "merge")
    assert (status.attempts, status.max_attempts, status.payload) == (0, 5, {"n": 1})
    assert (status.created_at, status.run_at, status.expires_at, status.group) == (
        1_700_000_000_000, None, 1_900_000_000_000, "account-42",
    )
    assert not status.finished
    bare = from_deps("default", "e", [b"e", b"noop", b"null", b"json", b"0"], None)
    assert (bare.max_attempts, bare.payload, bare.expires_at, bare.group, bare.created_at) == (None, None, None, None, None)


def test_a_deps_hash_reads_as_its_parents_and_counts() -> None:
    waiting = parse_dependencies(
        {
            b"left": b"1",
            b"edges": b"3",
            b"blocked": b"1",
            b"type": b"merge",
            b"created_at": b"1700000000000",
            b"job": msgpack.packb(ARGS),
            b"o:default a": b"completed",
            b"r:default a": b'{"rows": 7}',
            b"b:low b": b"dead",
            b"o:default c": b"cancelled",
            b"parents": b"cancel default a\nwait low b\nrun default c\ncancel default e",
            b"flow": b"default nightly-7",
        }
    )
    assert waiting is not None and waiting.waiting
    assert (waiting.edges, waiting.left, waiting.blocked, waiting.released_at) == (3, 1, 1, None)
    assert (waiting.flow_id, waiting.flow_queue) == ("nightly-7", "default")
    assert [(p.queue, p.id, p.policy, p.outcome, p.result, p.blocked) for p in waiting.parents] == [
        ("default", "a", "cancel", "completed", {"rows": 7}, False),
        ("low", "b", "wait", "dead", None, True),
        ("default", "c", "run", "cancelled", None, False),
        ("default", "e", "cancel", None, None, False),
    ]
    assert waiting.result_of("a") == {"rows": 7}
    assert waiting.result_of("a", queue="low") is None
    # A hash that does not list its parents names those that ended, by queue and id.
    released = parse_dependencies(
        {
            "edges": "2",
            "released_at": "1700000000500",
            "o:low z": "completed",
            "o:default a": "completed",
            "r:default a": "not json",
        }
    )
    assert released is not None and not released.waiting
    assert (released.left, released.released_at, released.result_of("a")) == (None, 1_700_000_000_500, "not json")
    assert [(p.queue, p.id, p.policy) for p in released.parents] == [("default", "a", None), ("low", "z", None)]
    assert (released.flow_id, released.flow_queue) == (None, None)
    assert parse_dependencies({}) is None

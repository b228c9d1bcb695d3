"""The client's checks before writing: each bad option raises InvalidJob naming its field, and nothing reaches Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

from flotilla_client import Client, InvalidJob
from flotilla_client import validate

GOOD_NAMES = ["send_email", "01H-ab.c:d@e", "x" * 256, "é" * 128, "queue/with/slashes"]
BAD_NAMES: list[Any] = [
    "",
    "x" * 257,
    "é" * 129,  # 258 bytes in UTF-8: workers count bytes
    "a b",
    "a\tb",
    "a\r\nforged",
    "nul\x00",
    "del\x7f",
    "{q}",
    "a}",
    "nbsp\u00a0",
    "line\u2028sep",
    "lone\ud800",
    None,
    42,
    b"bytes",
]


@pytest.fixture
def offline() -> Client:
    """A client whose Redis cannot be reached: any write would raise ConnectionError, so
    InvalidJob proves the check came first."""
    return Client(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_pass(name: str) -> None:
    assert validate.check_name("type", name) == name


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_are_refused_naming_the_field(name: Any) -> None:
    with pytest.raises(InvalidJob) as refused:
        validate.check_name("queue", name)
    assert refused.value.field == "queue"
    assert str(refused.value).startswith("invalid queue: 1-256 printable characters")
    assert "\n" not in str(refused.value), "a refused value cannot forge a log line"


@pytest.mark.parametrize("job_id", ["order:17", "mail:1-2-3", "welcome-42", "1-0:x", "a1-2", "nightly@1700000000000"])
def test_own_ids_of_other_forms_pass(job_id: str) -> None:
    assert validate.check_job_id(job_id) == job_id


@pytest.mark.parametrize("job_id", ["1700000000000-0", "0-1", "mail:1700000000000-0", "a:b:0-1", ":1-0", "mail#2:5-5"])
def test_own_ids_of_an_entry_id_or_full_ids_form_are_refused(job_id: str) -> None:
    # Those forms name the jobs without an id of their own: an entry id, or a full id
    # (`<queue>:<entry id>`), so no own id may take them.
    with pytest.raises(InvalidJob) as refused:
        validate.check_job_id(job_id)
    assert refused.value.field == "id"
    assert validate.JOB_ID_RULE in str(refused.value)


def test_the_own_id_rule_is_the_protocols_text() -> None:
    assert validate.JOB_ID_RULE == (
        "1-256 printable characters without spaces, braces or control characters, and not of "
        "the form <digits>-<digits> or <queue>:<digits>-<digits>: those are a stream entry id "
        "and the full id of one, which name the jobs that have no id of their own"
    )


def test_an_own_id_that_is_not_a_name_is_refused_under_the_id_rule() -> None:
    with pytest.raises(InvalidJob, match="full id of one"):
        validate.check_job_id("a b")


def test_invalid_job_is_a_value_error() -> None:
    assert issubclass(InvalidJob, ValueError)


@pytest.mark.parametrize("value", [1, 3, 10_000])
def test_max_attempts_in_range_pass(value: int) -> None:
    assert validate.check_max_attempts(value) == value


@pytest.mark.parametrize("value", [0, -1, 10_001, True, 2.0, "3", None])
def test_max_attempts_out_of_range_are_refused(value: Any) -> None:
    with pytest.raises(InvalidJob, match="max_attempts"):
        validate.check_max_attempts(value)


@pytest.mark.parametrize("value", [0, -5, 1.5, "1000", False])
def test_bad_timeouts_are_refused(value: Any) -> None:
    with pytest.raises(InvalidJob, match="timeout_ms"):
        validate.check_timeout_ms(value)


@pytest.mark.parametrize("value", ["fixed:0", "fixed:50", "exponential:1000:600000", "list:5", "list:10,20,30"])
def test_each_backoff_form_passes(value: str) -> None:
    assert validate.check_backoff(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "fixed", "fixed:", "fixed:x", "fixed:-1", "fixed: 5", "exponential:1", "exponential:1:2:3",
     "list:", "list:1,", "list:,1", "linear:5", "FIXED:5", "fixed:٣"],
)
def test_bad_backoffs_are_refused(value: str) -> None:
    with pytest.raises(InvalidJob, match="backoff"):
        validate.check_backoff(value)


def test_payloads_are_compact_utf8_json() -> None:
    assert validate.encode_payload({"to": "é", "n": [1, 2]}, 100) == '{"to":"é","n":[1,2]}'
    assert validate.encode_payload(None, 100) == "null"


@pytest.mark.parametrize(
    "payload", [{1, 2}, object(), float("nan"), float("inf"), {"s": "lone\udc00"}, {"lone\ud800": 1}], ids=repr
)
def test_payloads_that_are_not_json_are_refused(payload: Any) -> None:
    with pytest.raises(InvalidJob, match="payload"):
        validate.encode_payload(payload, 1000)


def test_the_payload_limit_counts_utf8_bytes() -> None:
    text = "é" * 4  # '"éééé"' is 10 bytes
    assert validate.encode_payload(text, 10) == '"éééé"'
    with pytest.raises(InvalidJob, match="at most 9 bytes"):
        validate.encode_payload(text, 9)


def test_the_default_payload_limit_is_512_kib(offline: Client) -> None:
    assert validate.DEFAULT_MAX_PAYLOAD_BYTES == 524_288
    with pytest.raises(InvalidJob, match="payload"):
        offline.enqueue("noop", "x" * 524_287)  # 524 289 bytes with its quotes


def test_max_payload_bytes_is_the_clients_limit() -> None:
    small = Client(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), max_payload_bytes=10)
    with pytest.raises(InvalidJob, match="payload"):
        small.enqueue("noop", "x" * 9)
    # Within the limit the check passes, and the write is what fails here.
    with pytest.raises(redis.ConnectionError):
        small.enqueue("noop", "x" * 8)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.enqueue("bad type"), "type"),
        (lambda c: c.enqueue("noop", queue="{q}"), "queue"),
        (lambda c: c.enqueue("noop", id="a\nb"), "id"),
        (lambda c: c.enqueue("noop", id="mail:1700000000000-0"), "id"),
        (lambda c: c.enqueue_in(5, "noop", id="a:b:0-1"), "id"),
        (lambda c: c.enqueue("noop", max_attempts=0), "max_attempts"),
        (lambda c: c.enqueue("noop", timeout_ms=0), "timeout_ms"),
        (lambda c: c.enqueue("noop", backoff="linear:5"), "backoff"),
        (lambda c: c.enqueue("noop", {1, 2}), "payload"),
        (lambda c: c.enqueue_in(-1, "noop"), "delay"),
        (lambda c: c.enqueue_in(float("nan"), "noop"), "delay"),
        (lambda c: c.enqueue_at(datetime(2030, 1, 1), "noop"), "when"),
        (lambda c: c.enqueue_at(-1, "noop"), "when"),
        (lambda c: c.enqueue_at("tomorrow", "noop"), "when"),
        (lambda c: c.enqueue_unique("a key", "noop"), "unique_key"),
        (lambda c: c.enqueue_unique("k", "noop", ttl=0), "ttl"),
        (lambda c: c.enqueue_unique("k", "noop", delay=timedelta(seconds=-1)), "delay"),
        (lambda c: c.enqueue("noop", expires_in_ms=0), "expires_in_ms"),
        (lambda c: c.enqueue("noop", id="own", expires_at_ms=0), "expires_at_ms"),
        (lambda c: c.enqueue_in(5, "noop", expires_in_ms=-1), "expires_in_ms"),
        (lambda c: c.enqueue_at(1_900_000_000_000, "noop", expires_at_ms=32_503_680_000_001), "expires_at_ms"),
        (lambda c: c.enqueue_unique("k", "noop", expires_in_ms=1.5), "expires_in_ms"),
        (lambda c: c.enqueue_debounced("k", "noop", delay=1, expires_at_ms="soon"), "expires_at_ms"),
        (lambda c: c.enqueue("noop", expires_in_ms=1000, expires_at_ms=1_900_000_000_000), "expires_at_ms"),
        (lambda c: c.enqueue("noop", group=""), "group"),
        (lambda c: c.enqueue("noop", group="a group"), "group"),
        (lambda c: c.enqueue("noop", group="a{b}"), "group"),
        (lambda c: c.enqueue("noop", group="x" * 257), "group"),
        (lambda c: c.enqueue_in(5, "noop", group="a group"), "group"),
        (lambda c: c.enqueue_at(1_900_000_000_000, "noop", group=""), "group"),
        (lambda c: c.enqueue_debounced("k", "noop", delay=1, group="a{b}"), "group"),
        (lambda c: c.enqueue_unique("k", "noop", group="a group"), "group"),
        (lambda c: c.status("x y"), "id"),
        (lambda c: c.status("1-0", queue=""), "queue"),
    ],
)
def test_the_client_refuses_before_writing(offline: Client, call: Any, field: str) -> None:
    with pytest.raises(InvalidJob) as refused:
        call(offline)
    assert refused.value.field == field


@pytest.mark.parametrize(
    "options",
    [{"namespace": "a{b}"}, {"max_payload_bytes": -1}, {"max_queue_len": 0}],
    ids=["namespace", "max_payload_bytes", "max_queue_len"],
)
def test_bad_client_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidJob):
        Client(redis.Redis(host="127.0.0.1", port=1), **options)


def test_delays_round_up_to_whole_milliseconds() -> None:
    assert validate.delay_ms("delay", 0) == 0
    assert validate.delay_ms("delay", 1.5) == 1500
    assert validate.delay_ms("delay", 0.0001) == 1, "never early"
    assert validate.delay_ms("delay", timedelta(minutes=2)) == 120_000


def test_run_times_are_ms_since_the_epoch() -> None:
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert validate.run_at_ms(when) == 1_893_456_000_000
    assert validate.run_at_ms(when.astimezone(timezone(timedelta(hours=5)))) == 1_893_456_000_000
    assert validate.run_at_ms(1_893_456_000_000) == 1_893_456_000_000


def test_unique_ttls_are_positive_milliseconds() -> None:
    assert validate.ttl_ms("ttl", 3600) == 3_600_000
    assert validate.ttl_ms("ttl", timedelta(seconds=0.0005)) == 1


@pytest.mark.parametrize("value", [0, -1, 1.5, "60000", True, None, 315_360_000_001])
def test_bad_expiries_in_ms_are_refused(value: Any) -> None:
    with pytest.raises(InvalidJob) as refused:
        validate.check_expires_in_ms(value)
    assert str(refused.value).startswith("invalid expires_in_ms: a whole number of milliseconds, at least 1")


@pytest.mark.parametrize("value", [0, -1, 32_503_680_000_001, 1.7e12, "1900000000000", False, None])
def test_bad_expiry_times_are_refused(value: Any) -> None:
    with pytest.raises(InvalidJob) as refused:
        validate.check_expires_at_ms(value)
    assert str(refused.value).startswith(
        "invalid expires_at_ms: whole milliseconds since the Unix epoch, from 1 to 32503680000000 (the year 3000)"
    )


def test_an_expiry_is_a_time_counted_from_the_clients_clock() -> None:
    now = 1_700_000_000_000
    assert validate.expiry_ms(None, None, now) is None, "no expiry: the job never expires"
    assert validate.expiry_ms(60_000, None, now) == 1_700_000_060_000
    assert validate.expiry_ms(None, 1_800_000_000_000, now) == 1_800_000_000_000
    assert validate.expiry_ms(None, 1, now) == 1, "a time already past is the caller's to give"
    assert validate.expiry_ms(None, validate.MAX_RUN_AT_MS, now) == validate.MAX_RUN_AT_MS
    assert validate.expiry_ms(validate.MAX_DURATION_MS, None, now) == now + validate.MAX_DURATION_MS


def test_an_expiry_may_not_end_after_the_year_3000() -> None:
    with pytest.raises(InvalidJob, match="not after the year 3000") as refused:
        validate.expiry_ms(2, None, validate.MAX_RUN_AT_MS - 1)
    assert refused.value.field == "expires_in_ms"
    assert validate.expiry_ms(1, None, validate.MAX_RUN_AT_MS - 1) == validate.MAX_RUN_AT_MS


def test_an_expiry_is_given_one_way_only() -> None:
    with pytest.raises(InvalidJob, match="not together with expires_in_ms") as refused:
        validate.expiry_ms(1000, 1_900_000_000_000, 1_700_000_000_000)
    assert refused.value.field == "expires_at_ms"

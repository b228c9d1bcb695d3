"""The protocol's checks on what a producer writes, made before writing so a bad job fails here, not in a worker."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime, timedelta

from .errors import InvalidJob
from .ids import names_entry

# Longest name (queue, job id, type, unique key), in UTF-8 bytes, as workers count it.
MAX_NAME_BYTES = 256

# Most attempts a job may have.
MAX_ATTEMPTS = 10_000

# The latest run time (3000-01-01T00:00:00Z) and the longest duration (ten years) a job may
# name, in ms: within them every script's arithmetic stays on whole numbers.
MAX_RUN_AT_MS = 32_503_680_000_000
MAX_DURATION_MS = 315_360_000_000
DURATION_RULE = "at most 315360000000 ms (ten years)"

# The payload limit workers apply by default (`limits.max_payload_bytes`, 512 KiB).
DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024

NAME_RULE = "1-256 printable characters without spaces, braces or control characters"
JOB_ID_RULE = (
    NAME_RULE + ", and not of the form <digits>-<digits> or <queue>:<digits>-<digits>: those are a "
    "stream entry id and the full id of one, which name the jobs that have no id of their own"
)
MAX_ATTEMPTS_RULE = f"a whole number from 1 to {MAX_ATTEMPTS}"
EXPIRES_AT_RULE = f"whole milliseconds since the Unix epoch, from 1 to {MAX_RUN_AT_MS} (the year 3000)"
BACKOFF_RULE = (
    "fixed:MS, exponential:BASE_MS:CAP_MS or list:MS,MS,... "
    "(whole milliseconds, each at most 315360000000: ten years)"
)

# Delays are whole milliseconds, digits only: exactly what every worker parses.
_MS = r"[0-9]{1,15}"
_BACKOFF_FORMS = (
    re.compile(rf"fixed:{_MS}"),
    re.compile(rf"exponential:{_MS}:{_MS}"),
    re.compile(rf"list:{_MS}(?:,{_MS})*"),
)


def _forbidden_in_name(char: str) -> bool:
    # Control characters could forge a log line, whitespace splits names in tools, and a
    # brace would break the Redis Cluster hash tag the name is put in. These are the
    # characters workers refuse, no more and no fewer.
    return char in "{}" or char.isspace() or unicodedata.category(char) == "Cc"


def check_name(field: str, value: object) -> str:
    """Checks a queue name, job id, job type or unique key."""
    if not isinstance(value, str) or not value:
        raise InvalidJob(field, NAME_RULE, value)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form, so it cannot be written at all.
        raise InvalidJob(field, NAME_RULE, value) from None
    if size > MAX_NAME_BYTES or any(_forbidden_in_name(c) for c in value):
        raise InvalidJob(field, NAME_RULE, value)
    return value


def check_job_id(value: object) -> str:
    """Checks the id a producer gives its job: a name that is neither of a stream entry
    id's form nor ends in `:<digits>-<digits>` (a full id's form, `<queue>:<entry id>`),
    since those name the jobs without an id of their own."""
    try:
        check_name("id", value)
    except InvalidJob:
        raise InvalidJob("id", JOB_ID_RULE, value) from None
    assert isinstance(value, str)
    if names_entry(value):
        raise InvalidJob("id", JOB_ID_RULE, value)
    return value


def _whole_number(value: object) -> int | None:
    # bool is an int to Python, but True attempts is a mistake, not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def check_max_attempts(value: object) -> int:
    number = _whole_number(value)
    if number is None or not 1 <= number <= MAX_ATTEMPTS:
        raise InvalidJob("max_attempts", MAX_ATTEMPTS_RULE, value)
    return number


def check_timeout_ms(value: object) -> int:
    """An attempt timeout. Zero is refused: there is no "no timeout", only a long one."""
    number = _whole_number(value)
    if number is None or not 1 <= number <= MAX_DURATION_MS:
        raise InvalidJob("timeout_ms", f"a whole number of milliseconds, at least 1 and {DURATION_RULE}", value)
    return number


def check_expires_in_ms(value: object) -> int:
    """How long from now a job may still start. Zero is refused: the job would expire as
    it is written."""
    number = _whole_number(value)
    if number is None or not 1 <= number <= MAX_DURATION_MS:
        raise InvalidJob("expires_in_ms", f"a whole number of milliseconds, at least 1 and {DURATION_RULE}", value)
    return number


def check_expires_at_ms(value: object) -> int:
    """When a job may no longer start. 0 is refused: the protocol reads it as "never"."""
    number = _whole_number(value)
    if number is None or not 1 <= number <= MAX_RUN_AT_MS:
        raise InvalidJob("expires_at_ms", EXPIRES_AT_RULE, value)
    return number


def expiry_ms(expires_in_ms: object, expires_at_ms: object, now_ms: int) -> int | None:
    """When a job may no longer start, ms since the Unix epoch: `expires_at_ms` as given,
    or `expires_in_ms` after `now_ms`; None when neither is given. Both at once are
    refused rather than one silently winning."""
    if expires_in_ms is not None and expires_at_ms is not None:
        raise InvalidJob("expires_at_ms", "not together with expires_in_ms: give one or the other")
    if expires_at_ms is not None:
        return check_expires_at_ms(expires_at_ms)
    if expires_in_ms is None:
        return None
    at = now_ms + check_expires_in_ms(expires_in_ms)
    if at > MAX_RUN_AT_MS:
        raise InvalidJob("expires_in_ms", f"an expiry not after the year 3000 ({MAX_RUN_AT_MS} ms)", expires_in_ms)
    return at


def check_backoff(value: object) -> str:
    """A retry policy in its wire form."""
    if not isinstance(value, str) or not any(form.fullmatch(value) for form in _BACKOFF_FORMS):
        raise InvalidJob("backoff", BACKOFF_RULE, value)
    if any(int(ms) > MAX_DURATION_MS for ms in re.findall(r"[0-9]+", value)):
        raise InvalidJob("backoff", BACKOFF_RULE, value)
    return value


def check_max_payload_bytes(value: object) -> int:
    number = _whole_number(value)
    if number is None or number < 0:
        raise InvalidJob("max_payload_bytes", "a whole number of bytes, 0 or more", value)
    return number


def check_max_queue_len(value: object) -> int:
    number = _whole_number(value)
    if number is None or number < 1:
        raise InvalidJob("max_queue_len", "a whole number of jobs, at least 1", value)
    return number


def encode_payload(payload: object, max_bytes: int) -> str:
    """A payload as the JSON text the job carries, checked as workers check it: valid JSON
    (no NaN or infinity), UTF-8 throughout (no lone surrogates) and within the limit."""
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise InvalidJob("payload", f"must be JSON-serializable: {e}") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidJob("payload", "text must be valid Unicode (a lone surrogate has no UTF-8 form)") from None
    if size > max_bytes:
        raise InvalidJob("payload", f"at most {max_bytes} bytes as JSON (UTF-8); it is {size}")
    return text


def _seconds(field: str, value: object) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidJob(field, "seconds (a number) or a datetime.timedelta", value)
    return float(value)


def delay_ms(field: str, value: object) -> int:
    """A delay in whole milliseconds, rounded up so a job never runs early."""
    seconds = _seconds(field, value)
    if seconds < 0 or seconds * 1000 > MAX_DURATION_MS:
        raise InvalidJob(field, f"a delay of 0 seconds or more, {DURATION_RULE}", value)
    return math.ceil(seconds * 1000)


def ttl_ms(field: str, value: object) -> int:
    """A lock's lifetime in whole milliseconds: at least 1."""
    seconds = _seconds(field, value)
    if seconds <= 0 or seconds * 1000 > MAX_DURATION_MS:
        raise InvalidJob(field, f"more than 0 seconds, {DURATION_RULE}", value)
    return max(1, math.ceil(seconds * 1000))


def run_at_ms(when: object) -> int:
    """A run time as milliseconds since the Unix epoch, from an aware datetime or a number
    of milliseconds."""
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise InvalidJob("when", "a timezone-aware datetime (a naive one has no single instant)", str(when))
        ms = math.floor(when.timestamp() * 1000)
    else:
        number = _whole_number(when)
        if number is None:
            raise InvalidJob("when", "an aware datetime or whole milliseconds since the Unix epoch", when)
        ms = number
    if ms < 0:
        raise InvalidJob("when", "not before 1970 (the Unix epoch)", str(when))
    if ms > MAX_RUN_AT_MS:
        raise InvalidJob("when", "not after the year 3000 (32503680000000 ms)", str(when))
    return ms

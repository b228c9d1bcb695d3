"""Flotilla's Python client: enqueue jobs on a Flotilla fleet over Redis Streams and read their results."""

from .batches import Batch, BatchCallback, BatchCounts, BatchJob, BatchMember, CallbackKind, batch_script_text
from .client import Client, Debounced, Unique
from .dependencies import Dependencies, ParentState
from .errors import FlotillaError, InvalidJob, QueueFull, WaitTimeout
from .flows import Enqueued, FlowJob, Parent, ParentRef, Policy, flow_script_text
from .ids import full_id, parse_full_id
from .keys import DEFAULT_QUEUE, Keys
from .script import DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS, script_text
from .status import TERMINAL_STATUSES, AttemptError, JobStatus
from .validate import DEFAULT_MAX_PAYLOAD_BYTES

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_QUEUE",
    "DEFAULT_TIMEOUT_MS",
    "TERMINAL_STATUSES",
    "AttemptError",
    "Batch",
    "BatchCallback",
    "BatchCounts",
    "BatchJob",
    "BatchMember",
    "CallbackKind",
    "Client",
    "Debounced",
    "Dependencies",
    "Enqueued",
    "FlotillaError",
    "FlowJob",
    "InvalidJob",
    "JobStatus",
    "Keys",
    "Parent",
    "ParentRef",
    "ParentState",
    "Policy",
    "QueueFull",
    "Unique",
    "WaitTimeout",
    "batch_script_text",
    "flow_script_text",
    "full_id",
    "parse_full_id",
    "script_text",
]

//! Integration tests: every test starts its own redis-server and its own workers.

mod api_schema;
mod browser;
mod chaos;
mod cli;
mod crash;
mod dashboard;
mod deploy;
mod examples;
mod fast_path;
mod handlers;
mod hardening;
mod interop;
mod lifecycle;
mod listing;
mod malformed;
mod observability;
mod ops;
mod prefetch;
mod priority;
mod reconcile;
mod resilience;
mod runbook;
mod scheduler;
mod util;

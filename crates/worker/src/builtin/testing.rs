//! Test handlers: `noop` does nothing, `sleep` waits `{"ms": N}`, `fail` fails its first
//! `{"times": N}` attempts (`-1`: always). The demo and benchmarks use them too.

use std::time::Duration;

use serde::Deserialize;

use crate::{HandlerError, JobContext, Registry};

#[derive(Deserialize)]
struct SleepArgs {
    ms: u64,
}

#[derive(Deserialize)]
struct FailArgs {
    times: i64,
}

pub(crate) fn register_test_handlers(registry: &mut Registry) {
    registry.register("noop", |_ctx: JobContext| async { Ok(None) });
    registry.register_fn("sleep", |args: SleepArgs, ctx: JobContext| async move {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.ms)) => {
                Ok(Some(serde_json::json!({ "slept_ms": args.ms })))
            }
            _ = ctx.cancel.cancelled() => Err(HandlerError::retry("sleep cancelled")),
        }
    });
    registry.register_fn("fail", |args: FailArgs, ctx: JobContext| async move {
        if args.times < 0 || i64::from(ctx.attempt) <= args.times {
            Err(HandlerError::retry(format!(
                "planned failure on attempt {}",
                ctx.attempt
            )))
        } else {
            Ok(Some(
                serde_json::json!({ "succeeded_on_attempt": ctx.attempt }),
            ))
        }
    });
}

//! What happens after a failure.

use crate::context::Context;
use crate::error::Error;
use crate::events::Level;
use crate::retry::Backoff;

/// Sleeps before a retry of `err`, or returns `err` when it is final or retries are spent.
pub(crate) async fn retry_wait(
    ctx: &Context,
    id: usize,
    backoff: &mut Backoff,
    err: Error,
) -> Result<(), Error> {
    let Some(delay) = backoff.next_delay(&err) else {
        return Err(err);
    };
    ctx.events.log(
        Some(id),
        Level::Info,
        format!(
            "{err}; retry {} in {:.1}s",
            backoff.failures(),
            delay.as_secs_f64()
        ),
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = ctx.shutdown.wait() => Err(Error::Interrupted),
    }
}

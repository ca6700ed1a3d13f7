//! `wait`: a future that resolves when the container reaches the asked condition.

use futures_util::future::BoxFuture;

use super::executor::{ExitStatus, WaitUntil};
use super::{ContainerError, Containers, Watch};

/// Resolves with the exit code once what `w` watches reaches `until` (the code it had when
/// asked if the container goes away first). Shared by the engine and its test double.
pub(super) fn wait_on(
    mut w: tokio::sync::watch::Receiver<Watch>,
    until: WaitUntil,
) -> BoxFuture<'static, ExitStatus> {
    let start = w.borrow().clone();
    Box::pin(async move {
        let done = |now: &Watch| match until {
            WaitUntil::NotRunning => !now.running,
            WaitUntil::NextExit => now.exits > start.exits || now.removed,
            WaitUntil::Removed => now.removed,
        };
        let code = w
            .wait_for(done)
            .await
            .map(|v| v.exit_code)
            .unwrap_or(start.exit_code);
        ExitStatus { code }
    })
}

impl Containers {
    pub async fn wait(
        &self,
        key: &str,
        until: WaitUntil,
    ) -> Result<BoxFuture<'static, ExitStatus>, ContainerError> {
        let c = self.get(key)?;
        Ok(wait_on(c.watch.subscribe(), until))
    }
}

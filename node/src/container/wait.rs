//! `wait`: a future that resolves when the container reaches the asked condition.

use futures_util::future::BoxFuture;

use super::executor::{ExitStatus, WaitUntil};
use super::{ContainerError, Containers, Watch};

impl Containers {
    pub async fn wait(
        &self,
        key: &str,
        until: WaitUntil,
    ) -> Result<BoxFuture<'static, ExitStatus>, ContainerError> {
        let c = self.get(key)?;
        let mut w = c.watch.subscribe();
        let start = w.borrow().clone();
        let fut = async move {
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
        };
        Ok(Box::pin(fut))
    }
}

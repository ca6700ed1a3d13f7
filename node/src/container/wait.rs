//! `wait`: a future that resolves when the container reaches the asked condition.

use super::{ContainerError, Containers, Watch};

impl Containers {
    pub async fn wait(
        &self,
        key: &str,
        cond: berth_api::backend::WaitCondition,
    ) -> Result<
        futures_util::future::BoxFuture<'static, berth_api::backend::WaitResult>,
        ContainerError,
    > {
        use berth_api::backend::{WaitCondition, WaitResult};
        let c = self.get(key)?;
        let mut w = c.watch.subscribe();
        let start = w.borrow().clone();
        let fut = async move {
            let done = |now: &Watch| match cond {
                WaitCondition::NotRunning => !now.running,
                WaitCondition::NextExit => now.exits > start.exits || now.removed,
                WaitCondition::Removed => now.removed,
            };
            let res = w
                .wait_for(done)
                .await
                .map(|v| v.exit_code)
                .unwrap_or(start.exit_code);
            WaitResult {
                status_code: res,
                error: None,
            }
        };
        Ok(Box::pin(fut))
    }
}

//! `berth_api::backend::ContainerBackend` for [`Containers`]: the API edge of the container
//! code. Requests (`berth_api::models`) become the engine's types here (`model.rs`), the
//! engine's answers become Docker's JSON here (and in `view.rs`), and errors become
//! `ApiError`s.

use async_trait::async_trait;
use berth_api::backend::*;
use berth_api::models::{ContainerCreateBody, ExecConfig, UpdateBody};
use berth_api::ApiResult;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::json;
use serde_json::Value;

use super::executor::{ContainerExecutor, RemoveOptions, StopOptions, WaitUntil};
use super::model::ContainerSpec;
use super::{net, Containers};

#[async_trait]
impl ContainerBackend for Containers {
    async fn create(&self, name: Option<String>, body: ContainerCreateBody) -> ApiResult<Value> {
        let ContainerCreateBody {
            config,
            host_config,
            networking_config,
        } = body;
        let spec = ContainerSpec {
            name,
            config: config.into(),
            host_config: host_config.into(),
            endpoints: net::requested_endpoints(networking_config.as_ref()),
        };
        let created = ContainerExecutor::create(self, spec).await?;
        Ok(json!({ "Id": created.id, "Warnings": created.warnings }))
    }
    async fn list(&self, opts: ListOptions) -> ApiResult<Vec<Value>> {
        Ok(Containers::list(self, opts).await?)
    }
    async fn inspect(&self, id: &str, size: bool) -> ApiResult<Value> {
        Ok(Containers::inspect(self, id, size).await?)
    }
    async fn start(&self, id: &str) -> ApiResult<()> {
        Ok(ContainerExecutor::start(self, id).await?)
    }
    async fn stop(&self, id: &str, timeout: Option<i64>, signal: Option<String>) -> ApiResult<()> {
        let opts = StopOptions {
            timeout_secs: timeout,
            signal,
        };
        Ok(ContainerExecutor::stop(self, id, opts).await?)
    }
    async fn restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> ApiResult<()> {
        Ok(Containers::restart(self, id, timeout, signal).await?)
    }
    async fn kill(&self, id: &str, signal: Option<String>) -> ApiResult<()> {
        Ok(ContainerExecutor::kill(self, id, signal).await?)
    }
    async fn pause(&self, id: &str) -> ApiResult<()> {
        Ok(Containers::pause(self, id).await?)
    }
    async fn unpause(&self, id: &str) -> ApiResult<()> {
        Ok(Containers::unpause(self, id).await?)
    }
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> ApiResult<BoxFuture<'static, WaitResult>> {
        let until = match condition {
            WaitCondition::NotRunning => WaitUntil::NotRunning,
            WaitCondition::NextExit => WaitUntil::NextExit,
            WaitCondition::Removed => WaitUntil::Removed,
        };
        let exit = ContainerExecutor::wait(self, id, until).await?;
        Ok(Box::pin(async move {
            WaitResult {
                status_code: exit.await.code,
                error: None,
            }
        }))
    }
    async fn remove(&self, id: &str, force: bool, volumes: bool) -> ApiResult<()> {
        Ok(ContainerExecutor::remove(self, id, RemoveOptions { force, volumes }).await?)
    }
    async fn remove_link(&self, name: &str) -> ApiResult<()> {
        Ok(Containers::remove_link(self, name).await?)
    }
    async fn logs(&self, id: &str, opts: LogOptions) -> ApiResult<ByteStream> {
        Ok(Containers::logs(self, id, opts).await?)
    }
    async fn attach(&self, id: &str, opts: AttachOptions) -> ApiResult<AttachHandle> {
        Ok(Containers::attach(self, id, opts).await?)
    }
    async fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()> {
        Ok(Containers::resize(self, id, height, width).await?)
    }
    async fn rename(&self, id: &str, new_name: &str) -> ApiResult<()> {
        Ok(Containers::rename(self, id, new_name).await?)
    }
    async fn update(&self, id: &str, body: UpdateBody) -> ApiResult<Value> {
        let warnings = Containers::update(self, id, body.into()).await?;
        Ok(json!({ "Warnings": warnings }))
    }
    async fn top(&self, id: &str, ps_args: Option<String>) -> ApiResult<Value> {
        Ok(Containers::top(self, id, ps_args).await?)
    }
    async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> ApiResult<BoxStream<'static, Value>> {
        Ok(Containers::stats(self, id, stream, one_shot).await?)
    }
    async fn changes(&self, id: &str) -> ApiResult<Value> {
        Ok(Containers::changes(self, id).await?)
    }
    async fn export(&self, id: &str) -> ApiResult<ByteStream> {
        Ok(Containers::export(self, id).await?)
    }
    async fn archive_stat(&self, id: &str, path: &str) -> ApiResult<PathStat> {
        Ok(Containers::archive_stat(self, id, path).await?)
    }
    async fn archive_get(&self, id: &str, path: &str) -> ApiResult<(PathStat, ByteStream)> {
        Ok(Containers::archive_get(self, id, path).await?)
    }
    async fn archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite: bool,
        copy_uid_gid: bool,
        body: BodyStream,
    ) -> ApiResult<()> {
        Ok(Containers::archive_put(self, id, path, no_overwrite, copy_uid_gid, body).await?)
    }
    async fn prune(&self, filters: Filters) -> ApiResult<Value> {
        let pruned = Containers::prune(self, filters).await?;
        let deleted = if pruned.deleted.is_empty() {
            Value::Null
        } else {
            json!(pruned.deleted)
        };
        Ok(json!({ "ContainersDeleted": deleted, "SpaceReclaimed": pruned.reclaimed }))
    }
    async fn exec_create(&self, id: &str, config: ExecConfig) -> ApiResult<String> {
        Ok(Containers::exec_create(self, id, config.into()).await?)
    }
    async fn exec_start(&self, exec_id: &str, detach: bool) -> ApiResult<AttachHandle> {
        Ok(Containers::exec_start(self, exec_id, detach).await?)
    }
    async fn exec_inspect(&self, exec_id: &str) -> ApiResult<Value> {
        Ok(Containers::exec_inspect(self, exec_id).await?)
    }
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> ApiResult<()> {
        Ok(Containers::exec_resize(self, exec_id, height, width).await?)
    }
}

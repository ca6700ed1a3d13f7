//! The router driven with `oneshot` against a fake backend: versions, headers, statuses,
//! body parsing and the streaming shapes the docker CLI depends on.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_api::backend::*;
use berth_api::models::{ContainerCreateBody, ExecConfig, UpdateBody};
use berth_api::{ApiError, ApiResult};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Records what it was asked; answers what the tests need.
#[derive(Default)]
struct FakeBackend {
    created: Mutex<Vec<(Option<String>, ContainerCreateBody)>>,
    wait_release: Mutex<Option<tokio::sync::oneshot::Receiver<i64>>>,
}

fn nope<T>() -> ApiResult<T> {
    Err(ApiError::not_found("No such container: x"))
}

#[async_trait]
impl ContainerBackend for FakeBackend {
    async fn create(&self, name: Option<String>, body: ContainerCreateBody) -> ApiResult<Value> {
        self.created.lock().expect("lock").push((name, body));
        Ok(json!({"Id": "abc", "Warnings": []}))
    }
    async fn list(&self, opts: ListOptions) -> ApiResult<Vec<Value>> {
        Ok(vec![json!({"all": opts.all, "filters": opts.filters})])
    }
    async fn inspect(&self, _: &str, _: bool) -> ApiResult<Value> {
        nope()
    }
    async fn start(&self, id: &str) -> ApiResult<()> {
        if id == "running" {
            Err(ApiError::not_modified())
        } else {
            Ok(())
        }
    }
    async fn stop(&self, _: &str, _: Option<i64>, _: Option<String>) -> ApiResult<()> {
        Ok(())
    }
    async fn restart(&self, _: &str, _: Option<i64>, _: Option<String>) -> ApiResult<()> {
        Ok(())
    }
    async fn kill(&self, _: &str, _: Option<String>) -> ApiResult<()> {
        Err(ApiError::conflict("Container x is not running"))
    }
    async fn pause(&self, _: &str) -> ApiResult<()> {
        Ok(())
    }
    async fn unpause(&self, _: &str) -> ApiResult<()> {
        Ok(())
    }
    async fn wait(&self, _: &str, _: WaitCondition) -> ApiResult<BoxFuture<'static, WaitResult>> {
        let rx = self
            .wait_release
            .lock()
            .expect("lock")
            .take()
            .expect("one wait per test");
        Ok(Box::pin(async move {
            WaitResult {
                status_code: rx.await.unwrap_or(-1),
                error: None,
            }
        }))
    }
    async fn remove(&self, _: &str, _: bool, _: bool) -> ApiResult<()> {
        Ok(())
    }
    async fn logs(&self, _: &str, _: LogOptions) -> ApiResult<ByteStream> {
        nope()
    }
    async fn attach(&self, _: &str, _: AttachOptions) -> ApiResult<AttachHandle> {
        nope()
    }
    async fn resize(&self, _: &str, _: u16, _: u16) -> ApiResult<()> {
        Ok(())
    }
    async fn rename(&self, _: &str, _: &str) -> ApiResult<()> {
        Ok(())
    }
    async fn update(&self, _: &str, _: UpdateBody) -> ApiResult<Value> {
        Ok(json!({"Warnings": []}))
    }
    async fn top(&self, id: &str, _: Option<String>) -> ApiResult<Value> {
        if id == "broken" {
            let cause = std::io::Error::other("read /proc/42/stat: no such process");
            return Err(ApiError::internal("cannot list processes").with_source(cause));
        }
        nope()
    }
    async fn stats(&self, _: &str, _: bool, _: bool) -> ApiResult<BoxStream<'static, Value>> {
        nope()
    }
    async fn changes(&self, _: &str) -> ApiResult<Value> {
        nope()
    }
    async fn export(&self, _: &str) -> ApiResult<ByteStream> {
        nope()
    }
    async fn archive_stat(&self, _: &str, _: &str) -> ApiResult<PathStat> {
        nope()
    }
    async fn archive_get(&self, _: &str, _: &str) -> ApiResult<(PathStat, ByteStream)> {
        nope()
    }
    async fn archive_put(
        &self,
        _: &str,
        _: &str,
        _: bool,
        _: bool,
        _: BodyStream,
    ) -> ApiResult<()> {
        nope()
    }
    async fn prune(&self, _: Filters) -> ApiResult<Value> {
        Ok(json!({"ContainersDeleted": null, "SpaceReclaimed": 0}))
    }
    async fn exec_create(&self, _: &str, _: ExecConfig) -> ApiResult<String> {
        Ok("e1".into())
    }
    async fn exec_start(&self, _: &str, _: bool) -> ApiResult<AttachHandle> {
        nope()
    }
    async fn exec_inspect(&self, _: &str) -> ApiResult<Value> {
        nope()
    }
    async fn exec_resize(&self, _: &str, _: u16, _: u16) -> ApiResult<()> {
        Ok(())
    }
}

#[async_trait]
impl ImageBackend for FakeBackend {
    async fn import(
        &self,
        _: ImportOptions,
        _: BodyStream,
    ) -> ApiResult<BoxStream<'static, Value>> {
        nope()
    }
    async fn load(&self, _: bool, _: BodyStream) -> ApiResult<BoxStream<'static, Value>> {
        nope()
    }
    async fn pull(
        &self,
        _: &str,
        _: Option<&str>,
        _: Option<&str>,
        _: Option<Value>,
    ) -> ApiResult<BoxStream<'static, Value>> {
        Ok(
            futures_util::stream::iter(vec![json!({"status": "one"}), json!({"status": "two"})])
                .boxed(),
        )
    }
    async fn push(
        &self,
        _: &str,
        _: Option<&str>,
        _: Option<Value>,
    ) -> ApiResult<BoxStream<'static, Value>> {
        nope()
    }
    async fn auth(&self, body: Value) -> ApiResult<Value> {
        if body["username"] == "u" && body["password"] == "p" {
            Ok(json!({"Status": "Login Succeeded"}))
        } else {
            Err(ApiError::new(
                berth_api::error::ErrorKind::Unauthorized,
                "unauthorized: incorrect username or password",
            ))
        }
    }
    async fn distribution(&self, name: &str, auth: Option<Value>) -> ApiResult<Value> {
        Ok(json!({"Name": name, "Auth": auth}))
    }
    async fn list(&self, _: bool, _: Filters, _: bool) -> ApiResult<Vec<Value>> {
        Ok(vec![])
    }
    async fn inspect(&self, name: &str) -> ApiResult<Value> {
        Ok(json!({"Name": name}))
    }
    async fn history(&self, _: &str) -> ApiResult<Value> {
        nope()
    }
    async fn tag(&self, _: &str, _: &str, _: Option<&str>) -> ApiResult<()> {
        Ok(())
    }
    async fn remove(&self, name: &str, _: bool, _: bool) -> ApiResult<Value> {
        Ok(json!([{"Untagged": name}]))
    }
    async fn save(&self, _: Vec<String>) -> ApiResult<ByteStream> {
        nope()
    }
    async fn prune(&self, _: Filters) -> ApiResult<Value> {
        nope()
    }
}

#[async_trait]
impl BuildBackend for FakeBackend {
    async fn build(
        &self,
        opts: BuildOptions,
        _: BodyStream,
    ) -> ApiResult<BoxStream<'static, Value>> {
        let line = json!({
            "dockerfile": opts.dockerfile,
            "tags": opts.tags,
            "args": opts.build_args,
            "labels": opts.labels,
            "target": opts.target,
            "network": opts.network_mode,
            "nocache": opts.no_cache,
            "q": opts.quiet,
            "hosts": opts.host.extra_hosts,
            "shm": opts.host.shm_size,
            "memory": opts.host.memory,
            "pull": opts.pull,
            "platform": opts.platform,
            "cachefrom": opts.cache_from,
            "regcfg": opts.registry_config,
        });
        Ok(futures_util::stream::iter([line]).boxed())
    }
    async fn prune(&self, all: bool, _: Filters) -> ApiResult<Value> {
        Ok(json!({"CachesDeleted": [], "SpaceReclaimed": 0, "all": all}))
    }
    async fn commit(&self, opts: CommitOptions) -> ApiResult<Value> {
        Ok(json!({
            "Id": opts.container,
            "repo": opts.repo,
            "pause": opts.pause,
            "changes": opts.changes,
            "config": opts.config,
        }))
    }
}

#[async_trait]
impl SystemBackend for FakeBackend {
    async fn info(&self) -> ApiResult<Value> {
        Ok(json!({"ID": "fake"}))
    }
    async fn version(&self) -> ApiResult<Value> {
        Ok(json!({"Version": "0", "Components": [{"Name": "Engine", "Details": {}}]}))
    }
    async fn events(
        &self,
        _: Option<f64>,
        _: Option<f64>,
        _: Filters,
    ) -> ApiResult<BoxStream<'static, Value>> {
        nope()
    }
    async fn df(&self) -> ApiResult<Value> {
        nope()
    }
}

#[async_trait]
impl NetworkBackend for FakeBackend {
    async fn list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        Ok(vec![json!({"Name": "bridge", "Filters": filters})])
    }
    async fn inspect(&self, id: &str) -> ApiResult<Value> {
        Err(ApiError::not_found(format!("network {id} not found")))
    }
    async fn create(&self, body: Value) -> ApiResult<Value> {
        Ok(json!({"Id": body["Name"], "Warning": ""}))
    }
    async fn remove(&self, _id: &str) -> ApiResult<()> {
        Err(ApiError::new(
            berth_api::ErrorKind::Forbidden,
            "bridge is a pre-defined network and cannot be removed",
        ))
    }
    async fn connect(&self, _id: &str, body: Value) -> ApiResult<()> {
        match body["Container"].as_str() {
            Some("c1") => Ok(()),
            _ => nope(),
        }
    }
    async fn disconnect(&self, _id: &str, _body: Value) -> ApiResult<()> {
        Ok(())
    }
    async fn prune(&self, _filters: Filters) -> ApiResult<Value> {
        Ok(json!({"NetworksDeleted": null}))
    }
}

fn app(fake: Arc<FakeBackend>) -> axum::Router {
    berth_api::router(Backends {
        containers: fake.clone(),
        images: fake.clone(),
        networks: fake.clone(),
        system: fake.clone(),
        volumes: fake.clone(),
        build: fake,
        swarm: Arc::new(berth_api::swarm::InactiveSwarm),
    })
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn ping_carries_negotiation_headers() {
    let app = app(Arc::default());
    let (st, h, body) = call(&app, "GET", "/_ping", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, "OK");
    assert_eq!(h["api-version"], "1.45");
    assert_eq!(h["ostype"], "linux");
    assert_eq!(h["docker-experimental"], "false");
    let (st, h, _) = call(&app, "HEAD", "/_ping", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["api-version"], "1.45");
}

#[tokio::test]
async fn versions_prefix_and_bounds() {
    let app = app(Arc::default());
    let (st, _, body) = call(&app, "GET", "/v1.41/version", "").await;
    assert_eq!(st, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["ApiVersion"], "1.45");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Components"][0]["Details"]["ApiVersion"], "1.45");
    let (st, h, body) = call(&app, "GET", "/v1.99/info", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(h["content-type"], "application/json");
    assert!(body.contains("client version 1.99 is too new. Maximum supported API version is 1.45"));
    let (st, _, _) = call(&app, "GET", "/v1.20/info", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, body) = call(&app, "GET", "/v1.45/nope", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body, r#"{"message":"page not found"}"#);
}

#[tokio::test]
async fn create_parses_body_and_name_and_rejects_bad_json() {
    let fake = Arc::new(FakeBackend::default());
    let app = app(fake.clone());
    let (st, _, body) = call(
        &app,
        "POST",
        "/v1.45/containers/create?name=web",
        r#"{"Image":"busybox","Cmd":["true"],"Unknown":1}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    {
        let created = fake.created.lock().expect("lock");
        assert_eq!(created[0].0.as_deref(), Some("web"));
        assert_eq!(created[0].1.config.cmd, vec!["true"]);
    }
    let (st, _, body) = call(&app, "POST", "/containers/create", "{broken").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with(r#"{"message":"invalid JSON body"#),
        "{body}"
    );
}

#[tokio::test]
async fn statuses_for_not_modified_conflict_and_filters() {
    let app = app(Arc::default());
    let (st, _, body) = call(&app, "POST", "/containers/running/start", "").await;
    assert_eq!(st, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(
        call(&app, "POST", "/containers/x/start", "").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, "POST", "/containers/x/kill", "").await.0,
        StatusCode::CONFLICT
    );
    let (_, _, body) = call(
        &app,
        "GET",
        "/containers/json?all=1&filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D",
        "",
    )
    .await;
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v[0]["all"], true);
    assert_eq!(v[0]["filters"]["status"][0], "exited");
    assert_eq!(
        call(&app, "GET", "/containers/json?filters=%7Bbad", "")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, "POST", "/containers/x/wait?condition=later", "")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn wait_sends_headers_before_the_condition_holds() {
    let fake = Arc::new(FakeBackend::default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    *fake.wait_release.lock().expect("lock") = Some(rx);
    let app = app(fake);
    let req = Request::builder()
        .method("POST")
        .uri("/containers/x/wait?condition=next-exit")
        .body(Body::empty())
        .expect("req");
    // The response (status and headers) arrives while the container is still "running".
    let resp = tokio::time::timeout(std::time::Duration::from_secs(2), app.oneshot(req))
        .await
        .expect("headers at once")
        .expect("resp");
    assert_eq!(resp.status(), StatusCode::OK);
    tx.send(137).expect("release");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"{\"Error\":null,\"StatusCode\":137}\n");
}

#[tokio::test]
async fn image_names_with_slashes_and_json_streams() {
    let app = app(Arc::default());
    let (st, _, body) = call(&app, "GET", "/v1.45/images/127.0.0.1:5000/bb:1/json", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, r#"{"Name":"127.0.0.1:5000/bb:1"}"#);
    let (st, _, body) = call(&app, "DELETE", "/images/a/b/c", "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("a/b/c"));
    let (st, _, body) = call(&app, "POST", "/images/create?fromImage=busybox&tag=1", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, "{\"status\":\"one\"}\n{\"status\":\"two\"}\n");
}

#[tokio::test]
async fn network_routes() {
    let app = app(Arc::default());
    let (st, _, body) = call(
        &app,
        "POST",
        "/v1.45/networks/create",
        r#"{"Name":"n1","Driver":"bridge","IPAM":{"Config":[]}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(body, r#"{"Id":"n1","Warning":""}"#);
    let (st, _, _) = call(&app, "POST", "/networks/create", "{nope").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = call(&app, "POST", "/networks/create", "[1]").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, body) = call(
        &app,
        "GET",
        "/networks?filters=%7B%22name%22%3A%7B%22n1%22%3Atrue%7D%7D",
        "",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains(r#""name":["n1"]"#), "{body}");
    let (st, _, _) = call(&app, "GET", "/networks/zz", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = call(&app, "DELETE", "/networks/bridge", "").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = call(
        &app,
        "POST",
        "/networks/n1/connect",
        r#"{"Container":"c1"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = call(
        &app,
        "POST",
        "/networks/n1/connect",
        r#"{"Container":"c2"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, body) = call(&app, "POST", "/networks/prune", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, r#"{"NetworksDeleted":null}"#);
}

#[async_trait]
impl VolumeBackend for FakeBackend {
    async fn create(&self, body: berth_api::models::VolumeCreateBody) -> ApiResult<Value> {
        if body.name == "bad/name" {
            return Err(ApiError::invalid(
                "create bad/name: includes invalid characters",
            ));
        }
        Ok(
            json!({"Name": body.name, "Driver": body.driver, "Options": body.driver_opts, "Labels": body.labels}),
        )
    }
    async fn list(&self, filters: Filters) -> ApiResult<Value> {
        Ok(json!({"Volumes": [{"Name": "v1", "filters": filters}], "Warnings": null}))
    }
    async fn inspect(&self, name: &str) -> ApiResult<Value> {
        Err(ApiError::not_found(format!("get {name}: no such volume")))
    }
    async fn remove(&self, name: &str, force: bool) -> ApiResult<()> {
        match (name, force) {
            ("busy", _) => Err(ApiError::conflict("remove busy: volume is in use - [abc]")),
            (_, true) => Ok(()),
            _ => Err(ApiError::not_found(format!("get {name}: no such volume"))),
        }
    }
    async fn prune(&self, filters: Filters, scope: PruneScope) -> ApiResult<Value> {
        Ok(json!({"VolumesDeleted": null, "SpaceReclaimed": 0,
                  "scope": format!("{scope:?}"), "filters": filters}))
    }
}

#[tokio::test]
async fn volume_routes_statuses_and_prune_scope() {
    let fake = Arc::new(FakeBackend::default());
    let app = app(fake);
    let (st, _, body) = call(
        &app,
        "POST",
        "/v1.41/volumes/create",
        r#"{"Name":"v1","Driver":"local","DriverOpts":{"type":"tmpfs"},"Labels":null}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["Options"]["type"], "tmpfs");
    let (st, _, _) = call(&app, "POST", "/volumes/create", r#"{"Name":"bad/name"}"#).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = call(&app, "POST", "/volumes/create", "{not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, body) = call(
        &app,
        "GET",
        "/v1.45/volumes?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D",
        "",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["Volumes"][0]["filters"]["dangling"], json!(["true"]));
    assert!(v["Warnings"].is_null());
    let (st, _, body) = call(&app, "GET", "/volumes/nope", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.contains("get nope: no such volume"));
    let (st, _, body) = call(&app, "DELETE", "/volumes/busy", "").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("volume is in use"));
    let (st, _, _) = call(&app, "DELETE", "/volumes/gone?force=1", "").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = call(&app, "DELETE", "/volumes/gone", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Since 1.42 prune takes only anonymous volumes, unless all=true; older clients all.
    let scope = |body: &str| -> String {
        let v: Value = serde_json::from_str(body).expect("json");
        v["scope"].as_str().unwrap_or("").to_owned()
    };
    let (st, _, body) = call(&app, "POST", "/v1.45/volumes/prune", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(scope(&body), "Anonymous");
    let (_, _, body) = call(
        &app,
        "POST",
        "/v1.45/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%2C%22label%22%3A%5B%22a%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(scope(&body), "All");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["filters"]["label"], json!(["a"]));
    assert!(v["filters"].get("all").is_none());
    let (_, _, body) = call(&app, "POST", "/v1.41/volumes/prune", "").await;
    assert_eq!(scope(&body), "All");
    let (st, _, _) = call(
        &app,
        "POST",
        "/volumes/prune?filters=%7B%22all%22%3A%5B%22maybe%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn auth_and_distribution_routes() {
    let app = app(Arc::default());
    let (st, _, body) = call(
        &app,
        "POST",
        "/v1.41/auth",
        r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, r#"{"Status":"Login Succeeded"}"#);
    let (st, _, body) = call(&app, "POST", "/auth", r#"{"username":"u","password":"x"}"#).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body.contains("incorrect username"), "{body}");
    let (st, _, _) = call(&app, "POST", "/auth", "not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let req = Request::builder()
        .method("GET")
        .uri("/v1.41/distribution/127.0.0.1:5000/bb:1/json")
        .header("X-Registry-Auth", "eyJ1c2VybmFtZSI6InUifQ==")
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(v["Name"], "127.0.0.1:5000/bb:1");
    assert_eq!(v["Auth"]["username"], "u");
    let (st, _, _) = call(&app, "GET", "/distribution/bb", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn build_parses_its_query_and_refuses_buildkit() {
    let app = app(Arc::default());
    let uri = "/v1.41/build?dockerfile=sub%2FDf&t=a%3A1&t=b&version=1&nocache=1&q=1\
               &buildargs=%7B%22A%22%3A%22x%22%2C%22B%22%3Anull%7D&labels=%7B%22l%22%3A%22v%22%7D\
               &target=st&networkmode=host&extrahosts=a%3A1.2.3.4&extrahosts=gw%3Ahost-gateway\
               &shmsize=1048576&memory=0&pull=1&platform=linux%2Famd64\
               &cachefrom=%5B%22c%3A1%22%2C%22d%22%5D";
    let (st, _, body) = call(&app, "POST", uri, "").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(body.trim()).expect("json");
    assert_eq!(v["dockerfile"], "sub/Df");
    assert_eq!(v["tags"], json!(["a:1", "b"]));
    assert_eq!(v["args"], json!({"A": "x", "B": null}));
    assert_eq!(v["labels"], json!({"l": "v"}));
    assert_eq!(v["target"], "st");
    assert_eq!(v["network"], "host");
    assert_eq!(
        (v["nocache"].clone(), v["q"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(v["hosts"], json!(["a:1.2.3.4", "gw:host-gateway"]));
    assert_eq!(
        (v["shm"].clone(), v["memory"].clone()),
        (json!(1048576), json!(0))
    );
    assert_eq!(
        (v["pull"].clone(), v["platform"].clone()),
        (json!(true), json!("linux/amd64"))
    );
    assert_eq!(v["cachefrom"], json!(["c:1", "d"]));
    assert_eq!(v["regcfg"], Value::Null);
    // The CLI's X-Registry-Config (base64url JSON) reaches the backend for FROM pulls.
    let req = Request::builder()
        .method("POST")
        .uri("/build")
        .header(
            "X-Registry-Config",
            "eyIxMjcuMC4wLjE6NTAwMCI6eyJ1c2VybmFtZSI6InUifX0=",
        )
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(bytes.trim_ascii()).expect("json");
    assert_eq!(v["regcfg"], json!({"127.0.0.1:5000": {"username": "u"}}));
    for bad in [
        "shmsize=-1",
        "cachefrom=nope",
        "ulimits=%5B1%5D",
        "memory=x",
    ] {
        let (st, _, body) = call(&app, "POST", &format!("/build?{bad}"), "").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    let (st, _, body) = call(&app, "POST", "/build?version=2", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("BuildKit"), "{body}");
    let (st, _, body) = call(&app, "POST", "/build?buildargs=nope", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(body.contains("buildargs"), "{body}");
    let (st, _, body) = call(&app, "POST", "/build/prune?all=1", "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("\"all\":true"), "{body}");
}

#[tokio::test]
async fn commit_parses_params_and_body() {
    let app = app(Arc::default());
    let (st, _, body) = call(
        &app,
        "POST",
        "/commit?container=c1&repo=r&pause=0&changes=CMD%20x&changes=ENV%20A%3Db",
        r#"{"Cmd":["y"]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["Id"], "c1");
    assert_eq!(v["pause"], false);
    assert_eq!(v["changes"], json!(["CMD x", "ENV A=b"]));
    assert_eq!(v["config"]["Cmd"], json!(["y"]));
    let (st, _, _) = call(&app, "POST", "/commit?repo=r", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

const NOT_A_MANAGER: &str = "{\"message\":\"This node is not a swarm manager. Use \\\"docker swarm init\\\" or \\\"docker swarm join\\\" to connect this node to swarm and try again.\"}";

/// Every cluster route Docker defines, by method, as a node in no swarm answers it: 503 with
/// dockerd's body, bare and under a version prefix.
#[tokio::test]
async fn cluster_routes_outside_a_swarm_answer_503_not_a_manager() {
    let app = app(Arc::new(FakeBackend::default()));
    let routes = [
        ("GET", "/swarm", ""),
        ("POST", "/swarm/update?version=1", "{}"),
        ("GET", "/swarm/unlockkey", ""),
        ("POST", "/swarm/unlock", r#"{"UnlockKey":"SWMKEY-1-x"}"#),
        ("GET", "/nodes", ""),
        (
            "GET",
            "/nodes?filters=%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D",
            "",
        ),
        ("GET", "/nodes/self", ""),
        ("DELETE", "/nodes/n1?force=1", ""),
        (
            "POST",
            "/nodes/n1/update?version=3",
            r#"{"Availability":"drain"}"#,
        ),
        ("GET", "/services?status=true", ""),
        ("POST", "/services/create", r#"{"Name":"web"}"#),
        ("GET", "/services/web?insertDefaults=true", ""),
        ("DELETE", "/services/web", ""),
        (
            "POST",
            "/services/web/update?version=7",
            r#"{"Name":"web"}"#,
        ),
        ("GET", "/services/web/logs?stdout=1&stderr=1", ""),
        ("GET", "/tasks", ""),
        ("GET", "/tasks/t1", ""),
        ("GET", "/tasks/t1/logs?stdout=1", ""),
        ("GET", "/secrets", ""),
        ("POST", "/secrets/create", r#"{"Name":"s","Data":"aGk="}"#),
        ("GET", "/secrets/s", ""),
        ("DELETE", "/secrets/s", ""),
        ("POST", "/secrets/s/update?version=2", r#"{"Name":"s"}"#),
        ("GET", "/configs", ""),
        ("POST", "/configs/create", r#"{"Name":"c","Data":"aGk="}"#),
        ("GET", "/configs/c", ""),
        ("DELETE", "/configs/c", ""),
        ("POST", "/configs/c/update?version=2", r#"{"Name":"c"}"#),
    ];
    for (method, path, body) in routes {
        for prefix in ["", "/v1.41", "/v1.24"] {
            let uri = format!("{prefix}{path}");
            let (st, h, out) = call(&app, method, &uri, body).await;
            assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}: {out}");
            assert_eq!(out, NOT_A_MANAGER, "{method} {uri}");
            assert_eq!(h["content-type"], "application/json", "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn swarm_leave_init_and_join_outside_a_swarm() {
    let app = app(Arc::new(FakeBackend::default()));
    for uri in ["/swarm/leave", "/v1.41/swarm/leave?force=1"] {
        let (st, _, out) = call(&app, "POST", uri, "").await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(out, r#"{"message":"This node is not part of a swarm"}"#);
    }
    let init =
        r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"","ForceNewCluster":false,"Spec":{}}"#;
    let (st, _, out) = call(&app, "POST", "/v1.41/swarm/init", init).await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        out,
        r#"{"message":"swarm init is not implemented yet in berth"}"#
    );
    let join =
        r#"{"ListenAddr":"0.0.0.0:2377","RemoteAddrs":["10.0.0.1:2377"],"JoinToken":"SWMTKN-1-x"}"#;
    let (st, _, out) = call(&app, "POST", "/swarm/join", join).await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        out,
        r#"{"message":"swarm join is not implemented yet in berth"}"#
    );
    // A malformed body is the client's mistake, whatever the node's state.
    let (st, _, out) = call(&app, "POST", "/swarm/init", "{not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{out}");
}

/// As in dockerd, an update without a usable `version` is refused before the cluster is
/// asked, and methods Docker does not define stay 405.
#[tokio::test]
async fn cluster_updates_need_a_version_and_unknown_methods_are_405() {
    let app = app(Arc::new(FakeBackend::default()));
    for (uri, what) in [
        ("/swarm/update", "swarm"),
        ("/nodes/n1/update?version=x", "node"),
        ("/services/web/update", "service"),
        ("/secrets/s/update?version=-1", "secret"),
        ("/configs/c/update", "config"),
    ] {
        let (st, _, out) = call(&app, "POST", uri, "{}").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{uri}: {out}");
        assert!(
            out.contains(&format!("invalid {what} version")),
            "{uri}: {out}"
        );
    }
    let (st, _, _) = call(&app, "PUT", "/services/web", "").await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    let (st, _, _) = call(&app, "DELETE", "/tasks/t1", "").await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn info_and_ping_report_the_swarm_backends_state() {
    let app = app(Arc::new(FakeBackend::default()));
    let (st, h, _) = call(&app, "HEAD", "/_ping", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["swarm"], "inactive");
    let (st, _, out) = call(&app, "GET", "/v1.41/info", "").await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let v: Value = serde_json::from_str(&out).expect("info json");
    assert_eq!(
        v["Swarm"],
        json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null})
    );
}

/// A `MakeWriter` that keeps what the test subscriber writes.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn internal_errors_are_logged_with_their_cause_and_answered_unchanged() {
    let logs = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded: the handler runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = app(Arc::default());

    let (st, _, body) = call(&app, "GET", "/v1.45/containers/broken/top", "").await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, r#"{"message":"cannot list processes"}"#);
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("internal error"))
        .unwrap_or_else(|| panic!("no error logged: {text:?}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("method=GET"), "{line}");
    assert!(line.contains("path=/v1.45/containers/broken/top"), "{line}");
    assert!(
        line.contains("cannot list processes: read /proc/42/stat: no such process"),
        "{line}"
    );

    // An error that is the client's is not logged.
    let (st, _, _) = call(&app, "GET", "/containers/other/top", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let errors = logs.text().lines().filter(|l| l.contains("ERROR")).count();
    assert_eq!(errors, 1, "{}", logs.text());
}

/// A load that fails is a 200 with the error in the stream, as dockerd answers (the SDKs
/// raise `ImageLoadError` from it).
#[tokio::test]
async fn failed_load_reports_in_the_stream() {
    let app = app(Arc::default());
    let (st, _, body) = call(&app, "POST", "/v1.41/images/load", "not a tar").await;
    assert_eq!(st, StatusCode::OK);
    let v: Value = serde_json::from_str(body.trim()).expect("one JSON line");
    assert!(v["error"].is_string(), "{body}");
    assert_eq!(v["errorDetail"]["message"], v["error"]);
}

//! The container record in the `containers` table of metadata.redb, and its format versions.
//!
//! A record is stored as JSON: the fields of [`Record`] plus `"version"`. Versions:
//!
//! | version | what it is |
//! |---|---|
//! | none (0) | written by berthd before records had versions: `Config`/`HostConfig` are the API's own models (`berth_api::models`) serialised as they were then |
//! | 1 | the engine's model (`model.rs`); the same field names, so a v0 record's JSON carries over unchanged. Later additions are optional fields an older berthd ignores: `State.health` |
//!
//! At start every record is read with the code of its version and migrated to the current
//! one, and the migrated records are written back in one transaction
//! ([`load_and_migrate`]), so a data root is never read as a format it is not. A record of a
//! version newer than [`RECORD_VERSION`] stops the start with an error naming it.

use berth_api::models as api;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{ContainerConfig, HostConfig};
use super::ContainerError;
use crate::store::{BatchOp, MetaStore, Table};

/// The `containers` table: container id → record.
pub(super) const CONTAINERS: Table = Table::new("containers");

/// The record format this berthd writes.
pub const RECORD_VERSION: u32 = 1;

/// `State` of a container as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// created, running, paused, restarting, removing, exited, dead
    pub status: String,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    /// `State.Health` of a container with a healthcheck (`health.rs`); absent in records
    /// written before healthchecks, read as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

/// What is stored of a container; everything else is derived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub image_id: String,
    pub state: State,
    pub restart_count: i64,
    /// Set by an explicit stop, cleared by start: `unless-stopped` and daemon-restart
    /// behaviour depend on it.
    pub manually_stopped: bool,
    /// Name of the runtime (`berth` = built-in) that runs it.
    pub runtime: String,
    /// Networks by name: what was asked and, while running, the address each gave.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, crate::network::Endpoint>,
    /// Ports published on the host while running.
    #[serde(default)]
    pub ports: Vec<crate::network::PortMapping>,
    /// Binds, volumes and `--mount` tmpfs, resolved at create.
    #[serde(default)]
    pub mounts: Vec<super::mounts::MountPoint>,
    /// The container of a build's RUN step: its build removes it, and a restart removes it
    /// if berthd died mid-build (`leftovers.rs`).
    #[serde(default)]
    pub build: bool,
    /// Legacy links to other containers (`--link`), by their ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<super::links::Link>,
}

/// A record as written: its fields and its format version.
#[derive(Serialize)]
struct Versioned<'a> {
    version: u32,
    #[serde(flatten)]
    record: &'a Record,
}

/// The bytes stored for a record.
pub(super) fn encode(rec: &Record) -> Result<BatchOp, ContainerError> {
    let stored = Versioned {
        version: RECORD_VERSION,
        record: rec,
    };
    Ok(BatchOp::put(CONTAINERS, &rec.id, &stored)?)
}

/// Writes one record.
pub(super) fn write(meta: &MetaStore, rec: &Record) -> Result<(), ContainerError> {
    Ok(meta.batch(vec![encode(rec)?])?)
}

/// A record before versions: the API's models where the engine's now are.
#[derive(Deserialize)]
struct RecordV0 {
    id: String,
    name: String,
    created: String,
    path: String,
    args: Vec<String>,
    config: api::ContainerConfig,
    host_config: api::HostConfig,
    image_id: String,
    state: State,
    restart_count: i64,
    manually_stopped: bool,
    runtime: String,
    #[serde(default)]
    networks: std::collections::BTreeMap<String, crate::network::Endpoint>,
    #[serde(default)]
    ports: Vec<crate::network::PortMapping>,
    #[serde(default)]
    mounts: Vec<super::mounts::MountPoint>,
    #[serde(default)]
    build: bool,
}

impl From<RecordV0> for Record {
    fn from(r: RecordV0) -> Self {
        let RecordV0 {
            id,
            name,
            created,
            path,
            args,
            config,
            host_config,
            image_id,
            state,
            restart_count,
            manually_stopped,
            runtime,
            networks,
            ports,
            mounts,
            build,
        } = r;
        Record {
            id,
            name,
            created,
            path,
            args,
            config: ContainerConfig::from(config),
            host_config: HostConfig::from(host_config),
            image_id,
            state,
            restart_count,
            manually_stopped,
            runtime,
            networks,
            ports,
            mounts,
            build,
            links: Vec::new(),
        }
    }
}

/// Reads one stored record with the code of its version; says whether it was migrated.
pub(super) fn decode(key: &str, mut stored: Value) -> Result<(Record, bool), ContainerError> {
    let version = match stored.as_object_mut().and_then(|o| o.remove("version")) {
        None => 0,
        Some(v) => match v.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(v) => v,
            None => {
                return Err(ContainerError::RecordVersion {
                    id: key.to_owned(),
                    found: v.to_string(),
                })
            }
        },
    };
    let bad = |source| ContainerError::RecordDecode {
        id: key.to_owned(),
        version,
        source,
    };
    match version {
        0 => {
            let old: RecordV0 = serde_json::from_value(stored).map_err(bad)?;
            Ok((old.into(), true))
        }
        RECORD_VERSION => Ok((serde_json::from_value(stored).map_err(bad)?, false)),
        newer => Err(ContainerError::RecordVersion {
            id: key.to_owned(),
            found: newer.to_string(),
        }),
    }
}

/// Every container record, migrated to [`RECORD_VERSION`]; the migrated ones are written
/// back in one transaction before anything else reads them.
pub(super) fn load_and_migrate(meta: &MetaStore) -> Result<Vec<Record>, ContainerError> {
    let stored: Vec<(String, Value)> = meta.list(CONTAINERS)?;
    let mut records = Vec::with_capacity(stored.len());
    let mut rewrites = Vec::new();
    for (key, value) in stored {
        let (rec, migrated) = decode(&key, value)?;
        if migrated {
            rewrites.push(encode(&rec)?);
        }
        records.push(rec);
    }
    if !rewrites.is_empty() {
        tracing::info!(
            records = rewrites.len(),
            version = RECORD_VERSION,
            "migrated container records"
        );
        meta.batch(rewrites)?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `containers` table of a data root written by berthd before records had versions
    /// (main at 1be93cb: plain, renamed, every create option the CLI has, tty, host network
    /// with `--rm` and the local log driver, an exited run, a stopped restart policy). Made
    /// by `dump_containers_table` below.
    const V0: &str = include_str!("../../tests/fixtures/containers-v0.json");

    fn v0_rows() -> Vec<(String, Value)> {
        serde_json::from_str(V0).expect("fixture parses")
    }

    /// A temporary data root, removed when dropped (a failing test leaves nothing either).
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_store() -> (TempDir, MetaStore) {
        let dir =
            std::env::temp_dir().join(format!("berth-records-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let meta = MetaStore::open(&dir.join("metadata.redb")).expect("open store");
        (TempDir(dir), meta)
    }

    #[test]
    fn unversioned_records_migrate_to_what_was_written() {
        let rows = v0_rows();
        assert!(rows.len() >= 6, "the fixture holds the captured containers");
        for (key, written) in rows {
            let (rec, migrated) = decode(&key, written.clone()).expect("v0 reads");
            assert!(migrated, "{key}: an unversioned record is migrated");
            assert_eq!(rec.id, key);
            // Read back, the record is what the old berthd wrote, field for field.
            let mut now = serde_json::to_value(Versioned {
                version: RECORD_VERSION,
                record: &rec,
            })
            .expect("encodes");
            assert_eq!(now["version"], RECORD_VERSION);
            now.as_object_mut().expect("object").remove("version");
            assert_eq!(
                now, written,
                "{key}: migrated record differs from what was written"
            );
        }
    }

    #[test]
    fn the_captured_options_survive_migration() {
        let rows = v0_rows();
        let by_name = |name: &str| {
            rows.iter()
                .map(|(k, v)| decode(k, v.clone()).expect("reads").0)
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("{name} in the fixture"))
        };
        let rich = by_name("rich");
        assert_eq!(rich.config.user, "web");
        assert_eq!(rich.config.working_dir, "/srv");
        assert!(rich.config.env.contains(&"B=two".to_owned()));
        assert_eq!(
            rich.config.labels.get("team").map(String::as_str),
            Some("core")
        );
        assert_eq!(rich.host_config.restart_policy.name, "on-failure");
        assert_eq!(rich.host_config.restart_policy.maximum_retry_count, 3);
        assert_eq!(rich.host_config.memory, 64 << 20);
        assert_eq!(rich.host_config.pids_limit, Some(50));
        assert_eq!(rich.host_config.init, Some(true));
        assert!(rich.config.healthcheck.is_some());
        let aliases = &rich
            .networks
            .get("backnet")
            .expect("backnet endpoint")
            .aliases;
        assert!(aliases.contains(&"web1".to_owned()) && aliases.contains(&"web2".to_owned()));
        assert!(
            rich.mounts.len() >= 4,
            "volume, bind, tmpfs and anonymous mounts"
        );
        let ran = by_name("ran");
        assert_eq!(ran.state.status, "exited");
        assert_eq!(ran.state.exit_code, 7);
        assert!(by_name("renamed").config.cmd == vec!["true".to_owned()]);
    }

    #[test]
    fn start_migrates_a_data_root_once_and_in_place() {
        let (dir, meta) = temp_store();
        let rows = v0_rows();
        let ops = rows
            .iter()
            .map(|(k, v)| BatchOp::put(CONTAINERS, k, v).expect("put"))
            .collect();
        meta.batch(ops).expect("write the old table");
        let first = load_and_migrate(&meta).expect("migrates");
        let stored: Vec<(String, Value)> = meta.list(CONTAINERS).expect("list");
        assert_eq!(stored.len(), rows.len());
        for ((key, now), (_, before)) in stored.iter().zip(&rows) {
            assert_eq!(now["version"], RECORD_VERSION, "{key} rewritten as current");
            let mut now = now.clone();
            now.as_object_mut().expect("object").remove("version");
            assert_eq!(&now, before, "{key}: content unchanged by the rewrite");
        }
        // A second start reads current records and rewrites nothing.
        let second = load_and_migrate(&meta).expect("reads");
        assert_eq!(first, second);
        for (key, v) in meta.list::<Value>(CONTAINERS).expect("list") {
            assert!(
                !decode(&key, v).expect("reads").1,
                "{key} needs no migration"
            );
        }
        drop(meta);
        drop(dir);
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let (key, mut v) = v0_rows().remove(0);
        v["version"] = serde_json::json!(RECORD_VERSION + 1);
        let err = decode(&key, v).expect_err("refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&key) && msg.contains(&(RECORD_VERSION + 1).to_string()),
            "{msg}"
        );
        assert!(msg.contains("newer"), "{msg}");
        let (key, mut v) = v0_rows().remove(0);
        v["version"] = serde_json::json!("one");
        assert!(decode(&key, v).is_err());
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_default() {
        let (key, mut v) = v0_rows().remove(0);
        v["config"] = serde_json::json!("not an object");
        let err = decode(&key, v).expect_err("refused");
        assert!(err.to_string().contains(&key), "{err}");
    }

    /// Regenerates the fixture: `BERTH_DUMP_REDB=<data-root>/metadata.redb cargo test
    /// --workspace --lib dump_containers_table -- --ignored` (with that berthd stopped)
    /// prints the `containers` table as the JSON of `V0`.
    #[test]
    #[ignore = "a tool for making the fixture, not a test"]
    fn dump_containers_table() {
        let path = std::env::var("BERTH_DUMP_REDB").expect("BERTH_DUMP_REDB");
        let meta = MetaStore::open(std::path::Path::new(&path)).expect("open");
        let rows: Vec<(String, Value)> = meta.list(CONTAINERS).expect("list");
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    }
}

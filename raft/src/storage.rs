//! Raft's durable state in one redb file: the log, the vote, the committed pointer and the
//! latest snapshot. The state machine itself lives in memory and is rebuilt at start from the
//! snapshot plus the committed log after it.
//!
//! ```text
//!  raft.redb   log:  index → Entry (JSON)
//!              meta: "vote" · "committed" · "purged" · "snapshot" (JSON)
//! ```
//! Durability: `append` and `save_vote` commit with `Durability::Immediate` (fsync) before the
//! entries are reported flushed, so a write acknowledged by a quorum survives `kill -9` of
//! every member. The committed pointer is written without a sync of its own; it rides on the
//! next synced commit, and a stale one only means a few entries are re-applied from the log.

// openraft's trait methods return its `StorageError` (224 bytes); the helpers here share it.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::state::{Outcome, State};
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote,
};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Opens (creating) the Raft database at `path`.
pub fn open(path: &Path) -> Result<(LogStore, StateMachine), redb::Error> {
    let db = Arc::new(Database::create(path)?);
    let tx = db.begin_write()?;
    tx.open_table(LOG)?;
    tx.open_table(META)?;
    tx.commit()?;
    let log = LogStore { db: db.clone() };
    let sm = StateMachine::load(db)?;
    Ok((log, sm))
}

fn io<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write(&e).into()
}

fn read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read(&e).into()
}

fn get_meta<T: for<'de> Deserialize<'de>>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, StorageError> {
    let tx = db.begin_read().map_err(read_err)?;
    let table = tx.open_table(META).map_err(read_err)?;
    let Some(v) = table.get(key).map_err(read_err)? else {
        return Ok(None);
    };
    serde_json::from_slice(v.value())
        .map(Some)
        .map_err(read_err)
}

fn put_meta<T: Serialize>(
    db: &Database,
    key: &str,
    value: &T,
    durability: Durability,
) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(value).map_err(io)?;
    let mut tx = db.begin_write().map_err(io)?;
    tx.set_durability(durability).map_err(io)?;
    {
        let mut table = tx.open_table(META).map_err(io)?;
        table.insert(key, bytes.as_slice()).map_err(io)?;
    }
    tx.commit().map_err(io)
}

/// The log, vote and committed pointer.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let tx = self.db.begin_read().map_err(read_err)?;
        let table = tx.open_table(LOG).map_err(read_err)?;
        let mut out = Vec::new();
        for row in table.range(range).map_err(read_err)? {
            let (_, v) = row.map_err(read_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let purged: Option<LogId> = get_meta(&self.db, "purged")?;
        let tx = self.db.begin_read().map_err(read_err)?;
        let table = tx.open_table(LOG).map_err(read_err)?;
        let last = match table.last().map_err(read_err)? {
            Some((_, v)) => {
                let e: Entry = serde_json::from_slice(v.value()).map_err(read_err)?;
                Some(e.log_id)
            }
            None => purged,
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        put_meta(&self.db, "vote", vote, Durability::Immediate)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        get_meta(&self.db, "vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        put_meta(&self.db, "committed", &committed, Durability::None)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(get_meta::<Option<LogId>>(&self.db, "committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut table = tx.open_table(LOG).map_err(io)?;
            for e in entries {
                let bytes = serde_json::to_vec(&e).map_err(io)?;
                table.insert(e.log_id.index, bytes.as_slice()).map_err(io)?;
            }
        }
        let res = tx.commit().map_err(std::io::Error::other);
        let failed = res.as_ref().err().map(io_copy);
        callback.log_io_completed(res);
        match failed {
            Some(e) => Err(io(e)),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut table = tx.open_table(LOG).map_err(io)?;
            table.retain_in(log_id.index.., |_, _| false).map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(&Some(log_id)).map_err(io)?;
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut meta = tx.open_table(META).map_err(io)?;
            meta.insert("purged", bytes.as_slice()).map_err(io)?;
            let mut table = tx.open_table(LOG).map_err(io)?;
            table.retain_in(..=log_id.index, |_, _| false).map_err(io)?;
        }
        tx.commit().map_err(io)
    }
}

fn io_copy(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

/// A snapshot as stored and sent: the state and where it stands in the log.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine: [`State`] in memory behind a lock shared with readers.
pub struct StateMachine {
    db: Arc<Database>,
    pub state: Arc<RwLock<State>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// Bumped after every applied batch; the API side waits on it (read-your-writes).
    applied_tx: tokio::sync::watch::Sender<u64>,
}

impl StateMachine {
    fn load(db: Arc<Database>) -> Result<StateMachine, redb::Error> {
        let (applied_tx, _) = tokio::sync::watch::channel(0);
        let mut sm = StateMachine {
            db,
            state: Arc::default(),
            applied: None,
            membership: StoredMembership::default(),
            applied_tx,
        };
        let snap: Option<StoredSnapshot> = get_meta(&sm.db, "snapshot")
            .map_err(|e| redb::Error::Io(std::io::Error::other(e.to_string())))?;
        if let Some(s) = snap {
            let state: State = serde_json::from_slice(&s.data)
                .map_err(|e| redb::Error::Io(std::io::Error::other(e)))?;
            *sm.state.write().unwrap_or_else(|p| p.into_inner()) = state;
            sm.applied = s.meta.last_log_id;
            sm.membership = s.meta.last_membership;
        }
        Ok(sm)
    }

    /// Wakes on every applied batch with the last applied index.
    pub fn applied_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    fn snapshot_now(&self) -> Result<Snapshot, StorageError> {
        let data = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*state).map_err(read_err)?
        };
        let id = match self.applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, rand::random::<u32>()),
            None => format!("0-0-{}", rand::random::<u32>()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        put_meta(&self.db, "snapshot", &stored, Durability::Immediate)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Builds snapshots from a copy of the state taken under the lock.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    state: Arc<RwLock<State>>,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (applied_tx, _) = tokio::sync::watch::channel(0);
        let sm = StateMachine {
            db: self.db.clone(),
            state: self.state.clone(),
            applied: self.applied,
            membership: self.membership.clone(),
            applied_tx,
        };
        sm.snapshot_now()
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for e in entries {
                self.applied = Some(e.log_id);
                match e.payload {
                    EntryPayload::Blank => out.push(Outcome::Unchanged),
                    EntryPayload::Normal(cmd) => out.push(state.apply(e.log_id.index, &cmd)),
                    EntryPayload::Membership(m) => {
                        self.membership = StoredMembership::new(Some(e.log_id), m);
                        out.push(Outcome::Unchanged);
                    }
                }
            }
        }
        if let Some(l) = self.applied {
            self.applied_tx.send_replace(l.index);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            state: Arc::new(RwLock::new(
                self.state.read().unwrap_or_else(|p| p.into_inner()).clone(),
            )),
            applied: self.applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state: State = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        put_meta(&self.db, "snapshot", &stored, Durability::Immediate)?;
        tracing::info!(index = ?meta.last_log_id.map(|l| l.index), "installed a raft snapshot from the leader");
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        if let Some(l) = self.applied {
            self.applied_tx.send_replace(l.index);
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let snap: Option<StoredSnapshot> = get_meta(&self.db, "snapshot")?;
        Ok(snap.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Builder;

    impl openraft::testing::StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir>
        for Builder
    {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().map_err(io)?;
            let (log, sm) = open(&dir.path().join("raft.redb")).map_err(io)?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn passes_openraft_storage_suite() -> Result<(), StorageError> {
        openraft::testing::Suite::test_all(Builder)
    }
}

//! Raft's durable state in one redb file: the log, the vote, the committed pointer and the
//! latest snapshot. The state machine itself lives in memory and is rebuilt at start from the
//! snapshot plus the committed log after it.
//!
//! ```text
//!  raft.redb   log:  index → sealed Entry (JSON)
//!              meta: "format" · "vote" · "committed" · "purged" · "snapshot" (sealed state)
//! ```
//! **Encryption at rest**: log entries and the snapshot's state are sealed with the node's
//! data-encryption key (ChaCha20-Poly1305, [`crate::ca::seal()`]); secrets and configs are in
//! both. Vote, committed pointer and membership are not secret and stay plain. A file without
//! the `format` marker (written before encryption) is sealed in place when opened.
//!
//! **Group commit**: the log lives in memory as well (bounded by log compaction), so readers
//! never wait for the disk; every write goes, in call order, to one writer thread that commits
//! all queued writes in one redb transaction with a single fsync (`Durability::Immediate`)
//! and only then reports appended entries flushed to openraft. Under concurrent clients many
//! appends share one fsync; a write acknowledged by a quorum still survives `kill -9` of every
//! member. `save_vote` waits for its own sync. The committed pointer is written without a sync
//! of its own; a stale one only means a few entries are re-applied from the log.

// openraft's trait methods return its `StorageError` (224 bytes); the helpers here share it.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{mpsc, Arc, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ca::{self as seal, UnlockKey};
use crate::state::{Outcome, State};
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote,
};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The on-disk format this code writes: 1 = entries and snapshot sealed.
const FORMAT: u32 = 1;

/// Most queued writes folded into one transaction.
const MAX_BATCH: usize = 4096;

/// Opens (creating) the Raft database at `path`; `data_key` seals the log and snapshots.
pub fn open(path: &Path, data_key: &UnlockKey) -> Result<(LogStore, StateMachine), redb::Error> {
    let db = Arc::new(open_db(path)?);
    let tx = db.begin_write()?;
    tx.open_table(LOG)?;
    tx.open_table(META)?;
    tx.commit()?;
    seal_legacy(&db, data_key)?;
    let log = LogStore::load(db.clone(), data_key.clone())?;
    let sm = StateMachine::load(db, data_key.clone())?;
    Ok((log, sm))
}

/// redb refuses a file another handle still has open; the writer thread of a Raft that was
/// just shut down lets go of it within a moment.
fn open_db(path: &Path) -> Result<Database, redb::Error> {
    let mut tries = 0;
    loop {
        match Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
            other => return Ok(other?),
        }
    }
}

fn io<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write(&e).into()
}

fn read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read(&e).into()
}

fn redb_io(e: impl std::fmt::Display) -> redb::Error {
    redb::Error::Io(std::io::Error::other(e.to_string()))
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

fn seal_entry(key: &UnlockKey, e: &Entry) -> Result<Vec<u8>, serde_json::Error> {
    Ok(seal::seal(key, &serde_json::to_vec(e)?))
}

fn open_entry(key: &UnlockKey, sealed: &[u8]) -> Result<Entry, std::io::Error> {
    let plain = seal::open(key, sealed).map_err(std::io::Error::other)?;
    serde_json::from_slice(&plain).map_err(std::io::Error::other)
}

/// Seals, in one transaction, the entries and snapshot of a file written before encryption
/// (no `format` marker); marks the file as sealed.
fn seal_legacy(db: &Database, key: &UnlockKey) -> Result<(), redb::Error> {
    let format: Option<u32> = get_meta(db, "format").map_err(redb_io)?;
    match format {
        Some(FORMAT) => return Ok(()),
        Some(other) => {
            return Err(redb_io(format!(
                "raft data format {other} is newer than this berthd understands ({FORMAT})"
            )))
        }
        None => {}
    }
    let tx = db.begin_write()?;
    {
        let mut log = tx.open_table(LOG)?;
        let mut rows = Vec::new();
        for row in log.iter()? {
            let (k, v) = row?;
            rows.push((k.value(), v.value().to_vec()));
        }
        for (index, plain) in rows {
            log.insert(index, seal::seal(key, &plain).as_slice())?;
        }
        let mut meta = tx.open_table(META)?;
        let snap = meta.get("snapshot")?.map(|v| v.value().to_vec());
        if let Some(bytes) = snap {
            let mut s: StoredSnapshot = serde_json::from_slice(&bytes).map_err(redb_io)?;
            s.data = seal::seal(key, &s.data);
            let bytes = serde_json::to_vec(&s).map_err(redb_io)?;
            meta.insert("snapshot", bytes.as_slice())?;
        }
        let marker = serde_json::to_vec(&FORMAT).map_err(redb_io)?;
        meta.insert("format", marker.as_slice())?;
    }
    tx.commit()?;
    Ok(())
}

/// The log as readers see it: what was appended and not truncated or purged, whether or not
/// the writer thread has made it durable yet.
#[derive(Default)]
struct Mem {
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
}

/// One write for the writer thread, done in the order it was queued.
enum Write {
    Append(Vec<(u64, Vec<u8>)>, LogFlushed<TypeConfig>),
    Truncate(u64),
    Purge(LogId),
    Meta {
        key: &'static str,
        value: Vec<u8>,
        /// `Some`: synced, and the caller waits for it.
        done: Option<tokio::sync::oneshot::Sender<std::io::Result<()>>>,
    },
}

impl Write {
    fn needs_sync(&self) -> bool {
        match self {
            Write::Append(..) => true,
            Write::Meta { done, .. } => done.is_some(),
            Write::Truncate(_) | Write::Purge(_) => false,
        }
    }
}

/// The log, vote and committed pointer.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    key: UnlockKey,
    mem: Arc<RwLock<Mem>>,
    writer: mpsc::Sender<Write>,
}

impl LogStore {
    fn load(db: Arc<Database>, key: UnlockKey) -> Result<LogStore, redb::Error> {
        let mut mem = Mem {
            purged: get_meta(&db, "purged").map_err(redb_io)?,
            ..Mem::default()
        };
        {
            let tx = db.begin_read()?;
            let table = tx.open_table(LOG)?;
            for row in table.iter()? {
                let (k, v) = row?;
                let entry = open_entry(&key, v.value()).map_err(|e| {
                    redb_io(format!(
                        "raft log entry {}: cannot unseal it with this node's data key: {e}",
                        k.value()
                    ))
                })?;
                mem.entries.insert(k.value(), entry);
            }
        }
        let (tx, rx) = mpsc::channel();
        let thread_db = db.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_loop(&thread_db, &rx))
            .map_err(redb::Error::Io)?;
        Ok(LogStore {
            db,
            key,
            mem: Arc::new(RwLock::new(mem)),
            writer: tx,
        })
    }

    fn mem(&self) -> std::sync::RwLockReadGuard<'_, Mem> {
        self.mem.read().unwrap_or_else(|p| p.into_inner())
    }

    fn mem_mut(&self) -> std::sync::RwLockWriteGuard<'_, Mem> {
        self.mem.write().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self, w: Write) -> Result<(), StorageError> {
        self.writer
            .send(w)
            .map_err(|_| io(std::io::Error::other("the raft log writer has stopped")))
    }

    async fn put_meta_synced<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), StorageError> {
        let value = serde_json::to_vec(value).map_err(io)?;
        let (done, wait) = tokio::sync::oneshot::channel();
        self.queue(Write::Meta {
            key,
            value,
            done: Some(done),
        })?;
        match wait.await {
            Ok(res) => res.map_err(io),
            Err(_) => Err(io(std::io::Error::other("the raft log writer has stopped"))),
        }
    }
}

/// The writer thread: takes every write queued so far, commits them in one transaction (one
/// fsync when any of them must be durable), then reports each one done.
fn write_loop(db: &Database, rx: &mpsc::Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let res = commit_batch(db, &batch);
        if let Err(e) = &res {
            tracing::error!(error = %e, "raft log write failed");
        }
        for w in batch {
            let res = match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            };
            match w {
                Write::Append(_, flushed) => flushed.log_io_completed(res),
                Write::Meta { done: Some(d), .. } => {
                    let _ = d.send(res);
                }
                Write::Meta { done: None, .. } | Write::Truncate(_) | Write::Purge(_) => {}
            }
        }
    }
}

fn commit_batch(db: &Database, batch: &[Write]) -> std::io::Result<()> {
    let mut tx = db.begin_write().map_err(std::io::Error::other)?;
    let sync = batch.iter().any(Write::needs_sync);
    tx.set_durability(if sync {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(std::io::Error::other)?;
    {
        let mut log = tx.open_table(LOG).map_err(std::io::Error::other)?;
        let mut meta = tx.open_table(META).map_err(std::io::Error::other)?;
        for w in batch {
            match w {
                Write::Append(rows, _) => {
                    for (index, bytes) in rows {
                        log.insert(*index, bytes.as_slice())
                            .map_err(std::io::Error::other)?;
                    }
                }
                Write::Truncate(from) => {
                    log.retain_in(*from.., |_, _| false)
                        .map_err(std::io::Error::other)?;
                }
                Write::Purge(upto) => {
                    let bytes = serde_json::to_vec(&Some(*upto)).map_err(std::io::Error::other)?;
                    meta.insert("purged", bytes.as_slice())
                        .map_err(std::io::Error::other)?;
                    log.retain_in(..=upto.index, |_, _| false)
                        .map_err(std::io::Error::other)?;
                }
                Write::Meta { key, value, .. } => {
                    meta.insert(*key, value.as_slice())
                        .map_err(std::io::Error::other)?;
                }
            }
        }
    }
    tx.commit().map_err(std::io::Error::other)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .mem()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem();
        let last = match mem.entries.last_key_value() {
            Some((_, e)) => Some(e.log_id),
            None => mem.purged,
        };
        Ok(LogState {
            last_purged_log_id: mem.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta_synced("vote", vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        get_meta(&self.db, "vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let value = serde_json::to_vec(&committed).map_err(io)?;
        self.queue(Write::Meta {
            key: "committed",
            value,
            done: None,
        })
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
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut rows = Vec::with_capacity(entries.len());
        for e in &entries {
            rows.push((e.log_id.index, seal_entry(&self.key, e).map_err(io)?));
        }
        {
            let mut mem = self.mem_mut();
            for e in entries {
                mem.entries.insert(e.log_id.index, e);
            }
        }
        self.queue(Write::Append(rows, callback))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mem_mut().entries.split_off(&log_id.index);
        self.queue(Write::Truncate(log_id.index))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut mem = self.mem_mut();
            mem.entries = mem.entries.split_off(&(log_id.index + 1));
            mem.purged = Some(log_id);
        }
        self.queue(Write::Purge(log_id))
    }
}

/// A snapshot as stored and sent: the state and where it stands in the log.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// Writes the snapshot with its state sealed, synced.
fn store_snapshot(
    db: &Database,
    key: &UnlockKey,
    meta: &SnapshotMeta,
    data: &[u8],
) -> Result<(), StorageError> {
    let stored = StoredSnapshot {
        meta: meta.clone(),
        data: seal::seal(key, data),
    };
    put_meta(db, "snapshot", &stored, Durability::Immediate)
}

/// The stored snapshot with its state unsealed.
fn stored_snapshot(db: &Database, key: &UnlockKey) -> Result<Option<StoredSnapshot>, StorageError> {
    let Some(mut s) = get_meta::<StoredSnapshot>(db, "snapshot")? else {
        return Ok(None);
    };
    s.data = seal::open(key, &s.data).map_err(read_err)?;
    Ok(Some(s))
}

/// The state machine: [`State`] in memory behind a lock shared with readers.
pub struct StateMachine {
    db: Arc<Database>,
    key: UnlockKey,
    pub state: Arc<RwLock<State>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// Bumped after every applied batch; the API side waits on it (read-your-writes).
    applied_tx: tokio::sync::watch::Sender<u64>,
}

impl StateMachine {
    fn load(db: Arc<Database>, key: UnlockKey) -> Result<StateMachine, redb::Error> {
        let (applied_tx, _) = tokio::sync::watch::channel(0);
        let mut sm = StateMachine {
            db,
            key,
            state: Arc::default(),
            applied: None,
            membership: StoredMembership::default(),
            applied_tx,
        };
        let snap = stored_snapshot(&sm.db, &sm.key).map_err(redb_io)?;
        if let Some(s) = snap {
            let state: State = serde_json::from_slice(&s.data).map_err(redb_io)?;
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
        store_snapshot(&self.db, &self.key, &meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Builds snapshots from a copy of the state taken under the lock.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    key: UnlockKey,
    state: Arc<RwLock<State>>,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (applied_tx, _) = tokio::sync::watch::channel(0);
        let sm = StateMachine {
            db: self.db.clone(),
            key: self.key.clone(),
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
            key: self.key.clone(),
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
        store_snapshot(&self.db, &self.key, meta, &data)?;
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
        let snap = stored_snapshot(&self.db, &self.key)?;
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
            let key = UnlockKey::generate();
            let (log, sm) = open(&dir.path().join("raft.redb"), &key).map_err(io)?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn passes_openraft_storage_suite() -> Result<(), StorageError> {
        openraft::testing::Suite::test_all(Builder)
    }
}

#[cfg(test)]
mod sealing_tests {
    use super::*;
    use crate::state::{Command, Op};

    fn entry(index: u64, marker: &str) -> Entry {
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Command {
                at: marker.to_string(),
                op: Op::RemoveData {
                    kind: crate::objects::DataKind::Secret,
                    id: marker.to_string(),
                },
            }),
        }
    }

    /// A file written before encryption is sealed in place at open and reads back the same.
    #[tokio::test]
    async fn legacy_plain_log_is_sealed_at_open() {
        let dir = tempfile::tempdir().expect("test");
        let path = dir.path().join("raft.redb");
        let marker = "plain-secret-name-4711";
        {
            let db = Database::create(&path).expect("test");
            let tx = db.begin_write().expect("test");
            {
                let mut log = tx.open_table(LOG).expect("test");
                for i in 1..=3 {
                    let bytes = serde_json::to_vec(&entry(i, marker)).expect("test");
                    log.insert(i, bytes.as_slice()).expect("test");
                }
                tx.open_table(META).expect("test");
            }
            tx.commit().expect("test");
        }
        let key = UnlockKey::generate();
        let (mut log, _sm) = open(&path, &key).expect("test");
        let read = log.try_get_log_entries(1..=3).await.expect("test");
        assert_eq!(
            read,
            vec![entry(1, marker), entry(2, marker), entry(3, marker)]
        );
        {
            let tx = log.db.begin_read().expect("test");
            let table = tx.open_table(LOG).expect("test");
            for row in table.iter().expect("test") {
                let (_, v) = row.expect("test");
                assert!(serde_json::from_slice::<Entry>(v.value()).is_err());
                assert!(open_entry(&key, v.value()).is_ok());
            }
        }
        drop(log);
        drop(_sm);
        // A wrong key cannot read the log: an error, never a silent misread.
        let err = match open(&path, &UnlockKey::generate()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened with the wrong key"),
        };
        assert!(err.contains("cannot unseal"), "{err}");
    }

    /// Truncate and purge are seen by readers at once, and survive a reopen.
    #[tokio::test]
    async fn truncate_and_purge_reach_the_disk() {
        let dir = tempfile::tempdir().expect("test");
        let path = dir.path().join("raft.redb");
        let key = UnlockKey::generate();
        {
            let db = Database::create(&path).expect("test");
            let tx = db.begin_write().expect("test");
            {
                let mut log = tx.open_table(LOG).expect("test");
                for i in 1..=10 {
                    log.insert(
                        i,
                        seal_entry(&key, &entry(i, "x")).expect("test").as_slice(),
                    )
                    .expect("test");
                }
                let mut meta = tx.open_table(META).expect("test");
                meta.insert(
                    "format",
                    serde_json::to_vec(&FORMAT).expect("test").as_slice(),
                )
                .expect("test");
            }
            tx.commit().expect("test");
        }
        {
            let (mut log, _sm) = open(&path, &key).expect("test");
            log.truncate(entry(8, "x").log_id).await.expect("test");
            log.purge(entry(3, "x").log_id).await.expect("test");
            let left: Vec<u64> = log
                .try_get_log_entries(0..100)
                .await
                .expect("test")
                .iter()
                .map(|e| e.log_id.index)
                .collect();
            assert_eq!(left, vec![4, 5, 6, 7]);
            // A synced write after them flushes the queue in order.
            log.save_vote(&Vote::new(2, 1)).await.expect("test");
        }
        let (mut log, _sm) = open(&path, &key).expect("test");
        let state = log.get_log_state().await.expect("test");
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(3));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(7));
        assert_eq!(log.read_vote().await.expect("test"), Some(Vote::new(2, 1)));
    }
}

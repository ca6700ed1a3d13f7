//! The local metadata index: one redb file (`<data-root>/metadata.redb`) holding image refs,
//! image records, containers and names, each as a table of JSON values keyed by string.
//!
//! Every write is one ACID transaction, durable when `put`/`delete` returns, so what the API
//! acknowledged survives `kill -9` of berthd.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A table of JSON values keyed by string.
pub type Table = TableDefinition<'static, &'static str, &'static [u8]>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store {path}: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("metadata store: {0}")]
    Db(String),
    #[error("metadata record {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

pub struct MetaStore {
    db: Database,
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(MetaStore { db })
    }

    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(db_err)?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table).map_err(db_err)?;
            t.insert(key, bytes.as_slice()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Applies several puts and deletes, across tables, in one transaction.
    pub fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        for op in ops {
            match op {
                BatchOp::Put(table, key, bytes) => {
                    let mut t = tx.open_table(table).map_err(db_err)?;
                    t.insert(key.as_str(), bytes.as_slice()).map_err(db_err)?;
                }
                BatchOp::Delete(table, key) => {
                    let mut t = tx.open_table(table).map_err(db_err)?;
                    t.remove(key.as_str()).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = match tx.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        match t.get(key).map_err(db_err)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|source| StoreError::Decode {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    pub fn delete(&self, table: Table, key: &str) -> Result<(), StoreError> {
        self.batch(vec![BatchOp::Delete(table, key.to_owned())])
    }

    /// Every (key, value) of a table, in key order.
    pub fn list<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = match tx.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let key = k.value().to_owned();
            let value = serde_json::from_slice(v.value()).map_err(|source| StoreError::Decode {
                key: key.clone(),
                source,
            })?;
            out.push((key, value));
        }
        Ok(out)
    }
}

pub enum BatchOp {
    Put(Table, String, Vec<u8>),
    Delete(Table, String),
}

impl BatchOp {
    pub fn put<T: Serialize>(table: Table, key: &str, value: &T) -> Result<Self, StoreError> {
        Ok(BatchOp::Put(
            table,
            key.to_owned(),
            serde_json::to_vec(value).map_err(db_err)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Table = TableDefinition::new("t");
    const U: Table = TableDefinition::new("u");

    #[test]
    fn put_get_list_delete_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = MetaStore::open(&dir.path().join("m.redb")).expect("open");
        assert_eq!(s.get::<String>(T, "a").expect("get"), None);
        s.put(T, "a", &"x".to_string()).expect("put");
        s.batch(vec![
            BatchOp::put(T, "b", &"y".to_string()).expect("op"),
            BatchOp::put(U, "c", &"z".to_string()).expect("op"),
            BatchOp::Delete(T, "a".into()),
        ])
        .expect("batch");
        let all: Vec<(String, String)> = s.list(T).expect("list");
        assert_eq!(all, vec![("b".to_string(), "y".to_string())]);
        assert_eq!(s.get::<String>(U, "c").expect("get"), Some("z".into()));
    }
}

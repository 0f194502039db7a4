//! The local state store of one changelogged partition: entity id → state bytes, on disk
//! (redb), so that RAM stays bounded by the cache size however many entities there are.
//!
//! The store is a cache of the changelog topic, never the truth: it is rebuilt from the
//! changelog whenever its partition is assigned, and only committed batches are written to it.
//! It therefore needs no durability of its own (commits skip fsync).

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const ENTITIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("entities");

/// A store failed: the disk is full or unreadable.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StoreError {
    path: String,
    message: String,
}

/// One partition's entity states.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Commits since the last durable one: redb reclaims pages only at durable commits.
    since_durable: u32,
}

/// Every this many commits one is made durable, so that the file does not grow unboundedly.
const DURABLE_EVERY: u32 = 64;

impl Store {
    /// Creates an empty store at `path` (an earlier file there is discarded), caching at most
    /// `cache_bytes` in memory.
    pub fn create(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let error = |e: &dyn std::fmt::Display| StoreError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| error(&e))?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(&e)),
        }
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| error(&e))?;
        let store = Store {
            db,
            path: path.to_owned(),
            since_durable: 0,
        };
        // Create the table, so that reads of an empty store find it.
        store.write_batch(std::iter::empty(), true)?;
        Ok(store)
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// The state of `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(ENTITIES).map_err(|e| self.error(e))?;
        let value = table.get(key).map_err(|e| self.error(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Number of entities held.
    pub fn len(&self) -> Result<u64, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(ENTITIES).map_err(|e| self.error(e))?;
        table.len().map_err(|e| self.error(e))
    }

    /// Whether the store holds no entity.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Writes committed changes: a value sets the key, `None` deletes it.
    pub fn apply<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<(), StoreError> {
        self.since_durable += 1;
        let durable = self.since_durable >= DURABLE_EVERY;
        if durable {
            self.since_durable = 0;
        }
        self.write_batch(changes, durable)
    }

    fn write_batch<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut write = self.db.begin_write().map_err(|e| self.error(e))?;
        if !durable {
            write
                .set_durability(Durability::None)
                .map_err(|e| self.error(e))?;
        }
        {
            let mut table = write.open_table(ENTITIES).map_err(|e| self.error(e))?;
            for (key, value) in changes {
                match value {
                    Some(value) => table.insert(key, value).map(drop),
                    None => table.remove(key).map(drop),
                }
                .map_err(|e| self.error(e))?;
            }
        }
        write.commit().map_err(|e| self.error(e))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A store outlives nothing: the next assignment rebuilds it from the changelog.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_sets_and_deletes_and_starts_empty() {
        let dir = std::env::temp_dir().join(format!("store-test-{}", std::process::id()));
        let path = dir.join("p0.redb");
        let mut store = Store::create(&path, 1 << 20).expect("store");
        assert!(store.is_empty().expect("len"));
        for round in 0..(DURABLE_EVERY * 2) {
            let value = round.to_be_bytes();
            store
                .apply([("a", Some(&value[..])), ("b", Some(&b"x"[..]))])
                .expect("apply");
        }
        store.apply([("b", None)]).expect("delete");
        assert_eq!(
            store.get("a").expect("get"),
            Some((DURABLE_EVERY * 2 - 1).to_be_bytes().to_vec())
        );
        assert_eq!(store.get("b").expect("get"), None);
        assert_eq!(store.len().expect("len"), 1);
        drop(store);
        assert!(!path.exists(), "dropped stores leave no file");
        let store = Store::create(&path, 1 << 20).expect("again");
        assert!(store.is_empty().expect("len"), "a new store starts empty");
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! The local state store of one changelogged partition: entity id → state bytes, on disk
//! (redb), so that RAM stays bounded by the cache size however many entities there are.
//!
//! The store is a cache of the changelog topic, never the truth: it is rebuilt from the
//! changelog whenever its partition is assigned, and only committed batches are written to it.
//! It therefore needs no durability of its own (commits skip fsync).
//!
//! Keys may carry an expiry time (the states of GPS fixes, which only need to live until every
//! level has relayed the fix): a second table orders them by expiry, so [`Store::expired`]
//! finds the due ones without a scan.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const ENTITIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("entities");
/// (expiry in Unix milliseconds, key) of the keys that expire.
const EXPIRY: TableDefinition<'_, (u64, &str), ()> = TableDefinition::new("expiry");

/// A committed change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: String,
    /// The new value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
    /// When the key expires (Unix ms), if it does: set with a value, removed with a deletion.
    pub expires_at: Option<u64>,
}

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

    /// Writes committed changes.
    pub fn apply<'a>(
        &mut self,
        changes: impl IntoIterator<Item = &'a Change>,
    ) -> Result<(), StoreError> {
        self.since_durable += 1;
        let durable = self.since_durable >= DURABLE_EVERY;
        if durable {
            self.since_durable = 0;
        }
        self.write_batch(changes, durable)
    }

    /// Up to `limit` keys whose expiry is at or before `now` (Unix ms), earliest first, with
    /// their expiry.
    pub fn expired(&self, now: u64, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(EXPIRY).map_err(|e| self.error(e))?;
        let mut due = Vec::new();
        for entry in table
            .range::<(u64, &str)>(..(now.saturating_add(1), ""))
            .map_err(|e| self.error(e))?
            .take(limit)
        {
            let (key, _) = entry.map_err(|e| self.error(e))?;
            let (at, name) = key.value();
            due.push((at, name.to_owned()));
        }
        Ok(due)
    }

    fn write_batch<'a>(
        &self,
        changes: impl IntoIterator<Item = &'a Change>,
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut write = self.db.begin_write().map_err(|e| self.error(e))?;
        if !durable {
            write
                .set_durability(Durability::None)
                .map_err(|e| self.error(e))?;
        }
        {
            let mut entities = write.open_table(ENTITIES).map_err(|e| self.error(e))?;
            let mut expiry = write.open_table(EXPIRY).map_err(|e| self.error(e))?;
            for change in changes {
                let key = change.key.as_str();
                match (&change.value, change.expires_at) {
                    (Some(value), at) => {
                        entities
                            .insert(key, value.as_slice())
                            .map_err(|e| self.error(e))?;
                        if let Some(at) = at {
                            expiry.insert((at, key), ()).map_err(|e| self.error(e))?;
                        }
                    }
                    (None, at) => {
                        entities.remove(key).map_err(|e| self.error(e))?;
                        if let Some(at) = at {
                            expiry.remove((at, key)).map_err(|e| self.error(e))?;
                        }
                    }
                }
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

    fn put(key: &str, value: &[u8], expires_at: Option<u64>) -> Change {
        Change {
            key: key.to_owned(),
            value: Some(value.to_vec()),
            expires_at,
        }
    }

    fn delete(key: &str, expires_at: Option<u64>) -> Change {
        Change {
            key: key.to_owned(),
            value: None,
            expires_at,
        }
    }

    #[test]
    fn applies_sets_and_deletes_and_starts_empty() {
        let dir = std::env::temp_dir().join(format!("store-test-{}", std::process::id()));
        let path = dir.join("p0.redb");
        let mut store = Store::create(&path, 1 << 20).expect("store");
        assert!(store.is_empty().expect("len"));
        for round in 0..(DURABLE_EVERY * 2) {
            let value = round.to_be_bytes();
            store
                .apply(&[put("a", &value, None), put("b", b"x", None)])
                .expect("apply");
        }
        store.apply(&[delete("b", None)]).expect("delete");
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

    #[test]
    fn expired_keys_come_earliest_first_and_go_with_their_deletion() {
        let dir = std::env::temp_dir().join(format!("store-expiry-{}", std::process::id()));
        let mut store = Store::create(&dir.join("p0.redb"), 1 << 20).expect("store");
        store
            .apply(&[
                put("late", b"1", Some(300)),
                put("early", b"1", Some(100)),
                put("kept", b"1", None),
                put("due", b"1", Some(200)),
            ])
            .expect("apply");
        let due = |store: &Store, now, limit| {
            store
                .expired(now, limit)
                .expect("expired")
                .into_iter()
                .map(|(_, k)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(due(&store, 99, 10), Vec::<String>::new());
        assert_eq!(due(&store, 200, 10), ["early", "due"]);
        assert_eq!(due(&store, 1000, 1), ["early"]);
        store.apply(&[delete("early", Some(100))]).expect("expire");
        assert_eq!(due(&store, 1000, 10), ["due", "late"]);
        assert_eq!(store.get("early").expect("get"), None);
        assert_eq!(store.len().expect("len"), 3);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}

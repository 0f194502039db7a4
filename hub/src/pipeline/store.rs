//! The local state store of one changelogged partition: entity id → state bytes, on disk
//! (redb), so that RAM stays bounded by the cache size however many entities there are.
//!
//! The store is a cache of the changelog topic, never the truth, and only committed batches are
//! written to it, so it needs no durability of its own (commits skip fsync). Like Kafka Streams'
//! checkpoint file, a store closed cleanly keeps its file with a checkpoint — the changelog
//! offset below which it holds every record — so that the partition's next assignment in this
//! instance reads only the changelog's tail. Opening takes the checkpoint out of the file: a
//! process that dies before its next clean close leaves a file without one, which is discarded
//! and rebuilt from the whole changelog.
//!
//! Keys may carry an expiry time (the states of GPS fixes, which only need to live until every
//! level has relayed the fix): a second table orders them by expiry, so [`Store::expired`]
//! finds the due ones without a scan.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const ENTITIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("entities");
/// (expiry in Unix milliseconds, key) of the keys that expire.
const EXPIRY: TableDefinition<'_, (u64, &str), ()> = TableDefinition::new("expiry");
/// [`CHECKPOINT`] → its changelog offset; present only in a cleanly closed file.
const META: TableDefinition<'_, &str, i64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "changelog_checkpoint";

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

/// The store files a process has open, shared by its resolve threads (as Kafka Streams locks a
/// task's directory): a partition handed from one thread to another waits until the first has
/// closed its store, and no thread removes a file another one holds.
#[derive(Debug, Clone, Default)]
pub struct OpenFiles(Arc<Mutex<HashSet<PathBuf>>>);

impl OpenFiles {
    /// Holds `path` for the caller once no other holds it, waiting at most `within`.
    pub fn hold(&self, path: &Path, within: Duration) -> Result<Held, StoreError> {
        let deadline = Instant::now() + within;
        loop {
            if self.lock().insert(path.to_owned()) {
                return Ok(Held {
                    files: self.clone(),
                    path: path.to_owned(),
                });
            }
            if Instant::now() >= deadline {
                return Err(StoreError {
                    path: path.display().to_string(),
                    message: format!("still open in another thread after {within:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether some thread holds `path`.
    pub fn is_held(&self, path: &Path) -> bool {
        self.lock().contains(path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A store file held by one thread ([`OpenFiles::hold`]) until this drops.
#[derive(Debug)]
pub struct Held {
    files: OpenFiles,
    path: PathBuf,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.files.lock().remove(&self.path);
    }
}

/// A read-only view of a store's committed states ([`Store::reader`]): what was committed when
/// it was made, whatever is written after.
pub struct Reader {
    table: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    path: PathBuf,
}

impl Reader {
    /// The state of `key`, as `read` makes it from the stored bytes (read in place).
    pub fn get<T>(
        &self,
        key: &str,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        let value = self.table.get(key).map_err(|e| StoreError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(value.map(|v| read(v.value())))
    }
}

/// One partition's entity states.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Commits since the last durable one: redb reclaims pages only at durable commits.
    since_durable: u32,
    /// The changelog offset below which every record is applied here, when known; the file is
    /// kept at close only then.
    checkpoint: Option<i64>,
    /// The file's hold, released after the store closed (fields drop after `Drop::drop`).
    held: Option<Held>,
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
            checkpoint: None,
            held: None,
        };
        // Create the table, so that reads of an empty store find it.
        store.write_batch(std::iter::empty(), true)?;
        Ok(store)
    }

    /// The store a clean close left at `path`, with its checkpoint (the changelog offset to
    /// restore from); any other file is discarded for an empty store and `None`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<(Self, Option<i64>), StoreError> {
        if path.exists() {
            match Self::reopen(path, cache_bytes) {
                Ok(Some((store, checkpoint))) => return Ok((store, Some(checkpoint))),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "discarding an unreadable state store"),
            }
        }
        Ok((Self::create(path, cache_bytes)?, None))
    }

    /// Keeps `held` until the store has closed.
    pub fn hold(&mut self, held: Held) {
        self.held = Some(held);
    }

    /// Opens `path` and takes its checkpoint out, durably; `None` (and the file deleted) when
    /// it has none.
    fn reopen(path: &Path, cache_bytes: usize) -> Result<Option<(Self, i64)>, StoreError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .open(path)
            .map_err(|e| StoreError {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let store = Store {
            db,
            path: path.to_owned(),
            since_durable: 0,
            checkpoint: None,
            held: None,
        };
        let write = store.db.begin_write().map_err(|e| store.error(e))?;
        let checkpoint = {
            let mut meta = write.open_table(META).map_err(|e| store.error(e))?;
            let taken = meta.remove(CHECKPOINT).map_err(|e| store.error(e))?;
            taken.map(|v| v.value())
        };
        write.commit().map_err(|e| store.error(e))?;
        Ok(checkpoint.map(|at| (store, at)))
    }

    /// Records that every changelog record below `offset` is applied here.
    pub fn advance(&mut self, offset: i64) {
        self.checkpoint = Some(self.checkpoint.map_or(offset, |at| at.max(offset)));
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// The state of `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader()?.get(key, <[u8]>::to_vec)
    }

    /// A view of the committed states for many reads (a batch's): one read transaction, and
    /// the table opened once, instead of both per key.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(ENTITIES).map_err(|e| self.error(e))?;
        Ok(Reader {
            table,
            path: self.path.clone(),
        })
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
        let written = self.write_batch(changes, durable);
        if written.is_err() {
            // What the store holds is unknown now: it must not outlive this process.
            self.checkpoint = None;
        }
        written
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

    /// Writes the checkpoint, durably: the file stays for the partition's next assignment.
    fn keep(&self, checkpoint: i64) -> Result<(), StoreError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut meta = write.open_table(META).map_err(|e| self.error(e))?;
            meta.insert(CHECKPOINT, checkpoint)
                .map_err(|e| self.error(e))?;
        }
        write.commit().map_err(|e| self.error(e))
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
        match self.checkpoint.map(|at| self.keep(at)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "state store not kept; its next owner rebuilds it");
                let _ = std::fs::remove_file(&self.path);
            }
            // Unknown contents: the next assignment rebuilds the store from the changelog.
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
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
    fn a_cleanly_closed_store_comes_back_with_its_checkpoint_once() {
        let dir = std::env::temp_dir().join(format!("store-checkpoint-{}", std::process::id()));
        let (path, crashed) = (dir.join("p0.redb"), dir.join("crashed.redb"));
        let (mut store, checkpoint) = Store::open(&path, 1 << 20).expect("store");
        assert_eq!(checkpoint, None, "no file, no checkpoint");
        store.apply(&[put("a", b"1", Some(5))]).expect("apply");
        store.advance(7);
        store.advance(3);
        drop(store);

        let (store, checkpoint) = Store::open(&path, 1 << 20).expect("reopened");
        assert_eq!(checkpoint, Some(7), "the highest offset advanced to");
        assert_eq!(store.get("a").expect("get"), Some(b"1".to_vec()));
        assert_eq!(
            store.expired(10, 10).expect("expired"),
            [(5, "a".to_owned())]
        );
        // What a process killed now would leave: the file, its checkpoint taken out.
        std::fs::copy(&path, &crashed).expect("copy");
        drop(store);
        assert!(!path.exists(), "closed without a checkpoint: no file");
        let (store, checkpoint) = Store::open(&crashed, 1 << 20).expect("crashed");
        assert_eq!(checkpoint, None);
        assert!(store.is_empty().expect("len"), "discarded, not trusted");
        drop(store);

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

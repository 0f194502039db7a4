//! RAM per entity key of the resolve stage's state store at national scale. Not a test: run
//! with `ops/bench/state` (10 million keys by default; `STATE_BENCH_KEYS` changes it).
//!
//! Writes keys shaped like entity ids with small states, in batches as the pipeline commits
//! them, into one store with the default 16 MiB cache; then reads random keys. Prints the
//! resident memory the store added per key (target ≤ 64 bytes), the file size, and the
//! write and read rates.

use std::io::Write as _;
use std::time::Instant;

use hub::pipeline::store::{Change, Store};
use rand::Rng;

/// Resident set size of this process, bytes (Linux `/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn key(i: u64) -> String {
    // A USCC-and-period entity id: 18 + 1 + 7 characters.
    format!("91530114{i:010}|2025-03")
}

fn main() {
    let keys: u64 = std::env::var("STATE_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = std::env::temp_dir().join(format!("state-bench-{}", std::process::id()));
    let path = dir.join("p0.redb");
    let mut store = Store::create(&path, 16 << 20).expect("store");
    let state = [b'x'; 96];
    let before = rss();
    let started = Instant::now();
    let batch = 2_000;
    let mut i = 0;
    while i < keys {
        let end = (i + batch).min(keys);
        let changes: Vec<Change> = (i..end)
            .map(|k| Change {
                key: key(k),
                value: Some(state.to_vec()),
                expires_at: None,
            })
            .collect();
        store.apply(&changes).expect("apply");
        i = end;
    }
    let wrote = started.elapsed().as_secs_f64();
    let after = rss();
    let mut rng = rand::rng();
    let reads = 200_000;
    let started = Instant::now();
    for _ in 0..reads {
        let k = key(rng.random_range(0..keys));
        assert!(store.get(&k).expect("get").is_some());
    }
    let read = started.elapsed().as_secs_f64();
    let file = std::fs::metadata(&path).map_or(0, |m| m.len());
    let grown = after.saturating_sub(before);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "state store: {keys} keys, RSS +{:.1} MiB = {:.1} bytes/key (target ≤ 64), file {:.0} MiB; \
         writes {:.0} keys/s, random reads {:.0} keys/s",
        grown as f64 / (1 << 20) as f64,
        grown as f64 / keys as f64,
        file as f64 / (1 << 20) as f64,
        keys as f64 / wrote,
        reads as f64 / read
    )
    .expect("stdout");
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

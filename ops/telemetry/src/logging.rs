//! Structured logging and the metrics registry.

use prometheus::{IntGaugeVec, Opts, Registry};

/// Starts structured logging: JSON lines when `json` is set (for log shippers), human-readable
/// otherwise. The level filter comes from `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A metrics registry holding the process collector and a `<prefix>_build_info` gauge.
pub fn registry(prefix: &str) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let build_info = IntGaugeVec::new(
        Opts::new(
            format!("{prefix}_build_info"),
            "Build information; the value is always 1.",
        ),
        &["version"],
    )?;
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    registry.register(Box::new(build_info))?;
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}

/// Lets a log line that repeats through at most once per key and interval (a client sending
/// the same bad batch in a loop must not flood the log), and says how many it held back.
/// Keys come from closed sets (a configured system and a stable code), so the map is bounded.
#[derive(Debug)]
pub struct Throttle {
    interval: std::time::Duration,
    last: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

impl Throttle {
    /// At most one line per key every `interval`.
    pub fn new(interval: std::time::Duration) -> Self {
        Throttle {
            interval,
            last: std::sync::Mutex::default(),
        }
    }

    /// `Some(n)` when a line for `key` may be written now, `n` being the lines held back
    /// since the last one written; `None` when this one is held back.
    pub fn allow(&self, key: &str, now: std::time::Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get_mut(key) {
            Some((at, held)) if now.saturating_duration_since(*at) < self.interval => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                *at = now;
                Some(std::mem::take(held))
            }
            None => {
                last.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Throttle;

    #[test]
    fn throttle_lets_one_line_per_key_and_interval_through() {
        let throttle = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let cases = [
            ("a", at(0), Some(0)),
            ("a", at(1), None),
            ("b", at(1), Some(0)),
            ("a", at(9), None),
            ("a", at(10), Some(2)),
            ("a", at(11), None),
            ("b", at(30), Some(0)),
            ("a", at(30), Some(1)),
        ];
        for (key, now, expected) in cases {
            assert_eq!(throttle.allow(key, now), expected, "{key} at {now:?}");
        }
    }
}

//! Accounting (对账): every raw record that enters the hub ends in exactly one outcome —
//! published, merged duplicate, unchanged or quarantined. Each batch writes what it counted to
//! `hub.outcomes` in its own transaction, so the counts are exactly as committed; the
//! reconciliation sums them per domain and reporting region.

use std::collections::BTreeMap;
use std::time::Duration;

use schemas::{ClientSettings, Domain};
use serde::{Deserialize, Serialize};

use super::exactly_once::Output;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    /// A raw record read by the hub.
    In,
    /// Its entity's national values changed: published.
    Published,
    /// Same values as published before; only its provenance was added.
    MergedDuplicate,
    /// Nothing changed; nothing published.
    Unchanged,
    /// Quarantined with a reason code.
    Quarantined,
}

/// One row of a batch's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Data domain.
    pub domain: Domain,
    /// GB/T 2260 code of the reporter's area, or `unknown` when the record did not decode.
    pub region: String,
    /// What was counted.
    pub counted: Counted,
    /// How many.
    pub count: u64,
}

/// Counts gathered over one batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally(BTreeMap<(Domain, String, Counted), u64>);

impl Tally {
    /// Counts one record.
    pub fn add(&mut self, domain: Domain, region: &str, counted: Counted) {
        *self
            .0
            .entry((domain, region.to_owned(), counted))
            .or_default() += 1;
    }

    /// The batch's record for `hub.outcomes` (none when nothing was counted), keyed uniquely so
    /// that compaction keeps every batch.
    pub fn output(&self, topic: &str) -> Option<Output> {
        if self.0.is_empty() {
            return None;
        }
        let rows: Vec<Row> = self
            .0
            .iter()
            .map(|((domain, region, counted), count)| Row {
                domain: *domain,
                region: region.clone(),
                counted: *counted,
                count: *count,
            })
            .collect();
        Some(Output {
            topic: topic.to_owned(),
            partition: None,
            key: uuid::Uuid::new_v4().to_string(),
            payload: Some(serde_json::to_vec(&rows).expect("rows serialise")),
        })
    }
}

/// The balance of one domain and region: what came in and where it went.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Raw records read.
    pub received: u64,
    /// Published.
    pub published: u64,
    /// Merged as duplicates.
    pub merged_duplicate: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Quarantined.
    pub quarantined: u64,
    /// Read but not yet resolved (between the two stages): zero once the hub has caught up.
    pub in_flight: i64,
}

impl Balance {
    fn add(&mut self, counted: Counted, n: u64) {
        match counted {
            Counted::In => self.received += n,
            Counted::Published => self.published += n,
            Counted::MergedDuplicate => self.merged_duplicate += n,
            Counted::Unchanged => self.unchanged += n,
            Counted::Quarantined => self.quarantined += n,
        }
        let out = self.published + self.merged_duplicate + self.unchanged + self.quarantined;
        self.in_flight = self.received as i64 - out as i64;
    }
}

/// The reconciliation: balances per domain and region, and their total.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Per domain, then reporting region.
    pub by_domain: BTreeMap<Domain, BTreeMap<String, Balance>>,
    /// Everything.
    pub total: Balance,
    /// Whether every record read has its outcome (`in_flight` is zero everywhere).
    pub balanced: bool,
}

impl Reconciliation {
    /// Sums batches' rows.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Self {
        let mut r = Reconciliation::default();
        for row in rows {
            r.by_domain
                .entry(row.domain)
                .or_default()
                .entry(row.region.clone())
                .or_default()
                .add(row.counted, row.count);
            r.total.add(row.counted, row.count);
        }
        r.balanced = r
            .by_domain
            .values()
            .flat_map(BTreeMap::values)
            .all(|b| b.in_flight == 0);
        r
    }

    /// Reads every committed batch of `topic` and sums them. Blocks.
    pub fn read(
        settings: &ClientSettings,
        topic: &str,
        timeout: Duration,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut rows = Vec::new();
        schemas::kafka::read_to_end(
            settings,
            topic,
            None,
            timeout,
            |_, _, payload| match payload.map(serde_json::from_slice::<Vec<Row>>) {
                Some(Ok(batch)) => rows.extend(batch),
                Some(Err(e)) => tracing::warn!(error = %e, "unreadable outcome record skipped"),
                None => {}
            },
        )?;
        Ok(Self::from_rows(&rows))
    }
}

/// `GET /reconciliation`: the reconciliation as JSON, read from the outcomes topic on each
/// request.
pub fn router(settings: ClientSettings, topic: String) -> axum::Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    axum::Router::new().route(
        "/reconciliation",
        axum::routing::get(move || {
            let (settings, topic) = (settings.clone(), topic.clone());
            async move {
                let read = tokio::task::spawn_blocking(move || {
                    Reconciliation::read(&settings, &topic, Duration::from_secs(60))
                })
                .await;
                match read {
                    Ok(Ok(r)) => axum::Json(r).into_response(),
                    Ok(Err(e)) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("对账数据暂不可读 (cannot read the outcomes): {e}"),
                    )
                        .into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_sum_per_domain_and_region() {
        let mut a = Tally::default();
        for _ in 0..3 {
            a.add(Domain::Vehicle, "530114", Counted::In);
        }
        a.add(Domain::Vehicle, "530114", Counted::Quarantined);
        let mut b = Tally::default();
        b.add(Domain::Vehicle, "530114", Counted::Published);
        b.add(Domain::Vehicle, "530114", Counted::MergedDuplicate);
        let rows: Vec<Row> = [a, b]
            .iter()
            .flat_map(|t| {
                let out = t.output("hub.outcomes").expect("counted");
                serde_json::from_slice::<Vec<Row>>(&out.payload.expect("payload")).expect("rows")
            })
            .collect();
        let r = Reconciliation::from_rows(&rows);
        let balance = &r.by_domain[&Domain::Vehicle]["530114"];
        assert_eq!(
            (balance.received, balance.quarantined, balance.in_flight),
            (3, 1, 0)
        );
        assert!(r.balanced);
        assert_eq!(r.total.published, 1);

        let mut c = Tally::default();
        c.add(Domain::Institution, "500101", Counted::In);
        let more = c.output("t").expect("counted");
        let rows2: Vec<Row> =
            serde_json::from_slice(&more.payload.expect("payload")).expect("rows");
        let r = Reconciliation::from_rows(rows.iter().chain(&rows2));
        assert!(!r.balanced, "one record still in flight");
        assert_eq!(r.by_domain[&Domain::Institution]["500101"].in_flight, 1);
        assert!(Tally::default().output("t").is_none());
    }
}

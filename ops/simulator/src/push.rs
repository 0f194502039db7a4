//! A simulated system that pushes instead of being polled: its records exactly as it serves
//! them over HTTP (its own field names and value types), POSTed in batches to a connector's
//! push endpoint (`POST {endpoint}/push/v1/{domain}/batches`) with its bearer token. Batch ids
//! are derived from the records they carry, so a batch sent again after a lost answer is
//! recognised by the endpoint, never written twice.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Simulator;

/// What one system's push delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Batches the endpoint committed.
    pub batches: usize,
    /// Records it accepted.
    pub accepted: usize,
}

/// Answers that mean "send again": the endpoint wrote nothing.
fn retryable(status: u16) -> bool {
    status == 503 || status == 408
}

/// Pushes every record of `system_id` in batches of `batch_size`, retrying a batch the
/// endpoint could not write (503, 408, no answer) up to `attempts` times. An answer that
/// refuses the batch or rejects any record is an error: the simulator sends only what its
/// ground truth says the connector writes.
pub async fn push_system(
    sim: &Simulator,
    system_id: &str,
    http: &reqwest::Client,
    endpoint: &str,
    batch_size: usize,
    attempts: u32,
) -> Result<Pushed, String> {
    let (sys, profile) = sim
        .system(system_id)
        .ok_or_else(|| format!("unknown system {system_id}"))?;
    let url = format!(
        "{}/push/v1/{}/batches",
        endpoint.trim_end_matches('/'),
        profile.domain.as_str()
    );
    let mut pushed = Pushed {
        batches: 0,
        accepted: 0,
    };
    let total = sim.len(sys);
    for first in (0..total).step_by(batch_size.max(1)) {
        let last = (first + batch_size.max(1)).min(total);
        let records: Vec<Value> = sim
            .records(sys, first..last)
            .iter()
            .map(|r| r.to_json(profile))
            .collect();
        let body = json!({
            "batch_id": format!("{system_id}:{first}-{last}"),
            "records": records,
        });
        let answer = send(http, &url, &profile.token, &body, attempts).await?;
        let accepted = answer["accepted"].as_u64().unwrap_or(0) as usize;
        if answer["rejected"].as_u64() != Some(0) {
            return Err(format!(
                "{system_id}: records {first}..{last} rejected: {answer}"
            ));
        }
        pushed.batches += 1;
        pushed.accepted += accepted;
    }
    Ok(pushed)
}

/// One batch, sent until the endpoint answers it (bounded attempts, doubling pauses).
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    attempts: u32,
) -> Result<Value, String> {
    let mut pause = Duration::from_millis(200);
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        match http.post(url).bearer_auth(token).json(body).send().await {
            Ok(response) if retryable(response.status().as_u16()) => {
                last = format!(
                    "{}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            Ok(response) => {
                let status = response.status();
                let answer: Value = response
                    .json()
                    .await
                    .map_err(|e| format!("{url}: answer is not JSON: {e}"))?;
                if !status.is_success() {
                    return Err(format!("{url}: {status}: {answer}"));
                }
                return Ok(answer);
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    Err(format!(
        "{url}: not written after {attempts} attempts: {last}"
    ))
}

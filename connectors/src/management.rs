//! The management API, with Kafka Connect's REST verbs (an instance is what Connect calls a
//! connector): list, status, pause, resume, restart, read and reset progress.
//!
//! | verb | path | answer |
//! |---|---|---|
//! | GET | `/connectors` | instance ids |
//! | GET | `/connectors/{id}/status` | state (RUNNING, PAUSED, FAILED, STOPPED) and last error |
//! | PUT | `/connectors/{id}/pause`, `/connectors/{id}/resume` | 202 |
//! | POST | `/connectors/{id}/restart` | 202 |
//! | GET | `/connectors/{id}/offsets` | the committed progress |
//! | DELETE | `/connectors/{id}/offsets` | forgets it (the instance must be paused) |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::runtime::{Command, Control};

/// What the handlers share.
#[derive(Clone)]
struct Api {
    worker_id: Arc<str>,
    controls: Arc<BTreeMap<String, Control>>,
}

/// The management routes over `controls`; `worker_id` is this connector process's id.
pub fn router(worker_id: &str, controls: Arc<BTreeMap<String, Control>>) -> Router {
    Router::new()
        .route("/connectors", get(list))
        .route("/connectors/{id}/status", get(status))
        .route("/connectors/{id}/pause", put(pause))
        .route("/connectors/{id}/resume", put(resume))
        .route("/connectors/{id}/restart", post(restart))
        .route("/connectors/{id}/offsets", get(offsets).delete(reset))
        .with_state(Api {
            worker_id: Arc::from(worker_id),
            controls,
        })
}

/// An error in Kafka Connect's shape: `{"error_code": HTTP status, "message": ...}`.
fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({ "error_code": status.as_u16(), "message": message })),
    )
        .into_response()
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("实例「{id}」不存在 (no instance `{id}`)"),
    )
}

async fn list(State(api): State<Api>) -> Json<Vec<String>> {
    Json(api.controls.keys().cloned().collect())
}

async fn status(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Some(control) = api.controls.get(&id) else {
        return not_found(&id);
    };
    let status = control.status();
    let (code, message) = status.error.clone().unzip();
    Json(json!({
        "name": id,
        "type": "source",
        "connector": {
            "state": status.state,
            "worker_id": &*api.worker_id,
            "error_code": code,
            "trace": message,
        },
        "tasks": [{ "id": 0, "state": status.state, "worker_id": &*api.worker_id }],
    }))
    .into_response()
}

fn command(api: &Api, id: &str, command: Command) -> Response {
    match api.controls.get(id) {
        None => not_found(id),
        Some(control) if control.send(command) => StatusCode::ACCEPTED.into_response(),
        Some(_) => error(
            StatusCode::CONFLICT,
            format!("实例「{id}」已停止 (instance `{id}` has stopped)"),
        ),
    }
}

async fn pause(State(api): State<Api>, Path(id): Path<String>) -> Response {
    command(&api, &id, Command::Pause)
}

async fn resume(State(api): State<Api>, Path(id): Path<String>) -> Response {
    command(&api, &id, Command::Resume)
}

async fn restart(State(api): State<Api>, Path(id): Path<String>) -> Response {
    command(&api, &id, Command::Restart)
}

async fn offsets(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Some(control) = api.controls.get(&id) else {
        return not_found(&id);
    };
    Json(json!({
        "offsets": [{
            "partition": { "instance": id },
            "offset": control.status().progress,
        }]
    }))
    .into_response()
}

async fn reset(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Some(control) = api.controls.get(&id) else {
        return not_found(&id);
    };
    let (reply, answer) = std::sync::mpsc::channel();
    if !control.send(Command::Reset(reply)) {
        return error(
            StatusCode::CONFLICT,
            format!("实例「{id}」已停止 (instance `{id}` has stopped)"),
        );
    }
    let outcome =
        tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(60))).await;
    match outcome {
        Ok(Ok(Ok(()))) => Json(json!({
            "message": format!("实例「{id}」的进度已重置 (the progress of `{id}` was reset)")
        }))
        .into_response(),
        Ok(Ok(Err(message))) => error(StatusCode::BAD_REQUEST, message),
        _ => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("实例「{id}」未及时响应 (instance `{id}` did not answer in time)"),
        ),
    }
}

//! The REST API, in Confluent's shapes: `application/vnd.schemaregistry.v1+json` answers,
//! requests with any JSON content type, errors as `{"error_code": N, "message": "..."}`.
//!
//! Every handler takes its inputs as raw strings and bytes and parses them itself, so that bad
//! input of any kind gets an answer in Confluent's error shape and is counted under its route.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::avro::AVRO;
use super::state::{Op, Outcome, VersionSelector};
use super::{CompatibilityLevel, RegistryError, SchemaRegistry, parse_schema, validate_subject};

/// The Schema Registry API's content type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The routes, one per label value of `hub_registry_requests_total{endpoint}`.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Root,
    SchemaTypes,
    SchemaById,
    SchemaByIdRaw,
    SchemaIdVersions,
    SchemaIdSubjects,
    Subjects,
    SubjectVersions,
    Register,
    Version,
    VersionRaw,
    Lookup,
    DeleteSubject,
    DeleteVersion,
    CompatibilityVersion,
    CompatibilityAll,
    GetConfig,
    PutConfig,
    DeleteConfig,
    GetSubjectConfig,
    PutSubjectConfig,
    DeleteSubjectConfig,
    Mode,
    Unmatched,
    MethodNotAllowed,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Root => "GET /",
            Endpoint::SchemaTypes => "GET /schemas/types",
            Endpoint::SchemaById => "GET /schemas/ids/{id}",
            Endpoint::SchemaByIdRaw => "GET /schemas/ids/{id}/schema",
            Endpoint::SchemaIdVersions => "GET /schemas/ids/{id}/versions",
            Endpoint::SchemaIdSubjects => "GET /schemas/ids/{id}/subjects",
            Endpoint::Subjects => "GET /subjects",
            Endpoint::SubjectVersions => "GET /subjects/{subject}/versions",
            Endpoint::Register => "POST /subjects/{subject}/versions",
            Endpoint::Version => "GET /subjects/{subject}/versions/{version}",
            Endpoint::VersionRaw => "GET /subjects/{subject}/versions/{version}/schema",
            Endpoint::Lookup => "POST /subjects/{subject}",
            Endpoint::DeleteSubject => "DELETE /subjects/{subject}",
            Endpoint::DeleteVersion => "DELETE /subjects/{subject}/versions/{version}",
            Endpoint::CompatibilityVersion => {
                "POST /compatibility/subjects/{subject}/versions/{version}"
            }
            Endpoint::CompatibilityAll => "POST /compatibility/subjects/{subject}/versions",
            Endpoint::GetConfig => "GET /config",
            Endpoint::PutConfig => "PUT /config",
            Endpoint::DeleteConfig => "DELETE /config",
            Endpoint::GetSubjectConfig => "GET /config/{subject}",
            Endpoint::PutSubjectConfig => "PUT /config/{subject}",
            Endpoint::DeleteSubjectConfig => "DELETE /config/{subject}",
            Endpoint::Mode => "GET /mode",
            Endpoint::Unmatched => "unmatched",
            Endpoint::MethodNotAllowed => "method not allowed",
        }
    }
}

/// The API's routes over `registry`.
pub(crate) fn router(registry: SchemaRegistry) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_by_id_raw))
        .route("/schemas/ids/{id}/versions", get(schema_id_versions))
        .route("/schemas/ids/{id}/subjects", get(schema_id_subjects))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(subject_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(version_raw),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_all),
        )
        .route(
            "/config",
            get(get_config).put(put_config).delete(delete_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(mode))
        .fallback(unmatched)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(registry)
}

// ---- plumbing ----

type ApiResult = Result<Response, RegistryError>;
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// A JSON answer with the registry's content type.
fn reply(value: Value) -> Response {
    let mut response = axum::Json(value).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn error_reply(error: &RegistryError) -> Response {
    let mut response = reply(json!({
        "error_code": error.error_code(),
        "message": error.to_string(),
    }));
    *response.status_mut() = error.status();
    response
}

/// Runs a handler body, answers errors in Confluent's shape and counts the request.
async fn handle(
    registry: &SchemaRegistry,
    endpoint: Endpoint,
    body: impl Future<Output = ApiResult>,
) -> Response {
    let response = match body.await {
        Ok(response) => response,
        Err(error) => {
            if error.is_client_error() {
                tracing::debug!(endpoint = endpoint.label(), code = error.code(), error = %error, "registry request rejected");
            } else {
                tracing::warn!(endpoint = endpoint.label(), code = error.code(), error = %error, "registry request failed");
            }
            error_reply(&error)
        }
    };
    registry
        .inner
        .metrics
        .requests
        .with_label_values(&[endpoint.label(), response.status().as_str()])
        .inc();
    response
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, RegistryError> {
    path.map(|Path(p)| p)
        .map_err(|e| RegistryError::BadRequest {
            reason: e.body_text(),
        })
}

/// A boolean query parameter (`true`/`false`, absent = false).
fn flag(params: &Params, name: &str) -> Result<bool, RegistryError> {
    let params = params.as_ref().map_err(|e| RegistryError::BadRequest {
        reason: e.body_text(),
    })?;
    match params.0.get(name).map(String::as_str) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(RegistryError::BadRequest {
            reason: format!("query parameter {name} must be true or false, not '{v}'"),
        }),
    }
}

/// Parses a JSON body: not JSON → 400; JSON of the wrong shape → 422.
fn body<T: DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> Result<T, RegistryError> {
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RegistryError::TooLarge
        } else {
            RegistryError::BadRequest {
                reason: e.body_text(),
            }
        }
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadRequest {
        reason: format!("the request body is not JSON: {e}"),
    })?;
    serde_json::from_value(value).map_err(|e| RegistryError::Unprocessable {
        reason: format!("unexpected request body: {e}"),
    })
}

fn schema_id(text: &str) -> Result<u32, RegistryError> {
    text.parse::<u32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(RegistryError::SchemaNotFound { id: None })
}

/// A registration, lookup or compatibility request body.
#[derive(Deserialize)]
struct SchemaRequest {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<Value>>,
}

impl SchemaRequest {
    fn parse(&self) -> Result<Arc<super::avro::ParsedSchema>, RegistryError> {
        if self.references.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(RegistryError::InvalidSchema {
                reason: "schema references are not supported: inline named types instead"
                    .to_owned(),
            });
        }
        parse_schema(
            self.schema.as_deref().unwrap_or_default(),
            self.schema_type.as_deref(),
        )
    }
}

#[derive(Deserialize)]
struct ConfigRequest {
    #[serde(default, alias = "compatibilityLevel")]
    compatibility: Option<String>,
}

impl ConfigRequest {
    fn level(&self) -> Result<CompatibilityLevel, RegistryError> {
        let text = self.compatibility.as_deref().unwrap_or_default();
        text.parse()
            .map_err(|_| RegistryError::InvalidCompatibilityLevel {
                level: text.to_owned(),
            })
    }
}

fn version_json(v: &super::SchemaVersion) -> Value {
    json!({
        "subject": v.subject,
        "version": v.version,
        "id": v.id,
        "schema": v.schema,
    })
}

// ---- schemas ----

async fn root(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::Root, async { Ok(reply(json!({}))) }).await
}

async fn schema_types(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::SchemaTypes, async {
        Ok(reply(json!([AVRO])))
    })
    .await
}

async fn schema_by_id(
    State(r): State<SchemaRegistry>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    handle(&r, Endpoint::SchemaById, async {
        let id = schema_id(&path(id)?)?;
        let schema = r.schema_by_id(id).await?;
        Ok(reply(json!({ "schema": schema })))
    })
    .await
}

async fn schema_by_id_raw(
    State(r): State<SchemaRegistry>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    handle(&r, Endpoint::SchemaByIdRaw, async {
        let id = schema_id(&path(id)?)?;
        let schema = r.schema_by_id(id).await?;
        Ok(raw_schema(schema))
    })
    .await
}

/// The schema text itself as the body (it is JSON already).
fn raw_schema(schema: String) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        schema,
    )
        .into_response()
}

/// Every (subject, version) holding the schema with the id in the path.
async fn versions_of_id(
    r: &SchemaRegistry,
    id: Result<Path<String>, PathRejection>,
    params: &Params,
) -> Result<Vec<(String, u32)>, RegistryError> {
    let id = schema_id(&path(id)?)?;
    let deleted = flag(params, "deleted")?;
    r.inner
        .read(|s| {
            s.id_versions(id, deleted)
                .ok_or(RegistryError::SchemaNotFound { id: Some(id) })
        })
        .await
}

async fn schema_id_versions(
    State(r): State<SchemaRegistry>,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::SchemaIdVersions, async {
        let versions = versions_of_id(&r, id, &params).await?;
        let list: Vec<Value> = versions
            .into_iter()
            .map(|(subject, version)| json!({ "subject": subject, "version": version }))
            .collect();
        Ok(reply(Value::Array(list)))
    })
    .await
}

async fn schema_id_subjects(
    State(r): State<SchemaRegistry>,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::SchemaIdSubjects, async {
        let versions = versions_of_id(&r, id, &params).await?;
        let mut subjects: Vec<String> = versions.into_iter().map(|(s, _)| s).collect();
        subjects.dedup();
        Ok(reply(json!(subjects)))
    })
    .await
}

// ---- subjects ----

async fn subjects(State(r): State<SchemaRegistry>, params: Params) -> Response {
    handle(&r, Endpoint::Subjects, async {
        let deleted = flag(&params, "deleted")?;
        let prefix = params
            .as_ref()
            .ok()
            .and_then(|p| p.0.get("subjectPrefix").cloned())
            .unwrap_or_default();
        let subjects: Vec<String> = r
            .subjects(deleted)
            .await?
            .into_iter()
            .filter(|s| s.starts_with(&prefix))
            .collect();
        Ok(reply(json!(subjects)))
    })
    .await
}

async fn subject_versions(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::SubjectVersions, async {
        let subject = path(subject)?;
        let deleted = flag(&params, "deleted")?;
        let versions = r.inner.read(|s| s.versions(&subject, deleted)).await?;
        Ok(reply(json!(versions)))
    })
    .await
}

async fn register(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&r, Endpoint::Register, async {
        let subject = path(subject)?;
        validate_subject(&subject)?;
        let request: SchemaRequest = body(bytes)?;
        let schema = request.parse()?;
        match r.inner.write(Op::Register { subject, schema }).await? {
            Outcome::Registered { id, .. } => Ok(reply(json!({ "id": id }))),
            other => Err(super::unexpected(other)),
        }
    })
    .await
}

async fn version(
    State(r): State<SchemaRegistry>,
    p: Result<Path<(String, String)>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::Version, async {
        let (subject, version) = path(p)?;
        let selector = VersionSelector::parse(&version)?;
        let deleted = flag(&params, "deleted")?;
        let found = r.version(&subject, selector, deleted).await?;
        Ok(reply(version_json(&found)))
    })
    .await
}

async fn version_raw(
    State(r): State<SchemaRegistry>,
    p: Result<Path<(String, String)>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::VersionRaw, async {
        let (subject, version) = path(p)?;
        let selector = VersionSelector::parse(&version)?;
        let deleted = flag(&params, "deleted")?;
        let found = r.version(&subject, selector, deleted).await?;
        Ok(raw_schema(found.schema))
    })
    .await
}

async fn lookup(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    params: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&r, Endpoint::Lookup, async {
        let subject = path(subject)?;
        let deleted = flag(&params, "deleted")?;
        let request: SchemaRequest = body(bytes)?;
        let schema = request.parse()?;
        let found = r
            .inner
            .read(|s| s.lookup(&subject, &schema, deleted))
            .await?;
        Ok(reply(version_json(&found)))
    })
    .await
}

async fn delete_subject(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::DeleteSubject, async {
        let subject = path(subject)?;
        let permanent = flag(&params, "permanent")?;
        match r
            .inner
            .write(Op::DeleteSubject { subject, permanent })
            .await?
        {
            Outcome::SubjectDeleted(versions) => Ok(reply(json!(versions))),
            other => Err(super::unexpected(other)),
        }
    })
    .await
}

async fn delete_version(
    State(r): State<SchemaRegistry>,
    p: Result<Path<(String, String)>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::DeleteVersion, async {
        let (subject, version) = path(p)?;
        let version = VersionSelector::parse(&version)?;
        let permanent = flag(&params, "permanent")?;
        match r
            .inner
            .write(Op::DeleteVersion {
                subject,
                version,
                permanent,
            })
            .await?
        {
            Outcome::VersionDeleted(version) => Ok(reply(json!(version))),
            other => Err(super::unexpected(other)),
        }
    })
    .await
}

// ---- compatibility ----

async fn compatibility(
    r: &SchemaRegistry,
    subject: String,
    selector: Option<VersionSelector>,
    params: &Params,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let verbose = flag(params, "verbose")?;
    let request: SchemaRequest = body(bytes)?;
    let messages = match request.parse() {
        Ok(schema) => {
            r.inner.wait_ready_for_request().await?;
            let default = r.inner.config.default_compatibility;
            r.inner
                .state()
                .check_compatibility(&subject, selector, &schema, default)?
        }
        Err(e) if verbose => vec![e.to_string()],
        Err(e) => return Err(e),
    };
    let mut answer = json!({ "is_compatible": messages.is_empty() });
    if verbose {
        answer["messages"] = json!(messages);
    }
    Ok(reply(answer))
}

async fn compatibility_version(
    State(r): State<SchemaRegistry>,
    p: Result<Path<(String, String)>, PathRejection>,
    params: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&r, Endpoint::CompatibilityVersion, async {
        let (subject, version) = path(p)?;
        let selector = VersionSelector::parse(&version)?;
        compatibility(&r, subject, Some(selector), &params, bytes).await
    })
    .await
}

async fn compatibility_all(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    params: Params,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&r, Endpoint::CompatibilityAll, async {
        let subject = path(subject)?;
        compatibility(&r, subject, None, &params, bytes).await
    })
    .await
}

// ---- config ----

async fn get_config(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::GetConfig, async {
        let level = r.compatibility(None).await?;
        Ok(reply(json!({ "compatibilityLevel": level.as_str() })))
    })
    .await
}

async fn put_config(
    State(r): State<SchemaRegistry>,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&r, Endpoint::PutConfig, async {
        let level = body::<ConfigRequest>(bytes)?.level()?;
        r.set_compatibility(None, level).await?;
        Ok(reply(json!({ "compatibility": level.as_str() })))
    })
    .await
}

async fn delete_config(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::DeleteConfig, async {
        match r.inner.write(Op::ClearLevel { subject: None }).await? {
            Outcome::LevelCleared(level) => {
                Ok(reply(json!({ "compatibilityLevel": level.as_str() })))
            }
            other => Err(super::unexpected(other)),
        }
    })
    .await
}

async fn get_subject_config(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    params: Params,
) -> Response {
    handle(&r, Endpoint::GetSubjectConfig, async {
        let subject = path(subject)?;
        let default_to_global = flag(&params, "defaultToGlobal")?;
        let default = r.inner.config.default_compatibility;
        let level = r
            .inner
            .read(|state| match state.subject_level(&subject) {
                Some(level) => Ok(level),
                None if default_to_global => Ok(state.global_level(default)),
                None => Err(RegistryError::SubjectCompatibilityNotConfigured {
                    subject: subject.clone(),
                }),
            })
            .await?;
        Ok(reply(json!({ "compatibilityLevel": level.as_str() })))
    })
    .await
}

async fn put_subject_config(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&r, Endpoint::PutSubjectConfig, async {
        let subject = path(subject)?;
        let level = body::<ConfigRequest>(bytes)?.level()?;
        r.set_compatibility(Some(&subject), level).await?;
        Ok(reply(json!({ "compatibility": level.as_str() })))
    })
    .await
}

async fn delete_subject_config(
    State(r): State<SchemaRegistry>,
    subject: Result<Path<String>, PathRejection>,
) -> Response {
    handle(&r, Endpoint::DeleteSubjectConfig, async {
        let subject = path(subject)?;
        match r
            .inner
            .write(Op::ClearLevel {
                subject: Some(subject),
            })
            .await?
        {
            Outcome::LevelCleared(level) => {
                Ok(reply(json!({ "compatibilityLevel": level.as_str() })))
            }
            other => Err(super::unexpected(other)),
        }
    })
    .await
}

async fn mode(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::Mode, async {
        Ok(reply(json!({ "mode": "READWRITE" })))
    })
    .await
}

async fn unmatched(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::Unmatched, async {
        Err(RegistryError::NoSuchEndpoint)
    })
    .await
}

async fn method_not_allowed(State(r): State<SchemaRegistry>) -> Response {
    handle(&r, Endpoint::MethodNotAllowed, async {
        Err(RegistryError::MethodNotAllowed)
    })
    .await
}

//! A client of the Confluent Schema Registry REST API. The same code talks to Huitong's own
//! registry (served by the hub) and to an external one (Confluent, Karapace, Apicurio's ccompat
//! API).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

/// The content type of the Schema Registry API.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Errors talking to a registry, each with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The base URL is not a valid URL.
    #[error("invalid registry URL `{0}`")]
    Url(String),
    /// The request did not complete (connection refused, timeout, …).
    #[error("schema registry request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The registry answered with an error in Confluent's shape.
    #[error("schema registry error {error_code} (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Confluent error code, e.g. 40401 (subject not found), 409 (incompatible).
        error_code: u32,
        /// The registry's message.
        message: String,
    },
}

impl RegistryError {
    /// A stable, bounded code for metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Url(_) => "registry_url",
            RegistryError::Http(_) => "registry_unreachable",
            RegistryError::Api { .. } => "registry_rejected",
        }
    }

    /// The Confluent error code, when the registry answered with one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            RegistryError::Api { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }
}

/// A registered schema version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version within the subject (1, 2, …).
    pub version: u32,
    /// The global schema id, as written in the wire format.
    pub id: u32,
    /// The schema text.
    pub schema: String,
}

#[derive(Serialize)]
struct SchemaBody<'a> {
    schema: &'a str,
    #[serde(rename = "schemaType")]
    schema_type: &'static str,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaTextBody {
    schema: String,
}

#[derive(Deserialize)]
struct CompatibilityBody {
    is_compatible: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

/// A Schema Registry client that caches schemas by id (ids are immutable, so the cache never
/// goes stale).
#[derive(Debug)]
pub struct RegistryClient {
    base: Url,
    http: reqwest::Client,
    by_id: RwLock<HashMap<u32, Arc<str>>>,
}

impl RegistryClient {
    /// A client for the registry at `base_url`, e.g. `http://127.0.0.1:9644`.
    pub fn new(base_url: &str) -> Result<Self, RegistryError> {
        let mut base = Url::parse(base_url).map_err(|_| RegistryError::Url(base_url.to_owned()))?;
        if base.cannot_be_a_base() {
            return Err(RegistryError::Url(base_url.to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(RegistryClient {
            base,
            http,
            by_id: RwLock::new(HashMap::new()),
        })
    }

    /// The registry's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, RegistryError> {
        let response = request.header("Accept", CONTENT_TYPE).send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let body = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&body) {
            Ok(e) => RegistryError::Api {
                status: status.as_u16(),
                error_code: e.error_code,
                message: e.message,
            },
            Err(_) => RegistryError::Api {
                status: status.as_u16(),
                error_code: u32::from(status.as_u16()),
                message: body,
            },
        })
    }

    /// Registers an Avro schema under `subject` and returns its global id; registering a schema
    /// the subject already has returns the existing id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = SchemaBody {
            schema,
            schema_type: "AVRO",
        };
        let request = self
            .http
            .post(self.url(&["subjects", subject, "versions"]))
            .header("Content-Type", CONTENT_TYPE)
            .json(&body);
        let IdBody { id } = self.send(request).await?;
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_insert_with(|| Arc::from(schema));
        Ok(id)
    }

    /// The schema text with global id `id` (fetched once, then cached).
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<str>, RegistryError> {
        if let Some(schema) = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(schema.clone());
        }
        let request = self
            .http
            .get(self.url(&["schemas", "ids", &id.to_string()]));
        let SchemaTextBody { schema } = self.send(request).await?;
        let schema: Arc<str> = Arc::from(schema);
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    /// The version of `subject` with exactly this schema, if it is registered.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        let body = SchemaBody {
            schema,
            schema_type: "AVRO",
        };
        let request = self
            .http
            .post(self.url(&["subjects", subject]))
            .header("Content-Type", CONTENT_TYPE)
            .json(&body);
        match self.send(request).await {
            Ok(found) => Ok(Some(found)),
            Err(RegistryError::Api { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `schema` may be registered as the next version of `subject` under the subject's
    /// compatibility level.
    pub async fn is_compatible(&self, subject: &str, schema: &str) -> Result<bool, RegistryError> {
        let body = SchemaBody {
            schema,
            schema_type: "AVRO",
        };
        let request = self
            .http
            .post(self.url(&["compatibility", "subjects", subject, "versions", "latest"]))
            .header("Content-Type", CONTENT_TYPE)
            .json(&body);
        let CompatibilityBody { is_compatible } = self.send(request).await?;
        Ok(is_compatible)
    }
}

/// Registers every schema of the contract under its subject (`<topic>-value`) and returns the
/// ids. Idempotent: a schema already registered keeps its id. Fails on the first schema the
/// registry refuses, e.g. as incompatible with what the subject already holds.
pub async fn register_contract(
    client: &RegistryClient,
) -> Result<Vec<(crate::SchemaName, u32)>, RegistryError> {
    let mut ids = Vec::new();
    for name in crate::SchemaName::all() {
        let id = client
            .register(&name.subject(), crate::contract::schema_json(name))
            .await?;
        ids.push((name, id));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_subjects_and_keep_base_paths() {
        let client = RegistryClient::new("http://127.0.0.1:8081/registry").unwrap();
        assert_eq!(
            client
                .url(&["subjects", "raw.vehicle-value", "versions"])
                .as_str(),
            "http://127.0.0.1:8081/registry/subjects/raw.vehicle-value/versions"
        );
        assert_eq!(
            client.url(&["subjects", "a/b c"]).as_str(),
            "http://127.0.0.1:8081/registry/subjects/a%2Fb%20c"
        );
        assert!(RegistryClient::new("not a url").is_err());
    }
}

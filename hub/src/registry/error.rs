//! The registry's errors: one variant per Confluent error code, so the HTTP layer can answer in
//! Confluent's shape (`{"error_code": N, "message": "..."}`) and metrics get a stable label.

use axum::http::StatusCode;

/// Why a registry operation failed. Each variant maps to one Confluent error code
/// ([`RegistryError::error_code`]), an HTTP status and a stable metric label
/// ([`RegistryError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The subject has no version (or only soft-deleted ones when those are not asked for).
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound {
        /// The subject asked for.
        subject: String,
    },
    /// The subject exists but not with this version.
    #[error("Version {version} not found.")]
    VersionNotFound {
        /// The version asked for, as the client wrote it.
        version: String,
    },
    /// No schema with this id, or the schema is not registered under the subject.
    #[error("{}", match id { Some(id) => format!("Schema {id} not found"), None => "Schema not found".to_owned() })]
    SchemaNotFound {
        /// The id asked for, when the request named one.
        id: Option<u32>,
    },
    /// The subject is soft-deleted already; only a permanent delete is left.
    #[error("Subject '{subject}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// A permanent delete of a subject that still has live versions.
    #[error("Subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// The version is soft-deleted already; only a permanent delete is left.
    #[error(
        "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// A permanent delete of a version that is not soft-deleted.
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// The subject has no compatibility level of its own.
    #[error("Subject '{subject}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured {
        /// The subject.
        subject: String,
    },
    /// The schema breaks the subject's compatibility level.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", messages.join("; "))]
    IncompatibleSchema {
        /// The subject.
        subject: String,
        /// One message per earlier version the schema is incompatible with.
        messages: Vec<String>,
    },
    /// The schema text is not a valid schema of a supported type.
    #[error("Invalid schema: {reason}")]
    InvalidSchema {
        /// What is wrong with it.
        reason: String,
    },
    /// The version is neither `latest` nor a number in `[1, 2^31-1]`.
    #[error(
        "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion {
        /// The version as the client wrote it.
        version: String,
    },
    /// Not one of Confluent's compatibility levels.
    #[error(
        "Invalid compatibility level '{level}'. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE"
    )]
    InvalidCompatibilityLevel {
        /// The level as the client wrote it.
        level: String,
    },
    /// The subject name is empty or contains control characters.
    #[error("The specified subject '{subject}' is not valid")]
    InvalidSubject {
        /// The subject as the client wrote it, control characters escaped.
        subject: String,
    },
    /// The request body is larger than the server accepts.
    #[error("The request body is too large")]
    TooLarge,
    /// The request is not valid JSON or a query parameter is malformed.
    #[error("{reason}")]
    BadRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The request is JSON but not of the expected shape.
    #[error("{reason}")]
    Unprocessable {
        /// What is wrong with it.
        reason: String,
    },
    /// No such endpoint.
    #[error("HTTP 404 Not Found")]
    NoSuchEndpoint,
    /// The endpoint exists but not with this method.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// Kafka failed (client creation, a request, a transaction) and retrying did not help.
    #[error("Error in the backend data store: {operation}: {source}")]
    Kafka {
        /// What the registry was doing.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The storage topic could not be created.
    #[error("Error in the backend data store: {0}")]
    Topic(#[from] schemas::KafkaError),
    /// The store holds something the registry cannot continue from (e.g. ids exhausted), or its
    /// reader stopped.
    #[error("Error in the backend data store: {reason}")]
    Store {
        /// What is wrong.
        reason: String,
    },
    /// The operation did not finish in time (the store is still loading, or writes kept being
    /// fenced by other replicas).
    #[error("Operation timed out: {operation}")]
    Timeout {
        /// What timed out.
        operation: &'static str,
    },
    /// The registry's metrics could not be registered.
    #[error("cannot register the registry's metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl RegistryError {
    /// Confluent's error code, e.g. 40401 (subject not found) or 409 (incompatible schema).
    pub fn error_code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound { .. } => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaNotFound { .. } => 40403,
            RegistryError::SubjectSoftDeleted { .. } => 40404,
            RegistryError::SubjectNotSoftDeleted { .. } => 40405,
            RegistryError::VersionSoftDeleted { .. } => 40406,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::SubjectCompatibilityNotConfigured { .. } => 40408,
            RegistryError::IncompatibleSchema { .. } => 409,
            RegistryError::InvalidSchema { .. } => 42201,
            RegistryError::InvalidVersion { .. } => 42202,
            RegistryError::InvalidCompatibilityLevel { .. } => 42203,
            RegistryError::InvalidSubject { .. } => 42208,
            RegistryError::TooLarge => 42209,
            RegistryError::BadRequest { .. } => 400,
            RegistryError::Unprocessable { .. } => 422,
            RegistryError::NoSuchEndpoint => 404,
            RegistryError::MethodNotAllowed => 405,
            RegistryError::Kafka { .. }
            | RegistryError::Topic(_)
            | RegistryError::Store { .. }
            | RegistryError::Metrics(_) => 50001,
            RegistryError::Timeout { .. } => 50002,
        }
    }

    /// The HTTP status answering this error: the first three digits of the error code.
    pub fn status(&self) -> StatusCode {
        let code = self.error_code();
        let status = if code >= 1000 { code / 100 } else { code };
        u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A stable, bounded code for logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::SubjectNotFound { .. } => "subject_not_found",
            RegistryError::VersionNotFound { .. } => "version_not_found",
            RegistryError::SchemaNotFound { .. } => "schema_not_found",
            RegistryError::SubjectSoftDeleted { .. } => "subject_soft_deleted",
            RegistryError::SubjectNotSoftDeleted { .. } => "subject_not_soft_deleted",
            RegistryError::VersionSoftDeleted { .. } => "version_soft_deleted",
            RegistryError::VersionNotSoftDeleted { .. } => "version_not_soft_deleted",
            RegistryError::SubjectCompatibilityNotConfigured { .. } => {
                "subject_compatibility_not_configured"
            }
            RegistryError::IncompatibleSchema { .. } => "incompatible_schema",
            RegistryError::InvalidSchema { .. } => "invalid_schema",
            RegistryError::InvalidVersion { .. } => "invalid_version",
            RegistryError::InvalidCompatibilityLevel { .. } => "invalid_compatibility_level",
            RegistryError::InvalidSubject { .. } => "invalid_subject",
            RegistryError::TooLarge => "too_large",
            RegistryError::BadRequest { .. } => "bad_request",
            RegistryError::Unprocessable { .. } => "unprocessable",
            RegistryError::NoSuchEndpoint => "no_such_endpoint",
            RegistryError::MethodNotAllowed => "method_not_allowed",
            RegistryError::Kafka { .. } => "kafka",
            RegistryError::Topic(e) => e.code(),
            RegistryError::Store { .. } => "store",
            RegistryError::Timeout { .. } => "timeout",
            RegistryError::Metrics(_) => "metrics",
        }
    }

    /// Whether the error is the client's (4xx) rather than the registry's (5xx).
    pub fn is_client_error(&self) -> bool {
        self.status().is_client_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_error_codes() {
        let cases = [
            (
                RegistryError::SubjectNotFound {
                    subject: "s".into(),
                },
                404,
                40401,
            ),
            (
                RegistryError::IncompatibleSchema {
                    subject: "s".into(),
                    messages: vec![],
                },
                409,
                409,
            ),
            (
                RegistryError::InvalidSchema { reason: "x".into() },
                422,
                42201,
            ),
            (RegistryError::BadRequest { reason: "x".into() }, 400, 400),
            (RegistryError::Timeout { operation: "x" }, 500, 50002),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.error_code(), code, "{error}");
        }
    }
}

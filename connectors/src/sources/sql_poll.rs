//! `sql_poll`: incremental reads of a PostgreSQL table by an `(updated_at, id)` watermark
//! (keyset pagination: rows changed after the last committed one, oldest first). Each batch is
//! committed with the watermark of its last row. Rows come as `row_to_json`, so any column
//! types map like an HTTP API's fields.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::{Batch, Committer, Context, InstanceError};

/// Settings of a `sql_poll` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlPollConfig {
    /// libpq connection string, e.g. `host=10.0.0.5 port=5432 user=huitong dbname=gwyc`.
    pub connection: String,
    /// The table (or view), optionally schema-qualified: `ledger.vehicles`.
    pub table: String,
    /// Column with the time a row last changed.
    #[serde(default = "default_updated")]
    pub updated_column: String,
    /// Column that orders rows changed at the same time (a primary key).
    #[serde(default = "default_id")]
    pub id_column: String,
}

fn default_updated() -> String {
    "updated_at".to_owned()
}

fn default_id() -> String {
    "id".to_owned()
}

/// A `sql_poll` instance's progress: the watermark of the last committed row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlPollProgress {
    /// `updated_column` of that row, as PostgreSQL prints it.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `id_column` of that row, as text.
    #[serde(default)]
    pub id: Option<String>,
}

/// Double-quotes an identifier (each part of `schema.table`), refusing anything but letters,
/// digits and underscores so that configuration can never inject SQL.
fn identifier(name: &str) -> Result<String, InstanceError> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid = |p: &str| {
        !p.is_empty()
            && p.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    };
    if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
        return Err(InstanceError::SourceSystem(format!(
            "`{name}` is not a plain table or column name"
        )));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

/// The keyset query of a batch.
fn batch_query(source: &SqlPollConfig, limit: usize) -> Result<String, InstanceError> {
    let (table, updated, id) = (
        identifier(&source.table)?,
        identifier(&source.updated_column)?,
        identifier(&source.id_column)?,
    );
    Ok(format!(
        "SELECT row_to_json(t)::text, t.{updated}::text, t.{id}::text, \
         extract(epoch FROM now() - t.{updated})::float8 FROM {table} t \
         WHERE $1::text IS NULL OR (t.{updated}, t.{id}::text) > ($1::timestamptz, $2::text) \
         ORDER BY t.{updated}, t.{id}::text LIMIT {limit}"
    ))
}

/// Reads every row changed after the committed watermark, a batch per transaction.
pub(crate) fn poll(
    context: &Context<'_>,
    source: &SqlPollConfig,
    runtime: &tokio::runtime::Handle,
    committer: &mut Committer<'_, '_>,
) -> Result<(), InstanceError> {
    let query = batch_query(source, context.config.batch_size)?;
    let database =
        |e: tokio_postgres::Error| InstanceError::SourceSystem(format!("PostgreSQL: {e}"));
    let client = runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&source.connection, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok::<_, tokio_postgres::Error>(client)
    });
    let client = client.map_err(database)?;
    let statement = runtime.block_on(client.prepare(&query)).map_err(database)?;
    loop {
        let committed: SqlPollProgress = committer.progress()?;
        let rows = runtime
            .block_on(client.query(&statement, &[&committed.updated_at, &committed.id]))
            .map_err(database)?;
        // The oldest unread change, by the database's clock: how far this instance trails.
        let age: f64 = rows.first().map_or(0.0, |row| row.get(3));
        committer.lag(std::time::Duration::from_secs_f64(age.max(0.0)));
        if rows.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut progress = committed.clone();
        for row in &rows {
            let json: String = row.get(0);
            progress.updated_at = row.get(1);
            progress.id = row.get(2);
            let location = format!(
                "{}#{}",
                source.table,
                progress.id.as_deref().unwrap_or_default()
            );
            let item: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
            out.push(match crate::sources::http_poll::fields(&item) {
                Some(fields) => context.map_row(&fields, &source.table, location)?,
                None => context.quarantine_record(
                    "row_not_object",
                    None,
                    "行不是 JSON 对象 (the row is not a JSON object)".to_owned(),
                    None,
                    location,
                    Some(json.into_bytes()),
                )?,
            });
        }
        let full = rows.len() == context.config.batch_size;
        committer.commit(context, Batch::of(out), &progress)?;
        if !full {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_or_refused() {
        let cases = [
            ("vehicles", Some("\"vehicles\"")),
            ("ledger.vehicles", Some("\"ledger\".\"vehicles\"")),
            ("编制", Some("\"编制\"")),
            ("a;drop table x", None),
            ("a\"b", None),
            ("a.b.c", None),
            ("1abc", None),
        ];
        for (name, expected) in cases {
            assert_eq!(identifier(name).ok().as_deref(), expected, "{name}");
        }
    }
}

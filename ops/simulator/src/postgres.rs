//! The PostgreSQL-backed system: one system's records written into a table that a `sql_poll`
//! connector reads incrementally by `updated_at` and `id`.
//!
//! Table shape: `id bigint primary key` (the record's position + 1, increasing with
//! `updated_at`), `record_id text unique`, one column per system field named as the system names
//! it (quoted; `numeric` for quantities and counts, `text` otherwise), and
//! `updated_at timestamptz not null`, indexed on `(updated_at, id)`.

use crate::systems::{Cell, Record, Simulator};

/// What can go wrong loading a table.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Connecting or a statement failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No system with that id.
    #[error("unknown system {0}")]
    UnknownSystem(String),
}

impl PgError {
    /// Stable code for metrics and exit statuses.
    pub fn code(&self) -> &'static str {
        match self {
            PgError::Postgres(_) => "PG_ERROR",
            PgError::UnknownSystem(_) => "PG_UNKNOWN_SYSTEM",
        }
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Whether a field holds numbers (decided by the field, not by one record's value).
fn numeric(canonical: &str) -> bool {
    canonical.starts_with("cost_")
        || matches!(
            canonical,
            "authorised_staff"
                | "actual_staff"
                | "displacement"
                | "purchase_price"
                | "seats"
                | "latitude"
                | "longitude"
                | "speed_kmh"
                | "heading_deg"
                | "odometer_km"
                | "quota"
                | "actual"
                | "land_area"
                | "total_floor_area"
                | "office_area"
                | "room_count"
                | "electricity"
                | "natural_gas"
                | "gasoline"
                | "diesel"
                | "heat"
                | "total_energy"
                | "water"
                | "energy_users"
                | "building_area"
                | "original_value"
                | "accumulated_depreciation"
                | "net_value"
                | "total"
                | "staff"
        )
}

/// The business columns of a system: `(column name, is numeric)`, without `record_id` and
/// `updated_at`, which have columns of their own.
fn columns(sim: &Simulator, sys: usize) -> Vec<(String, bool)> {
    sim.systems()[sys]
        .fields
        .iter()
        .filter(|f| f.canonical != "record_id" && f.canonical != "updated_at")
        .map(|f| (f.name.clone(), numeric(f.canonical)))
        .collect()
}

/// The `CREATE TABLE` (and index) statements for system `sys` in table `table`.
pub fn create_table_sql(sim: &Simulator, sys: usize, table: &str) -> String {
    let t = quote_ident(table);
    let mut cols = vec![
        "id bigint PRIMARY KEY".to_string(),
        "record_id text NOT NULL UNIQUE".to_string(),
    ];
    for (name, num) in columns(sim, sys) {
        cols.push(format!(
            "{} {}",
            quote_ident(&name),
            if num { "numeric" } else { "text" }
        ));
    }
    cols.push("updated_at timestamptz NOT NULL".to_string());
    let index = quote_ident(&format!("{table}_updated_at_id"));
    format!(
        "CREATE TABLE {t} (\n  {}\n);\nCREATE INDEX {index} ON {t} (updated_at, id);",
        cols.join(",\n  ")
    )
}

/// Rows per INSERT statement (keeps parameters well under PostgreSQL's 65,535).
const BATCH: usize = 500;

/// (Re)creates `table` and writes every record of system `system_id` into it; returns the number
/// of rows. `conninfo` is a libpq-style string or URL (`host=127.0.0.1 port=5432 user=…`).
pub async fn load(
    sim: &Simulator,
    system_id: &str,
    conninfo: &str,
    table: &str,
) -> Result<u64, PgError> {
    let (sys, _) = sim
        .system(system_id)
        .ok_or_else(|| PgError::UnknownSystem(system_id.to_string()))?;
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    let conn = tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {};", quote_ident(table)))
        .await?;
    client
        .batch_execute(&create_table_sql(sim, sys, table))
        .await?;
    let cols = columns(sim, sys);
    let total = sim.len(sys);
    let mut written = 0;
    let mut start = 0;
    while start < total {
        let end = (start + BATCH).min(total);
        let records = sim.records(sys, start..end);
        written += insert(&client, table, &cols, start, &records).await?;
        start = end;
    }
    drop(client);
    let _ = conn.await;
    Ok(written)
}

async fn insert(
    client: &tokio_postgres::Client,
    table: &str,
    cols: &[(String, bool)],
    first_pos: usize,
    records: &[Record],
) -> Result<u64, PgError> {
    let mut names = vec!["id".to_string(), "record_id".to_string()];
    names.extend(cols.iter().map(|(n, _)| quote_ident(n)));
    names.push("updated_at".to_string());
    let mut values: Vec<Option<String>> = Vec::new();
    let mut rows = Vec::new();
    for (k, r) in records.iter().enumerate() {
        let mut placeholders = Vec::new();
        let mut push = |v: Option<String>, cast: &str| {
            values.push(v);
            placeholders.push(format!("CAST(${}::text AS {cast})", values.len()));
        };
        push(Some((first_pos + k + 1).to_string()), "bigint");
        push(Some(r.id.clone()), "text");
        // Cells: [record_id, business fields…, updated_at].
        for ((_, num), cell) in cols.iter().zip(&r.cells[1..r.cells.len() - 1]) {
            let v = match cell {
                Cell::Null => None,
                c => Some(c.text()),
            };
            push(v, if *num { "numeric" } else { "text" });
        }
        push(Some(crate::systems::rfc3339(r.updated_at)), "timestamptz");
        rows.push(format!("({})", placeholders.join(", ")));
    }
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        quote_ident(table),
        names.join(", "),
        rows.join(", ")
    );
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    Ok(client.execute(&sql, &params).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Size, World};

    fn postgres_system(sim: &Simulator) -> usize {
        sim.systems()
            .iter()
            .position(|s| s.protocol == crate::systems::Protocol::Postgres)
            .unwrap()
    }

    #[test]
    fn create_table_statement() {
        let sim = Simulator::new(World::new(1, Size::Tiny));
        let sql = create_table_sql(&sim, postgres_system(&sim), "cq_quota");
        assert!(sql.starts_with("CREATE TABLE \"cq_quota\" (\n  id bigint PRIMARY KEY,\n  record_id text NOT NULL UNIQUE,"));
        assert!(
            sql.contains("\"quota\" numeric") && sql.contains("\"creditCode\" text"),
            "{sql}"
        );
        assert!(
            sql.contains("updated_at timestamptz NOT NULL") && sql.contains("(updated_at, id)")
        );
    }

    /// Needs a real PostgreSQL server: `ops/dev test` starts one and sets `HUITONG_PG_URL`
    /// (e.g. `host=127.0.0.1 port=5432 user=postgres`). Without it the test fails.
    #[tokio::test]
    async fn loads_the_postgres_system_into_a_real_server() {
        let url = std::env::var("HUITONG_PG_URL").expect(
            "HUITONG_PG_URL is not set: run the tests with `ops/dev test`, which starts PostgreSQL",
        );
        let sim = Simulator::new(World::new(2, Size::Tiny));
        let sys = postgres_system(&sim);
        let id = sim.systems()[sys].id.clone();
        let table = format!("sim_test_{}", std::process::id());
        let n = load(&sim, &id, &url, &table).await.unwrap();
        assert_eq!(n as usize, sim.len(sys));
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let rows = client
            .query(
                &format!(
                    "SELECT record_id, id, \"quota\"::text FROM {table} ORDER BY updated_at, id"
                ),
                &[],
            )
            .await
            .unwrap();
        let mut want = Vec::new();
        sim.for_each_record(sys, |r| want.push(r.id));
        let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(got, want);
        let ids: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "id grows with updated_at"
        );
        client
            .batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }
}

//! The embedded migrations of [`super::PgStore`] and how they are applied.
//!
//! The SQL lives in `account-server/migrations/NNNN_name.sql` and is compiled into the binary. At every start,
//! [`migrate`] takes a transaction-scoped advisory lock (so account servers starting together apply each migration
//! once), creates the version table `movan_schema` if missing, and applies, in order and in that one transaction,
//! every migration newer than the newest recorded, recording each. Applied migrations are never edited: a change to
//! the schema is a new file.

use tracing::info;

/// Every migration: version, name, SQL. Versions are 1, 2, 3, ... in order.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "initial", include_str!("../../../migrations/0001_initial.sql"))];

/// Key of the advisory lock held while migrating ("movan" in ASCII).
const LOCK_KEY: i64 = 0x6d_6f_76_61_6e;

/// The schema cannot be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database failed, or a migration's SQL did.
    #[error("applying the schema migrations: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer account server.
    #[error(
        "the database's schema is version {found}, newer than this account server knows ({known}): run a newer \
         account server"
    )]
    TooNew {
        /// The newest version recorded in `movan_schema`.
        found: i32,
        /// The newest version in [`MIGRATIONS`].
        known: i32,
    },
}

/// Applies the migrations the database lacks; returns the schema version it has now.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<i32, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS movan_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let found: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM movan_schema", &[]).await?.get(0);
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if found > known {
        return Err(MigrateError::TooNew { found, known });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(version, _, _)| *version > found) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO movan_schema (version, name) VALUES ($1, $2)", &[version, name]).await?;
        info!(version, name, "applied PostgreSQL schema migration");
    }
    tx.commit().await?;
    Ok(known)
}

//! The log database: SQLite or PostgreSQL through `sqlx`, one schema (see `migrations/`),
//! batched inserts, filtered queries with cursor pagination, stats, retention.
//!
//! SQL is written once and rendered per backend (`?` or `$n` placeholders, `LIKE` or
//! `ILIKE`); values are always bound, never spliced. No `sqlx` macros: they would build both
//! database drivers a second time for the proc-macro host.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlStr};

use crate::config::StoreConfig;
use crate::entry::LogEntry;

/// The table every entry goes to.
pub const TABLE: &str = "bifrost_logs";
/// Our own migrations table, so a database shared with other apps' `sqlx` migrations (or
/// Bifrost's config store) does not mix histories.
const MIGRATIONS_TABLE: &str = "bifrost_logs_migrations";

/// Columns written per entry, in insert order.
const COLUMNS: &str = "id, started_at, ended_at, transport, object_type, stream, provider, \
    model, fallback_chain, fallback_index, retries, status, status_code, latency_us, ttft_us, \
    prompt_tokens, completion_tokens, total_tokens, input, output, error, error_type, key_id, \
    virtual_key, user_id";
const N_COLUMNS: usize = 25;
/// Rows per INSERT statement: 25 columns × 400 stays under SQLite's 32,766 variables.
const ROWS_PER_STATEMENT: usize = 400;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migrating the log schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite file's directory could not be created.
    #[error("creating {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Connecting took longer than allowed.
    #[error("connecting to the log store timed out after {0:?}")]
    Timeout(Duration),
}

/// An open log database.
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A bound value.
#[derive(Debug, Clone)]
enum Arg {
    I(i64),
    OptI(Option<i64>),
    T(String),
    OptT(Option<String>),
}

/// SQL text with its values, rendered for one backend.
struct Sql {
    text: String,
    args: Vec<Arg>,
    pg: bool,
}

impl Sql {
    fn new(pg: bool, text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
            pg,
        }
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn arg(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        if self.pg {
            let _ = write!(self.text, "${}", self.args.len());
        } else {
            self.text.push('?');
        }
        self
    }

    fn like(&self) -> &'static str {
        if self.pg { "ILIKE" } else { "LIKE" }
    }
}

macro_rules! bound {
    ($sql:expr) => {{
        let Sql { text, args, .. } = $sql;
        let mut q = sqlx::query(AssertSqlSafe(text));
        for a in args {
            q = match a {
                Arg::I(v) => q.bind(v),
                Arg::OptI(v) => q.bind(v),
                Arg::T(v) => q.bind(v),
                Arg::OptT(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Runs `$body` with `$pool` bound to the concrete pool (the body compiles once per backend).
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

macro_rules! record {
    ($row:expr) => {{
        let r = &$row;
        let chain: String = r.try_get("fallback_chain")?;
        LogRecord {
            seq: r.try_get("seq")?,
            entry: LogEntry {
                id: r.try_get("id")?,
                started_at_ms: r.try_get("started_at")?,
                ended_at_ms: r.try_get("ended_at")?,
                transport: r.try_get("transport")?,
                object_type: r.try_get("object_type")?,
                stream: r.try_get::<i64, _>("stream")? != 0,
                provider: r.try_get("provider")?,
                model: r.try_get("model")?,
                fallback_chain: serde_json::from_str(&chain).unwrap_or_default(),
                fallback_index: r.try_get("fallback_index")?,
                retries: r.try_get("retries")?,
                status: r.try_get("status")?,
                status_code: r.try_get("status_code")?,
                latency_us: r.try_get("latency_us")?,
                ttft_us: r.try_get("ttft_us")?,
                prompt_tokens: r.try_get("prompt_tokens")?,
                completion_tokens: r.try_get("completion_tokens")?,
                total_tokens: r.try_get("total_tokens")?,
                input: r.try_get("input")?,
                output: r.try_get("output")?,
                error: r.try_get("error")?,
                error_type: r.try_get("error_type")?,
                key_id: r.try_get("key_id")?,
                virtual_key: r.try_get("virtual_key")?,
                user: r.try_get("user_id")?,
            },
        }
    }};
}

/// A stored entry with its position (the pagination cursor).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Insertion order; pages go from newest to oldest by it.
    pub seq: i64,
    /// The entry.
    pub entry: LogEntry,
}

/// What `GET /api/logs` and `/stats` filter on; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// Started at or after (Unix ms).
    pub start_ms: Option<i64>,
    /// Started before or at (Unix ms).
    pub end_ms: Option<i64>,
    /// Any of these providers.
    pub providers: Vec<String>,
    /// Any of these models.
    pub models: Vec<String>,
    /// `success` or `error`.
    pub status: Option<String>,
    /// Any of these (masked) virtual keys.
    pub virtual_keys: Vec<String>,
    /// `http` or `grpc`.
    pub transport: Option<String>,
    /// Text that input, output or error contains (case-insensitive for ASCII).
    pub search: Option<String>,
    /// This request id.
    pub id: Option<String>,
}

impl LogFilter {
    fn push_where(&self, sql: &mut Sql) {
        sql.push(" WHERE 1 = 1");
        if let Some(t) = self.start_ms {
            sql.push(" AND started_at >= ").arg(Arg::I(t));
        }
        if let Some(t) = self.end_ms {
            sql.push(" AND started_at <= ").arg(Arg::I(t));
        }
        for (col, values) in [
            ("provider", &self.providers),
            ("model", &self.models),
            ("virtual_key", &self.virtual_keys),
        ] {
            if values.is_empty() {
                continue;
            }
            sql.push(" AND ").push(col).push(" IN (");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.arg(Arg::T(v.clone()));
            }
            sql.push(")");
        }
        for (col, value) in [
            ("status", &self.status),
            ("transport", &self.transport),
            ("id", &self.id),
        ] {
            if let Some(v) = value {
                sql.push(" AND ")
                    .push(col)
                    .push(" = ")
                    .arg(Arg::T(v.clone()));
            }
        }
        if let Some(q) = self.search.as_deref().filter(|q| !q.is_empty()) {
            let mut pattern = String::with_capacity(q.len() + 2);
            pattern.push('%');
            for c in q.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            let like = sql.like();
            sql.push(" AND (");
            for (i, col) in ["input", "output", "error"].into_iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push(col).push(" ").push(like).push(" ");
                sql.arg(Arg::T(pattern.clone())).push(" ESCAPE '\\'");
            }
            sql.push(")");
        }
    }
}

/// Aggregates over the filtered entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogStats {
    /// Entries.
    pub total: i64,
    /// Entries with status `success`.
    pub success: i64,
    /// Entries with status `error`.
    pub errors: i64,
    /// `errors / total` (0 without entries).
    pub error_rate: f64,
    /// Latency, milliseconds.
    pub latency_ms: Percentiles,
    /// Average time to first token over streams, milliseconds.
    pub avg_ttft_ms: Option<f64>,
    /// Token sums.
    pub tokens: TokenSums,
    /// Cost in USD: `null`, as this build has no price list.
    pub cost: Option<f64>,
    /// Counts per provider, most used first.
    pub providers: Vec<ProviderCount>,
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Token sums over entries that reported usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenSums {
    /// Input tokens.
    pub prompt: i64,
    /// Output tokens.
    pub completion: i64,
    /// Both.
    pub total: i64,
}

/// One provider's share.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderCount {
    /// The provider.
    pub provider: String,
    /// Its entries.
    pub count: i64,
    /// Its errors.
    pub errors: i64,
}

fn migrator(pg: bool) -> Migrator {
    let sql = if pg {
        include_str!("../migrations/postgres/0001_logs.sql")
    } else {
        include_str!("../migrations/sqlite/0001_logs.sql")
    };
    let mut m = Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("logs"),
        MigrationType::Simple,
        SqlStr::from_static(sql),
        false,
    )]);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

impl Db {
    /// Opens the store (creating the SQLite file and its directory when missing) and brings
    /// the schema up to date. Several replicas migrating one PostgreSQL database at once
    /// are serialized by `sqlx`'s advisory lock.
    pub async fn connect(cfg: &StoreConfig, timeout: Duration) -> Result<Self, StoreError> {
        let db = match tokio::time::timeout(timeout, Self::open(cfg, timeout)).await {
            Ok(db) => db?,
            Err(_) => return Err(StoreError::Timeout(timeout)),
        };
        match &db {
            Db::Sqlite(p) => migrator(false).run(p).await?,
            Db::Postgres(p) => migrator(true).run(p).await?,
        }
        Ok(db)
    }

    async fn open(cfg: &StoreConfig, timeout: Duration) -> Result<Self, StoreError> {
        match cfg {
            StoreConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|source| StoreError::Dir {
                            path: dir.to_owned(),
                            source,
                        })?;
                }
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(timeout)
                    .connect_with(opts)
                    .await?;
                Ok(Db::Sqlite(pool))
            }
            StoreConfig::Postgres {
                url,
                max_connections,
            } => {
                let opts: PgConnectOptions = url.parse()?;
                let pool = PgPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(timeout)
                    .connect_with(opts)
                    .await?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    fn pg(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Writes `entries` in one transaction (multi-row INSERTs).
    pub async fn insert(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let statements: Vec<Sql> = entries
            .chunks(ROWS_PER_STATEMENT)
            .map(|chunk| self.insert_sql(chunk))
            .collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for sql in statements {
                bound!(sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    fn insert_sql(&self, rows: &[LogEntry]) -> Sql {
        let mut sql = Sql::new(self.pg(), "INSERT INTO ");
        sql.push(TABLE).push(" (").push(COLUMNS).push(") VALUES ");
        sql.args.reserve(rows.len() * N_COLUMNS);
        for (i, e) in rows.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            let args = [
                Arg::T(e.id.clone()),
                Arg::I(e.started_at_ms),
                Arg::I(e.ended_at_ms),
                Arg::T(e.transport.clone()),
                Arg::T(e.object_type.clone()),
                Arg::I(i64::from(e.stream)),
                Arg::T(e.provider.clone()),
                Arg::T(e.model.clone()),
                Arg::T(serde_json::to_string(&e.fallback_chain).unwrap_or_else(|_| "[]".into())),
                Arg::OptI(e.fallback_index),
                Arg::I(e.retries),
                Arg::T(e.status.clone()),
                Arg::OptI(e.status_code),
                Arg::I(e.latency_us),
                Arg::OptI(e.ttft_us),
                Arg::OptI(e.prompt_tokens),
                Arg::OptI(e.completion_tokens),
                Arg::OptI(e.total_tokens),
                Arg::OptT(e.input.clone()),
                Arg::OptT(e.output.clone()),
                Arg::OptT(e.error.clone()),
                Arg::OptT(e.error_type.clone()),
                Arg::OptT(e.key_id.clone()),
                Arg::OptT(e.virtual_key.clone()),
                Arg::OptT(e.user.clone()),
            ];
            for (j, a) in args.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.arg(a);
            }
            sql.push(")");
        }
        sql
    }

    /// One page of entries, newest first: those before `cursor` (a `seq`) matching
    /// `filter`, at most `limit`, and whether more follow.
    pub async fn list(
        &self,
        filter: &LogFilter,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<LogRecord>, bool), StoreError> {
        let mut sql = Sql::new(self.pg(), "SELECT seq, ");
        sql.push(COLUMNS).push(" FROM ").push(TABLE);
        filter.push_where(&mut sql);
        if let Some(c) = cursor {
            sql.push(" AND seq < ").arg(Arg::I(c));
        }
        sql.push(" ORDER BY seq DESC LIMIT ")
            .arg(Arg::I(i64::from(limit) + 1));
        let mut out = with_pool!(self, pool => {
            let rows = bound!(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(record!(row));
            }
            out
        });
        let more = out.len() > limit as usize;
        out.truncate(limit as usize);
        Ok((out, more))
    }

    /// Aggregates over the entries matching `filter`.
    pub async fn stats(&self, filter: &LogFilter) -> Result<LogStats, StoreError> {
        let mut sql = Sql::new(
            self.pg(),
            "SELECT COUNT(*) AS total, \
             CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
             CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt, \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion, \
             CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS tokens, \
             CAST(COALESCE(AVG(latency_us), 0) AS DOUBLE PRECISION) AS avg_latency, \
             CAST(AVG(ttft_us) AS DOUBLE PRECISION) AS avg_ttft FROM ",
        );
        sql.push(TABLE);
        filter.push_where(&mut sql);
        let mut stats = with_pool!(self, pool => {
            let r = bound!(sql).fetch_one(pool).await?;
            let total: i64 = r.try_get("total")?;
            let errors: i64 = r.try_get("errors")?;
            let avg: f64 = r.try_get("avg_latency")?;
            let ttft: Option<f64> = r.try_get("avg_ttft")?;
            LogStats {
                total,
                success: total - errors,
                errors,
                error_rate: if total > 0 { errors as f64 / total as f64 } else { 0.0 },
                latency_ms: Percentiles { avg: avg / 1000.0, ..Percentiles::default() },
                avg_ttft_ms: ttft.map(|t| t / 1000.0),
                tokens: TokenSums {
                    prompt: r.try_get("prompt")?,
                    completion: r.try_get("completion")?,
                    total: r.try_get("tokens")?,
                },
                cost: None,
                providers: Vec::new(),
            }
        });
        if stats.total > 0 {
            let n = stats.total;
            let mut values = [0.0; 4];
            for (slot, p) in values.iter_mut().zip([0.50, 0.90, 0.95, 0.99]) {
                // Nearest rank on the sorted latencies.
                let rank = ((p * n as f64).ceil() as i64).clamp(1, n) - 1;
                let mut sql = Sql::new(self.pg(), "SELECT latency_us FROM ");
                sql.push(TABLE);
                filter.push_where(&mut sql);
                sql.push(" ORDER BY latency_us LIMIT 1 OFFSET ")
                    .arg(Arg::I(rank));
                let us: Option<i64> = with_pool!(self, pool => {
                    match bound!(sql).fetch_optional(pool).await? {
                        Some(r) => Some(r.try_get("latency_us")?),
                        None => None,
                    }
                });
                *slot = us.unwrap_or(0) as f64 / 1000.0;
            }
            let l = &mut stats.latency_ms;
            (l.p50, l.p90, l.p95, l.p99) = (values[0], values[1], values[2], values[3]);
            let mut sql = Sql::new(
                self.pg(),
                "SELECT provider, COUNT(*) AS n, \
                 CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors FROM ",
            );
            sql.push(TABLE);
            filter.push_where(&mut sql);
            sql.push(" GROUP BY provider ORDER BY n DESC, provider LIMIT 50");
            stats.providers = with_pool!(self, pool => {
                let rows = bound!(sql).fetch_all(pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(ProviderCount {
                        provider: r.try_get("provider")?,
                        count: r.try_get("n")?,
                        errors: r.try_get("errors")?,
                    });
                }
                out
            });
        }
        Ok(stats)
    }

    /// Deletes entries that started before `older_than_ms`, then the oldest beyond
    /// `max_rows`; returns how many went.
    pub async fn retain(
        &self,
        older_than_ms: Option<i64>,
        max_rows: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        if let Some(t) = older_than_ms {
            let mut sql = Sql::new(self.pg(), "DELETE FROM ");
            sql.push(TABLE).push(" WHERE started_at < ").arg(Arg::I(t));
            removed += with_pool!(self, pool => bound!(sql).execute(pool).await?.rows_affected());
        }
        if let Some(max) = max_rows {
            let mut sql = Sql::new(self.pg(), "DELETE FROM ");
            sql.push(TABLE)
                .push(" WHERE seq <= (SELECT seq FROM ")
                .push(TABLE)
                .push(" ORDER BY seq DESC LIMIT 1 OFFSET ")
                .arg(Arg::I(i64::try_from(max).unwrap_or(i64::MAX)))
                .push(")");
            removed += with_pool!(self, pool => bound!(sql).execute(pool).await?.rows_affected());
        }
        Ok(removed)
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}

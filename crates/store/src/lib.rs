//! A module's own database: [`Db`] opens it (one SQLite file per module, WAL mode; later a
//! PostgreSQL database per module), applies the module's embedded migrations, and hands out
//! transactions that behave the same on both engines.
//!
//! Modules write portable SQL for sqlx's runtime `query`/`query_as` with `$N` placeholders,
//! through the `Any` driver: ids are `TEXT` (UUID strings), timestamps `BIGINT` epoch
//! milliseconds, money `BIGINT` minor units, so one query text runs on SQLite and PostgreSQL.
//! This crate knows no module and no schema.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
pub use sqlx;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which engine a [`Db`] talks to; decides the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a committed transaction of a SQLite database survives: SQLite's `synchronous`
/// setting in WAL mode (<https://www.sqlite.org/pragma.html#pragma_synchronous>). Either
/// way the file stays consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `FULL`: a power loss too; each commit waits for the disk. What a module
    /// acknowledges lives here.
    Full,
    /// `NORMAL`: a crash of the process, but the last commits may roll back after a power
    /// loss or an OS crash; commits wait only for checkpoints. For what may be lost, such
    /// as traces.
    Normal,
}

/// A handle to one module's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Writers of this process queue here instead of on
    /// SQLite's busy handler, which polls with sleeps of up to 100 ms: under contention
    /// that, not the disk, would bound the write rate.
    write_lock: Arc<Mutex<()>>,
    /// On PostgreSQL, the advisory lock that write transactions of this module take (see
    /// [`Db::begin_write`]).
    write_key: i64,
    /// The SQLite file, whose hidden sibling `.<name>.migrate-lock` file serialises migrations across
    /// processes (sqlx locks migrations on PostgreSQL only).
    file: Option<Arc<Path>>,
    /// OpenTelemetry's `db.namespace`: the SQLite file's stem, or the PostgreSQL schema.
    namespace: Arc<str>,
}

/// A write transaction. Derefs to the connection, so `&mut *tx` is an executor; ends with
/// [`Tx::commit`], or rolls back when dropped.
pub struct Tx {
    // Declared first so it is dropped (rolled back) before the write lock is released.
    tx: Transaction<'static, Any>,
    _write_lock: Option<OwnedMutexGuard<()>>,
    /// The transaction's span (OpenTelemetry database conventions), from the wait for the
    /// write lock to the commit or rollback: a trace shows where writes queue.
    span: tracing::Span,
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let span = self.span.clone();
        let result = self.tx.commit().await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Opens (creating if missing) the SQLite database at `path` in WAL mode, with
    /// [`Durability::Full`].
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Db> {
        Db::open_sqlite_with(path, Durability::Full).await
    }

    /// Opens (creating if missing) the SQLite database at `path` in WAL mode, each
    /// commit as durable as `durability` says.
    pub async fn open_sqlite_with(path: &Path, durability: Durability) -> anyhow::Result<Db> {
        install_default_drivers();
        let text = path.to_str().context("database path is not valid UTF-8")?;
        // The SQLite URL form percent-decodes the path, so the characters that would be
        // read as escapes, a query or a fragment are encoded.
        let escaped = text.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
        let url = format!("sqlite://{escaped}?mode=rwc");
        // SQLite gives its -wal and -shm files the database file's mode: creating the file
        // 0600 first keeps all three private (they hold password hashes and orders).
        private_file(path)
            .with_context(|| format!("cannot create SQLite database {}", path.display()))?;
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time; a handful of connections serve concurrent
            // readers (WAL) without piling up writers on the busy timeout.
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            // `synchronous` belongs to a connection, not to the file.
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let pragma = match durability {
                        Durability::Full => "PRAGMA synchronous = FULL",
                        Durability::Normal => "PRAGMA synchronous = NORMAL",
                    };
                    sqlx::query(pragma).execute(conn).await.map(drop)
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        use_wal(&pool).await.context("cannot switch SQLite to WAL mode")?;
        Ok(Db {
            pool,
            backend: Backend::Sqlite,
            write_lock: Arc::new(Mutex::new(())),
            write_key: 0,
            file: Some(Arc::from(path)),
            namespace: Arc::from(path.file_stem().and_then(|s| s.to_str()).unwrap_or("sqlite")),
        })
    }

    /// Opens the schema `schema` (created if missing) of the PostgreSQL database at `url`
    /// (created too if missing, when the user may). Every connection of the pool works in
    /// that schema only, so a module's SQL names its tables unqualified, as on SQLite.
    pub async fn open_postgres(url: &str, schema: &str) -> anyhow::Result<Db> {
        install_default_drivers();
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        anyhow::ensure!(ok(schema), "bad schema name {schema:?}");
        ensure_database(url).await?;
        let quoted = format!("\"{schema}\"");
        let setup = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL for schema {schema}"))?;
        let created =
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {quoted}")))
                .execute(&setup)
                .await;
        setup.close().await;
        match created {
            // Two processes creating it at once: one wins, the other sees the catalog's
            // unique index.
            Err(e) if !is_unique_violation(&e) => {
                return Err(e).with_context(|| format!("cannot create schema {schema}"));
            }
            _ => {}
        }
        let search_path = format!("SET search_path TO {quoted}");
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                let sql = search_path.clone();
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(conn).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL for schema {schema}"))?;
        Ok(Db {
            pool,
            backend: Backend::Postgres,
            write_lock: Arc::new(Mutex::new(())),
            write_key: lock_key(schema),
            file: None,
            namespace: Arc::from(schema),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the module's migrations (idempotent; records what ran). Processes that
    /// share a database (replicas, the embedded bus) take turns.
    pub async fn migrate(&self, migrator: &Migrator) -> anyhow::Result<()> {
        let _lock = match &self.file {
            Some(file) => {
                let name = file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                Some(lock_file(file.with_file_name(format!(".{name}.migrate-lock"))).await?)
            }
            None => None,
        };
        migrator.run(&self.pool).await.context("database migration failed")?;
        Ok(())
    }

    /// Starts a transaction that is going to write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes can
    /// fail with `SQLITE_BUSY` without waiting when another writer committed in between.
    ///
    /// Do not begin a second write transaction on the same `Db` while holding one: on
    /// SQLite the second waits for the first.
    ///
    /// Inside a span (a request, a delivery, a job), the transaction is a span of its own:
    /// background work outside any (a relay's or a dispatcher's polling) makes no traces.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        if tracing::Span::current().is_none() {
            return self.begin_write_untraced().await;
        }
        let span = tracing::info_span!(
            "db.transaction",
            otel.name = %format!("TRANSACTION {}", self.namespace),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = match self.backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgresql",
            },
            db.namespace = &*self.namespace,
            db.operation.name = "TRANSACTION",
        );
        let tx = self.begin_write_untraced().await;
        match tx {
            Ok(tx) => Ok(Tx { span, ..tx }),
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                Err(e)
            }
        }
    }

    /// [`Db::begin_write`] without a span, for writes that must not make spans: the trace
    /// store's own (each would be a span to store, without end).
    pub async fn begin_write_untraced(&self) -> Result<Tx, sqlx::Error> {
        let span = tracing::Span::none();
        match self.backend {
            Backend::Sqlite => {
                let guard = self.write_lock.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(Tx { tx, _write_lock: Some(guard), span })
            }
            Backend::Postgres => {
                // The modules were written for one writer at a time (check, then change, in
                // one transaction). A transaction-scoped advisory lock per module keeps that
                // true on PostgreSQL, across processes too, without touching any query;
                // readers never wait for it.
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(self.write_key)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx { tx, _write_lock: None, span })
            }
        }
    }

    /// A trivial query, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The advisory lock key of a schema: a stable 64-bit FNV-1a hash of its name.
fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "microlith:".bytes().chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Creates the database named in `url` if it does not exist, from the server's `postgres`
/// maintenance database. A user who may not create databases gets a clear error only if the
/// database is really missing.
async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let (base, rest) = url.split_at(url.find("://").map_or(0, |i| i + 3));
    let slash = rest.find('/').context("the PostgreSQL URL names no database")?;
    let (authority, path) = rest.split_at(slash);
    let (name, query) = match path[1..].split_once('?') {
        Some((n, q)) => (n, format!("?{q}")),
        None => (&path[1..], String::new()),
    };
    anyhow::ensure!(
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "the database name {name:?} must be letters, digits, _ and -"
    );
    if name == "postgres" {
        return Ok(());
    }
    let maintenance = format!("{base}{authority}/postgres{query}");
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&maintenance)
        .await
        .context("cannot connect to PostgreSQL")?;
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&pool)
        .await?
        .is_some();
    if !exists {
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await;
        if let Err(e) = created {
            // 42P04: created by another process meanwhile.
            let raced = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "42P04");
            if !raced && !is_unique_violation(&e) {
                pool.close().await;
                return Err(e).with_context(|| format!("cannot create database {name}"));
            }
        }
    }
    pool.close().await;
    Ok(())
}

/// An exclusive lock on `path` (created if missing), held until the file is dropped.
async fn lock_file(path: PathBuf) -> anyhow::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file =
            options.open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(file)
    })
    .await?
}

/// One page of a user's rows, newest first, by keyset on the time-ordered text `id`
/// (UUID v7): `select` is `SELECT … FROM <table>` of a table with `id` and `user_id`
/// columns; `after` is the last id of the previous page. Returns at most `limit` rows and
/// whether more follow.
pub async fn newest_first_for_user(
    db: &Db,
    select: &'static str,
    user: &str,
    limit: u32,
    after: Option<&str>,
) -> Result<(Vec<sqlx::any::AnyRow>, bool), sqlx::Error> {
    newest_first_for_users(db, select, &[user], limit, after).await
}

/// [`newest_first_for_user`] over the rows of any of `users` (at most 8).
pub async fn newest_first_for_users(
    db: &Db,
    select: &'static str,
    users: &[&str],
    limit: u32,
    after: Option<&str>,
) -> Result<(Vec<sqlx::any::AnyRow>, bool), sqlx::Error> {
    if users.is_empty() || users.len() > 8 {
        return Err(sqlx::Error::Protocol(format!("{} users in one listing", users.len())));
    }
    let take = i64::from(limit);
    let params: Vec<String> = (1..=users.len()).map(|i| format!("${i}")).collect();
    let mut sql = format!("{select} WHERE user_id IN ({})", params.join(", "));
    let mut next = users.len() + 1;
    if after.is_some() {
        sql.push_str(&format!(" AND id < ${next}"));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
    // Only placeholders are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for user in users {
        query = query.bind(*user);
    }
    if let Some(after) = after {
        query = query.bind(after);
    }
    let mut rows = query.bind(take + 1).fetch_all(&db.pool).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// Whether `e` is a unique-constraint violation (e.g. an email already registered).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// Creates `path` empty with mode 0600 if it is missing; leaves an existing file as it is.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

/// Puts the SQLite file of `pool` in WAL mode (a property of the file: set once, every
/// later connection uses it). SQLite answers "database is locked" at once, without its
/// busy handler, while another process (a second replica starting beside this one) holds
/// the file: so it is tried again, for up to [`WAL_SWITCH_WAIT`].
async fn use_wal(pool: &sqlx::AnyPool) -> Result<(), sqlx::Error> {
    let started = std::time::Instant::now();
    loop {
        let mode: Result<(String,), sqlx::Error> =
            sqlx::query_as("PRAGMA journal_mode=WAL").fetch_one(pool).await;
        match mode {
            Ok(_) => return Ok(()),
            Err(e) if is_busy(&e) && started.elapsed() < WAL_SWITCH_WAIT => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long opening a SQLite database waits for other processes to let go of it.
const WAL_SWITCH_WAIT: Duration = Duration::from_secs(10);

/// Whether `e` is SQLite's SQLITE_BUSY or SQLITE_LOCKED (primary codes 5 and 6, with their
/// extended codes).
fn is_busy(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else { return false };
    db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Openers of one new file at once all open it. CI once saw a second cart replica
    /// stop at start with `database is locked` from the WAL switch (SQLite refuses, without
    /// waiting, one of two connections that both hold the file and want it exclusively);
    /// this does not reproduce that race every time, it guards the path.
    #[tokio::test]
    async fn many_opening_one_new_database_at_once_all_open_it() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let path = dir.path().join(format!("shared-{round}.db"));
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(async move { Db::open_sqlite(&path).await.map(|_| ()) })
                })
                .collect();
            for open in opens {
                open.await.unwrap().expect("every opener gets the database");
            }
        }
    }

    /// The PostgreSQL server of the tests (`MICROLITH_TEST_PG`, default the local one);
    /// `None` with a notice on the terminal when unreachable, except under `CI`.
    async fn test_postgres() -> Option<String> {
        let url = std::env::var("MICROLITH_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect(&url);
        match tokio::time::timeout(std::time::Duration::from_secs(3), pool).await {
            Ok(Ok(pool)) => {
                pool.close().await;
                Some(url)
            }
            _ if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {url} is required under CI")
            }
            _ => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "notice: skipped, PostgreSQL at {url} is unreachable"
                );
                None
            }
        }
    }

    /// Two handles on one module's schema (two processes of it) run read-then-write
    /// transactions at once: the advisory lock makes them serial, so no update is lost
    /// (under READ COMMITTED alone, two would read the same value).
    #[tokio::test]
    async fn postgres_write_transactions_of_a_module_are_serial() {
        use sqlx::Row as _;
        let Some(url) = test_postgres().await else { return };
        let schema = format!("t{}", uuid::Uuid::new_v4().simple());
        let (a, b) = (
            Db::open_postgres(&url, &schema).await.unwrap(),
            Db::open_postgres(&url, &schema).await.unwrap(),
        );
        sqlx::query("CREATE TABLE counter (n BIGINT NOT NULL)").execute(a.pool()).await.unwrap();
        sqlx::query("INSERT INTO counter (n) VALUES (0)").execute(a.pool()).await.unwrap();
        let bump = async |db: Db| {
            for _ in 0..20 {
                let mut tx = db.begin_write().await.unwrap();
                let n: i64 = sqlx::query("SELECT n FROM counter")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap()
                    .get("n");
                tokio::task::yield_now().await; // let the other writer in, if it could
                sqlx::query("UPDATE counter SET n = $1")
                    .bind(n + 1)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        };
        tokio::join!(bump(a.clone()), bump(b.clone()));
        let n: i64 =
            sqlx::query("SELECT n FROM counter").fetch_one(a.pool()).await.unwrap().get("n");
        assert_eq!(n, 40, "every read-then-write counted once");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .execute(a.pool())
            .await
            .unwrap();
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn opens_in_wal_mode_and_survives_odd_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd name ?#%.db");
        let db = Db::open_sqlite(&path).await.unwrap();
        let (mode,): (String,) =
            sqlx::query_as("PRAGMA journal_mode").fetch_one(db.pool()).await.unwrap();
        assert_eq!(mode, "wal");
        assert!(path.exists());
        db.ping().await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY)").execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO t (id) VALUES ($1)").bind("a").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let err = sqlx::query("INSERT INTO t (id) VALUES ($1)")
            .bind("a")
            .execute(db.pool())
            .await
            .unwrap_err();
        assert!(is_unique_violation(&err));
    }
}

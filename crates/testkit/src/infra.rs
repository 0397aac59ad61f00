//! The outside services tests use: the NATS server and PostgreSQL, each found (or skipped
//! with a notice, or failed under `CI`), and a fresh namespace or database per test.

use futures::StreamExt as _;

/// The NATS server tests use: `MICROLITH_TEST_NATS`, default the local one. `None` (with a
/// notice) when it does not answer, except under `CI`, where that is a failure.
pub async fn test_nats() -> Option<String> {
    let url =
        std::env::var("MICROLITH_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let reachable =
        tokio::time::timeout(std::time::Duration::from_secs(3), async_nats::connect(&url)).await;
    match reachable {
        Ok(Ok(client)) => {
            keep_store_directory(client).await;
            Some(url)
        }
        Ok(Err(e)) => unreachable_service("NATS", &url, &e.to_string()),
        Err(_) => unreachable_service("NATS", &url, "no answer within 3 s"),
    }
}

/// Makes sure the server keeps one stream of its own, never deleted. NATS 2.9 removes an
/// account's store directory when its last stream is deleted; a stream created at that
/// moment fails with "could not create storage directory" (10077). Tests create and delete
/// their namespaces' streams in parallel, so without a stream that stays they can hit it.
/// The anchor stays on the server for later runs (and other test binaries) too.
async fn keep_store_directory(client: async_nats::Client) {
    let js = async_nats::jetstream::new(client);
    let anchor = async_nats::jetstream::stream::Config {
        name: "MICROLITH_TEST_ANCHOR".into(),
        subjects: vec!["microlith-test-anchor".into()],
        max_messages: 1,
        ..Default::default()
    };
    if let Err(e) = js.get_or_create_stream(anchor).await {
        skip_notice(&format!("cannot keep the NATS store directory: {e}"));
    }
}

/// The streams of one test's bus namespace; deleted when the last handle goes.
pub struct NatsNamespace {
    pub url: String,
    pub name: String,
}

impl Drop for NatsNamespace {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), format!("{}_", self.name.to_uppercase()));
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let Ok(client) = async_nats::connect(&url).await else { return };
                let js = async_nats::jetstream::new(client);
                let names: Vec<String> =
                    js.stream_names().filter_map(async |n| n.ok()).collect().await;
                for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
                    let _ = js.delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}

/// The PostgreSQL server tests use: `MICROLITH_TEST_PG`, default the local one. `None`
/// (with a notice) when it does not answer, except under `CI`, where that is a failure.
pub async fn test_postgres() -> Option<String> {
    let url = std::env::var("MICROLITH_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url),
    )
    .await;
    match reachable {
        Ok(Ok(pool)) => {
            pool.close().await;
            Some(url)
        }
        Ok(Err(e)) => unreachable_service("PostgreSQL", &url, &e.to_string()),
        Err(_) => unreachable_service("PostgreSQL", &url, "no answer within 3 s"),
    }
}

fn unreachable_service(what: &str, url: &str, why: &str) -> Option<String> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} at {url} is required under CI: {why}");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    skip_notice(&format!("{test} skipped: {what} at {url} is unreachable ({why})"));
    None
}

/// Prints `line` where the test runner shows it: straight to the process's stderr, which
/// the runner does not capture (it captures only `print!`/`eprint!` of the test thread).
pub fn skip_notice(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "notice: {line}");
}

/// Ends a test binary whose every test needs a server that is not there, with one closing
/// line that says how many tests were skipped and why (the runner's own summary never
/// comes). Runs before any test has done work: every test checks first.
pub(crate) fn skip_binary(why: &str) -> ! {
    let listed = std::env::current_exe().ok().and_then(|exe| {
        let out = std::process::Command::new(exe).args(["--list", "--format=terse"]).output();
        out.ok().map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.ends_with(": test")).count()
        })
    });
    let count = listed.map_or_else(|| "all".to_owned(), |n| n.to_string());
    skip_notice(&format!("test result: skipped. {count} tests not run: {why}"));
    std::process::exit(0)
}

/// A fresh database on the test server's URL: `…/microlith_test_<random>`.
pub(crate) fn fresh_database(server: &str) -> (String, String) {
    let name = format!("microlith_test_{}", uuid::Uuid::new_v4().simple());
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    (format!("{base}/{name}"), name)
}

/// Drops a test database (best effort; from a thread of its own because `Drop` cannot wait).
fn drop_database(url: String, name: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
            let maintenance = format!("{base}/postgres");
            if let Ok(pool) =
                sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&maintenance).await
            {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                pool.close().await;
            }
        });
    })
    .join();
}

/// A PostgreSQL database made for one test; dropped when the last handle goes.
pub struct PgDatabase {
    pub url: String,
    pub name: String,
}

/// A PostgreSQL database and a NATS namespace of their own for a shop a test starts by
/// hand, on the test servers (`None`, with a notice, when one does not answer, except under
/// `CI`); both are removed when dropped.
pub async fn scratch_pg_and_nats() -> Option<(PgDatabase, NatsNamespace)> {
    let pg = test_postgres().await?;
    let nats = test_nats().await?;
    let (url, name) = fresh_database(&pg);
    // 21 characters: `--namespace` takes at most 32.
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    Some((PgDatabase { url, name }, NatsNamespace { url: nats, name: namespace }))
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_database(self.url.clone(), self.name.clone());
    }
}
